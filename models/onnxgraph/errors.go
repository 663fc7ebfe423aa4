package onnxgraph

import (
	"errors"
	"strings"
)

// What can be wrong with a graph; test with errors.Is.
var (
	ErrDuplicateName    = errors.New("value name defined twice")
	ErrUndefinedInput   = errors.New("node input not defined by an earlier node, graph input or initializer")
	ErrUnproducedOutput = errors.New("graph output not produced")
	ErrBadShape         = errors.New("bad shape")
	ErrBadType          = errors.New("unsupported data type")
	ErrBadNode          = errors.New("bad node")
	ErrBadModel         = errors.New("bad model")
)

// GraphError says which graph, node and value a problem is about; Err is one
// of the Err* values above, possibly wrapped with detail.
type GraphError struct {
	Graph string
	Node  string // node name ("MatMul_3"), empty for graph-level problems
	Name  string // the value or attribute concerned
	Err   error
}

func (e *GraphError) Error() string {
	var b strings.Builder
	b.WriteString("onnxgraph: graph ")
	b.WriteString(e.Graph)
	if e.Node != "" {
		b.WriteString(", node " + e.Node)
	}
	if e.Name != "" {
		b.WriteString(", " + e.Name)
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

func (e *GraphError) Unwrap() error { return e.Err }
