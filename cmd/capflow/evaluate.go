package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/capflow/capflow/evaluation"
	"github.com/capflow/capflow/evaluation/metrics"
	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/pipeline"
	"github.com/capflow/capflow/pipeline/train"
)

func evaluateCommand(stdout, stderr io.Writer, log *slog.Logger) *ffcli.Command {
	fs := flag.NewFlagSet("capflow evaluate", flag.ContinueOnError)
	sf := newStoreFlags(fs)
	ef := newEncoderFlags(fs)
	tf := newTrackingFlags(fs, "evaluate")
	model := fs.String("model", "models:/"+mlmodel.DefaultName+"/Staging", "what to evaluate: a models:/ URI, cosine or bm25")
	against := fs.String("against", "Production", "reference: a stage or @alias of the same registered model, or a models:/ URI (\"\": none)")
	queriesFile := fs.String("queries", "", "decision queries (gate, promotion): a queries.jsonl in the interchange format (id, intent, context_tools, relevant)")
	prefix := fs.String("query-prefix", "", "decision queries (gate, promotion): the store's queries whose id has this prefix (Seal-Tools: dev- with --holdout)")
	holdout := fs.Bool("holdout", false, "keep only the decision queries that training held out for validation (its session split: same --valid-fraction and --split-seed as capflow train); never decide on queries the model was fitted on")
	validFraction := fs.Float64("valid-fraction", 0.2, "with --holdout: capflow train's --valid-fraction; with --cv: the fraction of each fold's training sessions held out for early stopping")
	splitSeed := fs.Uint64("split-seed", 0, "with --holdout: capflow train's --split-seed; with --cv: the seed of that hold-out")
	reportFile := fs.String("report-queries", "", "queries.jsonl evaluated and logged as report_* only: never read by the gate")
	reportPrefix := fs.String("report-prefix", "", "the store's queries with this prefix, evaluated and logged as report_* only (Seal-Tools: test_in_domain-)")
	calibFile := fs.String("calibration-queries", "", "queries.jsonl the softmax temperatures are fitted on (disjoint from the evaluated ones)")
	calibPrefix := fs.String("calibration-prefix", "", "fit the temperatures on the store's queries with this prefix (e.g. dev-)")
	levels := fs.String("levels", "", "rank capabilities of these levels only, comma-separated (default: all)")
	ks := fs.String("ks", "1,3,5,10", "cut-offs for Hit@k, NDCG@k, coverage and Gini")
	bins := fs.Int("bins", metrics.DefaultBins, "ECE bins")
	promote := fs.String("promote", "", "move the model to this stage (Production) when the gate says improved")
	asJSON := fs.Bool("json", false, "print one JSON object with every metric and the decision")
	ortLib := fs.String("ort-library", "", "libonnxruntime.so (default $ONNXRUNTIME_SHARED_LIBRARY_PATH)")
	cvf := newCVFlags(fs)
	return &ffcli.Command{
		Name:       "evaluate",
		ShortUsage: "capflow evaluate [--model URI|cosine|bm25] [--against Production] (--queries FILE | --query-prefix P [--holdout]) [--report-prefix R] [flags]\n       capflow evaluate --cv K [training flags] [flags]",
		ShortHelp:  "evaluate a model against Production and the baselines; the promotion gate",
		LongHelp: "Ranks the decision queries (--queries or --query-prefix, with --holdout only those training held " +
			"out) with the model, the reference (Production by default) and the cosine and BM25 baselines, computes " +
			"MRR, Hit@k, NDCG, MAP, ECE, Brier, coverage and Gini, applies the gate (no regression of MRR or Hit@3 " +
			"beyond noise vs the reference, strictly better MRR than cosine and than BM25) and logs everything to " +
			"MLflow with a report (JSON, Markdown, plots). The report queries (--report-prefix or --report-queries) " +
			"are ranked and logged as report_* but decide nothing. Decision or report queries the candidate was " +
			"trained on, as its training run records, are refused. With --promote the model moves only when the gate " +
			"says improved. With --cv K it instead cross-validates training on the store's logged experiences: " +
			"K folds grouped by session, a model trained per fold on the others (its early stopping on their " +
			"held-out part), the mean ± sd across folds of the trained model, evidence-fit-only, BM25 and cosine, " +
			"and the paired difference trained − evidence over every session.",
		FlagSet: fs,
		Options: ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 0 {
				return fmt.Errorf("evaluate: unexpected arguments %q", args)
			}
			cv, err := cvf.mode(fs)
			if err != nil {
				return fmt.Errorf("evaluate: %w", err)
			}
			if cv {
				return cvf.run(ctx, cvRun{fs: fs, sf: sf, ef: ef, tf: tf, levels: *levels, validFraction: *validFraction,
					splitSeed: *splitSeed, asJSON: *asJSON}, stdout, stderr, log)
			}
			if (*queriesFile == "") == (*prefix == "") {
				return errors.New("evaluate: give exactly one of --queries and --query-prefix")
			}
			if *reportFile != "" && *reportPrefix != "" {
				return errors.New("evaluate: give at most one of --report-queries and --report-prefix")
			}
			if *holdout && !(*validFraction > 0 && *validFraction < 1) {
				return fmt.Errorf("evaluate: --valid-fraction must be in (0,1), got %v", *validFraction)
			}
			lv, err := parseInts("levels", *levels)
			if err != nil {
				return fmt.Errorf("evaluate: %w", err)
			}
			k, err := parseInts("ks", *ks)
			if err != nil {
				return fmt.Errorf("evaluate: %w", err)
			}
			enc, closeEnc, err := openEncoder(ctx, fs, ef, sf)
			if err != nil {
				return fmt.Errorf("evaluate: %w", err)
			}
			defer closeEnc()
			st, where, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			qs, source, err := loadQueries(ctx, st, *queriesFile, *prefix)
			if err != nil {
				return fmt.Errorf("evaluate: %w", err)
			}
			if *holdout {
				// The same hash as the training split, so these are exactly
				// the queries training validated on and never fitted.
				if qs, err = train.HeldOutQueries(qs, train.Source{ValidFraction: *validFraction, SplitSeed: *splitSeed}); err != nil {
					return fmt.Errorf("evaluate: --holdout: %w", err)
				}
				source = fmt.Sprintf("%s held out by training's session split (valid fraction %v, split seed %d)", source, *validFraction, *splitSeed)
			}
			var report []featurestore.Query
			var reportSource string
			if *reportFile != "" || *reportPrefix != "" {
				if report, reportSource, err = loadQueries(ctx, st, *reportFile, *reportPrefix); err != nil {
					return fmt.Errorf("evaluate: report: %w", err)
				}
			}
			var calib []featurestore.Query
			if *calibFile != "" || *calibPrefix != "" {
				if calib, _, err = loadQueries(ctx, st, *calibFile, *calibPrefix); err != nil {
					return fmt.Errorf("evaluate: calibration: %w", err)
				}
			}
			stage, err := evaluation.NewStage(evaluation.StageConfig{
				Model: *model, Against: *against, Queries: qs, Source: source, Report: report, ReportSource: reportSource,
				Calibration: calib, Levels: lv,
				Encoder: enc, Metrics: metrics.Options{Ks: k, Bins: *bins}, ORTLibrary: *ortLib, PromoteTo: *promote,
			})
			if err != nil {
				return fmt.Errorf("evaluate: %w", evaluateFlagError(err))
			}
			r, err := tf.runner(st, stderr, log)
			if err != nil {
				return fmt.Errorf("evaluate: %w", err)
			}
			log.Info("evaluating", "model", *model, "queries", len(qs), "report_queries", len(report), "store", where)
			var ev *evaluation.Evaluation
			res, err := r.Run(ctx, pipeline.StageFunc(stage.Name(), func(ctx context.Context, env *pipeline.Env) error {
				var err error
				ev, err = stage.Evaluate(ctx, env)
				return err
			}))
			if err != nil {
				return evaluateFlagError(err)
			}
			if *asJSON {
				var obj map[string]any
				_ = json.Unmarshal(ev.JSON(), &obj)
				obj["run_id"], obj["parent_run_id"] = res.Stages[0].RunID, res.ParentRunID
				b, _ := json.MarshalIndent(obj, "", "  ")
				_, err := fmt.Fprintln(stdout, string(b))
				return err
			}
			fmt.Fprintf(stdout, "%d queries (%s)\n\n", ev.Queries, source)
			if err := ev.WriteTable(stdout); err != nil {
				return err
			}
			if d := ev.Decision; d != nil {
				fmt.Fprintf(stdout, "\nimproved=%v\n", d.Improved)
				for _, c := range d.Checks {
					fmt.Fprintf(stdout, "  %-5v %s: %s\n", c.Passed, c.Rule, c.Detail)
				}
			}
			if len(ev.Reported) > 0 {
				fmt.Fprintf(stdout, "\nreported only (not gated): %d queries (%s)\n\n", ev.ReportQueries, ev.ReportSource)
				if err := ev.WriteReportTable(stdout); err != nil {
					return err
				}
			}
			if res.ParentRunID != "" {
				fmt.Fprintf(stdout, "\nMLflow run %s (evaluation run %s) in experiment %s\n", res.ParentRunID, res.Stages[0].RunID, res.ExperimentID)
			}
			return nil
		},
	}
}

// evaluateFlagError names the flags behind the stage's config errors.
func evaluateFlagError(err error) error {
	var ce *evaluation.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	flag := map[string]string{"queries": "--queries/--query-prefix", "report": "--report-queries/--report-prefix",
		"calibration": "--calibration-queries/--calibration-prefix", "promote_to": "--promote", "model": "--model"}[ce.Field]
	if flag == "" {
		return err
	}
	return fmt.Errorf("%s: %w", flag, err)
}

// loadQueries reads a queries.jsonl file or the store's queries with a
// prefix, and says where they came from.
func loadQueries(ctx context.Context, st featurestore.Store, file, prefix string) ([]featurestore.Query, string, error) {
	if file == "" {
		qs, err := featurestore.QueriesWithPrefix(ctx, st, prefix)
		if err != nil {
			return nil, "", err
		}
		return qs, fmt.Sprintf("the store's queries with prefix %q", prefix), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	var qs []featurestore.Query
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var q featurestore.Query
		dec := json.NewDecoder(strings.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&q); err != nil {
			return nil, "", fmt.Errorf("%s:%d: %w", file, line, err)
		}
		switch {
		case q.ID == "":
			return nil, "", fmt.Errorf("%s:%d: query has no id", file, line)
		case strings.TrimSpace(q.Intent) == "":
			return nil, "", fmt.Errorf("%s:%d: query %q has no intent", file, line, q.ID)
		case len(q.Relevant) == 0:
			return nil, "", fmt.Errorf("%s:%d: query %q has no relevant capability", file, line, q.ID)
		}
		qs = append(qs, q)
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("%s: %w", file, err)
	}
	if len(qs) == 0 {
		return nil, "", fmt.Errorf("%s: no queries", file)
	}
	return qs, file, nil
}
