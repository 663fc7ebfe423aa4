package main

import (
	"context"
	"errors"

	"github.com/capflow/capflow/models/textembed"
)

// openONNX opens the ONNX encoder of a model folder.
func openONNX(ctx context.Context, dir string, maxLength, batch int) (textembed.Encoder, func(), error) {
	return nil, nil, errors.New("onnx encoder: not wired yet")
}
