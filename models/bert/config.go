package bert

import (
	"encoding/json"
	"fmt"
	"os"
)

// Config is the part of a HuggingFace BERT config.json the converter reads.
type Config struct {
	ModelType             string  `json:"model_type"`
	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	IntermediateSize      int     `json:"intermediate_size"`
	HiddenAct             string  `json:"hidden_act"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	TypeVocabSize         int     `json:"type_vocab_size"`
	LayerNormEps          float64 `json:"layer_norm_eps"`
	PositionEmbeddingType string  `json:"position_embedding_type"`
}

// ConfigError names a config.json field the converter cannot accept.
type ConfigError struct {
	Path    string
	Field   string
	Problem string
}

func (e *ConfigError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("bert: %s: %s", e.Path, e.Problem)
	}
	return fmt.Sprintf("bert: %s: %s: %s", e.Path, e.Field, e.Problem)
}

// ReadConfig reads and validates a config.json, filling the defaults
// transformers' BertConfig uses for absent fields.
func ReadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("bert: read config: %w", err)
	}
	c := Config{HiddenAct: "gelu", TypeVocabSize: 2, LayerNormEps: 1e-12, PositionEmbeddingType: "absolute"}
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, &ConfigError{Path: path, Problem: "not valid JSON: " + err.Error()}
	}
	if err := c.Validate(); err != nil {
		err.(*ConfigError).Path = path
		return Config{}, err
	}
	return c, nil
}

// Validate checks that the converter supports the configuration. It returns
// a *ConfigError.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	if c.ModelType != "bert" {
		return bad("model_type", "%q is not supported (only bert)", c.ModelType)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"num_hidden_layers", c.NumHiddenLayers},
		{"num_attention_heads", c.NumAttentionHeads}, {"intermediate_size", c.IntermediateSize},
		{"max_position_embeddings", c.MaxPositionEmbeddings}, {"type_vocab_size", c.TypeVocabSize},
	} {
		if f.v <= 0 {
			return bad(f.name, "must be positive, is %d", f.v)
		}
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return bad("num_attention_heads", "%d does not divide hidden_size %d", c.NumAttentionHeads, c.HiddenSize)
	}
	if c.HiddenAct != "gelu" {
		return bad("hidden_act", "%q is not supported (only gelu, the erf form)", c.HiddenAct)
	}
	if c.PositionEmbeddingType != "absolute" {
		return bad("position_embedding_type", "%q is not supported (only absolute)", c.PositionEmbeddingType)
	}
	if !(c.LayerNormEps > 0) {
		return bad("layer_norm_eps", "must be positive, is %g", c.LayerNormEps)
	}
	return nil
}
