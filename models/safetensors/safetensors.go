package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
)

// maxHeader bounds the JSON header so a corrupt length cannot make us
// allocate gigabytes (the reference implementation uses the same 100 MB).
const maxHeader = 100 << 20

// Info describes one tensor in the file.
type Info struct {
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
	// Offsets are relative to the end of the header: [begin, end).
	Offsets [2]int64 `json:"data_offsets"`
}

// File is a parsed safetensors file held in memory.
type File struct {
	name     string
	tensors  map[string]Info
	metadata map[string]string
	data     []byte
}

// FormatError says why bytes are not a valid safetensors file.
type FormatError struct {
	File    string
	Tensor  string // empty for header-level problems
	Problem string
}

func (e *FormatError) Error() string {
	s := "safetensors: " + e.File
	if e.Tensor != "" {
		s += ": tensor " + e.Tensor
	}
	return s + ": " + e.Problem
}

// TensorError is a request for a tensor the file does not hold, or in a dtype
// that cannot be converted.
type TensorError struct {
	File, Tensor, Problem string
}

func (e *TensorError) Error() string {
	return "safetensors: " + e.File + ": tensor " + e.Tensor + ": " + e.Problem
}

// dtypeSize is the element width of the dtypes the format defines.
func dtypeSize(dtype string) (int64, bool) {
	switch dtype {
	case "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3":
		return 1, true
	case "I16", "U16", "F16", "BF16":
		return 2, true
	case "I32", "U32", "F32":
		return 4, true
	case "I64", "U64", "F64":
		return 8, true
	}
	return 0, false
}

// Read reads and parses the file at path.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return Parse(path, b)
}

// Parse parses b; name is used in errors. The File keeps b.
func Parse(name string, b []byte) (*File, error) {
	bad := func(tensor, format string, args ...any) error {
		return &FormatError{File: name, Tensor: tensor, Problem: fmt.Sprintf(format, args...)}
	}
	if len(b) < 8 {
		return nil, bad("", "%d bytes, shorter than the 8-byte header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > maxHeader || n > uint64(len(b)-8) {
		return nil, bad("", "header length %d exceeds the file (%d bytes) or the %d-byte limit", n, len(b), maxHeader)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		return nil, bad("", "header is not a JSON object: %v", err)
	}
	f := &File{name: name, tensors: make(map[string]Info, len(raw)), data: b[8+n:]}
	for k, v := range raw {
		if k == "__metadata__" {
			if err := json.Unmarshal(v, &f.metadata); err != nil {
				return nil, bad("", "__metadata__ is not a string map: %v", err)
			}
			continue
		}
		var info Info
		if err := json.Unmarshal(v, &info); err != nil {
			return nil, bad(k, "bad entry: %v", err)
		}
		size, ok := dtypeSize(info.DType)
		if !ok {
			return nil, bad(k, "unknown dtype %q", info.DType)
		}
		count := int64(1)
		for _, d := range info.Shape {
			if d < 0 || (d > 0 && count > math.MaxInt64/8/d) {
				return nil, bad(k, "bad shape %v", info.Shape)
			}
			count *= d
		}
		begin, end := info.Offsets[0], info.Offsets[1]
		if begin < 0 || end < begin || end > int64(len(f.data)) {
			return nil, bad(k, "data_offsets %v outside the %d data bytes (truncated file?)", info.Offsets, len(f.data))
		}
		if end-begin != count*size {
			return nil, bad(k, "data_offsets %v hold %d bytes, shape %v of %s needs %d", info.Offsets, end-begin, info.Shape, info.DType, count*size)
		}
		f.tensors[k] = info
	}
	return f, nil
}

// Names lists the tensors, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.tensors))
	for k := range f.tensors {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Info describes a tensor.
func (f *File) Info(name string) (Info, bool) {
	i, ok := f.tensors[name]
	return i, ok
}

// Metadata is the header's __metadata__ map (may be nil).
func (f *File) Metadata() map[string]string { return f.metadata }

// Float32 returns a floating-point tensor converted to float32, with its shape.
func (f *File) Float32(name string) ([]float32, []int64, error) {
	info, ok := f.tensors[name]
	if !ok {
		return nil, nil, &TensorError{File: f.name, Tensor: name, Problem: "not in the file"}
	}
	raw := f.data[info.Offsets[0]:info.Offsets[1]]
	var out []float32
	switch info.DType {
	case "F32":
		out = make([]float32, len(raw)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case "F16":
		out = make([]float32, len(raw)/2)
		for i := range out {
			out[i] = halfToFloat(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case "BF16":
		out = make([]float32, len(raw)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16)
		}
	case "F64":
		out = make([]float32, len(raw)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	default:
		return nil, nil, &TensorError{File: f.name, Tensor: name, Problem: "dtype " + info.DType + " is not floating point"}
	}
	return out, append([]int64(nil), info.Shape...), nil
}

// Float64 returns an F64 or F32 tensor as float64 (exact for both), with
// its shape.
func (f *File) Float64(name string) ([]float64, []int64, error) {
	info, ok := f.tensors[name]
	if !ok {
		return nil, nil, &TensorError{File: f.name, Tensor: name, Problem: "not in the file"}
	}
	raw := f.data[info.Offsets[0]:info.Offsets[1]]
	var out []float64
	switch info.DType {
	case "F64":
		out = make([]float64, len(raw)/8)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case "F32":
		out = make([]float64, len(raw)/4)
		for i := range out {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	default:
		return nil, nil, &TensorError{File: f.name, Tensor: name, Problem: "dtype " + info.DType + " is not F64 or F32"}
	}
	return out, append([]int64(nil), info.Shape...), nil
}

// halfToFloat converts IEEE 754 binary16 bits to float32, exactly.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp != 0: // normal: rebias 15 → 127
		return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
	case frac == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: frac × 2⁻²⁴, exact in float32.
	v := float32(frac) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}

// Tensor is one named tensor to write.
type Tensor struct {
	Name  string
	Shape []int64
	// Exactly one of F32, F64 and Raw is set; Raw carries DType's bytes as
	// they are.
	F32   []float32
	F64   []float64
	DType string
	Raw   []byte
}

// Encode writes tensors in the safetensors layout, in the order given.
func Encode(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var data []byte
	for _, t := range tensors {
		raw, dtype := t.Raw, t.DType
		if t.F32 != nil {
			dtype = "F32"
			raw = make([]byte, 4*len(t.F32))
			for i, v := range t.F32 {
				binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
			}
		}
		if t.F64 != nil {
			dtype = "F64"
			raw = make([]byte, 8*len(t.F64))
			for i, v := range t.F64 {
				binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(v))
			}
		}
		count := int64(1)
		for _, d := range t.Shape {
			count *= d
		}
		if size, ok := dtypeSize(dtype); !ok || int64(len(raw)) != count*size {
			return nil, &TensorError{File: "(encode)", Tensor: t.Name, Problem: fmt.Sprintf("dtype %q with %d bytes does not fit shape %v", dtype, len(raw), t.Shape)}
		}
		if _, dup := header[t.Name]; dup {
			return nil, &TensorError{File: "(encode)", Tensor: t.Name, Problem: "name repeated"}
		}
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		header[t.Name] = Info{DType: dtype, Shape: shape, Offsets: [2]int64{int64(len(data)), int64(len(data) + len(raw))}}
		data = append(data, raw...)
	}
	h, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("safetensors: encode header: %w", err)
	}
	// Pad the header with spaces so the data starts 8-byte aligned, as the
	// reference writer does.
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := make([]byte, 8, 8+len(h)+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(out, h...)
	return append(out, data...), nil
}
