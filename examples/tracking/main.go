// Command tracking is a tour of capflow's MLflow client: it runs a small
// hyperparameter sweep, tracks it in MLflow, and registers the best model.
//
//	MLFLOW_TRACKING_URI=http://127.0.0.1:5000 go run ./examples/tracking
//
// What it does:
//   - gets (or creates) the experiment "capflow-example", with a description;
//   - starts a parent run and, under it, one child run per learning rate;
//   - trains a logistic regression on synthetic data in each child, logging
//     params and per-epoch metrics through an AsyncLogger (non-blocking);
//   - logs a JSON summary of the sweep as an artifact of the parent run;
//   - stores the best model as an MLflow 3 logged model, registers it as a
//     version of "capflow-example" and moves that version to Staging;
//   - prints the MLflow UI links.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/capflow/capflow/mlflowclient"
)

const (
	experimentName = "capflow-example"
	modelName      = "capflow-example"
	epochs         = 60
)

var learningRates = []float64{0.01, 0.1, 1.0}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) (err error) {
	// New reads MLFLOW_TRACKING_URI (and MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN...).
	c, err := mlflowclient.New()
	if err != nil {
		return err
	}

	// Experiment: created on first use; its description is the mlflow.note.content
	// tag, and mlflow.experimentKind makes the UI open its model-training view.
	exp, err := c.Experiments.GetOrCreate(ctx, experimentName)
	if err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	for key, value := range map[string]string{
		mlflowclient.TagNote:           "Logistic regression on synthetic data: a learning-rate sweep logged by capflow's Go client.",
		mlflowclient.TagExperimentKind: mlflowclient.ExperimentKindModelTraining,
	} {
		if err := c.Experiments.SetTag(ctx, exp.ID, key, value); err != nil {
			return err
		}
	}

	// The parent run groups the sweep; each child is one training run.
	parent, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{
		ExperimentID: exp.ID,
		RunName:      "lr-sweep",
		Description:  "Learning-rate sweep; the best child is registered as " + modelName + ".",
	})
	if err != nil {
		return fmt.Errorf("parent run: %w", err)
	}
	parentID := parent.Info.RunID
	// If anything below fails, mark the parent run FAILED rather than leave it RUNNING.
	defer func() {
		if err != nil {
			_ = c.Runs.End(context.Background(), parentID, mlflowclient.RunFailed)
		}
	}()

	train, val := syntheticData(rand.New(rand.NewPCG(1, 2)))
	var results []childResult
	for _, lr := range learningRates {
		res, err := trainChild(ctx, c, exp.ID, parentID, lr, train, val)
		if err != nil {
			return fmt.Errorf("child run lr=%g: %w", lr, err)
		}
		fmt.Printf("lr=%-5g val_accuracy=%.3f val_loss=%.4f  run %s\n", lr, res.ValAccuracy, res.ValLoss, res.RunID)
		results = append(results, res)
	}
	best := results[0]
	for _, r := range results[1:] {
		if r.ValLoss < best.ValLoss {
			best = r
		}
	}

	// The parent gets the sweep's outcome: a param, a metric and an artifact.
	err = c.Runs.LogBatch(ctx, parentID, mlflowclient.Batch{
		Params:  []mlflowclient.Param{{Key: "best_learning_rate", Value: strconv.FormatFloat(best.LearningRate, 'g', -1, 64)}},
		Metrics: []mlflowclient.Metric{{Key: "best_val_loss", Value: best.ValLoss}, {Key: "best_val_accuracy", Value: best.ValAccuracy}},
	})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "capflow-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	summary := filepath.Join(dir, "sweep_summary.json")
	if err := writeJSON(summary, map[string]any{"best": best, "runs": results}); err != nil {
		return err
	}
	if err := c.Runs.LogArtifact(ctx, parentID, summary, ""); err != nil {
		return fmt.Errorf("artifact: %w", err)
	}

	// The best model becomes an MLflow 3 logged model: create it, upload its
	// files to its artifact location, finalize it, and link it to the run.
	model, err := c.LoggedModels.Create(ctx, mlflowclient.CreateLoggedModelOptions{
		ExperimentID: exp.ID,
		Name:         "logreg",
		ModelType:    "logistic-regression",
		SourceRunID:  best.RunID,
		Params:       []mlflowclient.Param{{Key: "learning_rate", Value: strconv.FormatFloat(best.LearningRate, 'g', -1, 64)}},
	})
	if err != nil {
		return fmt.Errorf("logged model: %w", err)
	}
	weights := filepath.Join(dir, "weights.json")
	if err := writeJSON(weights, best.Weights); err != nil {
		return err
	}
	if err := c.Artifacts.UploadFile(ctx, model.Info.ArtifactURI, weights, ""); err != nil {
		return fmt.Errorf("model files: %w", err)
	}
	if _, err := c.LoggedModels.Finalize(ctx, model.ID(), mlflowclient.LoggedModelReady); err != nil {
		return err
	}
	if err := c.Runs.LogOutputs(ctx, best.RunID, []mlflowclient.ModelOutput{{ModelID: model.ID(), Step: epochs - 1}}); err != nil {
		return err
	}

	// Register it: a new version of the registered model, moved to Staging.
	if _, err := c.Registry.GetOrCreateModel(ctx, mlflowclient.CreateModelOptions{
		Name: modelName, Description: "Best model of the capflow example sweep.",
	}); err != nil {
		return fmt.Errorf("registered model: %w", err)
	}
	mv, err := c.Registry.CreateVersion(ctx, mlflowclient.CreateVersionOptions{
		Name: modelName, Source: model.URI(), ModelID: model.ID(), RunID: best.RunID,
	})
	if err != nil {
		return fmt.Errorf("model version: %w", err)
	}
	if mv, err = c.Registry.WaitVersionReady(ctx, modelName, mv.Version); err != nil {
		return err
	}
	if _, err := c.Registry.TransitionStage(ctx, modelName, mv.Version, "Staging", false); err != nil {
		return err
	}

	if err := c.Runs.End(ctx, parentID, mlflowclient.RunFinished); err != nil {
		return err
	}
	ui := c.TrackingURI()
	fmt.Printf("\nexperiment:  %s/#/experiments/%s\n", ui, exp.ID)
	fmt.Printf("parent run:  %s/#/experiments/%s/runs/%s\n", ui, exp.ID, parentID)
	fmt.Printf("model:       %s/#/models/%s/versions/%s (%s, stage Staging)\n", ui, modelName, mv.Version, mv.URI())
	return nil
}

// childResult is what one training run produced.
type childResult struct {
	RunID        string    `json:"run_id"`
	LearningRate float64   `json:"learning_rate"`
	ValLoss      float64   `json:"val_loss"`
	ValAccuracy  float64   `json:"val_accuracy"`
	Weights      []float64 `json:"weights"` // bias, w1, w2
}

// trainChild trains one model in a child run of parentID, logging through an
// AsyncLogger so the training loop never waits for the server.
func trainChild(ctx context.Context, c *mlflowclient.Client, expID, parentID string, lr float64, train, val []sample) (childResult, error) {
	r, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{
		ExperimentID: expID, ParentRunID: parentID, RunName: "lr=" + strconv.FormatFloat(lr, 'g', -1, 64),
	})
	if err != nil {
		return childResult{}, err
	}
	res := childResult{RunID: r.Info.RunID, LearningRate: lr}
	lg, err := mlflowclient.NewAsyncLogger(c, res.RunID, mlflowclient.AsyncLoggerOptions{})
	if err != nil {
		return res, err
	}
	err = fit(ctx, lg, &res, train, val)
	// Log calls only queue; Close returns once everything reached the server.
	err = errors.Join(err, lg.Close(ctx))
	status := mlflowclient.RunFinished
	if err != nil {
		status = mlflowclient.RunFailed
	}
	return res, errors.Join(err, c.Runs.End(ctx, res.RunID, status))
}

// fit trains res.LearningRate's model with full-batch gradient descent,
// logging its params and per-epoch metrics, and fills in res.
func fit(ctx context.Context, lg *mlflowclient.AsyncLogger, res *childResult, train, val []sample) error {
	params := map[string]string{
		"learning_rate": strconv.FormatFloat(res.LearningRate, 'g', -1, 64),
		"epochs":        strconv.Itoa(epochs),
		"model":         "logistic-regression",
	}
	for k, v := range params {
		if err := lg.LogParam(ctx, k, v); err != nil {
			return err
		}
	}
	w := make([]float64, 3) // bias, w1, w2
	for epoch := range epochs {
		trainLoss := gradientStep(w, train, res.LearningRate)
		valLoss, valAcc := evaluate(w, val)
		now := time.Now().UnixMilli()
		for key, v := range map[string]float64{"train_loss": trainLoss, "val_loss": valLoss, "val_accuracy": valAcc} {
			if err := lg.LogMetric(ctx, mlflowclient.Metric{Key: key, Value: v, Step: int64(epoch), Timestamp: now}); err != nil {
				return err
			}
		}
	}
	res.ValLoss, res.ValAccuracy = evaluate(w, val)
	res.Weights = w
	return nil
}

// sample is one labelled point of the synthetic dataset.
type sample struct {
	x [2]float64
	y float64 // 0 or 1
}

// syntheticData draws two overlapping Gaussian blobs: 400 training and 100
// validation points.
func syntheticData(rng *rand.Rand) (train, val []sample) {
	for i := range 500 {
		y := float64(i % 2)
		s := sample{x: [2]float64{rng.NormFloat64() + 2*y - 1, rng.NormFloat64() + y - 0.5}, y: y}
		if i < 400 {
			train = append(train, s)
		} else {
			val = append(val, s)
		}
	}
	return train, val
}

func predict(w []float64, x [2]float64) float64 {
	return 1 / (1 + math.Exp(-(w[0] + w[1]*x[0] + w[2]*x[1])))
}

// gradientStep does one full-batch gradient descent step on the log loss and
// returns the loss before the step.
func gradientStep(w []float64, data []sample, lr float64) float64 {
	var grad [3]float64
	var loss float64
	for _, s := range data {
		p := predict(w, s.x)
		loss += logLoss(p, s.y)
		d := p - s.y
		grad[0] += d
		grad[1] += d * s.x[0]
		grad[2] += d * s.x[1]
	}
	n := float64(len(data))
	for i := range w {
		w[i] -= lr * grad[i] / n
	}
	return loss / n
}

// evaluate returns the mean log loss and the accuracy of w on data.
func evaluate(w []float64, data []sample) (loss, accuracy float64) {
	for _, s := range data {
		p := predict(w, s.x)
		loss += logLoss(p, s.y)
		if (p >= 0.5) == (s.y == 1) {
			accuracy++
		}
	}
	n := float64(len(data))
	return loss / n, accuracy / n
}

func logLoss(p, y float64) float64 {
	const eps = 1e-12
	return -(y*math.Log(p+eps) + (1-y)*math.Log(1-p+eps))
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
