package embedded

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/capflow/capflow/featurestore"
)

// Records (tools, capabilities, queries, experiences) are stored as JSON:
// they are small, their JSON shape is already the interchange format, and a
// field added later decodes old values without a migration. Vectors are
// stored as little-endian float32 — a 1024-d embedding is 4 KB that way
// against ~11 KB as JSON text, and decoding is a copy rather than float
// parsing, which matters when NearestCapabilities loads every hybrid
// embedding. A feature row is a fixed-order binary record whose first byte
// is a format version, so a later layout can still read this one.

const featuresVersion = 1

var errCorrupt = errors.New("embedded: corrupt value")

type encoder struct{ b []byte }

func (e *encoder) byte(x byte)      { e.b = append(e.b, x) }
func (e *encoder) uvarint(x uint64) { e.b = binary.AppendUvarint(e.b, x) }
func (e *encoder) varint(x int64)   { e.b = binary.AppendVarint(e.b, x) }
func (e *encoder) float64(x float64) {
	e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(x))
}
func (e *encoder) bytes(p []byte)  { e.uvarint(uint64(len(p))); e.b = append(e.b, p...) }
func (e *encoder) string(s string) { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }

// vector writes len+1 first so a nil vector (0) stays distinct from an
// empty one.
func (e *encoder) vector(v []float32) {
	if v == nil {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(len(v)) + 1)
	e.b = appendFloat32s(e.b, v)
}

func (e *encoder) time(t time.Time) {
	b, _ := t.UTC().MarshalBinary() // cannot fail for UTC
	e.bytes(b)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err = errCorrupt; d.b = nil }

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail()
		return 0
	}
	x := d.b[0]
	d.b = d.b[1:]
	return x
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
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
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) float64() float64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail()
		return 0
	}
	x := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return x
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) vector() []float32 {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	n--
	if uint64(len(d.b))/4 < n {
		d.fail()
		return nil
	}
	v := decodeFloat32s(d.b[:4*n])
	d.b = d.b[4*n:]
	return v
}

func (d *decoder) time() time.Time {
	var t time.Time
	if b := d.bytes(); d.err == nil {
		if err := t.UnmarshalBinary(b); err != nil {
			d.fail()
		}
	}
	return t.UTC()
}

func appendFloat32s(b []byte, v []float32) []byte {
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// encodeVector returns v as little-endian float32s (nil for nil).
func encodeVector(v []float32) []byte {
	if v == nil {
		return nil
	}
	return appendFloat32s(make([]byte, 0, 4*len(v)), v)
}

// decodeFloat32s copies p (whose length is a multiple of 4) into a new
// vector: bbolt's values are only valid inside their transaction.
func decodeFloat32s(p []byte) []float32 {
	v := make([]float32, len(p)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
	}
	return v
}

// decodeVector is decodeFloat32s for a whole stored value.
func decodeVector(p []byte) ([]float32, error) {
	if p == nil {
		return nil, nil
	}
	if len(p)%4 != 0 {
		return nil, errCorrupt
	}
	return decodeFloat32s(p), nil
}

func encodeFeatures(r featurestore.CapabilityFeatures) []byte {
	e := &encoder{b: make([]byte, 0, 64+4*(len(r.TextEmbedding)+len(r.N2VEmbedding)+len(r.HybridEmbedding)))}
	e.byte(featuresVersion)
	e.vector(r.TextEmbedding)
	e.vector(r.N2VEmbedding)
	e.vector(r.HybridEmbedding)
	e.varint(int64(r.ToolCount))
	e.float64(r.AvgExecutionTimeMs)
	e.float64(r.SuccessRate)
	e.varint(int64(r.UsageCount1d))
	e.varint(int64(r.UsageCount7d))
	e.varint(int64(r.UsageCount30d))
	e.float64(r.PageRank)
	e.float64(r.ClusteringCoefficient)
	e.string(r.FeatureVersion)
	e.time(r.ComputedAt)
	return e.b
}

func decodeFeatures(id string, p []byte) (featurestore.CapabilityFeatures, error) {
	d := &decoder{b: p}
	if d.byte() != featuresVersion {
		return featurestore.CapabilityFeatures{}, errCorrupt
	}
	r := featurestore.CapabilityFeatures{
		CapabilityID:          id,
		TextEmbedding:         d.vector(),
		N2VEmbedding:          d.vector(),
		HybridEmbedding:       d.vector(),
		ToolCount:             int(d.varint()),
		AvgExecutionTimeMs:    d.float64(),
		SuccessRate:           d.float64(),
		UsageCount1d:          int(d.varint()),
		UsageCount7d:          int(d.varint()),
		UsageCount30d:         int(d.varint()),
		PageRank:              d.float64(),
		ClusteringCoefficient: d.float64(),
		FeatureVersion:        d.string(),
		ComputedAt:            d.time(),
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return r, d.err
}

// hybridOf reads only the hybrid embedding of an encoded feature row, for
// the nearest-neighbour cache.
func hybridOf(p []byte) ([]float32, error) {
	d := &decoder{b: p}
	if d.byte() != featuresVersion {
		return nil, errCorrupt
	}
	d.vector() // text
	d.vector() // n2v
	v := d.vector()
	return v, d.err
}

func encodeIntent(f featurestore.IntentFeatures) []byte {
	e := &encoder{b: make([]byte, 0, 32+4*len(f.Embedding))}
	e.byte(featuresVersion)
	e.vector(f.Embedding)
	e.uvarint(uint64(len(f.ContextTools)))
	for _, t := range f.ContextTools {
		e.string(t)
	}
	e.time(f.CreatedAt)
	return e.b
}

func decodeIntent(hash string, p []byte) (*featurestore.IntentFeatures, error) {
	d := &decoder{b: p}
	if d.byte() != featuresVersion {
		return nil, errCorrupt
	}
	f := &featurestore.IntentFeatures{IntentHash: hash, Embedding: d.vector()}
	n := d.uvarint()
	if n > uint64(len(d.b)) { // each string takes at least one byte
		return nil, errCorrupt
	}
	for range n {
		f.ContextTools = append(f.ContextTools, d.string())
	}
	f.CreatedAt = d.time()
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return f, d.err
}
