package valuenet

import (
	"github.com/capflow/capflow/internal/atomicfile"

	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/capflow/capflow/models/safetensors"
)

// Format names the checkpoint layout; Decode refuses others.
const Format = "capflow-valuenet/1"

// Encode serialises the net as safetensors: F64 tensors layers.{i}.weight
// [out, in] and layers.{i}.bias [out] (exact, so a resumed run continues
// bit for bit), the config in the metadata. Traces are not saved: they
// live within one trajectory.
func (n *Net) Encode() ([]byte, error) {
	cfg, err := json.Marshal(n.cfg)
	if err != nil {
		return nil, fmt.Errorf("valuenet: encode config: %w", err)
	}
	var ts []safetensors.Tensor
	for i, l := range n.layers {
		ts = append(ts, safetensors.Tensor{Name: fmt.Sprintf("layers.%d.weight", i), Shape: []int64{int64(l.out), int64(l.in)}, F64: l.w})
		if l.b != nil {
			ts = append(ts, safetensors.Tensor{Name: fmt.Sprintf("layers.%d.bias", i), Shape: []int64{int64(l.out)}, F64: l.b})
		}
	}
	return safetensors.Encode(ts, map[string]string{"format": Format, "config": string(cfg)})
}

// Decode reads a net written by Encode; name is used in errors.
func Decode(name string, b []byte) (*Net, error) {
	bad := func(format string, a ...any) error {
		return &FormatError{What: name, Reason: fmt.Sprintf(format, a...)}
	}
	f, err := safetensors.Parse(name, b)
	if err != nil {
		return nil, &FormatError{What: name, Reason: err.Error()}
	}
	md := f.Metadata()
	if md["format"] != Format {
		return nil, bad("format %q, want %q", md["format"], Format)
	}
	var cfg Config
	if err := json.Unmarshal([]byte(md["config"]), &cfg); err != nil {
		return nil, bad("config: %v", err)
	}
	if err := cfg.Check(); err != nil {
		return nil, bad("%v", err)
	}
	// The file must hold the weights before we allocate room for them.
	if total, _ := cfg.numParams(); total > len(b)/8 {
		return nil, bad("config needs %d weights, the file has room for at most %d", total, len(b)/8)
	}
	n := newShape(cfg)
	var names []string
	load := func(name string, shape []int64, dst []float64) error {
		names = append(names, name)
		data, got, err := f.Float64(name)
		if err != nil {
			return bad("%v", err)
		}
		if !slices.Equal(got, shape) {
			return bad("%s has shape %v, want %v", name, got, shape)
		}
		if err := finite(name, data); err != nil {
			return bad("%v", err)
		}
		copy(dst, data)
		return nil
	}
	for i, l := range n.layers {
		if err := load(fmt.Sprintf("layers.%d.weight", i), []int64{int64(l.out), int64(l.in)}, l.w); err != nil {
			return nil, err
		}
		if l.b != nil {
			if err := load(fmt.Sprintf("layers.%d.bias", i), []int64{int64(l.out)}, l.b); err != nil {
				return nil, err
			}
		}
	}
	slices.Sort(names)
	if all := f.Names(); !slices.Equal(all, names) {
		return nil, bad("tensors %v, want %v", all, names)
	}
	return n, nil
}

// Save writes the net to path atomically.
func (n *Net) Save(path string) error {
	b, err := n.Encode()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}

// Load reads a net written by Save.
func Load(path string) (*Net, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("valuenet: %w", err)
	}
	return Decode(path, b)
}
