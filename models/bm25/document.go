package bm25

import (
	"strings"

	"github.com/capflow/capflow/featurestore"
)

// CapabilityDocument is the text BM25 indexes for capability c: its name
// and description, then for each member in order
//
//   - a tool: its name and description;
//   - a capability: its name and description, and the names (not the
//     descriptions) of every tool beneath it, at any depth, each once — so a
//     level ≥ 1 document stays the size of its vocabulary rather than of
//     all the text below it;
//   - an id found in neither map: the id itself, the only text there is.
//
// Parts are joined by newlines. A capability cycle (which the feature
// store's validation rejects) is cut, not followed forever.
func CapabilityDocument(c featurestore.Capability, tools map[string]featurestore.Tool, caps map[string]featurestore.Capability) string {
	var parts []string
	add := func(s ...string) {
		for _, p := range s {
			if p != "" {
				parts = append(parts, p)
			}
		}
	}
	add(c.Name, c.Description)
	for _, m := range c.Members {
		if t, ok := tools[m]; ok {
			add(t.Name, t.Description)
			continue
		}
		mc, ok := caps[m]
		if !ok {
			add(m)
			continue
		}
		add(mc.Name, mc.Description)
		seenTool := map[string]bool{}
		seenCap := map[string]bool{c.ID: true}
		var below func(cc featurestore.Capability)
		below = func(cc featurestore.Capability) {
			if seenCap[cc.ID] {
				return
			}
			seenCap[cc.ID] = true
			for _, id := range cc.Members {
				if t, ok := tools[id]; ok {
					if !seenTool[id] {
						seenTool[id] = true
						add(t.Name)
					}
				} else if sub, ok := caps[id]; ok {
					below(sub)
				}
			}
		}
		below(mc)
	}
	return strings.Join(parts, "\n")
}
