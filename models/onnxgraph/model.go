package onnxgraph

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"
)

// OpsetID imports an operator set other than the default ONNX domain.
type OpsetID struct {
	Domain  string
	Version int64
}

// Model wraps a Graph with the ModelProto fields.
type Model struct {
	Graph *Graph
	// Opset is the version of the default ONNX operator set ("ai.onnx").
	Opset int64
	// Extra imports further domains (com.microsoft, ...).
	Extra []OpsetID
	// IRVersion defaults to the IR version released with Opset.
	IRVersion       int64
	Producer        string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	Doc             string
	Metadata        map[string]string
}

// irVersion is the IR version of the ONNX release that introduced opset; a
// runtime accepts a model only if it knows both.
func irVersion(opset int64) int64 {
	switch {
	case opset <= 14:
		return 7
	case opset <= 18:
		return 8
	case opset <= 20:
		return 9
	case opset <= 22:
		return 10
	}
	return 11
}

// Validate checks the graph: builder errors, unique value names, nodes in
// topological order with every input defined, every output produced, known
// types. It returns a *GraphError.
func (m *Model) Validate() error {
	if m.Graph == nil {
		return &GraphError{Err: fmt.Errorf("%w: no graph", ErrBadModel)}
	}
	g := m.Graph
	gerr := func(node, name string, err error) error {
		return &GraphError{Graph: g.name, Node: node, Name: name, Err: err}
	}
	if m.Opset <= 0 {
		return gerr("", "", fmt.Errorf("%w: opset %d", ErrBadModel, m.Opset))
	}
	if g.err != nil {
		return g.err
	}
	defined := map[string]bool{}
	define := func(node, name string) error {
		if name == "" {
			return gerr(node, name, fmt.Errorf("%w: empty value name", ErrBadNode))
		}
		if defined[name] {
			return gerr(node, name, ErrDuplicateName)
		}
		defined[name] = true
		return nil
	}
	for _, in := range g.inputs {
		if in.typ.size() == 0 {
			return gerr("", in.name, fmt.Errorf("%w: %v", ErrBadType, in.typ))
		}
		if err := define("", in.name); err != nil {
			return err
		}
	}
	for _, t := range g.inits {
		if err := define("", t.name); err != nil {
			return err
		}
	}
	for _, n := range g.nodes {
		if n.op == "" {
			return gerr(n.name, "", fmt.Errorf("%w: empty op type", ErrBadNode))
		}
		for _, in := range n.inputs {
			if in != "" && !defined[in] {
				return gerr(n.name, in, ErrUndefinedInput)
			}
		}
		seen := map[string]bool{}
		for _, a := range n.attrs {
			if a.name == "" || seen[a.name] {
				return gerr(n.name, a.name, fmt.Errorf("%w: attribute name empty or repeated", ErrBadNode))
			}
			seen[a.name] = true
			if a.typ == attrTensor {
				if err := a.t.check(); err != nil {
					return gerr(n.name, a.name, err)
				}
			}
		}
		if len(n.outputs) == 0 {
			return gerr(n.name, "", fmt.Errorf("%w: no outputs", ErrBadNode))
		}
		for _, out := range n.outputs {
			if err := define(n.name, out); err != nil {
				return err
			}
		}
	}
	if len(g.outputs) == 0 {
		return gerr("", "", fmt.Errorf("%w: no graph outputs", ErrBadModel))
	}
	for _, out := range g.outputs {
		if out.typ.size() == 0 {
			return gerr("", out.name, fmt.Errorf("%w: %v", ErrBadType, out.typ))
		}
		if !defined[out.name] {
			return gerr("", out.name, ErrUnproducedOutput)
		}
	}
	return nil
}

// Marshal validates the model and encodes it as an ONNX ModelProto.
func (m *Model) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	graph := m.Graph.encode()
	if len(graph) > math.MaxInt32 {
		return nil, &GraphError{Graph: m.Graph.name, Err: fmt.Errorf("%w: %d bytes exceeds the 2 GiB protobuf limit", ErrBadModel, len(graph))}
	}
	ir := m.IRVersion
	if ir == 0 {
		ir = irVersion(m.Opset)
	}
	b := make([]byte, 0, len(graph)+256)
	b = appendInt(b, 1, ir)
	b = appendString(b, 2, m.Producer)
	b = appendString(b, 3, m.ProducerVersion)
	b = appendString(b, 4, m.Domain)
	if m.ModelVersion != 0 {
		b = appendInt(b, 5, m.ModelVersion)
	}
	b = appendString(b, 6, m.Doc)
	b = protowire.AppendTag(b, 7, protowire.BytesType)
	b = protowire.AppendBytes(b, graph)
	for _, o := range append([]OpsetID{{Version: m.Opset}}, m.Extra...) {
		var op []byte
		op = appendString(op, 1, o.Domain)
		op = appendInt(op, 2, o.Version)
		b = appendMessage(b, 8, op)
	}
	keys := make([]string, 0, len(m.Metadata))
	for k := range m.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic bytes for the same model
	for _, k := range keys {
		var kv []byte
		kv = appendString(kv, 1, k)
		kv = appendString(kv, 2, m.Metadata[k])
		b = appendMessage(b, 14, kv)
	}
	return b, nil
}

// WriteFile marshals the model and writes it to path through a temporary file
// in the same directory, so readers never see half a model.
func (m *Model) WriteFile(path string) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("onnxgraph: write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("onnxgraph: write %s: %w", path, err)
	}
	return nil
}

// encode writes the GraphProto.
func (g *Graph) encode() []byte {
	size := 0
	for _, t := range g.inits {
		size += len(t.Raw) + 64
	}
	b := make([]byte, 0, size+64*len(g.nodes)+1024)
	for _, n := range g.nodes {
		b = appendMessage(b, 1, n.encode())
	}
	b = appendString(b, 2, g.name)
	for _, t := range g.inits {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, t.Tensor.encode(t.name))
	}
	b = appendString(b, 10, g.doc)
	for _, v := range g.inputs {
		b = appendMessage(b, 11, v.encode())
	}
	for _, v := range g.outputs {
		b = appendMessage(b, 12, v.encode())
	}
	return b
}

// encode writes the NodeProto.
func (n node) encode() []byte {
	var b []byte
	for _, in := range n.inputs {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, in)
	}
	for _, out := range n.outputs {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, out)
	}
	b = appendString(b, 3, n.name)
	b = appendString(b, 4, n.op)
	for _, a := range n.attrs {
		b = appendMessage(b, 5, a.encode())
	}
	b = appendString(b, 7, n.domain)
	return b
}

// encode writes the AttributeProto.
func (a Attr) encode() []byte {
	var b []byte
	b = appendString(b, 1, a.name)
	switch a.typ {
	case attrFloat:
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.f))
	case attrInt:
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.i))
	case attrString:
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendString(b, a.s)
	case attrTensor:
		b = appendMessage(b, 5, a.t.encode(""))
	case attrFloats:
		var p []byte
		for _, f := range a.floats {
			p = protowire.AppendFixed32(p, math.Float32bits(f))
		}
		b = appendMessage(b, 7, p)
	case attrInts:
		var p []byte
		for _, i := range a.ints {
			p = protowire.AppendVarint(p, uint64(i))
		}
		b = appendMessage(b, 8, p)
	case attrStrings:
		for _, s := range a.strings {
			b = protowire.AppendTag(b, 9, protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
	}
	b = protowire.AppendTag(b, 20, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(a.typ))
}

// encode writes the TensorProto with raw_data.
func (t Tensor) encode(name string) []byte {
	b := make([]byte, 0, len(t.Raw)+len(name)+16+10*len(t.Dims))
	if len(t.Dims) > 0 {
		var p []byte
		for _, d := range t.Dims {
			p = protowire.AppendVarint(p, uint64(d))
		}
		b = appendMessage(b, 1, p)
	}
	b = appendInt(b, 2, int64(t.Type))
	b = appendString(b, 8, name)
	b = protowire.AppendTag(b, 9, protowire.BytesType)
	return protowire.AppendBytes(b, t.Raw)
}

// encode writes the ValueInfoProto with a tensor TypeProto.
func (v valueInfo) encode() []byte {
	var shape []byte
	for _, d := range v.dims {
		var dim []byte
		if d.Param != "" {
			dim = protowire.AppendTag(dim, 2, protowire.BytesType)
			dim = protowire.AppendString(dim, d.Param)
		} else {
			dim = protowire.AppendTag(dim, 1, protowire.VarintType)
			dim = protowire.AppendVarint(dim, uint64(d.Value))
		}
		shape = appendMessage(shape, 1, dim)
	}
	var tensor []byte
	tensor = appendInt(tensor, 1, int64(v.typ))
	// An empty shape message means a scalar; no dims at all would mean
	// "unknown rank", which is not what Input(name, typ) asks for.
	tensor = appendMessage(tensor, 2, shape)
	var typ []byte
	typ = appendMessage(typ, 1, tensor)
	var b []byte
	b = appendString(b, 1, v.name)
	return appendMessage(b, 2, typ)
}

func appendInt(b []byte, field protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, field, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// appendString skips empty strings: proto2 optional fields left unset.
func appendString(b []byte, field protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMessage(b []byte, field protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}
