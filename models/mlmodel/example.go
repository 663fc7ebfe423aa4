package mlmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Example types of saved_input_example_info, as MLflow names them. A dict of
// tensors is "ndarray", like a single numpy array.
const exampleTypeNDArray = "ndarray"

// pyFloat formats v as Python's repr(float) does (the shortest digits that
// round-trip, fixed notation for exponents in [-4, 16), else d.ddde±XX), so
// that input examples read exactly like the ones MLflow writes.
func pyFloat(v float64) string {
	e := strconv.FormatFloat(v, 'e', -1, 64) // [-]d[.ddd]e±XX
	neg := strings.HasPrefix(e, "-")
	e = strings.TrimPrefix(e, "-")
	mant, expStr, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp, _ := strconv.Atoi(expStr)
	decpt := exp + 1 // digits are 0.d1d2… × 10^decpt
	var s string
	switch {
	case digits == "0":
		s = "0.0"
	case decpt <= -4 || decpt > 16:
		s = digits[:1]
		if len(digits) > 1 {
			s += "." + digits[1:]
		}
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		s += fmt.Sprintf("e%s%02d", sign, exp)
	case decpt <= 0:
		s = "0." + strings.Repeat("0", -decpt) + digits
	case decpt >= len(digits):
		s = digits + strings.Repeat("0", decpt-len(digits)) + ".0"
	default:
		s = digits[:decpt] + "." + digits[decpt:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// jsonWriter writes nested lists of numbers like Python's json.dumps: with
// indent 0, ", " and ": " separators on one line; with indent > 0, one
// element per line.
type jsonWriter struct {
	b      bytes.Buffer
	indent int
}

func (w *jsonWriter) newline(level int) {
	if w.indent > 0 {
		w.b.WriteByte('\n')
		w.b.WriteString(strings.Repeat(" ", w.indent*level))
	}
}

func (w *jsonWriter) sep() {
	if w.indent > 0 {
		w.b.WriteByte(',')
	} else {
		w.b.WriteString(", ")
	}
}

// tensor writes t's values as nested lists, at nesting level.
func (w *jsonWriter) tensor(shape []int64, data []float32, level int) {
	if len(shape) == 0 {
		w.b.WriteString(pyFloat(float64(data[0])))
		return
	}
	if shape[0] == 0 {
		w.b.WriteString("[]")
		return
	}
	stride := len(data) / int(shape[0])
	w.b.WriteByte('[')
	for i := range int(shape[0]) {
		if i > 0 {
			w.sep()
		}
		w.newline(level + 1)
		w.tensor(shape[1:], data[i*stride:(i+1)*stride], level+1)
	}
	w.newline(level)
	w.b.WriteByte(']')
}

// object writes {"k": tensor, …} in the order of names, at nesting level.
func (w *jsonWriter) object(names []string, ex map[string]Tensor, level int) {
	w.b.WriteByte('{')
	for i, name := range names {
		if i > 0 {
			w.sep()
		}
		w.newline(level + 1)
		k, _ := json.Marshal(name)
		w.b.Write(k)
		w.b.WriteString(": ")
		t := ex[name]
		w.tensor(t.Shape, t.Data, level+1)
	}
	w.newline(level)
	w.b.WriteByte('}')
}

// encodeExample returns input_example.json and serving_input_example.json for
// a dict of tensors, as MLflow 3's _Example writes them: the dict itself on
// one line, and {"inputs": dict} indented by 2. Keys follow the signature's
// input order (Python keeps the dict's order).
func encodeExample(inputs []TensorSpec, ex map[string]Tensor) (example, serving []byte) {
	names := make([]string, len(inputs))
	for i, s := range inputs {
		names[i] = s.Name
	}
	flat := &jsonWriter{}
	flat.object(names, ex, 0)
	ind := &jsonWriter{indent: 2}
	ind.b.WriteByte('{')
	ind.newline(1)
	ind.b.WriteString(`"inputs": `)
	ind.object(names, ex, 1)
	ind.newline(0)
	ind.b.WriteByte('}')
	return flat.b.Bytes(), ind.b.Bytes()
}

// decodeExample parses an "ndarray" input example: a JSON object of nested
// number lists (a dict of tensors), or a bare nested list when the signature
// has a single input.
func decodeExample(b []byte, inputs []TensorSpec) (map[string]Tensor, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrBadExample, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after the JSON value", ErrBadExample)
	}
	out := map[string]Tensor{}
	switch x := v.(type) {
	case map[string]any:
		for name, val := range x {
			t, err := toTensor(val)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrBadExample, name, err)
			}
			out[name] = t
		}
	case []any:
		if len(inputs) != 1 {
			return nil, fmt.Errorf("%w: a bare array, but the signature has %d inputs", ErrBadExample, len(inputs))
		}
		t, err := toTensor(x)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadExample, err)
		}
		out[inputs[0].Name] = t
	default:
		return nil, fmt.Errorf("%w: a JSON %T, want an object of tensors", ErrBadExample, v)
	}
	return out, nil
}

// toTensor converts nested JSON lists of numbers to a Tensor, checking that
// they are rectangular.
func toTensor(v any) (Tensor, error) {
	var shape []int64
	for x := v; ; {
		l, ok := x.([]any)
		if !ok {
			break
		}
		shape = append(shape, int64(len(l)))
		if len(l) == 0 {
			break
		}
		x = l[0]
	}
	var data []float32
	var walk func(x any, depth int) error
	walk = func(x any, depth int) error {
		if depth == len(shape) {
			n, ok := x.(json.Number)
			if !ok {
				return fmt.Errorf("element %v is not a number", x)
			}
			f, err := strconv.ParseFloat(string(n), 32)
			if err != nil {
				return fmt.Errorf("element %s: %v", n, err)
			}
			data = append(data, float32(f))
			return nil
		}
		l, ok := x.([]any)
		if !ok || int64(len(l)) != shape[depth] {
			return fmt.Errorf("not rectangular: shape %v expected", shape)
		}
		for _, e := range l {
			if err := walk(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(v, 0); err != nil {
		return Tensor{}, err
	}
	return Tensor{Shape: shape, Data: data}, nil
}
