package node2vec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/capflow/capflow/featurestore"
)

// SealToolsGraph builds the Seal-Tools tool↔field graph from the dataset in
// dir: tool — level-0 capability (its field) edges, field — top containment
// edges, and, so that the graph has cycles at all, tool — tool co-call edges
// from the dev and test queries' calling lists. It returns the graph and the
// tool—field edges as link-prediction candidates (tool first). The link-
// prediction test and cmd/bench-node2vec share it so that both measure the
// same graph.
func SealToolsGraph(ctx context.Context, dir string) (*Graph, []Pair, error) {
	d, err := featurestore.ReadSealTools(ctx, dir, featurestore.Config{})
	if err != nil {
		return nil, nil, fmt.Errorf("node2vec: seal-tools graph: %w", err)
	}
	b := NewBuilder()
	if err := b.AddCatalog(d.Tools, d.Capabilities, CatalogOptions{}); err != nil {
		return nil, nil, fmt.Errorf("node2vec: seal-tools graph: %w", err)
	}
	for _, name := range []string{featurestore.SealToolsDevFile, featurestore.SealToolsTestFile} {
		if err := addCoCalls(b, filepath.Join(dir, name)); err != nil {
			return nil, nil, fmt.Errorf("node2vec: seal-tools graph: %w", err)
		}
	}
	var cands []Pair
	for _, c := range d.Capabilities {
		if c.Level == 0 {
			for _, m := range c.Members {
				cands = append(cands, Pair{m, c.ID})
			}
		}
	}
	return b.Build(), cands, nil
}

// addCoCalls adds a weight-1 edge between every two distinct APIs that one
// query of the JSON stream in path calls.
func addCoCalls(b *Builder, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for dec.More() {
		var q struct {
			Calling []struct {
				API string `json:"api"`
			} `json:"calling"`
		}
		if err := dec.Decode(&q); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		apis := map[string]bool{}
		for _, c := range q.Calling {
			apis[c.API] = true
		}
		list := make([]string, 0, len(apis))
		for a := range apis {
			list = append(list, a)
		}
		sort.Strings(list)
		for i := range list {
			for j := i + 1; j < len(list); j++ {
				if err := b.AddEdge(list[i], list[j], 1); err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
			}
		}
	}
	return nil
}
