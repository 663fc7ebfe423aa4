package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/capflow/capflow/models/hybrid"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline/features"
)

func featuresCommand(stdout, stderr io.Writer, log *slog.Logger) *ffcli.Command {
	return &ffcli.Command{
		Name:        "features",
		ShortUsage:  "capflow features build [flags]",
		ShortHelp:   "build capability features (text, Node2Vec, hybrid, graph and usage)",
		Subcommands: []*ffcli.Command{featuresBuildCommand(stdout, stderr, log)},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

// encoderFlags choose and configure the text encoder.
type encoderFlags struct {
	kind, modelDir                string
	url, protocol, model, version string
	apiKey                        string
	maxLength, batch, hashDim     int
	threads                       int
}

func newEncoderFlags(fs *flag.FlagSet) *encoderFlags {
	e := &encoderFlags{}
	fs.StringVar(&e.kind, "encoder", "", "text encoder: onnx, http or hashing (default: onnx when --model-dir is set, http when --encoder-url is set, else hashing)")
	fs.StringVar(&e.modelDir, "model-dir", "", "ONNX model folder (model.onnx, tokenizer.json, config.json), e.g. .local/models/all-MiniLM-L6-v2")
	fs.StringVar(&e.url, "encoder-url", "", "embedding service base URL (http encoder)")
	fs.StringVar(&e.protocol, "encoder-protocol", "openai", "embedding service protocol: openai, tei or ollama")
	fs.StringVar(&e.model, "encoder-model", "", "model name sent to the embedding service")
	fs.StringVar(&e.version, "encoder-model-version", "", "model revision (part of the embedding cache key)")
	fs.StringVar(&e.apiKey, "encoder-api-key", "", "bearer token of the embedding service (never logged)")
	fs.IntVar(&e.maxLength, "max-length", 0, "truncate texts to this many tokens (onnx; default: the model's)")
	fs.IntVar(&e.batch, "encode-batch", 64, "texts per encoder call")
	fs.IntVar(&e.threads, "encoder-threads", 0, "ONNX Runtime threads per encoder run (onnx; default: all CPUs)")
	fs.IntVar(&e.hashDim, "hashing-dim", 0, "hashing encoder dimension (default: --text-dim)")
	return e
}

func (e *encoderFlags) open(ctx context.Context, textDim int) (textembed.Encoder, func(), error) {
	kind := e.kind
	if kind == "" {
		switch {
		case e.modelDir != "":
			kind = "onnx"
		case e.url != "":
			kind = "http"
		default:
			kind = "hashing"
		}
	}
	switch kind {
	case "hashing":
		dim := e.hashDim
		if dim == 0 {
			dim = textDim
		}
		h, err := textembed.NewHashing(textembed.HashingConfig{Dim: dim})
		return h, func() {}, err
	case "http":
		h, err := textembed.NewHTTP(textembed.HTTPConfig{
			Protocol: textembed.Protocol(e.protocol), BaseURL: e.url, Model: e.model,
			ModelVersion: e.version, APIKey: e.apiKey, Dim: textDim, BatchSize: e.batch,
		})
		return h, func() {}, err
	case "onnx":
		if e.modelDir == "" {
			return nil, nil, errors.New("--encoder onnx needs --model-dir")
		}
		return openONNX(ctx, e.modelDir, textembed.ONNXOptions{MaxLength: e.maxLength, BatchSize: e.batch, IntraOpThreads: e.threads})
	default:
		return nil, nil, fmt.Errorf("unknown --encoder %q (want onnx, http or hashing)", kind)
	}
}

// openEncoder opens the encoder the flags describe and makes the store's
// text dimension follow the model unless --text-dim was given.
func openEncoder(ctx context.Context, fs *flag.FlagSet, ef *encoderFlags, sf *storeFlags) (textembed.Encoder, func(), error) {
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "text-dim" })
	enc, closeEnc, err := ef.open(ctx, sf.cfg.TextDim)
	if err != nil {
		return nil, nil, fmt.Errorf("encoder: %w", err)
	}
	if !explicit && enc.Dim() > 0 {
		sf.cfg.TextDim = enc.Dim()
	}
	return enc, closeEnc, nil
}

// parseFloats reads the comma-separated numbers of --<name> ("0.25,1,4");
// empty is nil.
func parseFloats(name, s string) ([]float64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []float64
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not a number (want a comma-separated list)", name, f)
		}
		out = append(out, x)
	}
	return out, nil
}

func gridFlag(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatFloat(x, 'g', -1, 64)
	}
	return strings.Join(s, ",")
}

func featuresBuildCommand(stdout, stderr io.Writer, log *slog.Logger) *ffcli.Command {
	fs := flag.NewFlagSet("capflow features build", flag.ContinueOnError)
	sf := newStoreFlags(fs)
	ef := newEncoderFlags(fs)
	tf := newTrackingFlags(fs, "features")
	def := features.DefaultConfig(nil)
	n2v := def.Node2Vec
	fs.IntVar(&n2v.WalkLength, "walk-length", n2v.WalkLength, "Node2Vec walk length")
	fs.IntVar(&n2v.WalksPerNode, "walks-per-node", n2v.WalksPerNode, "Node2Vec walks per node")
	fs.IntVar(&n2v.Window, "window", n2v.Window, "skip-gram window")
	fs.Float64Var(&n2v.P, "p", n2v.P, "Node2Vec return parameter; setting it fixes p (no grid for p)")
	fs.Float64Var(&n2v.Q, "q", n2v.Q, "Node2Vec in-out parameter; setting it fixes q (no grid for q)")
	pGrid := fs.String("p-grid", gridFlag(def.PGrid), `values of p tried when choosing p by held-out link-prediction AUC ("": keep --p)`)
	qGrid := fs.String("q-grid", gridFlag(def.QGrid), `values of q tried when choosing q by held-out link-prediction AUC ("": keep --q)`)
	tuneWalks := fs.Int("tune-walks-per-node", def.TuneWalksPerNode, "Node2Vec walks per node of each p/q grid run (at most --walks-per-node)")
	coUsePrefix := fs.String("co-use-session-prefix", "", `only sessions whose id starts with this make co-use edges (the training split, e.g. "dev-"; default: every logged session)`)
	coUseWeight := fs.Float64("co-use-weight", 1, "Node2Vec graph weight of a co-use edge per successive successful use")
	fs.IntVar(&n2v.Epochs, "epochs", n2v.Epochs, "skip-gram epochs over the walks")
	fs.IntVar(&n2v.Workers, "workers", n2v.Workers, "Node2Vec goroutines (0: all cores; 1: deterministic)")
	fs.Uint64Var(&n2v.Seed, "seed", n2v.Seed, "random seed")
	textW := fs.Float64("text-weight", hybrid.DefaultTextWeight, "hybrid weight of the text embedding")
	graphW := fs.Float64("graph-weight", hybrid.DefaultGraphWeight, "hybrid weight of the graph embedding")
	lift := fs.String("lift", "zero-pad", "how the graph vector enters the text space: zero-pad or orthonormal")
	holdout := fs.Float64("link-prediction-fraction", def.LinkPredictionFraction, "fraction of edges held out for the link-prediction AUC (0: skip)")
	asOf := fs.String("as-of", "", "the stage's now, RFC 3339 (default: now)")
	version := fs.String("feature-version", "", "feature_version of the rows (default: fv-<as-of>-<config hash>)")
	noCache := fs.Bool("no-embedding-cache", false, "encode every text again")
	return &ffcli.Command{
		Name:       "build",
		ShortUsage: "capflow features build [flags]",
		ShortHelp:  "encode, embed, combine, validate and write capability and intent features",
		LongHelp: "Reads the catalog, experiences and queries from the store, encodes capability and intent texts, " +
			"runs Node2Vec on the capability graph (membership, nesting and co-use in logged sessions; p and q chosen by " +
			"held-out link-prediction AUC unless --p/--q are set), combines hybrid embeddings, computes graph and usage " +
			"features, validates them (nothing is written when a check fails) and writes them under a new " +
			"feature_version. The run is logged to MLflow: params, metrics, the validation report and a " +
			"2-D projection plot.",
		FlagSet: fs,
		Options: ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 0 {
				return fmt.Errorf("features build: unexpected arguments %q", args)
			}
			enc, closeEnc, err := openEncoder(ctx, fs, ef, sf)
			if err != nil {
				return fmt.Errorf("features build: %w", err)
			}
			defer closeEnc()
			cfg := features.DefaultConfig(enc)
			cfg.Store = sf.cfg
			if cfg.Store.HybridDim == 0 {
				cfg.Store.HybridDim = cfg.Store.TextDim
			}
			cfg.Store = cfg.Store.WithDefaults()
			cfg.Node2Vec = n2v
			cfg.Node2Vec.Dimensions = cfg.Store.GraphDim
			cfg.Hybrid.TextWeight, cfg.Hybrid.GraphWeight = *textW, *graphW
			switch *lift {
			case "zero-pad":
			case "orthonormal":
				l, err := hybrid.Orthonormal(n2v.Seed, cfg.Store.GraphDim, cfg.Store.TextDim)
				if err != nil {
					return err
				}
				cfg.Hybrid.Lift = l
			default:
				return fmt.Errorf("features build: unknown --lift %q (want zero-pad or orthonormal)", *lift)
			}
			cfg.LinkPredictionFraction = *holdout
			if cfg.PGrid, err = parseFloats("p-grid", *pGrid); err != nil {
				return err
			}
			if cfg.QGrid, err = parseFloats("q-grid", *qGrid); err != nil {
				return err
			}
			// A p or q the user sets is theirs: the grid only chooses what
			// was left open.
			fs.Visit(func(f *flag.Flag) {
				switch f.Name {
				case "p":
					cfg.PGrid = nil
				case "q":
					cfg.QGrid = nil
				}
			})
			cfg.TuneWalksPerNode = *tuneWalks
			cfg.CoUseSessionPrefix = *coUsePrefix
			cfg.Catalog.CoUseWeight = *coUseWeight
			cfg.FeatureVersion = *version
			cfg.NoEmbeddingCache = *noCache
			cfg.EncodeBatch = ef.batch
			if *asOf != "" {
				t, err := time.Parse(time.RFC3339, *asOf)
				if err != nil {
					return fmt.Errorf("features build: --as-of: %w", err)
				}
				cfg.AsOf = t
			}
			stage, err := features.NewStage(cfg)
			if err != nil {
				return err
			}
			st, where, err := sf.openWith(ctx, cfg.Store)
			if err != nil {
				return err
			}
			defer st.Close()
			r, err := tf.runner(st, stderr, log)
			if err != nil {
				return fmt.Errorf("features build: %w", err)
			}
			log.Info("building features", "store", where, "encoder", enc.Model().Name, "text_dim", cfg.Store.TextDim)
			res, err := r.Run(ctx, stage)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "feature_version %s written to %s\n", res.Values[features.ValueFeatureVersion], where)
			if res.ParentRunID != "" {
				fmt.Fprintf(stdout, "MLflow run %s (stage run %s) in experiment %s\n", res.ParentRunID, res.Stages[0].RunID, res.ExperimentID)
			}
			return nil
		},
	}
}
