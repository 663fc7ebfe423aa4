package serving

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// managerMetrics are the Manager's collectors.
type managerMetrics struct {
	info         *prometheus.GaugeVec   // name, version, stage, role → 1 while serving
	failures     *prometheus.CounterVec // role, reason
	swaps        *prometheus.CounterVec // role
	cacheHits    prometheus.Counter
	shadowErrors prometheus.Counter
	compared     prometheus.Counter
	agreed       prometheus.Counter
	agreement    prometheus.Gauge
	rankCorr     prometheus.Histogram

	mu                 sync.Mutex // the agreement gauge's running counts
	nCompared, nAgreed int
}

func newManagerMetrics(reg prometheus.Registerer) (*managerMetrics, error) {
	const ns, sub = "capflow", "serving"
	mm := &managerMetrics{
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "model_info",
			Help: "1 for each model version serving, by registered name, version, stage or alias, and role."},
			[]string{"name", "version", "stage", "role"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "model_load_failures_total",
			Help: "Model versions not swapped in (the serving one kept serving), by role and reason: registry, no_version, download, verify, dim, catalog, cache."},
			[]string{"role", "reason"}),
		swaps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "model_swaps_total",
			Help: "Verified model versions swapped in (the first load included), by role."}, []string{"role"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "model_cache_hits_total",
			Help: "Model versions loaded from the local cache instead of downloaded (restarts without the registry included)."}),
		shadowErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "shadow_errors_total",
			Help: "Sampled requests the shadow model failed to score."}),
		compared: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "shadow_comparisons_total",
			Help: "Requests scored by both the primary and the shadow model."}),
		agreed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "shadow_top1_agreements_total",
			Help: "Compared requests where the shadow model ranked the primary's first capability first."}),
		agreement: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "shadow_top1_agreement_ratio",
			Help: "Top-1 agreement of the shadow with the primary model since either was last swapped."}),
		rankCorr: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "shadow_rank_correlation",
			Help:    "Spearman rank correlation of the shadow's and the primary's orders of a request's candidates.",
			Buckets: []float64{-0.5, 0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1}}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{mm.info, mm.failures, mm.swaps, mm.cacheHits, mm.shadowErrors, mm.compared, mm.agreed, mm.agreement, mm.rankCorr} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("serving: registering the manager's metrics: %w", err)
			}
		}
	}
	return mm, nil
}

func (mm *managerMetrics) recordShadow(top1 bool, rho float64, haveRho bool) {
	mm.compared.Inc()
	if top1 {
		mm.agreed.Inc()
	}
	if haveRho {
		mm.rankCorr.Observe(rho)
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	mm.nCompared++
	if top1 {
		mm.nAgreed++
	}
	mm.agreement.Set(float64(mm.nAgreed) / float64(mm.nCompared))
}

// resetAgreement starts the ratio afresh for a new pair of models.
func (mm *managerMetrics) resetAgreement() {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	mm.nCompared, mm.nAgreed = 0, 0
	mm.agreement.Set(0)
}
