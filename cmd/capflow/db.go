package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/capflow/capflow/featurestore/postgres"
)

func dbCommand(stdout io.Writer, log *slog.Logger) *ffcli.Command {
	return &ffcli.Command{
		Name:       "db",
		ShortUsage: "capflow db <migrate|status> [flags]",
		ShortHelp:  "apply or list the PostgreSQL feature store's migrations",
		Subcommands: []*ffcli.Command{
			migrationCommand("migrate", "apply pending migrations (safe to run twice and concurrently)", false, stdout, log),
			migrationCommand("status", "list migrations and whether each is applied", true, stdout, log),
		},
		Exec: func(context.Context, []string) error { return flag.ErrHelp },
	}
}

func migrationCommand(name, help string, readOnly bool, stdout io.Writer, log *slog.Logger) *ffcli.Command {
	fs := flag.NewFlagSet("capflow db "+name, flag.ContinueOnError)
	sf := newStoreFlags(fs)
	return &ffcli.Command{
		Name:       name,
		ShortUsage: "capflow db " + name + " [flags]",
		ShortHelp:  help,
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 0 {
				return fmt.Errorf("db %s: takes no arguments", name)
			}
			url := sf.databaseURL
			if url == "" {
				url = os.Getenv("DATABASE_URL")
			}
			if url == "" {
				return errors.New("db " + name + ": no --database-url (or CAPFLOW_DATABASE_URL / DATABASE_URL): the embedded store has no migrations")
			}
			opts := []postgres.Option{postgres.WithLogger(log)}
			if sf.schema != "" {
				opts = append(opts, postgres.WithSchema(sf.schema))
			}
			if readOnly {
				opts = append(opts, postgres.SkipMigrations())
			}
			st, err := postgres.Open(ctx, url, sf.cfg.WithDefaults(), opts...)
			if err != nil {
				if readOnly {
					return fmt.Errorf("db status: %w (has `capflow db migrate` been run?)", err)
				}
				return fmt.Errorf("db migrate: %w", err)
			}
			defer st.Close()
			status, err := st.Status(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
			for _, m := range status {
				applied := "pending"
				if m.Applied {
					applied = m.AppliedAt.UTC().Format("2006-01-02T15:04:05Z")
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\n", m.Version, m.Name, applied)
			}
			return tw.Flush()
		},
	}
}
