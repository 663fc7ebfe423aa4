package bert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/capflow/capflow/models/safetensors"
)

// ConverterVersion changes whenever Convert's output for the same source
// changes, so model versions derived from the manifest change with it.
const ConverterVersion = "1"

// Files in the output folder.
const (
	ModelFile    = "model.onnx"
	ManifestFile = "capflow_convert.json"
	weightsFile  = "model.safetensors"
	configFile   = "config.json"
)

// copiedFiles are the tokenizer and sentence-transformers files carried over
// when present; the encoder reads them beside model.onnx.
func copiedFiles() []string {
	return []string{
		"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
		"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json",
	}
}

// Manifest is capflow_convert.json: what was converted, by which converter.
type Manifest struct {
	Converter        string            `json:"converter"`
	ConverterVersion string            `json:"converter_version"`
	Opset            int               `json:"opset"`
	Source           string            `json:"source"`
	SourceSHA256     map[string]string `json:"source_sha256"`
	ModelSHA256      string            `json:"model_sha256"`
	// Version is a digest of the converter version and the source hashes: the
	// same checkpoint converted by the same converter has the same Version.
	Version string `json:"version"`
}

// Convert converts the BERT checkpoint folder srcDir (config.json +
// model.safetensors, typically a sentence-transformers folder) into dstDir:
// model.onnx, the tokenizer and pooling files, and capflow_convert.json.
// dstDir is built beside itself and renamed into place, replacing an older
// one, so readers never see a half-written folder.
func Convert(ctx context.Context, srcDir, dstDir string) error {
	cfg, err := ReadConfig(filepath.Join(srcDir, configFile))
	if err != nil {
		return err
	}
	st, err := safetensors.Read(filepath.Join(srcDir, weightsFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("bert: %s has no %s (pytorch_model.bin is not supported): %w", srcDir, weightsFile, err)
		}
		return err
	}
	model, err := Build(ctx, cfg, st)
	if err != nil {
		return err
	}
	model.Metadata = map[string]string{"source": filepath.Base(srcDir)}
	onnx, err := model.Marshal()
	if err != nil {
		return fmt.Errorf("bert: %w", err)
	}
	st = nil // let the checkpoint bytes go before copying files

	if err := os.MkdirAll(filepath.Dir(dstDir), 0o755); err != nil {
		return fmt.Errorf("bert: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dstDir), "."+filepath.Base(dstDir)+".tmp-")
	if err != nil {
		return fmt.Errorf("bert: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()

	// MkdirTemp makes the folder 0700; the model folder is meant to be read
	// by whoever runs the encoder.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("bert: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ModelFile), onnx, 0o644); err != nil {
		return fmt.Errorf("bert: %w", err)
	}
	man := Manifest{
		Converter: "capflow/models/bert", ConverterVersion: ConverterVersion, Opset: Opset,
		Source: srcDir, SourceSHA256: map[string]string{}, ModelSHA256: digest(onnx),
	}
	sum, err := hashFile(filepath.Join(srcDir, weightsFile))
	if err != nil {
		return err
	}
	man.SourceSHA256[weightsFile] = sum
	for _, name := range copiedFiles() {
		if err := ctx.Err(); err != nil {
			return err
		}
		sum, err := copyFile(filepath.Join(srcDir, name), filepath.Join(tmp, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		man.SourceSHA256[name] = sum
	}
	man.Version = manifestVersion(man)
	mb, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return fmt.Errorf("bert: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ManifestFile), append(mb, '\n'), 0o644); err != nil {
		return fmt.Errorf("bert: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := replaceDir(tmp, dstDir); err != nil {
		return err
	}
	done = true
	return nil
}

// replaceDir renames tmp to dst; an existing dst is moved aside first and
// removed after, so dst is always either the old or the new folder.
func replaceDir(tmp, dst string) error {
	old := ""
	if _, err := os.Stat(dst); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dst, old); err != nil {
			return fmt.Errorf("bert: move old %s aside: %w", dst, err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		if old != "" {
			os.Rename(old, dst)
		}
		return fmt.Errorf("bert: %w", err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}

func manifestVersion(m Manifest) string {
	names := make([]string, 0, len(m.SourceSHA256))
	for n := range m.SourceSHA256 {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", m.Converter, m.ConverterVersion)
	for _, n := range names {
		fmt.Fprintf(h, "%s %s\n", n, m.SourceSHA256[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("bert: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("bert: hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyFile copies src to dst (making dst's directory) and returns src's
// sha256. A missing src returns an error wrapping fs.ErrNotExist.
func copyFile(src, dst string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("bert: %w", err)
	}
	out, err := os.Create(dst)
	if err != nil {
		return "", fmt.Errorf("bert: %w", err)
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("bert: copy %s: %w", src, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
