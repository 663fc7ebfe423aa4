package mlflowclient

import (
	"path"
	"regexp"
	"strconv"
)

// Server limits (mlflow/utils/validation.py). Checked before sending so a bad
// point fails fast with a ValidationError instead of failing a whole batch.
const (
	maxMetricsPerBatch          = 1000
	maxParamsTagsPerBatch       = 100
	maxEntitiesPerBatch         = 1000
	maxBatchBodyBytes           = 1_000_000
	maxParamValueLength         = 6000
	maxTagValueLength           = 8000
	maxEntityKeyLength          = 250
	maxExperimentNameLength     = 500
	maxExperimentTagValueLength = 20000
	maxRegistryTagValueLength   = 100_000
	maxAliasLength              = 255
)

// keyPattern is the server's `^[/\w.\- :]*$` with Python's Unicode \w.
var keyPattern = regexp.MustCompile(`^[/\p{L}\p{N}_.\- :]*$`)

// runIDPattern is the server's _RUN_ID_REGEX.
var runIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][\w\-]{0,255}$`)

// validateKey applies the server's rules for metric, param and tag keys:
// allowed characters, at most 250 characters, and a name that stays itself
// when treated as a file path (no "..", no leading "/", no "a//b").
func validateKey(field, key string) error {
	switch {
	case key == "":
		return &ValidationError{Field: field, Reason: "is empty"}
	case len(key) > maxEntityKeyLength:
		return &ValidationError{Field: field, Value: shorten(key), Reason: "longer than 250 characters"}
	case !keyPattern.MatchString(key):
		return &ValidationError{Field: field, Value: shorten(key),
			Reason: "may only contain alphanumerics, underscores, dashes, periods, spaces, colons and slashes"}
	}
	if c := path.Clean(key); c != key || c == "." || len(c) >= 2 && c[:2] == ".." || c[0] == '/' {
		return &ValidationError{Field: field, Value: shorten(key),
			Reason: "would resolve to another name as a file path (" + strconv.Quote(c) + ")"}
	}
	return nil
}

func validateRunID(id string) error {
	if id == "" {
		return &ValidationError{Field: "run_id", Reason: "is required"}
	}
	if !runIDPattern.MatchString(id) {
		return &ValidationError{Field: "run_id", Value: shorten(id), Reason: "is not a valid run id"}
	}
	return nil
}

func validateMetric(m Metric) error {
	if err := validateKey("metric key", m.Key); err != nil {
		return err
	}
	if m.Timestamp < 0 {
		return &ValidationError{Field: "metric timestamp", Value: m.Key, Reason: "must be >= 0 (milliseconds since the epoch)"}
	}
	return nil
}

func validateParam(p Param) error {
	if err := validateKey("param key", p.Key); err != nil {
		return err
	}
	if len(p.Value) > maxParamValueLength {
		return &ValidationError{Field: "param value", Value: p.Key,
			Reason: "longer than " + strconv.Itoa(maxParamValueLength) + " characters"}
	}
	return nil
}

func validateTag(t Tag) error {
	if err := validateKey("tag key", t.Key); err != nil {
		return err
	}
	if len(t.Value) > maxTagValueLength {
		return &ValidationError{Field: "tag value", Value: t.Key,
			Reason: "longer than " + strconv.Itoa(maxTagValueLength) + " characters"}
	}
	return nil
}
