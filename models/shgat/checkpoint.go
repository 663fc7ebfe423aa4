package shgat

import (
	"github.com/capflow/capflow/internal/atomicfile"

	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/capflow/capflow/models/safetensors"
)

// Format names the checkpoint layout; Decode refuses others.
const Format = "capflow-shgat/1"

// FormatError says why bytes are not a usable checkpoint or catalog.
type FormatError struct {
	What, Reason string
}

func (e *FormatError) Error() string { return "shgat: " + e.What + ": " + e.Reason }

// Encode serialises the model as safetensors: one F64 tensor per parameter
// group (exact, so a resumed run continues bit for bit), the config and the
// level count in the metadata.
func (m *Model) Encode() ([]byte, error) {
	cfg, err := json.Marshal(m.Config)
	if err != nil {
		return nil, fmt.Errorf("shgat: encode config: %w", err)
	}
	var ts []safetensors.Tensor
	for _, g := range m.Params.Groups() {
		ts = append(ts, safetensors.Tensor{Name: g.Name, Shape: []int64{int64(len(g.Data))}, F64: g.Data})
	}
	return safetensors.Encode(ts, map[string]string{"format": Format, "config": string(cfg), "levels": strconv.Itoa(m.Levels)})
}

// Decode reads a model written by Encode.
func Decode(name string, b []byte) (*Model, error) {
	f, err := safetensors.Parse(name, b)
	if err != nil {
		return nil, &FormatError{What: name, Reason: err.Error()}
	}
	md := f.Metadata()
	if md["format"] != Format {
		return nil, &FormatError{What: name, Reason: fmt.Sprintf("format %q, want %q", md["format"], Format)}
	}
	var cfg Config
	if err := json.Unmarshal([]byte(md["config"]), &cfg); err != nil {
		return nil, &FormatError{What: name, Reason: "config: " + err.Error()}
	}
	levels, err := strconv.Atoi(md["levels"])
	if err != nil || levels < 1 {
		return nil, &FormatError{What: name, Reason: fmt.Sprintf("levels %q", md["levels"])}
	}
	if err := cfg.Check(); err != nil {
		return nil, &FormatError{What: name, Reason: err.Error()}
	}
	m := &Model{Config: cfg, Levels: levels, Params: NewParams(cfg, levels)}
	for _, g := range m.Params.Groups() {
		data, _, err := f.Float64(g.Name)
		if err != nil {
			return nil, &FormatError{What: name, Reason: err.Error()}
		}
		if len(data) != len(g.Data) {
			return nil, &FormatError{What: name, Reason: fmt.Sprintf("%s has %d values, want %d", g.Name, len(data), len(g.Data))}
		}
		if err := finite(g.Name, data); err != nil {
			return nil, &FormatError{What: name, Reason: err.Error()}
		}
		copy(g.Data, data)
	}
	return m, nil
}

// Save writes the model to path atomically.
func (m *Model) Save(path string) error {
	b, err := m.Encode()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}

// Load reads a model written by Save.
func Load(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("shgat: %w", err)
	}
	return Decode(path, b)
}
