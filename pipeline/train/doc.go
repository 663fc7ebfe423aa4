// Package train turns logged experiences into SHGAT training: rewards and
// session trajectories, session-grouped and temporal splits, and the trainer
// loop (PER sampling, TD targets from the value network, IS-weighted loss,
// Adam with cosine annealing, validation, early stopping, checkpoints), as a
// pipeline stage.
package train
