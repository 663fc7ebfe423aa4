package main

import (
	"context"

	"github.com/capflow/capflow/models/textembed"
)

// openONNX opens the ONNX encoder of a model folder; the ONNX Runtime
// library comes from $ONNXRUNTIME_SHARED_LIBRARY_PATH.
func openONNX(ctx context.Context, dir string, opts textembed.ONNXOptions) (textembed.Encoder, func(), error) {
	enc, err := textembed.OpenONNX(ctx, dir, opts)
	if err != nil {
		return nil, nil, err
	}
	return enc, func() { _ = enc.Close() }, nil
}
