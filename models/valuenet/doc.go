// Package valuenet is an MLP value function trained by TD(λ) with
// eligibility traces: V(x) estimates the expected return of the state-action
// features x (the caller concatenates intent embedding, capability embedding
// and context features).
//
// The net is x → [Linear → ReLU] × len(Hidden) → Linear → scalar, in float64
// with gonum's BLAS, weights stored as torch.nn.Linear does ([out×in], so a
// checkpoint reads like a PyTorch state dict). With Hidden empty the net is
// linear, and with one-hot inputs and NoBias it is exactly a table — the
// tests use that to check the TD(λ) machinery against tabular TD on the
// 19-state random walk of Sutton & Barto.
//
// Training is semi-gradient TD(λ) with accumulating traces, online (Sutton &
// Barto, 2nd ed., §12.2): per step of a trajectory
//
//	δ = r + γ·V(s') − V(s)       V(terminal) = 0
//	z ← γλ·z + ∇V(s)             z = 0 at the start of every trajectory
//	w ← w + α·δ·z
//
// Episode runs one trajectory that way. For trainers that want fixed
// targets instead, Targets gives one-step TD targets and LambdaReturns the
// offline λ-returns of a trajectory's values.
//
// Initialisation is deterministic from Config.Seed (PCG): He normal
// (std √(2/fan_in)) for the ReLU layers, Xavier/Glorot uniform
// (±√(6/(fan_in+fan_out))) for the linear output layer, zero biases;
// ZeroOutput starts the output layer at zero so every value starts at 0.
//
// Value, ValueBatch and Grad only read the weights and may run concurrently
// with each other; Episode writes them and must run alone.
package valuenet
