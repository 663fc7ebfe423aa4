// Package metrics holds capflow's offline evaluation metrics (design 3.1):
// ranking metrics as plain functions of a ranked list and a relevant set,
// temperature-scaled softmax calibration with ECE and Brier score, catalog
// coverage and the Gini coefficient of recommendation counts, and Compute,
// which evaluates a set of rankings into a Report with a per-query breakdown.
//
// It imports nothing of capflow, so the training stage validates with exactly
// the code evaluation reports with.
//
// Conventions, shared by every function here and by
// scripts/metrics_crosscheck.py, which checks them against scikit-learn:
//
//   - Ties: Rank orders by descending score and keeps candidate order among
//     equal scores (stable), so rankings are reproducible.
//   - An item is relevant when its grade is > 0. Relevant items that are not
//     among the candidates count as never ranked: they add 0 to AP and DCG
//     but still count in AP's denominator and in the ideal DCG.
//   - Graded nDCG uses linear gains (gain = grade), as sklearn's ndcg_score;
//     the discount is 1/log2(position+1), positions from 1.
//   - Probabilities are a per-query softmax of score/T over the candidates;
//     a candidate's label is 1 when it is relevant. ECE and Brier score run
//     over every (query, candidate) pair; ECETop1 over each query's top
//     candidate. ECE's bins are equal-width and right-closed, (b/B, (b+1)/B],
//     with 0 in the first: sklearn's calibration_curve binning.
package metrics
