package cache

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/capflow/capflow/featurestore"
)

// Redis values are a compact binary encoding rather than JSON: a feature row
// is ~2,100 float32s (1024 + 64 + 1024), which is 8.4 KB as little-endian
// float32 against ~20 KB as JSON text, and decoding is a copy instead of
// float parsing — it matters for a 1,000-row MGET on the request path. The
// first byte is a format version; a value this version cannot read is a miss.
//
// Layout: version byte, kind byte, then fields in a fixed order. Strings and
// vectors are uvarint-length-prefixed; a vector's prefix is len+1 so that a
// nil vector (0) stays distinct from an empty one. Floats are float64 bits
// little-endian, ints are varints, times use time.Time's MarshalBinary (exact,
// zone offset included).

const codecVersion = 1

const (
	kindFeatures byte = 'f'
	kindIntent   byte = 'i'
	kindVector   byte = 'v'
)

var errCorrupt = errors.New("cache: corrupt or foreign redis value")

type encoder struct{ b []byte }

func newEncoder(kind byte, sizeHint int) *encoder {
	e := &encoder{b: make([]byte, 0, 2+sizeHint)}
	e.b = append(e.b, codecVersion, kind)
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
	b, err := t.MarshalBinary()
	if err != nil { // only for zone offsets that are not whole minutes; keep the instant
		b, _ = t.UTC().MarshalBinary()
	}
	e.uvarint(uint64(len(b)))
	e.b = append(e.b, b...)
}

type decoder struct {
	b   []byte
	err error
}

func newDecoder(kind byte, b []byte) *decoder {
	d := &decoder{b: b}
	if len(b) < 2 || b[0] != codecVersion || b[1] != kind {
		d.err = errCorrupt
		return d
	}
	d.b = b[2:]
	return d
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
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
		d.err = errCorrupt
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

func (d *decoder) vec() []float32 {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	n--
	if n > uint64(len(d.b))/4 {
		d.err = errCorrupt
		return nil
	}
	p := d.take(4 * n)
	v := make([]float32, n)
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
		d.err = errCorrupt
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
			d.err = errCorrupt
		}
	}
	return t
}

// done reports a decoding error, including trailing bytes.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	return d.err
}

func encodeFeatures(r *featurestore.CapabilityFeatures) []byte {
	e := newEncoder(kindFeatures, 4*(len(r.TextEmbedding)+len(r.N2VEmbedding)+len(r.HybridEmbedding))+128)
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

func decodeFeatures(b []byte) (*featurestore.CapabilityFeatures, error) {
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

func encodeIntent(f *featurestore.IntentFeatures) []byte {
	e := newEncoder(kindIntent, 4*len(f.Embedding)+64)
	e.str(f.IntentHash)
	e.vec(f.Embedding)
	e.strs(f.ContextTools)
	e.time(f.CreatedAt)
	return e.b
}

func decodeIntent(b []byte) (*featurestore.IntentFeatures, error) {
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

func encodeVector(v []float32) []byte {
	e := newEncoder(kindVector, 4*len(v)+4)
	e.vec(v)
	return e.b
}

func decodeVector(b []byte) ([]float32, error) {
	d := newDecoder(kindVector, b)
	v := d.vec()
	if err := d.done(); err != nil {
		return nil, err
	}
	return v, nil
}
