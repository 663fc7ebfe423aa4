// Package codec is the compact binary encoding of feature-store values,
// shared by the Redis cache layer (featurestore/cache) and the embedded
// bbolt store (featurestore/embedded), so that both store the same records
// the same way.
//
// Why binary rather than JSON: a feature row is ~2,100 float32s (1024 + 64 +
// 1024), which is 8.4 KB as little-endian float32 against ~20 KB as JSON
// text, and decoding is a copy instead of float parsing — it matters for a
// 1,000-row MGET on the cache's request path and for the embedded store's
// nearest-neighbour scan, which loads every text or hybrid embedding.
//
// Layout: a version byte, a kind byte, then the record's fields in a fixed
// order. The version lets a later layout refuse (or still read) this one; the
// kind makes a value of one record type undecodable as another (a value under
// the wrong key, or in the wrong bucket, is an error rather than garbage).
// Strings are uvarint-length-prefixed; vectors and string lists are prefixed
// with len+1 so that nil (0) stays distinct from empty. Floats are float64
// bits little-endian, ints are varints, vectors are float32 little-endian,
// times are time.Time's MarshalBinary of the instant in UTC (the stores'
// contract is that times come back in UTC).
//
// A decoded record never aliases its input: bbolt's values are only valid
// inside their transaction.
package codec

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/capflow/capflow/featurestore"
)

// Version is the layout's version, the first byte of every value. The cache
// also puts it in its Redis key prefix, so a new layout never meets old
// values there.
const Version = 2

// Kinds, the second byte of every value.
const (
	kindFeatures byte = 'f'
	kindIntent   byte = 'i'
	kindVector   byte = 'v'
)

// ErrCorrupt is returned for a value that is truncated, has trailing bytes,
// or has another version or kind than the decoder expects.
var ErrCorrupt = errors.New("featurestore: corrupt or foreign encoded value")

// EncodeFeatures encodes a capability feature row.
func EncodeFeatures(r *featurestore.CapabilityFeatures) []byte {
	e := newEncoder(kindFeatures, 128+4*(len(r.TextEmbedding)+len(r.N2VEmbedding)+len(r.HybridEmbedding)))
	e.str(r.CapabilityID)
	e.vec(r.TextEmbedding)
	e.vec(r.N2VEmbedding)
	e.vec(r.HybridEmbedding)
	e.varint(int64(r.ToolCount))
	e.float(r.AvgExecutionTimeMs)
	e.float(r.SuccessRate)
	e.varint(int64(r.UsageCount1d))
	e.varint(int64(r.UsageCount7d))
	e.varint(int64(r.UsageCount30d))
	e.float(r.PageRank)
	e.float(r.ClusteringCoefficient)
	e.str(r.FeatureVersion)
	e.time(r.ComputedAt)
	return e.b
}

// DecodeFeatures decodes a value of EncodeFeatures.
func DecodeFeatures(b []byte) (*featurestore.CapabilityFeatures, error) {
	d := newDecoder(kindFeatures, b)
	r := &featurestore.CapabilityFeatures{
		CapabilityID:          d.str(),
		TextEmbedding:         d.vec(),
		N2VEmbedding:          d.vec(),
		HybridEmbedding:       d.vec(),
		ToolCount:             int(d.varint()),
		AvgExecutionTimeMs:    d.float(),
		SuccessRate:           d.float(),
		UsageCount1d:          int(d.varint()),
		UsageCount7d:          int(d.varint()),
		UsageCount30d:         int(d.varint()),
		PageRank:              d.float(),
		ClusteringCoefficient: d.float(),
		FeatureVersion:        d.str(),
		ComputedAt:            d.time(),
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return r, nil
}

// FeaturesHybrid decodes only the hybrid embedding of a value of
// EncodeFeatures, for the nearest-neighbour scan: the fields before it are
// skipped without copying, and the fields after it are not read.
func FeaturesHybrid(b []byte) ([]float32, error) {
	d := newDecoder(kindFeatures, b)
	d.take(d.uvarint()) // capability id
	d.vecBytes()        // text
	d.vecBytes()        // n2v
	v := d.vec()
	return v, d.err
}

// FeaturesText decodes only the text embedding of a value of
// EncodeFeatures, for the nearest-neighbour scan, as FeaturesHybrid does.
func FeaturesText(b []byte) ([]float32, error) {
	d := newDecoder(kindFeatures, b)
	d.take(d.uvarint()) // capability id
	v := d.vec()
	return v, d.err
}

// EncodeIntent encodes an intent's features.
func EncodeIntent(f *featurestore.IntentFeatures) []byte {
	e := newEncoder(kindIntent, 64+4*len(f.Embedding))
	e.str(f.IntentHash)
	e.vec(f.Embedding)
	e.strs(f.ContextTools)
	e.time(f.CreatedAt)
	return e.b
}

// DecodeIntent decodes a value of EncodeIntent.
func DecodeIntent(b []byte) (*featurestore.IntentFeatures, error) {
	d := newDecoder(kindIntent, b)
	f := &featurestore.IntentFeatures{
		IntentHash:   d.str(),
		Embedding:    d.vec(),
		ContextTools: d.strs(),
		CreatedAt:    d.time(),
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return f, nil
}

// EncodeVector encodes a bare vector (a cached text embedding).
func EncodeVector(v []float32) []byte {
	e := newEncoder(kindVector, 4+4*len(v))
	e.vec(v)
	return e.b
}

// DecodeVector decodes a value of EncodeVector.
func DecodeVector(b []byte) ([]float32, error) {
	d := newDecoder(kindVector, b)
	v := d.vec()
	if err := d.done(); err != nil {
		return nil, err
	}
	return v, nil
}

// encoder appends fields to b, which starts with the version and kind.
type encoder struct{ b []byte }

func newEncoder(kind byte, sizeHint int) *encoder {
	e := &encoder{b: make([]byte, 0, 2+sizeHint)}
	e.b = append(e.b, Version, kind)
	return e
}

func (e *encoder) uvarint(x uint64) { e.b = binary.AppendUvarint(e.b, x) }
func (e *encoder) varint(x int64)   { e.b = binary.AppendVarint(e.b, x) }
func (e *encoder) float(x float64)  { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(x)) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }

func (e *encoder) vec(v []float32) {
	if v == nil {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(len(v)) + 1)
	for _, x := range v {
		e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(x))
	}
}

func (e *encoder) strs(ss []string) {
	if ss == nil {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(len(ss)) + 1)
	for _, s := range ss {
		e.str(s)
	}
}

func (e *encoder) time(t time.Time) {
	b, _ := t.UTC().MarshalBinary() // fails only for zone offsets, and UTC has none
	e.uvarint(uint64(len(b)))
	e.b = append(e.b, b...)
}

// decoder reads fields off b. The error is sticky: after the first failure
// every read returns a zero value, so a record decodes field by field and
// is checked once, by done.
type decoder struct {
	b   []byte
	err error
}

func newDecoder(kind byte, b []byte) *decoder {
	if len(b) < 2 || b[0] != Version || b[1] != kind {
		return &decoder{err: ErrCorrupt}
	}
	return &decoder{b: b[2:]}
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = ErrCorrupt
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = ErrCorrupt
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = ErrCorrupt
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) float() float64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(p))
}

func (d *decoder) str() string { return string(d.take(d.uvarint())) }

// vecBytes reads a vector's length prefix and returns its float32s still
// encoded, so that a vector can also be skipped without a copy; ok is false
// for a nil vector (or after an error).
func (d *decoder) vecBytes() (p []byte, ok bool) {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil, false
	}
	n--
	if n > uint64(len(d.b))/4 {
		d.err = ErrCorrupt
		return nil, false
	}
	p = d.take(4 * n)
	return p, d.err == nil
}

func (d *decoder) vec() []float32 {
	p, ok := d.vecBytes()
	if !ok {
		return nil
	}
	v := make([]float32, len(p)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
	}
	return v
}

func (d *decoder) strs() []string {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	n--
	if n > uint64(len(d.b)) { // each string takes at least one byte
		d.err = ErrCorrupt
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.str()
	}
	return ss
}

func (d *decoder) time() time.Time {
	var t time.Time
	p := d.take(d.uvarint())
	if d.err == nil {
		if err := t.UnmarshalBinary(p); err != nil {
			d.err = ErrCorrupt
		}
	}
	return t.UTC()
}

// done reports a decoding error, including trailing bytes.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = ErrCorrupt
	}
	return d.err
}
