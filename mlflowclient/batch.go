package mlflowclient

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Batch is what one LogBatch call logs. It may be any size: LogBatch splits it
// into requests that respect every server limit at once.
type Batch struct {
	Metrics []Metric
	Params  []Param
	Tags    []Tag
}

// Len is the number of entities in the batch.
func (b Batch) Len() int { return len(b.Metrics) + len(b.Params) + len(b.Tags) }

// validate checks every entity and rejects a param key given twice with
// different values (params are immutable; the server would fail the batch).
// It returns the batch with exact duplicate params removed.
func (b Batch) validate() (Batch, error) {
	for i, m := range b.Metrics {
		if err := validateMetric(m); err != nil {
			return b, fmt.Errorf("metrics[%d]: %w", i, err)
		}
	}
	seen := make(map[string]string, len(b.Params))
	params := b.Params[:0:0]
	for i, p := range b.Params {
		if err := validateParam(p); err != nil {
			return b, fmt.Errorf("params[%d]: %w", i, err)
		}
		if v, ok := seen[p.Key]; ok {
			if v != p.Value {
				return b, &ValidationError{Field: "param key", Value: p.Key, Reason: "given twice with different values"}
			}
			continue
		}
		seen[p.Key] = p.Value
		params = append(params, p)
	}
	for i, t := range b.Tags {
		if err := validateTag(t); err != nil {
			return b, fmt.Errorf("tags[%d]: %w", i, err)
		}
	}
	b.Params = params
	return b, nil
}

// batchLimits are the server's log-batch limits; a variable only so tests can
// exercise the 1 MB rule with small bodies.
type batchLimits struct {
	metrics, paramsTags, entities, bodyBytes int
}

var serverBatchLimits = batchLimits{maxMetricsPerBatch, maxParamsTagsPerBatch, maxEntitiesPerBatch, maxBatchBodyBytes}

// chunkBatch encodes b as log-batch request bodies, each within every limit at
// once. Entities keep their order within each kind; params and tags go first
// so a run's configuration lands before its metrics. The body is built by hand
// from per-entity encodings so its size is known exactly while packing.
func chunkBatch(runID string, b Batch, lim batchLimits) ([][]byte, error) {
	head := []byte(`{"run_id":` + strconv.Quote(runID))
	// A body is head + `,"metrics":[...]` etc. + "}". Count fixed overhead for
	// the three arrays even when empty: simpler and costs 40 bytes.
	const arraysOverhead = len(`,"metrics":[],"params":[],"tags":[]}`)
	base := len(head) + arraysOverhead

	var queues [3][][]byte // metrics, params, tags, each in caller order
	tooBig := func(raw []byte) error {
		if base+len(raw) > lim.bodyBytes {
			return &ValidationError{Field: "batch entity", Reason: fmt.Sprintf("alone encodes to %d bytes, over the %d-byte request limit", len(raw), lim.bodyBytes)}
		}
		return nil
	}
	// Metrics are encoded into one buffer (one allocation, not one per point).
	buf := make([]byte, 0, 96*len(b.Metrics))
	ends := make([]int, len(b.Metrics))
	for i, m := range b.Metrics {
		buf = m.appendJSON(buf)
		ends[i] = len(buf)
	}
	queues[0] = make([][]byte, len(b.Metrics))
	for i, end := range ends {
		begin := 0
		if i > 0 {
			begin = ends[i-1]
		}
		queues[0][i] = buf[begin:end:end]
		if err := tooBig(queues[0][i]); err != nil {
			return nil, err
		}
	}
	add := func(kind int, v any) error {
		raw, err := json.Marshal(v)
		if err == nil {
			err = tooBig(raw)
		}
		queues[kind] = append(queues[kind], raw)
		return err
	}
	for _, p := range b.Params {
		if err := add(1, p); err != nil {
			return nil, err
		}
	}
	for _, t := range b.Tags {
		if err := add(2, t); err != nil {
			return nil, err
		}
	}

	// Each body takes params, then tags, then metrics, each kind up to its own
	// cap, all within the shared entity and byte budgets.
	caps := [3]int{lim.metrics, lim.paramsTags, lim.paramsTags}
	names := [3]string{`,"metrics":[`, `,"params":[`, `,"tags":[`}
	var bodies [][]byte
	for len(queues[0])+len(queues[1])+len(queues[2]) > 0 {
		size, entities := base, 0
		var take [3]int
		for _, k := range [3]int{1, 2, 0} {
			for take[k] < len(queues[k]) && take[k] < caps[k] && entities < lim.entities {
				extra := len(queues[k][take[k]])
				if take[k] > 0 {
					extra++ // comma
				}
				if size+extra > lim.bodyBytes {
					break
				}
				size += extra
				take[k]++
				entities++
			}
		}
		out := make([]byte, 0, size)
		out = append(out, head...)
		for k := range 3 {
			out = append(out, names[k]...)
			for i, raw := range queues[k][:take[k]] {
				if i > 0 {
					out = append(out, ',')
				}
				out = append(out, raw...)
			}
			out = append(out, ']')
			queues[k] = queues[k][take[k]:]
		}
		bodies = append(bodies, append(out, '}'))
	}
	return bodies, nil
}
