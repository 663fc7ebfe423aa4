package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline/features"
	"github.com/capflow/capflow/pipeline/train"
)

// SealToolsStore returns the benchmarks' store in dir: Seal-Tools imported
// (CAPFLOW_SEALTOOLS_DIR, default shared/datasets/seal-tools beside the
// repository), features built with enc and the tool texts in the embedding
// cache, done once (the ready marker says so) and reused after.
func SealToolsStore(ctx context.Context, dir string, enc textembed.Encoder, log *slog.Logger) (*embedded.Store, error) {
	path, ready := filepath.Join(dir, "store.db"), filepath.Join(dir, "ready")
	cfg := featurestore.Config{TextDim: enc.Dim()}
	if _, err := os.Stat(ready); err == nil {
		return embedded.Open(path, cfg)
	}
	// A store without the marker is half-prepared: start again.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	seal := os.Getenv("CAPFLOW_SEALTOOLS_DIR")
	if seal == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			return nil, err
		}
		seal = filepath.Join(filepath.Dir(root), "shared", "datasets", "seal-tools")
	}
	t0 := time.Now()
	d, err := featurestore.ReadSealTools(ctx, seal, cfg)
	if err != nil {
		return nil, err
	}
	st, err := embedded.Open(path, cfg)
	if err != nil {
		return nil, err
	}
	err = func() error {
		if err := st.WriteDataset(ctx, d); err != nil {
			return err
		}
		fs, err := features.NewStage(features.DefaultConfig(enc))
		if err != nil {
			return err
		}
		log.Info("preparing the bench store: features (once)", "path", path)
		fsum, err := fs.Build(ctx, st)
		if err != nil {
			return err
		}
		// Loading once encodes the tool texts into the cache, as a user's
		// first run does; later runs read them back.
		src := train.Source{Store: st, Encoder: textembed.Cached(enc, st), PseudoPrefix: featurestore.SealToolsDevPrefix}
		if _, err := train.Load(ctx, src, train.DefaultConfig().Model); err != nil {
			return err
		}
		return os.WriteFile(ready, []byte(fsum.FeatureVersion+"\n"), 0o644)
	}()
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("prepare %s: %w", path, err)
	}
	log.Info("bench store prepared", "seconds", time.Since(t0).Seconds())
	return st, nil
}

// OpenSealTools opens the real all-MiniLM-L6-v2 encoder in modelDir (make
// deps converts it; the benchmarks refuse to run without it) and the
// Seal-Tools store in dir (SealToolsStore). The caller closes both.
func OpenSealTools(ctx context.Context, dir, modelDir string, log *slog.Logger) (*textembed.ONNX, *embedded.Store, error) {
	if _, err := os.Stat(filepath.Join(modelDir, "model.onnx")); err != nil {
		return nil, nil, fmt.Errorf("the MiniLM encoder is missing (%w): run make deps", err)
	}
	onnx, err := textembed.OpenONNX(ctx, modelDir, textembed.ONNXOptions{})
	if err != nil {
		return nil, nil, err
	}
	st, err := SealToolsStore(ctx, dir, onnx, log)
	if err != nil {
		onnx.Close()
		return nil, nil, err
	}
	return onnx, st, nil
}
