package serving

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus collectors, registered on the
// registry of ServerConfig (nothing global).
type metrics struct {
	latency   *prometheus.HistogramVec // route, method, status
	errors    *prometheus.CounterVec   // route, code
	fallbacks *prometheus.CounterVec   // kind
	score     *prometheus.HistogramVec // served_by
	topScore  *prometheus.HistogramVec // served_by
	served    *prometheus.CounterVec   // served_by, candidates
	shadow    *prometheus.CounterVec   // outcome
}

// Fallback kinds counted by capflow_serving_fallbacks_total.
const (
	fallbackANNError = "ann_error" // the ANN call failed or timed out: the whole catalog is ranked
	fallbackANNEmpty = "ann_empty" // the ANN found nothing the model knows: the whole catalog is ranked
	fallbackEncoder  = "encoder"   // the (cached) encoder failed: the fallback encoder was used
)

func newMetrics(reg prometheus.Registerer, scoreBuckets []float64) (*metrics, error) {
	m := &metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "capflow_http_request_duration_seconds",
			Help:    "HTTP request latency by route, method and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "status"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capflow_http_errors_total",
			Help: "Error responses by route and error code.",
		}, []string{"route", "code"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capflow_serving_fallbacks_total",
			Help: "Requests served through a fallback path: ann_error, ann_empty (whole catalog ranked), encoder (uncached encoder).",
		}, []string{"kind"}),
		score: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "capflow_serving_score",
			Help:    "Model scores of the returned rankings (before boosts), for drift monitoring.",
			Buckets: scoreBuckets,
		}, []string{"served_by"}),
		topScore: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "capflow_serving_top_score",
			Help:    "The best model score per request (before boosts).",
			Buckets: scoreBuckets,
		}, []string{"served_by"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capflow_serving_rank_requests_total",
			Help: "Ranked requests by the model role serving them and where the candidates came from (request, ann, catalog).",
		}, []string{"served_by", "candidates"}),
		shadow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capflow_serving_shadow_total",
			Help: "Shadow scorings by outcome: done, error, dropped (too many in flight).",
		}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.latency, m.errors, m.fallbacks, m.score, m.topScore, m.served, m.shadow} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// registerExtra registers collectors the store offers (the cache layers'
// hit and miss counters), tolerating ones the caller registered already.
func registerExtra(reg prometheus.Registerer, cs []prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return err
			}
		}
	}
	return nil
}

// defaultScoreBuckets cover SHGAT scores: an untrained model's stay within
// ±1, the trained Seal-Tools model's top scores are around 10–20; the
// buckets are round numbers so dashboards read them as they are.
func defaultScoreBuckets() []float64 {
	b := []float64{-10, -5, -2, -1, -0.5, 0, 0.25, 0.5, 0.75}
	for x := 1.0; x <= 20; x++ {
		b = append(b, x)
	}
	return append(b, 25, 30, 40, 50)
}
