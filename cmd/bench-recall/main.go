// Command bench-recall measures how well the feature store's ANN search
// proposes candidates for an intent: for the evaluation queries of an
// embedded store (by default Seal-Tools' test_in_domain split of the demo
// store), the recall@K of Store.NearestCapabilities in the text and the
// hybrid space. It prints one line on stdout:
//
//	bench-recall queries=700 pairs=1770 text_r50=... text_r200=... hybrid_r50=... ...
//
// where <space>_r<K> is the fraction of (query, relevant capability) pairs
// whose capability is among the query's K nearest; the fraction of queries
// with all their relevant capabilities in the top K goes to stderr.
//
// Query embeddings are the store's intent features, else the ONNX encoder
// of -model-dir (the one the store's features were built with), as
// evaluation gets them (train.IntentEmbeddings). The store
// file is copied to a temporary folder first: bbolt lets one process open a
// file, and a demo server may hold it (copy it while nothing writes it).
//
// Environment: ONNXRUNTIME_SHARED_LIBRARY_PATH when queries must be encoded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/internal/bench"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline/train"
)

func main() { bench.Main("bench-recall", run) }

func run(ctx context.Context) error {
	storePath := flag.String("store", ".local/demo/store-minilm.db", "embedded store file (copied before it is opened)")
	textDim := flag.Int("text-dim", 384, "the store's text dimension")
	prefix := flag.String("prefix", featurestore.SealToolsTestPrefix, "id prefix of the evaluation queries")
	modelDir := flag.String("model-dir", ".local/models/all-MiniLM-L6-v2", "ONNX encoder for queries without intent features")
	ksFlag := flag.String("k", "50,100,200,500", "comma-separated K values")
	flag.Parse()
	var ks []int
	for _, f := range strings.Split(*ksFlag, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 1 {
			return fmt.Errorf("-k %q: want positive integers", *ksFlag)
		}
		ks = append(ks, k)
	}
	slices.Sort(ks)

	path, err := copyFile(*storePath, os.TempDir())
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(path))
	st, err := embedded.Open(path, featurestore.Config{TextDim: *textDim})
	if err != nil {
		return err
	}
	defer st.Close()
	qs, err := featurestore.QueriesWithPrefix(ctx, st, *prefix)
	if err != nil {
		return err
	}
	emb, err := queryEmbeddings(ctx, st, qs, *modelDir)
	if err != nil {
		return err
	}

	pairs := 0
	for _, q := range qs {
		pairs += len(q.Relevant)
	}
	line := fmt.Sprintf("bench-recall queries=%d pairs=%d", len(qs), pairs)
	for _, space := range []featurestore.Space{featurestore.SpaceText, featurestore.SpaceHybrid} {
		hits, whole := make([]int, len(ks)), make([]int, len(ks))
		for i, q := range qs {
			ns, err := st.NearestCapabilities(ctx, space, emb[i], ks[len(ks)-1])
			if err != nil {
				return fmt.Errorf("query %s: %w", q.ID, err)
			}
			rank := make(map[string]int, len(ns))
			for r, n := range ns {
				rank[n.CapabilityID] = r
			}
			for j, k := range ks {
				all := true
				for _, id := range q.Relevant {
					if r, ok := rank[id]; ok && r < k {
						hits[j]++
					} else {
						all = false
					}
				}
				if all {
					whole[j]++
				}
			}
		}
		for j, k := range ks {
			line += fmt.Sprintf(" %s_r%d=%.4f", space, k, float64(hits[j])/float64(pairs))
			slog.Info("queries with every relevant capability in the top K", "space", space, "k", k,
				"fraction", fmt.Sprintf("%.4f", float64(whole[j])/float64(len(qs))))
		}
	}
	fmt.Println(line)
	return nil
}

// queryEmbeddings embeds the queries as evaluation does
// (train.IntentEmbeddings: the store's intent features, else the encoder).
func queryEmbeddings(ctx context.Context, st featurestore.Store, qs []featurestore.Query, modelDir string) ([][]float32, error) {
	enc, err := textembed.OpenONNX(ctx, modelDir, textembed.ONNXOptions{})
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	exps := make([]featurestore.Experience, len(qs))
	for i, q := range qs {
		exps[i] = featurestore.Experience{Intent: q.Intent, ContextTools: q.ContextTools}
	}
	emb, err := train.IntentEmbeddings(ctx, st, enc, exps)
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(qs))
	for i, q := range qs {
		for _, v := range emb[featurestore.IntentHash(q.Intent, q.ContextTools)] {
			out[i] = append(out[i], float32(v))
		}
	}
	return out, nil
}

// copyFile copies src into a new folder under dir and returns the copy's
// path.
func copyFile(src, dir string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	tmp, err := os.MkdirTemp(dir, "bench-recall-")
	if err != nil {
		return "", err
	}
	dst := filepath.Join(tmp, filepath.Base(src))
	out, err := os.Create(dst)
	if err != nil {
		return "", errors.Join(err, os.RemoveAll(tmp))
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", errors.Join(fmt.Errorf("copy %s: %w", src, err), os.RemoveAll(tmp))
	}
	return dst, nil
}
