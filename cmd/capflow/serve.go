package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/capflow/capflow/featurestore/cache"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/serving"
)

// serveTokenEnv holds the bearer token of `capflow serve`. It is read from
// the environment only: a flag would show in ps and shell history.
const serveTokenEnv = "CAPFLOW_SERVE_TOKEN"

// serveFlags are the settings of `capflow serve`: the store's, the
// encoder's and MLflow's, and the service's own.
type serveFlags struct {
	store   *storeFlags
	encoder *encoderFlags
	mlflow  *mlflowFlags
	// textDimGiven says --text-dim was set; otherwise it follows the encoder.
	textDimGiven bool

	name, follow   string
	canary, shadow string
	canaryPercent  float64
	shadowRate     float64
	poll           time.Duration
	cacheDir       string
	addr           string
	ortLibrary     string
	redisAddr      string
	limits         serving.Limits
	annK           int
	wholeMax       int
}

func newServeFlags(fs *flag.FlagSet) *serveFlags {
	s := &serveFlags{store: newStoreFlags(fs), encoder: newEncoderFlags(fs), mlflow: newMLflowFlags(fs)}
	fs.StringVar(&s.name, "name", mlmodel.DefaultName, "registered model to serve")
	fs.StringVar(&s.follow, "follow", "Production", "stage (Production, Staging) or @alias the primary model follows")
	fs.StringVar(&s.canary, "canary", "", "stage or @alias of a canary model (default: no canary)")
	fs.Float64Var(&s.canaryPercent, "canary-percent", 0, "share of sessions sent to the canary, 0–100 (sticky per session_id)")
	fs.StringVar(&s.shadow, "shadow", "", "stage or @alias of a shadow model scored off the request path (default: none)")
	fs.Float64Var(&s.shadowRate, "shadow-rate", 0, "share of requests also scored by the shadow model, 0–1")
	fs.DurationVar(&s.poll, "poll", serving.DefaultPoll, "registry polling interval (negative: never; POST /reload still works)")
	fs.StringVar(&s.cacheDir, "cache-dir", "", "verified model versions kept for restarts without the registry (default $XDG_CACHE_HOME/capflow/serve, else .local/serve-cache)")
	fs.StringVar(&s.addr, "addr", "127.0.0.1:8080", "listen address (port 0: any free port, printed at start)")
	fs.StringVar(&s.ortLibrary, "ort-library", "", "ONNX Runtime shared library (default $ONNXRUNTIME_SHARED_LIBRARY_PATH)")
	fs.StringVar(&s.redisAddr, "redis-addr", "", "Redis host:port of the L2 feature cache (default: L1 only)")
	fs.Int64Var(&s.limits.MaxBodyBytes, "max-body", 1<<20, "largest request body in bytes")
	fs.IntVar(&s.limits.MaxCandidates, "max-candidates", 5000, "most candidate_ids, exclude_ids or top_k per request")
	fs.IntVar(&s.limits.MaxTextBytes, "max-text", 8192, "longest intent, session id or id in bytes")
	fs.IntVar(&s.annK, "ann-k", 200, "capabilities the ANN index proposes when a request names no candidates")
	fs.IntVar(&s.wholeMax, "whole-catalog-max", 0, "rank the model's whole catalog instead of asking the ANN when it has at most this many capabilities (0: always the ANN)")
	return s
}

// check rejects what the flags alone show to be wrong, before anything is
// opened; the Manager checks the rest.
func (s *serveFlags) check() error {
	switch {
	case s.limits.MaxBodyBytes <= 0 || s.limits.MaxCandidates <= 0 || s.limits.MaxTextBytes <= 0:
		return errors.New("--max-body, --max-candidates and --max-text must be positive")
	case s.annK <= 0:
		return fmt.Errorf("--ann-k must be positive, got %d", s.annK)
	case s.wholeMax < 0:
		return fmt.Errorf("--whole-catalog-max must not be negative, got %d", s.wholeMax)
	case s.canaryPercent != 0 && s.canary == "":
		return errors.New("--canary-percent needs --canary")
	case s.shadowRate != 0 && s.shadow == "":
		return errors.New("--shadow-rate needs --shadow")
	}
	return nil
}

// modelCacheDir is --cache-dir or its default.
func (s *serveFlags) modelCacheDir() string {
	if s.cacheDir != "" {
		return s.cacheDir
	}
	if dir := os.Getenv("XDG_CACHE_HOME"); dir != "" && filepath.IsAbs(dir) {
		return filepath.Join(dir, "capflow", "serve")
	}
	return filepath.Join(".local", "serve-cache")
}

// managerFlag names the flag behind a Manager config error.
func managerFlag(err error) error {
	var ce *serving.ManagerConfigError
	if !errors.As(err, &ce) {
		return err
	}
	flags := map[string]string{"Follow": "--follow", "Canary.Follow": "--canary", "Canary.Percent": "--canary-percent",
		"Shadow.Follow": "--shadow", "Shadow.SampleRate": "--shadow-rate", "Name": "--name"}
	if f, ok := flags[ce.Field]; ok {
		return fmt.Errorf("%s %s", f, ce.Reason)
	}
	return err
}

func serveCommand(stdout io.Writer, log *slog.Logger) *ffcli.Command {
	fs := flag.NewFlagSet("capflow serve", flag.ContinueOnError)
	svf := newServeFlags(fs)
	return &ffcli.Command{
		Name:       "serve",
		ShortUsage: "capflow serve [flags]",
		ShortHelp:  "serve /rank over the registry's Production model (hot swap, canary, shadow)",
		LongHelp: "Serves the HTTP API (POST /rank, /feedback, /reload; GET /healthz, /readyz, /metrics, /openapi.json) " +
			"over the verified model version that --follow names in the MLflow Model Registry, polling it every --poll " +
			"and swapping new versions in without dropping requests. Verified versions are kept under --cache-dir, so a " +
			"restart serves the last one when the registry is down. The store is read through an in-process LRU and, " +
			"with --redis-addr, Redis. With " + serveTokenEnv + " set in the environment, /rank, /feedback and /reload " +
			"need \"Authorization: Bearer <token>\". Stops gracefully on SIGINT or SIGTERM.",
		FlagSet: fs,
		Options: ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 0 {
				return fmt.Errorf("serve: unexpected arguments %q", args)
			}
			if err := svf.check(); err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			fs.Visit(func(f *flag.Flag) { svf.textDimGiven = svf.textDimGiven || f.Name == "text-dim" })
			return serve(ctx, stdout, log, svf)
		},
	}
}

// serve wires store, encoder, Manager and Server, and serves until ctx
// ends (SIGINT or SIGTERM in main).
func serve(ctx context.Context, stdout io.Writer, log *slog.Logger, svf *serveFlags) error {
	sf, ef, mf := svf.store, svf.encoder, svf.mlflow
	if svf.ortLibrary != "" {
		// The first InitORT wins for the whole process: make it this one,
		// for the ONNX encoder and the scorer alike.
		if err := textembed.InitORT(svf.ortLibrary); err != nil {
			return fmt.Errorf("serve: --ort-library: %w", err)
		}
	}
	enc, closeEnc, err := ef.open(ctx, sf.cfg.TextDim)
	if err != nil {
		return fmt.Errorf("serve: encoder: %w", err)
	}
	defer closeEnc()
	// The store's text dimension follows the encoder unless given.
	if !svf.textDimGiven && enc.Dim() > 0 {
		sf.cfg.TextDim = enc.Dim()
	}
	if enc.Dim() > 0 && enc.Dim() != sf.cfg.TextDim {
		return fmt.Errorf("serve: the encoder gives %d dimensions, --text-dim is %d", enc.Dim(), sf.cfg.TextDim)
	}

	raw, where, err := sf.open(ctx)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	opts := cache.Options{Logger: log}
	if svf.redisAddr != "" {
		rdb := cache.NewRedisClient(svf.redisAddr)
		defer rdb.Close()
		opts.Redis = rdb
	}
	st := cache.New(raw, opts)
	defer st.Close()
	tools, err := st.Tools(ctx)
	if err != nil {
		return fmt.Errorf("serve: reading the store's tools: %w", err)
	}
	caps, err := st.Capabilities(ctx)
	if err != nil {
		return fmt.Errorf("serve: reading the store's capabilities: %w", err)
	}
	if len(caps) == 0 {
		return fmt.Errorf("serve: the store (%s) has no capabilities; run `capflow data import` and `capflow features build` first", where)
	}

	// Fewer retries than the client's default (≈20 s): the poll loop retries
	// anyway, and a restart with the registry down should reach the cache soon.
	copts := []mlflowclient.Option{mlflowclient.WithLogger(log),
		mlflowclient.WithRetryPolicy(mlflowclient.RetryPolicy{MaxRetries: 2, MinWait: 200 * time.Millisecond, MaxWait: 2 * time.Second})}
	if mf.trackingURI != "" {
		copts = append(copts, mlflowclient.WithTrackingURI(mf.trackingURI))
	}
	c, err := mlflowclient.New(copts...)
	if err != nil {
		return fmt.Errorf("serve: MLflow client: %w", err)
	}
	reg := prometheus.NewRegistry()
	cacheDir := svf.modelCacheDir()
	mgr, err := serving.NewManager(serving.ManagerConfig{
		Client: c, Name: svf.name, Follow: svf.follow,
		Canary:   serving.CanaryConfig{Follow: svf.canary, Percent: svf.canaryPercent},
		Shadow:   serving.ShadowConfig{Follow: svf.shadow, SampleRate: svf.shadowRate},
		Poll:     svf.poll,
		CacheDir: cacheDir,
		Tools:    tools, Caps: caps, Dim: sf.cfg.TextDim,
		ORTLibrary: svf.ortLibrary, Logger: log, Registerer: reg,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", managerFlag(err))
	}
	defer mgr.Close()
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("serve: no verified version of %s (%s) in the registry at %s nor in the cache %s: %w",
			svf.name, svf.follow, redacted(c.RegistryURI()), cacheDir, err)
	}

	gin.SetMode(gin.ReleaseMode)
	token := os.Getenv(serveTokenEnv)
	// New intents' embeddings are cached behind the response: the store's
	// write (an fsync on the embedded store) was most of a new intent's
	// /rank latency.
	cachedEnc := textembed.WriteBehind(enc, st, 1024, log)
	defer cachedEnc.Close()
	for _, m := range []struct {
		name, help string
		n          func() uint64
	}{
		{"capflow_serving_embedding_writes_dropped_total", "New intent embeddings not cached because the write-behind queue was full.", cachedEnc.Dropped},
		{"capflow_serving_embedding_writes_failed_total", "New intent embeddings the store refused to cache.", cachedEnc.Failed},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help}, func() float64 { return float64(m.n()) }))
	}
	srv, err := serving.NewServer(serving.ServerConfig{
		Models:          mgr,
		Store:           st,
		Encoder:         cachedEnc,
		FallbackEncoder: enc,
		Reload:          mgr.Reload,
		Registry:        reg,
		Token:           token,
		Logger:          log,
		Limits:          svf.limits,
		ANNK:            svf.annK,
		WholeCatalogMax: svf.wholeMax,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// Listen here rather than in Run, so that with port 0 the bound address
	// can be printed.
	ln, err := net.Listen("tcp", svf.addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	m := mgr.Current()
	log.Info("serving", "addr", ln.Addr().String(), "model", m.Name, "version", m.Version, "follow", m.Stage,
		"store", where, "encoder", enc.Model().Name, "dim", sf.cfg.TextDim, "cache_dir", cacheDir,
		"redis", svf.redisAddr != "", "auth", token != "")
	fmt.Fprintf(stdout, "serving %s version %s (%s) on http://%s\n", m.Name, m.Version, m.Stage, ln.Addr())
	if err := srv.Serve(ctx, ln); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped", "addr", ln.Addr().String())
	return nil
}

// redacted is uri without a password, for messages.
func redacted(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparsable URI)"
	}
	return u.Redacted()
}
