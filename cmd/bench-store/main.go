// Command bench-store measures the PostgreSQL feature store at the design's
// scale on a real server: it upserts 100,000 capability feature rows with
// 1024-d vectors, then reads random batches of 1,000 rows by id and runs ANN
// top-50 queries in one space (-space, default text: the space serving
// searches with an intent), and prints one line on stdout:
//
//	bench-store upsert_rows_per_s=... batch1000_p50_ms=... batch1000_p99_ms=... ann50_p99_ms=...
//
// Progress goes to stderr. It works in a fresh schema of its own, created by
// featurestore/postgres.Open and dropped at the end (-keep leaves it), so it
// never touches other data. The catalog and vectors are synthetic and
// seeded: vectors are clustered (a centre per cluster plus noise, unit
// length), like real embeddings and unlike uniform noise, which would make
// the HNSW index do far more work than on real data. Rows are upserted as
// the feature pipeline's full refresh does: by default in one call, which the
// postgres store loads with COPY and follows with its HNSW index builds (text
// and hybrid); with
// smaller -batch values each call is one transaction that maintains the index
// row by row (~3× slower). Reads run one at a time, so the latencies are a
// single client's.
//
// Environment: CAPFLOW_PG_DSN.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/capflow/capflow/internal/bench"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/postgres"
)

func main() { bench.Main("bench-store", run) }

type config struct {
	rows, batch, tools    int
	reads, readSize, warm int
	anns, k               int
	space                 featurestore.Space
	textDim, graphDim     int
	clusters              int
	seed                  uint64
	keep                  bool
}

func parseFlags() (config, error) {
	var c config
	flag.IntVar(&c.rows, "rows", 100_000, "capabilities (and feature rows) to write")
	flag.IntVar(&c.batch, "batch", 100_000, "feature rows per UpsertCapabilityFeatures call")
	flag.IntVar(&c.tools, "tools", 10_000, "tools in the synthetic catalog")
	flag.IntVar(&c.reads, "reads", 200, "timed batch reads by id")
	flag.IntVar(&c.readSize, "read-size", 1_000, "ids per batch read")
	flag.IntVar(&c.warm, "warmup", 10, "untimed reads and queries before each timed series")
	flag.IntVar(&c.anns, "anns", 200, "timed ANN queries")
	flag.IntVar(&c.k, "k", 50, "neighbours per ANN query")
	space := flag.String("space", string(featurestore.SpaceText), "embedding space of the ANN queries: text or hybrid")
	flag.IntVar(&c.textDim, "text-dim", 1024, "text (and hybrid) embedding dimension")
	flag.IntVar(&c.graphDim, "graph-dim", 64, "Node2Vec embedding dimension")
	flag.IntVar(&c.clusters, "clusters", 1_000, "clusters the synthetic vectors are drawn around")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the synthetic data")
	flag.BoolVar(&c.keep, "keep", false, "keep the benchmark's schema instead of dropping it")
	flag.Parse()
	c.space = featurestore.Space(*space)
	if c.space != featurestore.SpaceText && c.space != featurestore.SpaceHybrid {
		return c, fmt.Errorf("-space %q: want text or hybrid", *space)
	}
	if c.rows < 1 || c.batch < 1 || c.tools < 2 || c.reads < 1 || c.readSize < 1 || c.readSize > c.rows ||
		c.warm < 0 || c.anns < 1 || c.k < 1 || c.textDim < 1 || c.graphDim < 1 || c.clusters < 1 {
		return c, errors.New("flags must be positive, -tools at least 2 and -read-size at most -rows")
	}
	return c, nil
}

func run(ctx context.Context) error {
	c, err := parseFlags()
	if err != nil {
		return err
	}
	dsn := os.Getenv("CAPFLOW_PG_DSN")
	if dsn == "" {
		return errors.New("CAPFLOW_PG_DSN is not set (run `make bench-store`, which starts the services)")
	}
	schema := fmt.Sprintf("bench_store_%d_%d", os.Getpid(), time.Now().Unix())
	cfg := featurestore.Config{TextDim: c.textDim, GraphDim: c.graphDim, HybridDim: c.textDim}

	slog.Info("opening store", "schema", schema)
	store, err := postgres.Open(ctx, dsn, cfg, postgres.WithSchema(schema))
	if !c.keep {
		// Open may have created the schema before failing; drop it in any case.
		defer func() {
			if derr := dropSchema(context.WithoutCancel(ctx), dsn, schema); derr != nil {
				slog.Error("dropping the benchmark schema", "schema", schema, "err", derr)
			} else {
				slog.Info("dropped schema", "schema", schema)
			}
		}()
	}
	if err != nil {
		return err
	}
	defer store.Close()

	g := newGen(c)
	if err := writeCatalog(ctx, store, c); err != nil {
		return err
	}
	rate, err := upsertFeatures(ctx, store, c, g)
	if err != nil {
		return err
	}
	p50, p99, err := batchReads(ctx, store, c)
	if err != nil {
		return err
	}
	ann99, err := annQueries(ctx, store, c, g)
	if err != nil {
		return err
	}
	fmt.Printf("bench-store upsert_rows_per_s=%.0f batch1000_p50_ms=%.2f batch1000_p99_ms=%.2f ann50_p99_ms=%.2f\n",
		rate, ms(p50), ms(p99), ms(ann99))
	return nil
}

func capID(i int) string  { return "cap-" + strconv.Itoa(i) }
func toolID(i int) string { return "tool-" + strconv.Itoa(i) }

// writeCatalog writes the tools and capabilities the feature rows refer to:
// level-0 capabilities of 2-4 random tools each.
func writeCatalog(ctx context.Context, store featurestore.Store, c config) error {
	rng := rand.New(rand.NewPCG(c.seed, 1))
	d := &featurestore.Dataset{
		Tools:        make([]featurestore.Tool, c.tools),
		Capabilities: make([]featurestore.Capability, c.rows),
	}
	for i := range d.Tools {
		d.Tools[i] = featurestore.Tool{ID: toolID(i), Name: toolID(i), Description: "synthetic tool " + strconv.Itoa(i)}
	}
	for i := range d.Capabilities {
		n := 2 + rng.IntN(3)
		members := make([]string, 0, n)
		for _, t := range rng.Perm(c.tools)[:n] {
			members = append(members, toolID(t))
		}
		d.Capabilities[i] = featurestore.Capability{ID: capID(i), Name: capID(i), Description: "synthetic capability " + strconv.Itoa(i), Members: members}
	}
	slog.Info("writing synthetic catalog", "tools", c.tools, "capabilities", c.rows)
	start := time.Now()
	if err := store.WriteDataset(ctx, d); err != nil {
		return fmt.Errorf("write catalog: %w", err)
	}
	slog.Info("catalog written", "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// gen makes clustered unit vectors.
type gen struct {
	c                 config
	textC, graphC     [][]float32 // cluster centres
	hybridC           [][]float32
	noise, queryNoise float64
}

func newGen(c config) *gen {
	rng := rand.New(rand.NewPCG(c.seed, 2))
	centres := func(dim int) [][]float32 {
		out := make([][]float32, c.clusters)
		for i := range out {
			v := make([]float32, dim)
			for j := range v {
				v[j] = float32(rng.NormFloat64())
			}
			out[i] = unit(v)
		}
		return out
	}
	return &gen{c: c, textC: centres(c.textDim), graphC: centres(c.graphDim), hybridC: centres(c.textDim), noise: 0.5, queryNoise: 0.7}
}

// around returns a unit vector near centre: centre plus Gaussian noise of
// total norm ≈ scale.
func around(rng *rand.Rand, centre []float32, scale float64) []float32 {
	v := make([]float32, len(centre))
	s := scale / math.Sqrt(float64(len(centre)))
	for i, x := range centre {
		v[i] = x + float32(rng.NormFloat64()*s)
	}
	return unit(v)
}

func unit(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	n = math.Sqrt(n)
	for i := range v {
		v[i] = float32(float64(v[i]) / n)
	}
	return v
}

// rows makes the feature rows lo..hi-1; each batch has its own seed, so a
// row's data does not depend on the batch size.
func (g *gen) rows(lo, hi int, now time.Time) []featurestore.CapabilityFeatures {
	out := make([]featurestore.CapabilityFeatures, 0, hi-lo)
	for i := lo; i < hi; i++ {
		rng := rand.New(rand.NewPCG(g.c.seed, uint64(i)+1000))
		cl := rng.IntN(g.c.clusters)
		u30 := rng.IntN(500)
		u7 := rng.IntN(u30 + 1)
		out = append(out, featurestore.CapabilityFeatures{
			CapabilityID:          capID(i),
			TextEmbedding:         around(rng, g.textC[cl], g.noise),
			N2VEmbedding:          around(rng, g.graphC[cl], g.noise),
			HybridEmbedding:       around(rng, g.hybridC[cl], g.noise),
			ToolCount:             2 + rng.IntN(3),
			AvgExecutionTimeMs:    rng.ExpFloat64() * 200,
			SuccessRate:           rng.Float64(),
			UsageCount1d:          rng.IntN(u7 + 1),
			UsageCount7d:          u7,
			UsageCount30d:         u30,
			PageRank:              rng.Float64() / float64(g.c.rows),
			ClusteringCoefficient: rng.Float64(),
			FeatureVersion:        "bench-v1",
			ComputedAt:            now,
		})
	}
	return out
}

// upsertFeatures times the upserts only, not the generation of the rows.
func upsertFeatures(ctx context.Context, store featurestore.Store, c config, g *gen) (rowsPerS float64, err error) {
	now := time.Now().UTC()
	var spent time.Duration
	for lo := 0; lo < c.rows; lo += c.batch {
		hi := min(lo+c.batch, c.rows)
		rows := g.rows(lo, hi, now)
		start := time.Now()
		if err := store.UpsertCapabilityFeatures(ctx, rows); err != nil {
			return 0, fmt.Errorf("upsert rows %d..%d: %w", lo, hi-1, err)
		}
		d := time.Since(start)
		spent += d
		slog.Info("upserted", "rows", hi, "of", c.rows, "batch_s", fmt.Sprintf("%.2f", d.Seconds()),
			"rows_per_s", fmt.Sprintf("%.0f", float64(hi)/spent.Seconds()))
	}
	return float64(c.rows) / spent.Seconds(), nil
}

func batchReads(ctx context.Context, store featurestore.Store, c config) (p50, p99 time.Duration, err error) {
	rng := rand.New(rand.NewPCG(c.seed, 3))
	var lat []time.Duration
	slog.Info("batch reads by id", "reads", c.reads, "ids_per_read", c.readSize, "warmup", c.warm)
	for i := 0; i < c.warm+c.reads; i++ {
		ids := make([]string, c.readSize)
		for j, n := range rng.Perm(c.rows)[:c.readSize] {
			ids[j] = capID(n)
		}
		start := time.Now()
		got, err := store.CapabilityFeatures(ctx, ids)
		d := time.Since(start)
		if err != nil {
			return 0, 0, fmt.Errorf("batch read: %w", err)
		}
		if len(got) != len(ids) || got[0].CapabilityID != ids[0] || len(got[0].TextEmbedding) != c.textDim {
			return 0, 0, fmt.Errorf("batch read returned %d rows, the first %q with a %d-d text embedding", len(got), got[0].CapabilityID, len(got[0].TextEmbedding))
		}
		if i >= c.warm {
			lat = append(lat, d)
		}
	}
	p50, p99 = quantile(lat, 0.50), quantile(lat, 0.99)
	slog.Info("batch reads done", "p50_ms", ms(p50), "p99_ms", ms(p99), "max_ms", ms(slices.Max(lat)))
	return p50, p99, nil
}

func annQueries(ctx context.Context, store featurestore.Store, c config, g *gen) (p99 time.Duration, err error) {
	rng := rand.New(rand.NewPCG(c.seed, 4))
	var lat []time.Duration
	centres := g.hybridC
	if c.space == featurestore.SpaceText {
		centres = g.textC
	}
	slog.Info("ANN queries", "space", c.space, "queries", c.anns, "k", c.k, "warmup", c.warm)
	for i := 0; i < c.warm+c.anns; i++ {
		q := around(rng, centres[rng.IntN(c.clusters)], g.queryNoise)
		start := time.Now()
		got, err := store.NearestCapabilities(ctx, c.space, q, c.k)
		d := time.Since(start)
		if err != nil {
			return 0, fmt.Errorf("ANN query: %w", err)
		}
		if len(got) != min(c.k, c.rows) {
			return 0, fmt.Errorf("ANN query returned %d neighbours, want %d", len(got), min(c.k, c.rows))
		}
		if i >= c.warm {
			lat = append(lat, d)
		}
	}
	p99 = quantile(lat, 0.99)
	slog.Info("ANN queries done", "p50_ms", ms(quantile(lat, 0.5)), "p99_ms", ms(p99), "max_ms", ms(slices.Max(lat)))
	return p99, nil
}

// quantile is the nearest-rank q-quantile.
func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func dropSchema(ctx context.Context, dsn, schema string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}
