package onnxgraph

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// DataType is an ONNX TensorProto.DataType.
type DataType int32

// The element types the project uses (values from onnx.proto).
const (
	Float   DataType = 1
	Uint8   DataType = 2
	Int8    DataType = 3
	Int32   DataType = 6
	Int64   DataType = 7
	Bool    DataType = 9
	Float16 DataType = 10
	Double  DataType = 11
)

// String names the type as onnx.proto does.
func (d DataType) String() string {
	switch d {
	case Float:
		return "FLOAT"
	case Uint8:
		return "UINT8"
	case Int8:
		return "INT8"
	case Int32:
		return "INT32"
	case Int64:
		return "INT64"
	case Bool:
		return "BOOL"
	case Float16:
		return "FLOAT16"
	case Double:
		return "DOUBLE"
	}
	return "DataType(" + strconv.Itoa(int(d)) + ")"
}

// size is the byte width of one element, 0 if unknown.
func (d DataType) size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Float16:
		return 2
	case Float, Int32:
		return 4
	case Int64, Double:
		return 8
	}
	return 0
}

// Dim is one dimension of a graph input or output: a fixed size (Param empty)
// or a symbolic name such as "batch".
type Dim struct {
	Value int64
	Param string
}

// Tensor is a constant tensor: an initializer or a tensor attribute. Raw holds
// the elements little-endian, row-major.
type Tensor struct {
	Type DataType
	Dims []int64
	Raw  []byte
}

// FloatTensor packs float32 data into a Tensor.
func FloatTensor(dims []int64, data []float32) Tensor {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return Tensor{Type: Float, Dims: append([]int64(nil), dims...), Raw: raw}
}

// Int64Tensor packs int64 data into a Tensor.
func Int64Tensor(dims []int64, data []int64) Tensor {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return Tensor{Type: Int64, Dims: append([]int64(nil), dims...), Raw: raw}
}

// check reports why t is not a well-formed tensor.
func (t Tensor) check() error {
	n := int64(1)
	for _, d := range t.Dims {
		if d < 0 {
			return fmt.Errorf("%w: negative dimension in %v", ErrBadShape, t.Dims)
		}
		n *= d
	}
	size := t.Type.size()
	if size == 0 {
		return fmt.Errorf("%w: %v", ErrBadType, t.Type)
	}
	if int64(len(t.Raw)) != n*int64(size) {
		return fmt.Errorf("%w: shape %v of %v needs %d bytes, have %d", ErrBadShape, t.Dims, t.Type, n*int64(size), len(t.Raw))
	}
	return nil
}

type valueInfo struct {
	name string
	typ  DataType
	dims []Dim
}

type namedTensor struct {
	name string
	Tensor
}

type node struct {
	op, name, domain string
	inputs, outputs  []string
	attrs            []Attr
}

// Graph is an ONNX graph under construction. Builder methods never fail; the
// first malformed argument is remembered and reported by Model.Marshal, so a
// long build reads straight through. A Graph is not safe for concurrent use.
type Graph struct {
	name     string
	doc      string
	inputs   []valueInfo
	outputs  []valueInfo
	inits    []namedTensor
	nodes    []node
	counters map[string]int
	used     map[string]bool // every name handed out or declared, for Fresh
	err      error
}

// New starts an empty graph.
func New(name string) *Graph {
	return &Graph{name: name, counters: map[string]int{}, used: map[string]bool{}}
}

// Doc sets the graph's doc_string.
func (g *Graph) Doc(s string) { g.doc = s }

func (g *Graph) fail(err error) {
	if g.err == nil {
		g.err = err
	}
}

// Fresh returns a value name starting with prefix that no other call to Fresh,
// Input, Initializer or Node has used, for intermediate tensors.
func (g *Graph) Fresh(prefix string) string {
	for {
		g.counters[prefix]++
		name := prefix + "_" + strconv.Itoa(g.counters[prefix])
		if !g.used[name] {
			g.used[name] = true
			return name
		}
	}
}

// dims converts int, int64 and string dimensions.
func (g *Graph) dims(value string, ds []any) []Dim {
	out := make([]Dim, 0, len(ds))
	for _, d := range ds {
		switch v := d.(type) {
		case int:
			out = append(out, Dim{Value: int64(v)})
		case int64:
			out = append(out, Dim{Value: v})
		case string:
			out = append(out, Dim{Param: v})
		case Dim:
			out = append(out, v)
		default:
			g.fail(&GraphError{Graph: g.name, Name: value, Err: fmt.Errorf("%w: %T (want int, int64, string or Dim)", ErrBadShape, d)})
			return out
		}
	}
	return out
}

// Input declares a graph input. dims are int or int64 sizes, string symbolic
// names ("batch") or Dim values; no dims declares a scalar. It returns name.
func (g *Graph) Input(name string, typ DataType, dims ...any) string {
	g.used[name] = true
	g.inputs = append(g.inputs, valueInfo{name: name, typ: typ, dims: g.dims(name, dims)})
	return name
}

// Output declares a graph output, which some node, input or initializer must
// produce.
func (g *Graph) Output(name string, typ DataType, dims ...any) {
	g.outputs = append(g.outputs, valueInfo{name: name, typ: typ, dims: g.dims(name, dims)})
}

// Constant adds t as an initializer and returns name.
func (g *Graph) Constant(name string, t Tensor) string {
	g.used[name] = true
	if err := t.check(); err != nil {
		g.fail(&GraphError{Graph: g.name, Name: name, Err: err})
	}
	g.inits = append(g.inits, namedTensor{name: name, Tensor: t})
	return name
}

// Initializer adds a float32 initializer and returns name.
func (g *Graph) Initializer(name string, dims []int64, data []float32) string {
	return g.Constant(name, FloatTensor(dims, data))
}

// InitializerInt64 adds an int64 initializer and returns name.
func (g *Graph) InitializerInt64(name string, dims []int64, data []int64) string {
	return g.Constant(name, Int64Tensor(dims, data))
}

// FloatScalar adds a float32 scalar initializer with a fresh name.
func (g *Graph) FloatScalar(v float32) string {
	return g.Initializer(g.Fresh("const"), nil, []float32{v})
}

// IntVector adds a 1-D int64 initializer with a fresh name, for shapes, axes
// and indices.
func (g *Graph) IntVector(vs ...int64) string {
	return g.InitializerInt64(g.Fresh("ints"), []int64{int64(len(vs))}, vs)
}

// Node appends a node of the default ONNX domain. An empty input name marks
// an omitted optional input, as in ONNX.
func (g *Graph) Node(op string, inputs, outputs []string, attrs ...Attr) {
	g.DomainNode("", op, inputs, outputs, attrs...)
}

// DomainNode appends a node of an operator set other than the default one
// (the Model must import that domain).
func (g *Graph) DomainNode(domain, op string, inputs, outputs []string, attrs ...Attr) {
	for _, o := range outputs {
		g.used[o] = true
	}
	g.nodes = append(g.nodes, node{
		op: op, domain: domain,
		name:    op + "_" + strconv.Itoa(len(g.nodes)),
		inputs:  append([]string(nil), inputs...),
		outputs: append([]string(nil), outputs...),
		attrs:   attrs,
	})
}

// Op appends a single-output node and returns its freshly named output, so
// expressions chain: g.Op("Add", []string{g.Op("MatMul", []string{x, w}), b}).
func (g *Graph) Op(op string, inputs []string, attrs ...Attr) string {
	out := g.Fresh(op)
	g.Node(op, inputs, []string{out}, attrs...)
	return out
}
