package bert_test

import (
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/models/bert"
	"github.com/capflow/capflow/models/textembed"
)

// initORT initialises ONNX Runtime once per test binary, through the
// project's one process-wide initialiser.
func initORT(t *testing.T) {
	t.Helper()
	if err := textembed.InitORT(testenv.ORTLibrary(t)); err != nil {
		t.Fatalf("ONNX Runtime init: %v", err)
	}
}

// runEncoder runs model.onnx on a [batch, seq] batch and returns
// last_hidden_state with its shape.
func runEncoder(t *testing.T, path string, batch, seq int, ids, mask, types []int64) ([]float32, ort.Shape) {
	t.Helper()
	initORT(t)
	s, err := ort.NewDynamicAdvancedSession(path, []string{bert.InputIDs, bert.AttentionMask, bert.TokenTypeIDs}, []string{bert.LastHiddenState}, nil)
	if err != nil {
		t.Fatalf("ORT session: %v", err)
	}
	defer s.Destroy()
	shape := ort.NewShape(int64(batch), int64(seq))
	var in []ort.Value
	for _, d := range [][]int64{ids, mask, types} {
		x, err := ort.NewTensor(shape, d)
		if err != nil {
			t.Fatalf("NewTensor: %v", err)
		}
		defer x.Destroy()
		in = append(in, x)
	}
	out := []ort.Value{nil}
	if err := s.Run(in, out); err != nil {
		t.Fatalf("ORT run: %v", err)
	}
	defer out[0].Destroy()
	y := out[0].(*ort.Tensor[float32])
	return append([]float32(nil), y.GetData()...), y.GetShape().Clone()
}
