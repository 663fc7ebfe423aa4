// Command capflow runs capflow's pipeline pieces from the shell. It is thin:
// flags, environment and a config file (the same names everywhere) are turned
// into the packages' configs; the work is done by the packages.
//
//	capflow data import [--format interchange|sealtools] DIR
//	capflow data export DIR
//	capflow db migrate | status
//	capflow encoder convert SRC DST | embed [flags] TEXT...
//	capflow features build [--model-dir DIR | --encoder-url URL] [flags]
//	capflow model register|promote|rollback|download|show …
//	capflow train [--config FILE] [flags]
//	capflow evaluate [--model URI|cosine|bm25] [--against Production] (--queries FILE | --query-prefix P [--holdout]) [--report-prefix R] [flags]
//	capflow evaluate --cv K [training flags] [flags]
//	capflow serve [--follow Production|@alias] [--canary STAGE --canary-percent P] [--addr HOST:PORT] [flags]
//
// Every flag can also come from the environment (CAPFLOW_ + the flag name in
// upper case with - as _, e.g. CAPFLOW_DATABASE_URL) or from a config file
// given with --config (lines of "flag-name value"). Precedence: flag, then
// environment, then config file. DATABASE_URL is honoured when
// CAPFLOW_DATABASE_URL is not set.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "capflow:", err)
		}
		os.Exit(1)
	}
}

// run is main without the process: tests call it with their own args and writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	root := &ffcli.Command{
		Name:       "capflow",
		ShortUsage: "capflow <command> [flags] [args]",
		ShortHelp:  "capability retrieval that learns from outcomes",
		Subcommands: []*ffcli.Command{
			dataCommand(stdout, log),
			dbCommand(stdout, log),
			encoderCommand(stdout, log),
			featuresCommand(stdout, stderr, log),
			modelCommand(stdout, log),
			trainCommand(stdout, stderr, log),
			evaluateCommand(stdout, stderr, log),
			serveCommand(stdout, log),
		},
		Exec: func(context.Context, []string) error { return flag.ErrHelp },
	}
	root.FlagSet = flag.NewFlagSet("capflow", flag.ContinueOnError)
	root.FlagSet.SetOutput(stderr)
	for _, c := range root.Subcommands {
		setOutput(c, stderr)
	}
	return root.ParseAndRun(ctx, args)
}

func setOutput(c *ffcli.Command, w io.Writer) {
	if c.FlagSet != nil {
		c.FlagSet.SetOutput(w)
	}
	for _, s := range c.Subcommands {
		setOutput(s, w)
	}
}

// ffOptions are the same for every command: env with the CAPFLOW_ prefix and
// an optional config file of "name value" lines.
func ffOptions() []ff.Option {
	return []ff.Option{
		ff.WithEnvVarPrefix("CAPFLOW"),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(ff.PlainParser),
	}
}
