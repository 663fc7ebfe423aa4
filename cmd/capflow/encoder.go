package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/capflow/capflow/models/bert"
	"github.com/capflow/capflow/models/textembed"
)

func encoderCommand(stdout io.Writer, log *slog.Logger) *ffcli.Command {
	return &ffcli.Command{
		Name:        "encoder",
		ShortUsage:  "capflow encoder <convert|embed> [flags] [args]",
		ShortHelp:   "prepare and try text encoders",
		Subcommands: []*ffcli.Command{encoderConvertCommand(stdout, log), encoderEmbedCommand(stdout, log)},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

func encoderConvertCommand(stdout io.Writer, log *slog.Logger) *ffcli.Command {
	fs := flag.NewFlagSet("capflow encoder convert", flag.ContinueOnError)
	fs.String("config", "", "config file of \"flag-name value\" lines")
	return &ffcli.Command{
		Name:       "convert",
		ShortUsage: "capflow encoder convert SRC DST",
		ShortHelp:  "convert a BERT sentence encoder (config.json + model.safetensors) to an ONNX model folder",
		LongHelp: "SRC is a HuggingFace / sentence-transformers folder (e.g. all-MiniLM-L6-v2). DST receives " +
			"model.onnx (inputs input_ids, attention_mask, token_type_ids; output last_hidden_state), the " +
			"tokenizer and pooling files, and capflow_convert.json; it is replaced atomically.",
		FlagSet: fs,
		Options: ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 2 {
				return errors.New("encoder convert: want SRC and DST")
			}
			t0 := time.Now()
			if err := bert.Convert(ctx, args[0], args[1]); err != nil {
				return err
			}
			log.Info("converted", "from", args[0], "to", args[1], "seconds", time.Since(t0).Seconds())
			fmt.Fprintf(stdout, "wrote %s\n", args[1])
			return nil
		},
	}
}

func encoderEmbedCommand(stdout io.Writer, _ *slog.Logger) *ffcli.Command {
	fs := flag.NewFlagSet("capflow encoder embed", flag.ContinueOnError)
	fs.String("config", "", "config file of \"flag-name value\" lines")
	ef := newEncoderFlags(fs)
	textDim := fs.Int("text-dim", 1024, "dimension of the hashing encoder")
	return &ffcli.Command{
		Name:       "embed",
		ShortUsage: "capflow encoder embed [--model-dir DIR | --encoder-url URL] TEXT...",
		ShortHelp:  "encode texts and print each vector's model, dimension, norm and first values, and their cosines",
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) == 0 {
				return errors.New("encoder embed: want at least one TEXT")
			}
			enc, closeEnc, err := ef.open(ctx, *textDim)
			if err != nil {
				return err
			}
			defer closeEnc()
			vs, err := enc.Encode(ctx, args)
			if err != nil {
				return err
			}
			m := enc.Model()
			fmt.Fprintf(stdout, "model %s version %s dim %d\n", m.Name, m.Version, enc.Dim())
			for i, v := range vs {
				head := v[:min(4, len(v))]
				fmt.Fprintf(stdout, "%d: norm %.6f first %v  %q\n", i, textembed.Norm(v), head, args[i])
			}
			for i := range vs {
				for j := i + 1; j < len(vs); j++ {
					fmt.Fprintf(stdout, "cosine(%d,%d) = %.4f\n", i, j, textembed.Cosine(vs[i], vs[j]))
				}
			}
			return nil
		},
	}
}
