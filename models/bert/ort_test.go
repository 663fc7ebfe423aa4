package bert_test

import (
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/models/bert"
)

// ORT's environment is process-global: initialise it once per test binary.
var (
	ortOnce sync.Once
	ortErr  error
)

func initORT(t *testing.T) {
	t.Helper()
	lib := testenv.ORTLibrary(t)
	ortOnce.Do(func() {
		ort.SetSharedLibraryPath(lib)
		ortErr = ort.InitializeEnvironment()
	})
	if ortErr != nil {
		t.Fatalf("ONNX Runtime init: %v", ortErr)
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
