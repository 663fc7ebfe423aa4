package mlflowclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// RetryPolicy decides which failures are retried and how long to wait.
// Waits grow exponentially from MinWait to MaxWait with full jitter; a
// Retry-After header from the server wins (capped at MaxWait).
type RetryPolicy struct {
	MaxRetries int           // retries after the first attempt; 0 disables retrying
	MinWait    time.Duration // first backoff
	MaxWait    time.Duration // cap for one wait, including Retry-After
}

// DefaultRetryPolicy retries 5 times waiting 100ms, 200ms, ... up to 10s:
// about 20s of budget, the same order as the official client's defaults.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxRetries: 5, MinWait: 100 * time.Millisecond, MaxWait: 10 * time.Second}
}

// NoRetry is a policy that never retries.
func NoRetry() RetryPolicy { return RetryPolicy{} }

func (p RetryPolicy) validate() error {
	if p.MaxRetries < 0 {
		return &ConfigError{Field: "retry policy", Reason: "MaxRetries must be >= 0"}
	}
	if p.MaxRetries > 0 && (p.MinWait <= 0 || p.MaxWait < p.MinWait) {
		return &ConfigError{Field: "retry policy", Reason: "need 0 < MinWait <= MaxWait"}
	}
	return nil
}

// retryableStatus are the statuses that may succeed when repeated.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// deterministicCodes fail the same way however often they are sent, even when
// a server maps them to a 5xx status.
var deterministicCodes = map[string]bool{
	CodeInvalidParameterValue: true, CodeInvalidState: true, CodeBadRequest: true,
	CodeResourceAlreadyExists: true, CodeResourceDoesNotExist: true, CodeMalformedRequest: true,
	CodeInvalidRequest: true, CodePermissionDenied: true, CodeUnauthenticated: true,
	CodeNotImplemented: true, CodeEndpointNotFound: true, CodeCustomerUnauthorized: true,
}

// shouldRetry is the one retry decision, shared by JSON calls and streamed
// artifact transfers. status is 0 when the request failed before a response.
func shouldRetry(ctx context.Context, status int, body []byte, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		return retryableTransportError(err)
	}
	if !retryableStatus(status) {
		return false
	}
	if len(body) > 0 {
		if ae := newAPIError("", "", status, http.Header{}, body); deterministicCodes[ae.Code] && ae.Code != codeForStatus(status) {
			return false
		}
	}
	return true
}

// retryableTransportError: a request that got no answer (refused, reset,
// timed out, EOF mid-response) may succeed later — except when the caller
// gave up or the server's certificate is not trusted, which no retry changes.
func retryableTransportError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var (
		verify    *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	return !errors.As(err, &verify) && !errors.As(err, &unknownCA) && !errors.As(err, &hostname) && !errors.As(err, &invalid)
}

// wait returns how long to sleep before retry number attempt (0-based).
func (p RetryPolicy) wait(attempt int, retryAfter string) time.Duration {
	if d, ok := parseRetryAfter(retryAfter, time.Now()); ok {
		return min(d, p.MaxWait)
	}
	ceil := min(float64(p.MaxWait), float64(p.MinWait)*math.Exp2(float64(attempt)))
	// "Equal jitter": half fixed, half random, so waits never collapse to ~0.
	half := ceil / 2
	return time.Duration(half + rand.Float64()*half)
}

// parseRetryAfter reads delta-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// attempt is one try of a request: its status (0 when no response), headers,
// body as far as it was read, and the transport error.
type attempt struct {
	tries  int // set by do: how many times the request was sent
	status int
	header http.Header
	body   []byte
	err    error
}

// do runs try until it succeeds, fails for good, or the budget or ctx runs out.
// It is the one retry loop for JSON calls and streamed transfers alike.
func (p RetryPolicy) do(ctx context.Context, log *slog.Logger, what string, try func() attempt) attempt {
	for n := 0; ; n++ {
		a := try()
		a.tries = n + 1
		if n >= p.MaxRetries || !shouldRetry(ctx, a.status, a.body, a.err) {
			return a
		}
		d := p.wait(n, a.header.Get("Retry-After"))
		log.Debug("mlflowclient: retrying", "call", what, "attempt", n+1, "status", a.status, "err", a.err, "wait", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return a
		case <-t.C:
		}
	}
}
