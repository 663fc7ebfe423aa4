package safetensors

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestRoundTripF32(t *testing.T) {
	in := []Tensor{
		{Name: "a", Shape: []int64{2, 3}, F32: []float32{1, 2, 3, -4, 5.5, 1e-8}},
		{Name: "s", Shape: nil, F32: []float32{7}},
	}
	b, err := Encode(in, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata()["format"] != "pt" {
		t.Fatalf("metadata %v", f.Metadata())
	}
	for _, want := range in {
		got, shape, err := f.Float32(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(shape) != len(want.Shape) || len(got) != len(want.F32) {
			t.Fatalf("%s: shape %v len %d", want.Name, shape, len(got))
		}
		for i := range got {
			if got[i] != want.F32[i] {
				t.Fatalf("%s[%d] = %v want %v", want.Name, i, got[i], want.F32[i])
			}
		}
	}
	var te *TensorError
	if _, _, err := f.Float32("missing"); !errors.As(err, &te) {
		t.Fatalf("missing tensor: %v", err)
	}
}

// F16 and BF16 decode exactly for values both formats can hold, including a
// binary16 subnormal, infinities and signed zero.
func TestHalfPrecision(t *testing.T) {
	want := []float32{0, float32(math.Copysign(0, -1)), 1, -2.5, 65504, 0.099975586, 5.9604645e-08, float32(math.Inf(-1))}
	f16 := []uint16{0x0000, 0x8000, 0x3c00, 0xc100, 0x7bff, 0x2e66, 0x0001, 0xfc00}
	bf := []float32{0, 1, -2.5, 3.140625, float32(math.Inf(1))}
	var f16raw, bfraw []byte
	for _, h := range f16 {
		f16raw = binary.LittleEndian.AppendUint16(f16raw, h)
	}
	for _, v := range bf {
		bfraw = binary.LittleEndian.AppendUint16(bfraw, uint16(math.Float32bits(v)>>16))
	}
	b, err := Encode([]Tensor{
		{Name: "h", Shape: []int64{int64(len(f16))}, DType: "F16", Raw: f16raw},
		{Name: "b", Shape: []int64{int64(len(bf))}, DType: "BF16", Raw: bfraw},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse("mem", b)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := f.Float32("h")
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Errorf("F16 %#04x = %v, want %v", f16[i], got[i], want[i])
		}
	}
	got, _, _ = f.Float32("b")
	for i := range bf {
		if got[i] != bf[i] {
			t.Errorf("BF16 %d = %v, want %v", i, got[i], bf[i])
		}
	}
}

func TestBadFiles(t *testing.T) {
	good, err := Encode([]Tensor{{Name: "w", Shape: []int64{4}, F32: []float32{1, 2, 3, 4}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hugeLen := append([]byte(nil), good...)
	binary.LittleEndian.PutUint64(hugeLen, 1<<40)
	notJSON := append([]byte(nil), good...)
	notJSON[8] = '['
	wrongDType := []byte(`{"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}`)
	wrongSize := []byte(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}} `)
	cases := map[string][]byte{
		"empty":      nil,
		"truncated":  good[:len(good)-3],
		"header len": hugeLen,
		"not json":   notJSON,
		"dtype":      withHeader(wrongDType, 1),
		"size":       withHeader(wrongSize, 8),
		"short data": good[:9],
	}
	for name, b := range cases {
		_, err := Parse(name, b)
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want *FormatError", name, err)
		}
	}
}

func withHeader(h []byte, dataBytes int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	b = append(b, h...)
	return append(b, make([]byte, dataBytes)...)
}
