// Package shgat is the SuperHyperGraph Attention scorer: message passing over
// the capability↔tool hypergraph (tools are vertices, capabilities are
// hyperedges over tools and over other capabilities), then multi-head
// query/key scoring of capabilities for an intent conditioned on the tools
// already in context.
//
// The package holds the math only, in float64 with gonum's BLAS: the forward
// pass, a hand-written backward pass for every parameter (checked against
// finite differences in the tests), deterministic initialisation, checkpoints
// (safetensors), and the request-time Scorer with its ONNX export. Training
// loops, replay and schedules live in pipeline; MLflow packaging in mlmodel.
//
// Message passing runs in steps. With capability levels 0..L-1 (a capability
// of level k has members of lower layers only):
//
//	up:   V → E⁰, (V ∪ E⁰) → E¹, …          targets: capabilities of level k, sources: their members
//	down: E^{L-1} → E^{L-2}, …, → E⁰, E → V  targets: nodes with parents, sources: their parents
//
// Each step has its own parameters. Per head h, with Y_s = x_s·W_child and
// Y_t = x_t·W_parent restricted to the head's columns:
//
//	logit_ts = a_hᵀ · LeakyReLU_0.2(Y_s,h + Y_t,h)   masked by incidence
//	α_ts     = softmax over the target's sources
//	m_t,h    = ELU(Σ_s α_ts · Y_s,h)               heads concatenated → m_t ∈ R^D
//	x_t'     = (1 − σ(γ)) ⊙ x_t + σ(γ) ⊙ m_t      learned gated residual
//
// The attention is GATv2's: aᵀ·LeakyReLU(W·[x_s ‖ x_t]) with W = [W_child |
// W_parent] is exactly the sum above. Concatenating the two projections
// before the LeakyReLU instead would make the target's term a constant under
// the softmax, so W_parent would never receive a gradient.
//
// The gated residual keeps a node's own embedding; the reference
// implementation measured that dropping it destroys retrieval. Nodes without
// sources in a step are left unchanged.
package shgat
