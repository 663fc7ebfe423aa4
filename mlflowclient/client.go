package mlflowclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"
)

// Version is the client version reported in the User-Agent.
const Version = "0.1.0"

// Client talks to one MLflow tracking server (and, when configured, a separate
// registry server). It is safe for concurrent use.
type Client struct {
	cfg      config
	http     *resty.Client // JSON calls, with the retry policy installed
	tracking *url.URL
	registry *url.URL

	Experiments  *ExperimentsService
	Runs         *RunsService
	Artifacts    *ArtifactsService
	LoggedModels *LoggedModelsService
	Registry     *RegistryService

	artifacts artifactState // what the artifact proxy was found to support
}

type service struct{ c *Client }

// config is what options and the environment fill in.
type config struct {
	trackingURI    string
	registryURI    string
	username       string
	password       string
	token          string
	insecureTLS    bool
	serverCertPath string
	experimentName string
	runID          string
	timeout        time.Duration
	retry          RetryPolicy
	userAgent      string
	logger         *slog.Logger
	httpClient     *http.Client
	getenv         func(string) (string, bool)
	multipart      multipartConfig // WithMultipartUpload
}

// Option configures a Client. Options override the environment.
type Option func(*config)

// WithTrackingURI sets the tracking server, e.g. "http://127.0.0.1:5000".
// Credentials in the URL's user-info become Basic auth and are stripped from it.
func WithTrackingURI(uri string) Option { return func(c *config) { c.trackingURI = uri } }

// WithRegistryURI sets a separate Model Registry server (defaults to the tracking URI).
func WithRegistryURI(uri string) Option { return func(c *config) { c.registryURI = uri } }

// WithBasicAuth sets HTTP Basic credentials.
func WithBasicAuth(username, password string) Option {
	return func(c *config) { c.username, c.password = username, password }
}

// WithToken sets a Bearer token; it takes precedence over Basic auth.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithInsecureTLS disables server certificate verification.
func WithInsecureTLS(insecure bool) Option { return func(c *config) { c.insecureTLS = insecure } }

// WithServerCertPath trusts the PEM CA bundle at path for the server's certificate.
func WithServerCertPath(path string) Option { return func(c *config) { c.serverCertPath = path } }

// WithTimeout bounds each HTTP attempt (default 120s). Use contexts to bound a whole call.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithRetryPolicy replaces the default retry policy.
func WithRetryPolicy(p RetryPolicy) Option { return func(c *config) { c.retry = p } }

// WithUserAgent replaces the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *config) { c.userAgent = ua } }

// WithLogger sets the logger for retries and warnings (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithHTTPClient uses hc as the underlying HTTP client (its Transport, cookies, ...).
// TLS options are then the caller's responsibility.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.httpClient = hc } }

// WithEnv replaces the environment lookup (os.LookupEnv); pass a function that
// always returns false to ignore the environment entirely.
func WithEnv(lookup func(string) (string, bool)) Option { return func(c *config) { c.getenv = lookup } }

// WithExperimentName overrides MLFLOW_EXPERIMENT_NAME (see Client.DefaultExperimentName).
func WithExperimentName(name string) Option { return func(c *config) { c.experimentName = name } }

// WithRunID overrides MLFLOW_RUN_ID (see Client.DefaultRunID).
func WithRunID(id string) Option { return func(c *config) { c.runID = id } }

// New builds a Client from the MLFLOW_* environment, then opts.
func New(opts ...Option) (*Client, error) {
	cfg := config{getenv: os.LookupEnv, retry: DefaultRetryPolicy(), timeout: 120 * time.Second}
	// First pass only to learn whether the caller replaced the environment.
	probe := cfg
	for _, o := range opts {
		o(&probe)
	}
	cfg.getenv = probe.getenv
	cfg.fromEnv()
	for _, o := range opts {
		o(&cfg)
	}
	return newClient(cfg)
}

func (c *config) fromEnv() {
	str := func(k string, dst *string) {
		if v, ok := c.getenv(k); ok && v != "" {
			*dst = v
		}
	}
	str("MLFLOW_TRACKING_URI", &c.trackingURI)
	str("MLFLOW_REGISTRY_URI", &c.registryURI)
	str("MLFLOW_TRACKING_USERNAME", &c.username)
	str("MLFLOW_TRACKING_PASSWORD", &c.password)
	str("MLFLOW_TRACKING_TOKEN", &c.token)
	str("MLFLOW_TRACKING_SERVER_CERT_PATH", &c.serverCertPath)
	str("MLFLOW_EXPERIMENT_NAME", &c.experimentName)
	str("MLFLOW_RUN_ID", &c.runID)
	if v, ok := c.getenv("MLFLOW_TRACKING_INSECURE_TLS"); ok {
		c.insecureTLS, _ = strconv.ParseBool(strings.TrimSpace(v))
	}
}

func newClient(cfg config) (*Client, error) {
	if cfg.trackingURI == "" {
		return nil, &ConfigError{Field: "tracking URI", Reason: "not set (use WithTrackingURI or MLFLOW_TRACKING_URI)"}
	}
	tracking, err := parseServerURI(&cfg, "tracking URI", cfg.trackingURI)
	if err != nil {
		return nil, err
	}
	registry := tracking
	if cfg.registryURI != "" {
		if registry, err = parseServerURI(&cfg, "registry URI", cfg.registryURI); err != nil {
			return nil, err
		}
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.userAgent == "" {
		cfg.userAgent = defaultUserAgent()
	}
	if cfg.timeout <= 0 {
		return nil, &ConfigError{Field: "timeout", Reason: "must be positive"}
	}
	if err := cfg.retry.validate(); err != nil {
		return nil, err
	}

	hc := cfg.httpClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// Many concurrent log-batch calls go to one host; keep their connections.
		tr.MaxIdleConnsPerHost = 64
		tlsCfg, err := cfg.tlsConfig()
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tlsCfg
		hc = &http.Client{Transport: tr}
	}
	hc.Timeout = cfg.timeout

	rc := resty.NewWithClient(hc).
		SetHeader("User-Agent", cfg.userAgent).
		SetHeader("Accept", "application/json").
		SetLogger(restyLogger{cfg.logger}).
		SetDebug(false).
		SetAllowGetMethodPayload(false)
	// Retries are ours (RetryPolicy.do), not resty's, so JSON calls and
	// streamed artifact transfers share one policy.
	rc.SetRetryCount(0)

	c := &Client{cfg: cfg, http: rc, tracking: tracking, registry: registry}
	c.Experiments = (*ExperimentsService)(&service{c})
	c.Runs = (*RunsService)(&service{c})
	c.Artifacts = (*ArtifactsService)(&service{c})
	c.LoggedModels = (*LoggedModelsService)(&service{c})
	c.Registry = (*RegistryService)(&service{c})
	return c, nil
}

// parseServerURI validates an http(s) server URI and moves user-info into cfg.
func parseServerURI(cfg *config, field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &ConfigError{Field: field, Reason: "not a URL: " + redactURLError(err)}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, &ConfigError{Field: field, Reason: fmt.Sprintf("scheme %q is not supported (want http or https; local file stores are not a REST server)", u.Scheme)}
	}
	if u.Host == "" {
		return nil, &ConfigError{Field: field, Reason: "has no host"}
	}
	if u.User != nil {
		if cfg.username == "" {
			cfg.username = u.User.Username()
			cfg.password, _ = u.User.Password()
		}
		u.User = nil
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// redactURLError keeps url.Parse's reason but never the URL (it may hold a password).
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return "invalid"
}

func (c *config) tlsConfig() (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.insecureTLS} //nolint:gosec // opt-in by MLFLOW_TRACKING_INSECURE_TLS
	if c.serverCertPath != "" {
		pem, err := os.ReadFile(c.serverCertPath)
		if err != nil {
			return nil, &ConfigError{Field: "server cert path", Reason: err.Error()}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{Field: "server cert path", Reason: "no PEM certificate in " + c.serverCertPath}
		}
		t.RootCAs = pool
	}
	return t, nil
}

func defaultUserAgent() string {
	goVer := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVer = bi.GoVersion
	}
	return fmt.Sprintf("capflow-mlflowclient/%s (%s)", Version, goVer)
}

// TrackingURI returns the tracking server's base URL (without credentials).
func (c *Client) TrackingURI() string { return c.tracking.String() }

// RegistryURI returns the registry server's base URL (without credentials).
func (c *Client) RegistryURI() string { return c.registry.String() }

// DefaultExperimentName is MLFLOW_EXPERIMENT_NAME or WithExperimentName, if set.
func (c *Client) DefaultExperimentName() string { return c.cfg.experimentName }

// DefaultRunID is MLFLOW_RUN_ID or WithRunID, if set.
func (c *Client) DefaultRunID() string { return c.cfg.runID }

// Logger returns the client's logger.
func (c *Client) Logger() *slog.Logger { return c.cfg.logger }

// endpoint names one REST method. registry selects the registry server.
type endpoint struct {
	method   string
	path     string // below the server root, e.g. "/api/2.0/mlflow/runs/get"
	registry bool
}

func (c *Client) base(e endpoint) *url.URL {
	if e.registry {
		return c.registry
	}
	return c.tracking
}

// call performs a JSON request: in is sent as the JSON body (POST/PATCH/DELETE)
// or as query parameters (GET, in must then be url.Values or nil); out, when
// non-nil, receives the decoded JSON response.
func (c *Client) call(ctx context.Context, e endpoint, in any, out any) error {
	_, err := c.callTries(ctx, e, in, out)
	return err
}

// callTries is call that also says how many times the request was sent, for
// creates that must stay idempotent across retries (see Experiments.Create).
func (c *Client) callTries(ctx context.Context, e endpoint, in any, out any) (int, error) {
	req := c.request(ctx)
	switch q := in.(type) {
	case nil:
	case url.Values:
		req.SetQueryParamsFromValues(q)
	case json.RawMessage: // pre-encoded (log-batch chunks): sent as is
		req.SetHeader("Content-Type", "application/json").SetBody([]byte(q))
	default:
		if e.method == http.MethodGet {
			return 0, fmt.Errorf("mlflowclient: internal: GET %s with a JSON body", e.path)
		}
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("mlflowclient: %s %s: encoding request: %w", e.method, e.path, err)
		}
		req.SetHeader("Content-Type", "application/json").SetBody(b)
	}
	a := c.cfg.retry.do(ctx, c.cfg.logger, e.method+" "+e.path, func() attempt {
		resp, err := req.Execute(e.method, c.base(e).String()+e.path)
		if err != nil {
			return attempt{err: err, header: http.Header{}}
		}
		return attempt{status: resp.StatusCode(), header: resp.Header(), body: resp.Body()}
	})
	if a.err != nil {
		return a.tries, transportError(e, a.err)
	}
	if a.status < 200 || a.status > 299 {
		return a.tries, newAPIError(e.method, e.path, a.status, a.header, a.body)
	}
	if out == nil || len(a.body) == 0 {
		return a.tries, nil
	}
	if err := json.Unmarshal(a.body, out); err != nil {
		return a.tries, fmt.Errorf("mlflowclient: %s %s: decoding response: %w", e.method, e.path, err)
	}
	return a.tries, nil
}

// request starts a resty request with auth and context set.
func (c *Client) request(ctx context.Context) *resty.Request {
	req := c.http.R().SetContext(ctx)
	c.authorize(req.Header)
	return req
}

// authorize adds the configured credentials to h.
func (c *Client) authorize(h http.Header) {
	switch {
	case c.cfg.token != "":
		h.Set("Authorization", "Bearer "+c.cfg.token)
	case c.cfg.username != "" || c.cfg.password != "":
		r := &http.Request{Header: h}
		r.SetBasicAuth(c.cfg.username, c.cfg.password)
	}
}

// transportError wraps a network-level failure (after retries). The URL inside
// net errors never holds credentials: New strips them from the server URI.
func transportError(e endpoint, err error) error {
	return fmt.Errorf("mlflowclient: %s %s: %w", e.method, e.path, err)
}

// restyLogger routes resty's own messages to slog at debug level; resty never
// logs request bodies or headers unless debug is on, which we never enable.
type restyLogger struct{ l *slog.Logger }

func (r restyLogger) Errorf(format string, v ...any) {
	r.l.Debug("resty: " + fmt.Sprintf(format, v...))
}
func (r restyLogger) Warnf(format string, v ...any) { r.l.Debug("resty: " + fmt.Sprintf(format, v...)) }
func (r restyLogger) Debugf(format string, v ...any) {
	r.l.Debug("resty: " + fmt.Sprintf(format, v...))
}

// drain discards and closes a response body so the connection can be reused.
func drain(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 1<<20))
	_ = rc.Close()
}
