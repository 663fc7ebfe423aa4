package mlmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// TensorSpec is one named tensor of a tensor-based MLflow signature. DType is
// a numpy type name as MLflow writes it ("float32"); -1 in Shape marks a
// dynamic axis.
type TensorSpec struct {
	Name  string
	DType string
	Shape []int64
}

// String renders the spec as "intent float32[-1,64]".
func (s TensorSpec) String() string {
	dims := make([]string, len(s.Shape))
	for i, d := range s.Shape {
		dims[i] = strconv.FormatInt(d, 10)
	}
	return s.Name + " " + s.DType + "[" + strings.Join(dims, ",") + "]"
}

// dtypes are the numpy type names MLflow's TensorSpec accepts that an ONNX
// model can take.
var dtypes = []string{"float16", "float32", "float64", "int8", "int16", "int32", "int64",
	"uint8", "uint16", "uint32", "uint64", "bool"}

func (s TensorSpec) check() error {
	if s.Name == "" {
		return fmt.Errorf("%w: a tensor has no name", ErrBadSignature)
	}
	if !slices.Contains(dtypes, s.DType) {
		return fmt.Errorf("%w: %s has dtype %q (want one of %s)", ErrBadSignature, s.Name, s.DType, strings.Join(dtypes, ", "))
	}
	for _, d := range s.Shape {
		if d < -1 {
			return fmt.Errorf("%w: %s has dimension %d (want a size ≥ 0 or -1 for a dynamic axis)", ErrBadSignature, s.Name, d)
		}
	}
	return nil
}

// checkSpecs checks one side of a signature: at least one tensor, unique names.
func checkSpecs(side string, specs []TensorSpec) error {
	if len(specs) == 0 {
		return fmt.Errorf("%w: no %s", ErrBadSignature, side)
	}
	seen := map[string]bool{}
	for _, s := range specs {
		if err := s.check(); err != nil {
			return err
		}
		if seen[s.Name] {
			return fmt.Errorf("%w: %s %q named twice", ErrBadSignature, side, s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

// Tensor is a dense float32 tensor, row-major: an input example or a model
// output. capflow's models take float32 only.
type Tensor struct {
	Shape []int64
	Data  []float32
}

// size is the element count of shape, -1 if a dimension is negative or the
// product overflows.
func size(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 || d > 0 && n > math.MaxInt64/d {
			return -1
		}
		n *= d
	}
	return n
}

// fits reports why t cannot be a value of spec, or nil.
func (t Tensor) fits(spec TensorSpec) error {
	if spec.DType != "float32" {
		return fmt.Errorf("%w: %s is %s; input examples hold float32 tensors only", ErrBadExample, spec.Name, spec.DType)
	}
	if n := size(t.Shape); n < 0 || n != int64(len(t.Data)) {
		return fmt.Errorf("%w: %s has shape %v but %d values", ErrBadExample, spec.Name, t.Shape, len(t.Data))
	}
	if len(t.Shape) != len(spec.Shape) {
		return fmt.Errorf("%w: %s has shape %v, the signature wants rank %d (%v)", ErrBadExample, spec.Name, t.Shape, len(spec.Shape), spec.Shape)
	}
	for i, d := range spec.Shape {
		if d >= 0 && t.Shape[i] != d {
			return fmt.Errorf("%w: %s has shape %v, the signature wants %v", ErrBadExample, spec.Name, t.Shape, spec.Shape)
		}
	}
	for i, v := range t.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: %s[%d] is %v", ErrBadExample, spec.Name, i, v)
		}
	}
	return nil
}

// checkExample checks that ex has exactly one fitting tensor per input.
func checkExample(inputs []TensorSpec, ex map[string]Tensor) error {
	for _, s := range inputs {
		t, ok := ex[s.Name]
		if !ok {
			return fmt.Errorf("%w: no tensor for input %q", ErrBadExample, s.Name)
		}
		if err := t.fits(s); err != nil {
			return err
		}
	}
	if len(ex) != len(inputs) {
		for name := range ex {
			if !slices.ContainsFunc(inputs, func(s TensorSpec) bool { return s.Name == name }) {
				return fmt.Errorf("%w: %q is not an input of the signature", ErrBadExample, name)
			}
		}
	}
	return nil
}

// specJSON is one entry of a signature's inputs or outputs as MLflow writes it.
type specJSON struct {
	Name       string `json:"name,omitempty"`
	Type       string `json:"type"`
	TensorSpec *struct {
		DType string  `json:"dtype"`
		Shape []int64 `json:"shape"`
	} `json:"tensor-spec,omitempty"`
}

// encodeSpecs writes specs the way MLflow's Schema.to_json does (Python's
// json.dumps: ", " and ": " separators, keys in MLflow's order), so the
// MLmodel signature reads byte for byte like one the official client wrote.
func encodeSpecs(specs []TensorSpec) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range specs {
		if i > 0 {
			b.WriteString(", ")
		}
		name, _ := json.Marshal(s.Name)
		dtype, _ := json.Marshal(s.DType)
		fmt.Fprintf(&b, `{"name": %s, "type": "tensor", "tensor-spec": {"dtype": %s, "shape": [`, name, dtype)
		for j, d := range s.Shape {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.FormatInt(d, 10))
		}
		b.WriteString("]}}")
	}
	b.WriteByte(']')
	return b.String()
}

// decodeSpecs parses one side of a signature; column-based signatures are
// refused: capflow's models are tensor-based.
func decodeSpecs(side, s string) ([]TensorSpec, error) {
	var raw []specJSON
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %s is not a JSON list of specs: %v", ErrBadSignature, side, err)
	}
	out := make([]TensorSpec, 0, len(raw))
	for i, r := range raw {
		if r.Type != "tensor" || r.TensorSpec == nil {
			return nil, fmt.Errorf("%w: %s[%d] (%q) is of type %q, not a tensor spec", ErrBadSignature, side, i, r.Name, r.Type)
		}
		out = append(out, TensorSpec{Name: r.Name, DType: r.TensorSpec.DType, Shape: r.TensorSpec.Shape})
	}
	if err := checkSpecs(side, out); err != nil {
		return nil, err
	}
	return out, nil
}
