package cache

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns Prometheus collectors for the counters in Stats, for
// the caller to register on a registry of its choice (nothing is registered
// globally). To tell several caches apart, register them through
// prometheus.WrapRegistererWith.
func (s *Store) Collectors() []prometheus.Collector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("capflow_featurestore_cache_"+name, help, []string{"layer"}, nil)
	}
	return []prometheus.Collector{&collector{
		s:      s,
		hits:   desc("hits_total", "Lookups answered by a cache layer."),
		misses: desc("misses_total", "Lookups a cache layer could not answer."),
		errors: desc("errors_total", "Failed calls to a cache layer (Redis)."),
		reads:  prometheus.NewDesc("capflow_featurestore_cache_store_reads_total", "Read calls that reached the store behind the cache.", nil, nil),
	}}
}

type collector struct {
	s                           *Store
	hits, misses, errors, reads *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hits
	ch <- c.misses
	ch <- c.errors
	ch <- c.reads
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.hits, st.L1Hits, "l1")
	counter(c.misses, st.L1Misses, "l1")
	counter(c.hits, st.L2Hits, "l2")
	counter(c.misses, st.L2Misses, "l2")
	counter(c.errors, st.L2Errors, "l2")
	counter(c.reads, st.StoreReads)
}
