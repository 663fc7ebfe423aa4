// Package onnxgraph builds ONNX models from Go and serialises them as the
// ModelProto wire format, with no generated code and no Python.
//
// It is the one ONNX writer of the project: the BERT converter (models/bert)
// and the model exports use it. A Graph collects inputs, outputs, initializers
// and nodes in topological order; Model.Marshal checks the graph (unique value
// names, every node input defined before use, every output produced, shapes of
// initializers matching their data) and returns a typed *GraphError otherwise.
//
//	g := onnxgraph.New("tiny")
//	x := g.Input("x", onnxgraph.Float, "batch", 4)
//	w := g.Initializer("w", []int64{4, 3}, weights)
//	y := g.Op("MatMul", []string{x, w})
//	g.Node("Softmax", []string{y}, []string{"probs"}, onnxgraph.AttrInt("axis", -1))
//	g.Output("probs", onnxgraph.Float, "batch", 3)
//	b, err := (&onnxgraph.Model{Graph: g, Opset: 17, Producer: "capflow"}).Marshal()
//
// Why hand-written wire encoding (google.golang.org/protobuf/encoding/protowire)
// rather than generated onnx.pb.go: the subset needed is small (seven messages),
// the field numbers are stable across ONNX releases, and it keeps protoc and a
// vendored onnx.proto out of the build. Field numbers follow onnx/onnx.proto.
//
// Tensor data is stored as little-endian raw_data, as the ONNX spec requires.
// Models must stay under the 2 GiB protobuf limit; external data is not
// supported.
package onnxgraph
