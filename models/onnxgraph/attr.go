package onnxgraph

// attrType is AttributeProto.AttributeType.
type attrType int32

const (
	attrFloat   attrType = 1
	attrInt     attrType = 2
	attrString  attrType = 3
	attrTensor  attrType = 4
	attrFloats  attrType = 6
	attrInts    attrType = 7
	attrStrings attrType = 8
)

// Attr is one node attribute; build it with AttrInt, AttrInts, AttrFloat,
// AttrFloats, AttrString, AttrStrings or AttrTensor.
type Attr struct {
	name    string
	typ     attrType
	f       float32
	i       int64
	s       string
	t       Tensor
	floats  []float32
	ints    []int64
	strings []string
}

// AttrInt is an INT attribute.
func AttrInt(name string, v int64) Attr { return Attr{name: name, typ: attrInt, i: v} }

// AttrInts is an INTS attribute.
func AttrInts(name string, v ...int64) Attr {
	return Attr{name: name, typ: attrInts, ints: append([]int64(nil), v...)}
}

// AttrFloat is a FLOAT attribute.
func AttrFloat(name string, v float32) Attr { return Attr{name: name, typ: attrFloat, f: v} }

// AttrFloats is a FLOATS attribute.
func AttrFloats(name string, v ...float32) Attr {
	return Attr{name: name, typ: attrFloats, floats: append([]float32(nil), v...)}
}

// AttrString is a STRING attribute.
func AttrString(name, v string) Attr { return Attr{name: name, typ: attrString, s: v} }

// AttrStrings is a STRINGS attribute.
func AttrStrings(name string, v ...string) Attr {
	return Attr{name: name, typ: attrStrings, strings: append([]string(nil), v...)}
}

// AttrTensor is a TENSOR attribute (the value of a Constant node, say).
func AttrTensor(name string, t Tensor) Attr { return Attr{name: name, typ: attrTensor, t: t} }
