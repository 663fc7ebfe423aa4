package onnxgraph_test

import (
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/capflow/capflow/internal/testenv"
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

// runModel runs an in-memory model and returns each output's data and shape.
func runModel(t *testing.T, model []byte, inNames []string, inputs []ort.Value, outNames []string) ([][]float32, []ort.Shape) {
	t.Helper()
	initORT(t)
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, inNames, outNames, nil)
	if err != nil {
		t.Fatalf("ORT session: %v", err)
	}
	defer s.Destroy()
	outs := make([]ort.Value, len(outNames))
	if err := s.Run(inputs, outs); err != nil {
		t.Fatalf("ORT run: %v", err)
	}
	data := make([][]float32, len(outs))
	shapes := make([]ort.Shape, len(outs))
	for i, o := range outs {
		ft, ok := o.(*ort.Tensor[float32])
		if !ok {
			t.Fatalf("output %s is %T, want float32 tensor", outNames[i], o)
		}
		data[i] = append([]float32(nil), ft.GetData()...)
		shapes[i] = ft.GetShape().Clone()
		o.Destroy()
	}
	return data, shapes
}

func tensor[T ort.TensorData](t *testing.T, data []T, dims ...int64) *ort.Tensor[T] {
	t.Helper()
	initORT(t)
	x, err := ort.NewTensor(ort.NewShape(dims...), data)
	if err != nil {
		t.Fatalf("NewTensor: %v", err)
	}
	t.Cleanup(func() { x.Destroy() })
	return x
}
