package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/capflow/capflow/featurestore"
)

func dataCommand(stdout io.Writer, log *slog.Logger) *ffcli.Command {
	return &ffcli.Command{
		Name:        "data",
		ShortUsage:  "capflow data <import|export> [flags] DIR",
		ShortHelp:   "import or export a dataset in the interchange format",
		Subcommands: []*ffcli.Command{importCommand(stdout, log), exportCommand(stdout, log)},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

func importCommand(stdout io.Writer, log *slog.Logger) *ffcli.Command {
	fs := flag.NewFlagSet("capflow data import", flag.ContinueOnError)
	sf := newStoreFlags(fs)
	format := fs.String("format", "interchange", "dataset format: interchange (tools.jsonl, capabilities.jsonl, ...) or sealtools")
	return &ffcli.Command{
		Name:       "import",
		ShortUsage: "capflow data import [--format interchange|sealtools] DIR",
		ShortHelp:  "validate a dataset and write it to the store, all or nothing",
		LongHelp: "Every bad line is reported with file:line and the reason, and nothing is written " +
			"unless the whole dataset is valid. Importing the same dataset again changes nothing.",
		FlagSet: fs,
		Options: ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return errors.New("data import: want exactly one DIR argument")
			}
			cfg := sf.cfg.WithDefaults()
			var (
				d   *featurestore.Dataset
				err error
			)
			switch *format {
			case "interchange":
				d, err = featurestore.ReadDir(ctx, args[0], cfg)
			case "sealtools":
				d, err = featurestore.ReadSealTools(ctx, args[0], cfg)
			default:
				return fmt.Errorf("data import: unknown --format %q (want interchange or sealtools)", *format)
			}
			if err != nil {
				return err
			}
			st, where, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.WriteDataset(ctx, d); err != nil {
				return err
			}
			log.Info("imported", "store", where, "tools", len(d.Tools), "capabilities", len(d.Capabilities),
				"experiences", len(d.Experiences), "queries", len(d.Queries))
			fmt.Fprintf(stdout, "imported %d tools, %d capabilities, %d experiences, %d queries into %s\n",
				len(d.Tools), len(d.Capabilities), len(d.Experiences), len(d.Queries), where)
			return nil
		},
	}
}

func exportCommand(stdout io.Writer, _ *slog.Logger) *ffcli.Command {
	fs := flag.NewFlagSet("capflow data export", flag.ContinueOnError)
	sf := newStoreFlags(fs)
	return &ffcli.Command{
		Name:       "export",
		ShortUsage: "capflow data export [flags] DIR",
		ShortHelp:  "write the store's catalog, experiences and queries in the interchange format",
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return errors.New("data export: want exactly one DIR argument")
			}
			st, where, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			d, err := featurestore.Export(ctx, st)
			if err != nil {
				return err
			}
			if err := featurestore.WriteDir(ctx, args[0], d); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "exported %d tools, %d capabilities, %d experiences, %d queries from %s to %s\n",
				len(d.Tools), len(d.Capabilities), len(d.Experiences), len(d.Queries), where, args[0])
			return nil
		},
	}
}
