package replay_test

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/capflow/capflow/pipeline/replay"
)

func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

func mustNew[T any](t *testing.T, cfg replay.Config) *replay.Buffer[T] {
	t.Helper()
	b, err := replay.New[T](cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func config(capacity int) replay.Config {
	cfg := replay.DefaultConfig()
	cfg.Capacity = capacity
	return cfg
}

func prio(cfg replay.Config, td float64) float64 { return math.Pow(td+cfg.Epsilon, cfg.Alpha) }

func TestConfigValidation(t *testing.T) {
	if err := replay.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := []struct {
		field string
		edit  func(*replay.Config)
	}{
		{"Capacity", func(c *replay.Config) { c.Capacity = 0 }},
		{"Capacity", func(c *replay.Config) { c.Capacity = -3 }},
		{"Capacity", func(c *replay.Config) { c.Capacity = replay.MaxCapacity + 1 }},
		{"Alpha", func(c *replay.Config) { c.Alpha = -0.1 }},
		{"Alpha", func(c *replay.Config) { c.Alpha = 1.5 }},
		{"Alpha", func(c *replay.Config) { c.Alpha = math.NaN() }},
		{"Epsilon", func(c *replay.Config) { c.Epsilon = 0 }},
		{"Epsilon", func(c *replay.Config) { c.Epsilon = -1e-3 }},
		{"Epsilon", func(c *replay.Config) { c.Epsilon = math.Inf(1) }},
		{"Epsilon", func(c *replay.Config) { c.Epsilon = math.NaN() }},
		{"Beta", func(c *replay.Config) { c.Beta = 1.01 }},
		{"Beta", func(c *replay.Config) { c.Beta = math.NaN() }},
		{"BetaStep", func(c *replay.Config) { c.BetaStep = -0.001 }},
		{"BetaStep", func(c *replay.Config) { c.BetaStep = math.Inf(1) }},
		{"BetaCalls", func(c *replay.Config) { c.BetaCalls = -1 }},
	}
	for _, c := range bad {
		cfg := replay.DefaultConfig()
		c.edit(&cfg)
		_, err := replay.New[int](cfg)
		var ce *replay.ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%+v: got %v, want a *ConfigError on %s", cfg, err, c.field)
		}
	}
	edge := replay.Config{Capacity: 1, Alpha: 0, Epsilon: 1, Beta: 1, BetaStep: 0}
	if _, err := replay.New[int](edge); err != nil {
		t.Errorf("%+v is valid: %v", edge, err)
	}
}

// chiSquare returns Σ (observed−expected)²/expected.
func chiSquare(counts []int, probs []float64, draws int) float64 {
	var x2 float64
	for i, c := range counts {
		e := probs[i] * float64(draws)
		x2 += (float64(c) - e) * (float64(c) - e) / e
	}
	return x2
}

// Over 10⁶ draws the frequency of each of 50 items matches
// P(i) = p_i/Σp with p_i = (|δ_i|+ε)^α (chi-square goodness of fit at the
// 0.001 level), for single draws and for stratified batches of 32.
func TestSampleFrequenciesMatchPriorities(t *testing.T) {
	const items, draws = 50, 1_000_000
	cfg := config(items)
	critical := distuv.ChiSquared{K: items - 1}.Quantile(0.999)

	for _, batch := range []int{1, 32} {
		buf := mustNew[int](t, cfg)
		ids := make([]replay.ID, items)
		tds := make([]float64, items)
		probs := make([]float64, items)
		var total float64
		for i := range items {
			ids[i] = buf.Add(i)
			tds[i] = float64(i%7)*0.8 + float64(i)*0.05 // 0 … 7.25: priorities over a 30x range
			probs[i] = prio(cfg, tds[i])
			total += probs[i]
		}
		if _, err := buf.UpdatePriorities(ids, tds); err != nil {
			t.Fatal(err)
		}
		for i := range probs {
			probs[i] /= total
		}
		rng := newRNG(42)
		counts := make([]int, items)
		n := 0
		for n < draws {
			b, err := buf.Sample(rng, min(batch, draws-n))
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range b.Items {
				counts[it]++
			}
			n += len(b.Items)
		}
		x2 := chiSquare(counts, probs, draws)
		t.Logf("batch %d: chi-square %.2f, critical (df %d, p 0.001) %.2f", batch, x2, items-1, critical)
		if x2 > critical {
			t.Errorf("batch %d: frequencies do not match priorities: chi-square %.2f > %.2f", batch, x2, critical)
		}
		// The same counts must fail against uniform sampling: the test has power.
		uniform := make([]float64, items)
		for i := range uniform {
			uniform[i] = 1.0 / items
		}
		if x2u := chiSquare(counts, uniform, draws); x2u <= critical {
			t.Errorf("batch %d: chi-square vs uniform %.2f ≤ %.2f: test cannot tell priorities apart", batch, x2u, critical)
		}
	}
}

// Draw i of a batch of n comes from the i-th of n equal segments of the total mass.
func TestSampleIsStratified(t *testing.T) {
	cfg := config(40)
	buf := mustNew[int](t, cfg)
	rng := newRNG(7)
	var ids []replay.ID
	var tds []float64
	for i := range 40 {
		ids = append(ids, buf.Add(i))
		tds = append(tds, rng.Float64()*3)
	}
	if _, err := buf.UpdatePriorities(ids, tds); err != nil {
		t.Fatal(err)
	}
	s := buf.Snapshot()
	cum := make([]float64, len(s.Priorities)+1)
	for i, p := range s.Priorities {
		cum[i+1] = cum[i] + p
	}
	total := cum[len(s.Priorities)]
	const n = 8
	for range 200 {
		b, err := buf.Sample(rng, n)
		if err != nil {
			t.Fatal(err)
		}
		for i, it := range b.Items {
			lo, hi := float64(i)*total/n, float64(i+1)*total/n
			if cum[it+1] < lo-1e-9 || cum[it] > hi+1e-9 {
				t.Fatalf("draw %d: item %d spans [%v, %v), outside segment [%v, %v)", i, it, cum[it], cum[it+1], lo, hi)
			}
		}
	}
}

// Weights are (N·P(i))^-β / max over the batch, computed here by hand from
// the TD errors.
func TestImportanceWeightsByHand(t *testing.T) {
	cfg := config(6)
	cfg.Beta = 0.5
	buf := mustNew[int](t, cfg)
	tds := []float64{0, 1, 3, 0.5}
	var ids []replay.ID
	for i := range tds {
		ids = append(ids, buf.Add(i))
	}
	if _, err := buf.UpdatePriorities(ids, tds); err != nil {
		t.Fatal(err)
	}
	// p = (|δ|+0.01)^0.6, Σp, N = 4 (items held, not the capacity 6).
	var p [4]float64
	var sum float64
	for i, d := range tds {
		p[i] = math.Pow(d+0.01, 0.6)
		sum += p[i]
	}
	rng := newRNG(3)
	seen := map[int]bool{}
	for call := range 50 {
		beta := buf.Beta()
		b, err := buf.Sample(rng, 3)
		if err != nil {
			t.Fatal(err)
		}
		if b.Beta != beta || beta != 0.5+float64(call)*0.001 {
			t.Fatalf("call %d: batch β %v, Beta() before %v", call, b.Beta, beta)
		}
		raw := make([]float64, len(b.Items))
		maxW := 0.0
		for i, it := range b.Items {
			raw[i] = math.Pow(4*p[it]/sum, -beta)
			maxW = max(maxW, raw[i])
			seen[it] = true
			if b.Priorities[i] != p[it] {
				t.Errorf("priority of item %d: %v, want %v", it, b.Priorities[i], p[it])
			}
		}
		for i := range raw {
			want := raw[i] / maxW
			if math.Abs(b.Weights[i]-want) > 1e-12*want {
				t.Errorf("call %d draw %d (item %d): weight %v, want %v", call, i, b.Items[i], b.Weights[i], want)
			}
		}
	}
	if len(seen) != 4 {
		t.Errorf("only items %v drawn in 50 batches", seen)
	}
}

// A case small enough to do on paper: α 1, ε 0.01, |δ| 0.99 and 2.99 give
// priorities 1 and 3, P = 1/4 and 3/4, N = 2; with β 0.5,
// (N·P)^-β = √2 and 1/√1.5, so normalised 1 and 1/√3.
func TestImportanceWeightsOnPaper(t *testing.T) {
	cfg := replay.Config{Capacity: 2, Alpha: 1, Epsilon: 0.01, Beta: 0.5, BetaStep: 0}
	buf := mustNew[string](t, cfg)
	a, b := buf.Add("a"), buf.Add("b")
	if _, err := buf.UpdatePriorities([]replay.ID{a, b}, []float64{0.99, 2.99}); err != nil {
		t.Fatal(err)
	}
	rng := newRNG(8)
	seen := map[string]int{}
	for range 400 {
		bt, err := buf.Sample(rng, 2)
		if err != nil {
			t.Fatal(err)
		}
		// Segments [0, 2) and [2, 4) of the mass: the second draw is always b.
		key := bt.Items[0] + bt.Items[1]
		seen[key]++
		want := map[string][]float64{"ab": {1, 1 / math.Sqrt(3)}, "bb": {1, 1}}[key]
		if want == nil {
			t.Fatalf("drew %v", bt.Items)
		}
		for i := range want {
			if math.Abs(bt.Weights[i]-want[i]) > 1e-12 {
				t.Fatalf("drew %v: weights %v, want %v", bt.Items, bt.Weights, want)
			}
		}
	}
	// P(first draw is a) = 1/2: mass 1 of the segment's 2.
	if seen["ab"] < 150 || seen["bb"] < 150 {
		t.Errorf("first draws %v, want about 200 each", seen)
	}
}

func TestWrapAround(t *testing.T) {
	cfg := config(5)
	buf := mustNew[int](t, cfg)
	for i := range 5 {
		if id := buf.Add(100 + i); id != replay.ID(i) {
			t.Fatalf("Add %d returned id %d", i, id)
		}
	}
	if _, err := buf.UpdatePriorities([]replay.ID{0, 1, 2, 3, 4}, []float64{0.5, 0.2, 0.1, 2, 0.3}); err != nil {
		t.Fatal(err)
	}
	maxP := prio(cfg, 2)
	for i := 5; i < 12; i++ {
		if id := buf.Add(100 + i); id != replay.ID(i) {
			t.Fatalf("Add %d returned id %d", i, id)
		}
	}
	if n, err := buf.UpdatePriorities([]replay.ID{9}, []float64{0}); err != nil || n != 1 {
		t.Fatalf("update id 9: %d, %v", n, err)
	}
	if buf.Len() != 5 {
		t.Errorf("Len %d, want 5", buf.Len())
	}
	s := buf.Snapshot()
	if want := []int{110, 111, 107, 108, 109}; !reflect.DeepEqual(s.Items, want) {
		t.Errorf("slots hold %v, want %v", s.Items, want)
	}
	// The overwritten slots carry the max priority of their new items, not
	// the priorities of the items they replaced.
	if want := []float64{maxP, maxP, maxP, maxP, prio(cfg, 0)}; !reflect.DeepEqual(s.Priorities, want) {
		t.Errorf("priorities %v, want %v", s.Priorities, want)
	}
	if s.Added != 12 {
		t.Errorf("Added %d, want 12", s.Added)
	}
	rng := newRNG(1)
	for range 200 {
		b, err := buf.Sample(rng, 5)
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range b.IDs {
			if id < 7 || id > 11 || b.Items[i] != 100+int(id) {
				t.Fatalf("draw %d: id %d with item %d", i, id, b.Items[i])
			}
		}
	}
}

// An ID sampled before its slot was overwritten is skipped, not applied to
// the new item; an ID never issued is an error and nothing is applied.
func TestStaleAndUnknownIDs(t *testing.T) {
	cfg := config(5)
	buf := mustNew[int](t, cfg)
	for i := range 5 {
		buf.Add(i)
	}
	b, err := buf.Sample(newRNG(9), 5)
	if err != nil {
		t.Fatal(err)
	}
	buf.Add(5)
	buf.Add(6) // ids 0 and 1 are gone
	before := buf.Snapshot()
	tds := []float64{4, 4, 4, 4, 4}
	n, err := buf.UpdatePriorities([]replay.ID{0, 1, 2, 3, 4}, tds)
	if err != nil || n != 3 {
		t.Fatalf("UpdatePriorities: applied %d, %v; want 3 (ids 0, 1 overwritten)", n, err)
	}
	after := buf.Snapshot()
	for slot, id := range []int{5, 6, 2, 3, 4} {
		want := before.Priorities[slot]
		if id < 5 {
			want = prio(cfg, 4)
		}
		if after.Priorities[slot] != want {
			t.Errorf("slot %d (id %d): priority %v, want %v", slot, id, after.Priorities[slot], want)
		}
	}
	for range 5 {
		buf.Add(0)
	}
	if n, err := buf.UpdatePriorities(b.IDs, tds); err != nil || n != 0 {
		t.Errorf("all sampled ids overwritten: applied %d, %v", n, err)
	}

	before = buf.Snapshot()
	_, err = buf.UpdatePriorities([]replay.ID{11, 12}, []float64{1, 1})
	var ie *replay.IDError
	if !errors.As(err, &ie) || ie.ID != 12 || ie.Pos != 1 || ie.Added != 12 {
		t.Errorf("id 12 of 12 added: %v", err)
	}
	if !reflect.DeepEqual(before, buf.Snapshot()) {
		t.Error("a rejected update changed the buffer")
	}
}

func TestBetaSchedule(t *testing.T) {
	buf := mustNew[int](t, config(10))
	buf.Add(1)
	rng := newRNG(5)
	if buf.Beta() != 0.4 {
		t.Fatalf("initial β %v", buf.Beta())
	}
	for k := range 1000 {
		want := min(1, 0.4+float64(k)*0.001)
		if got := buf.Beta(); math.Abs(got-want) > 1e-12 {
			t.Fatalf("after %d calls β = %v, want %v", k, got, want)
		}
		b, err := buf.Sample(rng, 1)
		if err != nil {
			t.Fatal(err)
		}
		if b.Beta != want && math.Abs(b.Beta-want) > 1e-12 {
			t.Fatalf("call %d used β %v, want %v", k, b.Beta, want)
		}
		if k == 599 && math.Abs(b.Beta-0.999) > 1e-12 {
			t.Fatalf("call 599 used β %v, want 0.999", b.Beta)
		}
		if k >= 600 && b.Beta != 1 {
			t.Fatalf("call %d used β %v, want exactly 1", k, b.Beta)
		}
	}
	// Failed calls do not advance the schedule.
	for _, n := range []int{0, 2} {
		if _, err := buf.Sample(rng, n); err == nil {
			t.Fatalf("Sample(%d) with 1 item succeeded", n)
		}
	}
	if _, err := buf.Sample(nil, 1); !errors.Is(err, replay.ErrNilRNG) {
		t.Fatalf("nil rng: %v", err)
	}
	s := buf.Snapshot()
	if s.SampleCalls != 1000 {
		t.Errorf("SampleCalls %d, want 1000", s.SampleCalls)
	}
}

// With BetaCalls the schedule ends at exactly 1 on call BetaCalls−1 (a
// horizon BetaStep would reach only approximately, or not at all), is linear
// before it, ignores BetaStep, and survives a checkpoint.
func TestBetaCallsSchedule(t *testing.T) {
	for _, calls := range []int{1, 2, 7, 200} {
		cfg := config(10)
		cfg.BetaCalls, cfg.BetaStep = calls, 0.001 // BetaStep would end near 0.6
		buf := mustNew[int](t, cfg)
		buf.Add(1)
		rng := newRNG(5)
		for k := range calls + 3 {
			if k == calls/2 {
				var err error
				if buf, err = replay.Restore(buf.Snapshot()); err != nil {
					t.Fatal(err)
				}
			}
			b, err := buf.Sample(rng, 1)
			if err != nil {
				t.Fatal(err)
			}
			want := 1.0
			if k < calls-1 {
				want = 0.4 + 0.6*float64(k)/float64(calls-1)
			}
			switch {
			case k >= calls-1 && b.Beta != 1:
				t.Fatalf("BetaCalls %d: call %d used β %v, want exactly 1", calls, k, b.Beta)
			case math.Abs(b.Beta-want) > 1e-15:
				t.Fatalf("BetaCalls %d: call %d used β %v, want %v", calls, k, b.Beta, want)
			case k == 0 && calls > 1 && b.Beta != 0.4:
				t.Fatalf("BetaCalls %d: first call used β %v, want Beta 0.4", calls, b.Beta)
			}
		}
	}
}

func TestMaxPriority(t *testing.T) {
	cfg := config(10)
	buf := mustNew[int](t, cfg)
	if buf.MaxPriority() != 1 {
		t.Fatalf("initial max priority %v", buf.MaxPriority())
	}
	a := buf.Add(0)
	if p := buf.Snapshot().Priorities[0]; p != 1 {
		t.Errorf("first item priority %v, want 1", p)
	}
	if _, err := buf.UpdatePriorities([]replay.ID{a}, []float64{5}); err != nil {
		t.Fatal(err)
	}
	big := prio(cfg, 5)
	if buf.MaxPriority() != big {
		t.Errorf("max priority %v after |δ| 5, want %v", buf.MaxPriority(), big)
	}
	b := buf.Add(1)
	if p := buf.Snapshot().Priorities[1]; p != big {
		t.Errorf("new item priority %v, want current max %v", p, big)
	}
	// Lowering the item that set it, or everything, keeps the running max.
	if _, err := buf.UpdatePriorities([]replay.ID{a, b}, []float64{0, 0.2}); err != nil {
		t.Fatal(err)
	}
	if buf.MaxPriority() != big {
		t.Errorf("max priority %v after lowering, want %v", buf.MaxPriority(), big)
	}
	if _, err := buf.UpdatePriorities([]replay.ID{b}, []float64{9}); err != nil {
		t.Fatal(err)
	}
	if want := prio(cfg, 9); buf.MaxPriority() != want {
		t.Errorf("max priority %v, want %v", buf.MaxPriority(), want)
	}
}

func TestBadInput(t *testing.T) {
	buf := mustNew[int](t, config(10))
	rng := newRNG(1)
	var bse *replay.BatchSizeError
	if _, err := buf.Sample(rng, 1); !errors.As(err, &bse) || bse.Len != 0 {
		t.Errorf("sample from empty buffer: %v", err)
	}
	for i := range 3 {
		buf.Add(i)
	}
	for _, n := range []int{0, -1, 4, math.MaxInt} {
		if _, err := buf.Sample(rng, n); !errors.As(err, &bse) || bse.N != n || bse.Len != 3 {
			t.Errorf("Sample(%d): %v", n, err)
		}
	}
	before := buf.Snapshot()
	var le *replay.LengthError
	if _, err := buf.UpdatePriorities([]replay.ID{0, 1}, []float64{1}); !errors.As(err, &le) {
		t.Errorf("length mismatch: %v", err)
	}
	for _, td := range []float64{math.NaN(), -0.5, math.Inf(1), math.Inf(-1), 2 * replay.MaxTDError} {
		_, err := buf.UpdatePriorities([]replay.ID{0, 1}, []float64{1, td})
		var pe *replay.PriorityError
		if !errors.As(err, &pe) || pe.Pos != 1 {
			t.Errorf("TD error %v: %v", td, err)
		}
	}
	if _, err := buf.UpdatePriorities([]replay.ID{0, 3}, []float64{1, 1}); !errors.As(err, new(*replay.IDError)) {
		t.Errorf("unknown id: %v", err)
	}
	if !reflect.DeepEqual(before, buf.Snapshot()) {
		t.Error("rejected calls changed the buffer")
	}
	if n, err := buf.UpdatePriorities(nil, nil); n != 0 || err != nil {
		t.Errorf("empty update: %d, %v", n, err)
	}
}

type transition struct {
	Obs    [4]float32
	Action int
	Reward float64
}

type record struct {
	batch replay.Batch[transition]
	n     int
}

// step is one training step: sometimes a new item, then sample, then update
// with |δ| drawn from td.
func step(t *testing.T, buf *replay.Buffer[transition], rng, td *rand.Rand, s int) record {
	t.Helper()
	if s%3 == 0 {
		buf.Add(transition{Obs: [4]float32{float32(s), 1, 2, 3}, Action: s % 4, Reward: float64(s) / 7})
	}
	b, err := buf.Sample(rng, 8)
	if err != nil {
		t.Fatal(err)
	}
	tds := make([]float64, len(b.IDs))
	for i := range tds {
		tds[i] = math.Abs(td.NormFloat64()) * 2
	}
	n, err := buf.UpdatePriorities(b.IDs, tds)
	if err != nil {
		t.Fatal(err)
	}
	return record{b, n}
}

func floatBits(xs []float64) []uint64 {
	out := make([]uint64, len(xs))
	for i, x := range xs {
		out[i] = math.Float64bits(x)
	}
	return out
}

func sameRecord(a, b record) bool {
	return a.n == b.n && reflect.DeepEqual(a.batch.Items, b.batch.Items) && reflect.DeepEqual(a.batch.IDs, b.batch.IDs) &&
		reflect.DeepEqual(floatBits(a.batch.Weights), floatBits(b.batch.Weights)) &&
		reflect.DeepEqual(floatBits(a.batch.Priorities), floatBits(b.batch.Priorities)) &&
		math.Float64bits(a.batch.Beta) == math.Float64bits(b.batch.Beta)
}

// A run checkpointed half-way (buffer state through gob or JSON, RNG states
// through MarshalBinary) and resumed in a new buffer draws exactly the
// batches of an uninterrupted run and ends in the same state.
func TestCheckpointResumeIsBitForBit(t *testing.T) {
	cfg := config(64)
	cfg.BetaStep = 0.003 // reach the cap within the run
	const steps, cut = 400, 200
	start := func() (*replay.Buffer[transition], *rand.PCG, *rand.PCG) {
		buf := mustNew[transition](t, cfg)
		for i := range 20 {
			buf.Add(transition{Action: i})
		}
		return buf, rand.NewPCG(11, 12), rand.NewPCG(13, 14)
	}

	bufA, pa, ta := start()
	rngA, tdA := rand.New(pa), rand.New(ta)
	var want []record
	for s := range steps {
		want = append(want, step(t, bufA, rngA, tdA, s))
	}

	for _, codec := range []string{"gob", "json"} {
		buf, pcg, tdPCG := start()
		rng, td := rand.New(pcg), rand.New(tdPCG)
		for s := range cut {
			if r := step(t, buf, rng, td, s); !sameRecord(r, want[s]) {
				t.Fatalf("%s: step %d differs before the checkpoint", codec, s)
			}
		}
		var enc bytes.Buffer
		var err error
		if codec == "gob" {
			err = gob.NewEncoder(&enc).Encode(buf.Snapshot())
		} else {
			err = json.NewEncoder(&enc).Encode(buf.Snapshot())
		}
		if err != nil {
			t.Fatal(err)
		}
		rs, _ := pcg.MarshalBinary()
		ts, _ := tdPCG.MarshalBinary()

		var st replay.State[transition]
		if codec == "gob" {
			err = gob.NewDecoder(&enc).Decode(&st)
		} else {
			err = json.NewDecoder(&enc).Decode(&st)
		}
		if err != nil {
			t.Fatal(err)
		}
		resumed, err := replay.Restore(st)
		if err != nil {
			t.Fatal(err)
		}
		pcg2, td2 := new(rand.PCG), new(rand.PCG)
		if err := pcg2.UnmarshalBinary(rs); err != nil {
			t.Fatal(err)
		}
		if err := td2.UnmarshalBinary(ts); err != nil {
			t.Fatal(err)
		}
		rng2, tdRNG2 := rand.New(pcg2), rand.New(td2)
		for s := cut; s < steps; s++ {
			if r := step(t, resumed, rng2, tdRNG2, s); !sameRecord(r, want[s]) {
				t.Fatalf("%s: step %d after resuming differs:\n got %+v\nwant %+v", codec, s, r, want[s])
			}
		}
		got, end := resumed.Snapshot(), bufA.Snapshot()
		if !reflect.DeepEqual(got.Items, end.Items) || !reflect.DeepEqual(floatBits(got.Priorities), floatBits(end.Priorities)) ||
			got.Added != end.Added || got.SampleCalls != end.SampleCalls || got.MaxPriority != end.MaxPriority {
			t.Errorf("%s: final state differs", codec)
		}
		if resumed.Beta() != 1 {
			t.Errorf("%s: β %v at the end, want 1", codec, resumed.Beta())
		}
	}
}

func TestRestoreRejectsBadState(t *testing.T) {
	buf := mustNew[int](t, config(4))
	for i := range 6 {
		buf.Add(i)
	}
	good := buf.Snapshot()
	edits := map[string]func(*replay.State[int]){
		"Items":       func(s *replay.State[int]) { s.Items = s.Items[:3] },
		"Priorities":  func(s *replay.State[int]) { s.Priorities = append(s.Priorities, 1) },
		"MaxPriority": func(s *replay.State[int]) { s.MaxPriority = 0.5 },
		"Priorities2": func(s *replay.State[int]) { s.Priorities = []float64{1, 1, math.NaN(), 1} },
		"Priorities3": func(s *replay.State[int]) { s.Priorities = []float64{1, 2, 1, 1} },
		"Added":       func(s *replay.State[int]) { s.Added = 2 },
	}
	for name, edit := range edits {
		s := good
		s.Items = append([]int(nil), good.Items...)
		s.Priorities = append([]float64(nil), good.Priorities...)
		edit(&s)
		if _, err := replay.Restore(s); !errors.As(err, new(*replay.StateError)) {
			t.Errorf("%s: %v, want a *StateError", name, err)
		}
	}
	s := good
	s.Config.Alpha = 2
	if _, err := replay.Restore(s); !errors.As(err, new(*replay.ConfigError)) {
		t.Errorf("bad config: %v", err)
	}
	if _, err := replay.Restore(good); err != nil {
		t.Errorf("good state: %v", err)
	}
}

// One writer goroutine adds and re-prioritises (with IDs the samplers
// drew, some of them stale by then) while four samplers draw batches. Run
// with -race. Each item's value is its own ID, so a batch mixing items and
// IDs from different moments would be caught.
func TestConcurrentWriterAndSamplers(t *testing.T) {
	cfg := config(256)
	buf := mustNew[replay.ID](t, cfg)
	for i := range 64 {
		buf.Add(replay.ID(i))
	}
	const updates = 3000
	ids := make(chan []replay.ID, 64)
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)

	wg.Add(1)
	go func() {
		defer wg.Done()
		defer done.Store(true)
		rng := newRNG(100)
		next := replay.ID(64)
		var applied, stale int
		for u := range updates {
			for range 3 { // the ring turns over every ~85 updates, so some IDs go stale
				// The only writer knows the next ID.
				if id := buf.Add(next); id != next {
					errs <- fmt.Errorf("Add returned id %d, want %d", id, next)
					return
				}
				next++
			}
			var got []replay.ID
			select {
			case got = <-ids:
			case <-time.After(10 * time.Second): // every sampler has failed
				errs <- errors.New("no IDs from the samplers")
				return
			}
			tds := make([]float64, len(got))
			for j := range tds {
				tds[j] = rng.Float64() * 3
			}
			n, err := buf.UpdatePriorities(got, tds)
			if err != nil {
				errs <- err
				return
			}
			applied += n
			stale += len(got) - n
			if u%500 == 0 {
				buf.Snapshot()
			}
		}
		t.Logf("writer: %d updates applied, %d stale skipped", applied, stale)
		if stale == 0 {
			errs <- errors.New("no stale ID exercised")
		}
	}()

	var batches atomic.Int64
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := newRNG(uint64(g))
			for !done.Load() {
				b, err := buf.Sample(rng, 16)
				if err != nil {
					errs <- err
					return
				}
				maxW := 0.0
				for i, w := range b.Weights {
					if b.Items[i] != b.IDs[i] {
						errs <- fmt.Errorf("draw %d: item %d under id %d", i, b.Items[i], b.IDs[i])
						return
					}
					if !(w > 0 && w <= 1) || !(b.Priorities[i] > 0) {
						errs <- errors.New("weight or priority out of range")
						return
					}
					maxW = max(maxW, w)
				}
				if maxW != 1 {
					errs <- errors.New("largest weight is not 1")
					return
				}
				_ = buf.Len()
				_ = buf.Beta()
				batches.Add(1)
				select {
				case ids <- b.IDs:
				default:
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d batches sampled concurrently", batches.Load())
	if batches.Load() == 0 {
		t.Error("no batch sampled")
	}
}
