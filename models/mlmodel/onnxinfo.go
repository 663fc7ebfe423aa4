package mlmodel

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// onnxDTypes maps ONNX TensorProto.DataType numbers to numpy names.
var onnxDTypes = map[uint64]string{
	1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
	9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
}

// graphIO reads the graph inputs (less initializers, which older exporters
// also list as inputs) and outputs of a serialized ONNX ModelProto, as tensor
// specs: a symbolic or unknown dimension becomes -1. It reads only the few
// fields it needs (onnx.proto: ModelProto.graph = 7, GraphProto.initializer
// = 5, input = 11, output = 12), so a model of any size is not copied.
func graphIO(model []byte) (inputs, outputs []TensorSpec, err error) {
	graph, err := field(model, 7)
	if err != nil {
		return nil, nil, err
	}
	if graph == nil {
		return nil, nil, fmt.Errorf("%w: no graph", ErrBadONNX)
	}
	inits := map[string]bool{}
	err = each(graph, func(num protowire.Number, b []byte) error {
		switch num {
		case 5:
			name, err := field(b, 8) // TensorProto.name
			if err != nil {
				return err
			}
			inits[string(name)] = true
		case 11, 12:
			spec, err := valueInfo(b)
			if err != nil {
				return err
			}
			if num == 11 {
				inputs = append(inputs, spec)
			} else {
				outputs = append(outputs, spec)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	live := inputs[:0]
	for _, in := range inputs {
		if !inits[in.Name] {
			live = append(live, in)
		}
	}
	return live, outputs, nil
}

// valueInfo reads a ValueInfoProto {name = 1, type = 2 {tensor_type = 1
// {elem_type = 1, shape = 2 {dim = 1 {dim_value = 1 | dim_param = 2}}}}}.
func valueInfo(b []byte) (TensorSpec, error) {
	var s TensorSpec
	name, err := field(b, 1)
	if err != nil {
		return s, err
	}
	s.Name = string(name)
	typ, err := field(b, 2)
	if err != nil {
		return s, err
	}
	tensor, err := field(typ, 1)
	if err != nil {
		return s, err
	}
	if tensor == nil {
		return s, fmt.Errorf("%w: %s is not a tensor", ErrBadONNX, s.Name)
	}
	var elem uint64
	var shape []byte
	err = eachRaw(tensor, func(num protowire.Number, typ protowire.Type, b []byte, v uint64) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			elem = v
		case num == 2 && typ == protowire.BytesType:
			shape = b
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	dt, ok := onnxDTypes[elem]
	if !ok {
		dt = fmt.Sprintf("onnx-type-%d", elem)
	}
	s.DType = dt
	s.Shape = []int64{}
	err = each(shape, func(num protowire.Number, dim []byte) error {
		if num != 1 {
			return nil
		}
		d := int64(-1)
		err := eachRaw(dim, func(num protowire.Number, typ protowire.Type, _ []byte, v uint64) error {
			if num == 1 && typ == protowire.VarintType {
				d = int64(v)
			}
			return nil
		})
		s.Shape = append(s.Shape, d)
		return err
	})
	return s, err
}

// field returns the last occurrence of length-delimited field num in msg,
// nil if absent.
func field(msg []byte, num protowire.Number) ([]byte, error) {
	var out []byte
	err := each(msg, func(n protowire.Number, b []byte) error {
		if n == num {
			out = b
		}
		return nil
	})
	return out, err
}

// each calls fn for every length-delimited field of msg.
func each(msg []byte, fn func(protowire.Number, []byte) error) error {
	return eachRaw(msg, func(num protowire.Number, typ protowire.Type, b []byte, _ uint64) error {
		if typ == protowire.BytesType {
			return fn(num, b)
		}
		return nil
	})
}

// eachRaw walks the fields of msg: bytes for length-delimited ones, v for varints.
func eachRaw(msg []byte, fn func(protowire.Number, protowire.Type, []byte, uint64) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrBadONNX, protowire.ParseError(n))
		}
		msg = msg[n:]
		var b []byte
		var v uint64
		switch typ {
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(msg)
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(msg)
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrBadONNX, protowire.ParseError(n))
		}
		msg = msg[n:]
		if err := fn(num, typ, b, v); err != nil {
			return err
		}
	}
	return nil
}
