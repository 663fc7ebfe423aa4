// Package serving is capflow's ranking service: a Gin HTTP API (/rank,
// /feedback, health, readiness, Prometheus metrics, OpenAPI) over the model
// the MLflow Model Registry holds in Production, with verified hot swap,
// a shadow model and a sticky canary.
//
// The pieces:
//   - Manager follows the registry (a stage or an alias), downloads and
//     verifies each new version, swaps it in atomically and keeps the last
//     verified one on disk for restarts without the registry;
//   - Server is the HTTP API; it asks the Manager for a model per request.
package serving

import (
	"time"

	"github.com/capflow/capflow/models/ranker"
)

// Model is one loaded, verified model version.
type Model struct {
	Name    string // registered model name
	Version string // registered version
	Stage   string // the stage or alias it was resolved from ("Production", "@champion")
	Ranker  *ranker.Ranker
	Loaded  time.Time
}

// Role says which traffic a model serves.
type Role string

const (
	RolePrimary Role = "primary" // the followed stage (Production)
	RoleCanary  Role = "canary"  // a share of sessions
	RoleShadow  Role = "shadow"  // scored off the request path, never returned
)

// Models is what the HTTP handlers need from the model lifecycle; Manager
// implements it.
type Models interface {
	// Acquire returns the model that serves a request from session (canary
	// routing is sticky per session; "" routes to the primary) and a
	// release function the caller must call when the request is done: a
	// swapped-out model is closed only after its last release. ok is false
	// until a model is loaded.
	Acquire(session string) (m *Model, role Role, release func(), ok bool)
	// Shadow, when configured, returns the shadow model and whether this
	// request is sampled for it; the caller scores it off the request path.
	Shadow(session string) (m *Model, release func(), ok bool)
}
