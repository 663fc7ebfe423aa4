package mlmodel

import (
	"errors"
	"strings"
)

// What can be wrong with a model or a folder; test with errors.Is.
var (
	ErrNoMLmodel        = errors.New("no MLmodel file")
	ErrBadMLmodel       = errors.New("MLmodel is not valid")
	ErrNoONNXFlavor     = errors.New("MLmodel has no onnx flavor")
	ErrNoModelFile      = errors.New("model file missing")
	ErrEmptyModelFile   = errors.New("model file is empty")
	ErrBadONNX          = errors.New("not a readable ONNX model")
	ErrBadSignature     = errors.New("bad signature")
	ErrBadExample       = errors.New("bad input example")
	ErrBadPath          = errors.New("bad file path")
	ErrExists           = errors.New("destination exists and is not empty")
	ErrNotFolder        = errors.New("not a directory")
	ErrBadModel         = errors.New("bad model")
	ErrBadStage         = errors.New("bad stage")
	ErrNoRollbackTarget = errors.New("no previous Production version to roll back to")
)

// FolderError says which folder (and file in it) a problem is about; Err is
// one of the Err* values above, possibly wrapped with detail.
type FolderError struct {
	Dir  string // the model folder ("" when writing a Model not yet placed)
	File string // the file concerned, relative to Dir ("" for the folder itself)
	Err  error
}

func (e *FolderError) Error() string {
	var b strings.Builder
	b.WriteString("mlmodel: ")
	switch {
	case e.Dir != "" && e.File != "":
		b.WriteString(strings.TrimRight(e.Dir, "/") + "/" + e.File + ": ")
	case e.Dir != "":
		b.WriteString(e.Dir + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *FolderError) Unwrap() error { return e.Err }

// RegistryError says which registered model a lifecycle step failed on; Err
// wraps ErrBadStage, ErrBadModel, ErrNoRollbackTarget or the client's error.
type RegistryError struct {
	Name    string
	Version string // "" when no single version is concerned
	Err     error
}

func (e *RegistryError) Error() string {
	s := "mlmodel: registered model " + e.Name
	if e.Version != "" {
		s += " version " + e.Version
	}
	return s + ": " + e.Err.Error()
}

func (e *RegistryError) Unwrap() error { return e.Err }
