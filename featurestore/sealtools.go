package featurestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Seal-Tools (github.com/fairyshine/Seal-Tools, Apache-2.0) files read by
// ReadSealTools.
const (
	SealToolsToolFile = "tool.jsonl"
	SealToolsDevFile  = "dev.jsonl"
	SealToolsTestFile = "test_in_domain.jsonl"
)

// Query id prefixes of the two Seal-Tools splits. The ids are kept as the
// files have them, and they already carry the split: "dev-easy-0",
// "test_in_domain-easy-0". Train on dev only; report on test_in_domain.
const (
	SealToolsDevPrefix  = "dev-"
	SealToolsTestPrefix = "test_in_domain-"
)

// sealToolsDescriptionTools is how many tool names a sub-field capability's
// description lists.
const sealToolsDescriptionTools = 5

// ReadSealTools adapts the Seal-Tools dataset in dir to a validated Dataset:
//
//   - a Tool per tool.jsonl line: id and name = api_name, description =
//     api_description, input_schema = {"type":"object","properties":
//     parameters,"required": required}. The parameter types are kept as
//     Seal-Tools writes them ("str", "int", ...), not translated to JSON
//     Schema.
//   - a level-0 capability per distinct full field string ("Top/Sub"): id =
//     the field, name = Sub (everything after the first "/": some subs hold
//     a "/" themselves, e.g. "Advertising/A/B testing"), description =
//     "Top / Sub tools: " and the first five tool names in file order,
//     members = its tools in file order.
//   - a level-1 capability per Top: id = name = Top, description = "Top:"
//     and its sub-field names, members = its sub-field capabilities.
//   - a Query per line of dev.jsonl and test_in_domain.jsonl (in that
//     order): id as in the file (SealToolsDevPrefix or SealToolsTestPrefix
//     tells the split), intent = query, relevant = the distinct fields of
//     its calling[].api in order of first appearance, calls = its
//     calling[].api in order (what PseudoSessions makes multi-step sessions
//     of).
//
// Capabilities are listed in order of first appearance in tool.jsonl, each
// Top right after its first sub-field. In the upstream files no Top equals a
// tool name or a full field; should one ever, Validate rejects the dataset
// ("is also a tool id" or "repeated with different content") rather than
// silently merging two things. A calling[].api absent from tool.jsonl is an
// error naming the query.
func ReadSealTools(ctx context.Context, dir string, cfg Config) (*Dataset, error) {
	var (
		d        Dataset
		errs     ValidationErrors
		apiField = map[string]int{} // api_name → index of its level-0 capability
		capIdx   = map[string]int{} // capability id → index in d.Capabilities
	)
	toolPath := filepath.Join(dir, SealToolsToolFile)
	lineErrs, err := readLines(ctx, toolPath, kindTool, func(line int, data []byte) error {
		var t struct {
			APIName        string          `json:"api_name"`
			APIDescription string          `json:"api_description"`
			Field          string          `json:"field"`
			Parameters     json.RawMessage `json:"parameters"`
			Required       json.RawMessage `json:"required"`
		}
		if err := json.Unmarshal(data, &t); err != nil {
			return err
		}
		top, sub, ok := strings.Cut(t.Field, "/")
		if !ok || top == "" || sub == "" {
			return fmt.Errorf("field %q is not \"Top/Sub\"", t.Field)
		}
		schema, err := sealToolsSchema(t.Parameters, t.Required)
		if err != nil {
			return err
		}
		d.Tools = append(d.Tools, Tool{ID: t.APIName, Name: t.APIName, Description: t.APIDescription, InputSchema: schema})

		leaf, ok := capIdx[t.Field]
		if !ok {
			leaf = len(d.Capabilities)
			capIdx[t.Field] = leaf
			d.Capabilities = append(d.Capabilities, Capability{ID: t.Field, Name: sub, Description: top + " / " + sub + " tools:"})
			parent, ok := capIdx[top]
			if !ok {
				parent = len(d.Capabilities)
				capIdx[top] = parent
				d.Capabilities = append(d.Capabilities, Capability{ID: top, Name: top, Description: top + ":"})
			}
			p := &d.Capabilities[parent]
			p.Description += sealToolsSep(len(p.Members)) + sub
			p.Members = append(p.Members, t.Field)
		}
		c := &d.Capabilities[leaf]
		if len(c.Members) < sealToolsDescriptionTools {
			c.Description += sealToolsSep(len(c.Members)) + t.APIName
		} else if len(c.Members) == sealToolsDescriptionTools {
			c.Description += ", ..."
		}
		c.Members = append(c.Members, t.APIName)
		if _, dup := apiField[t.APIName]; !dup {
			apiField[t.APIName] = leaf
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	errs = append(errs, lineErrs...)

	for _, name := range []string{SealToolsDevFile, SealToolsTestFile} {
		path := filepath.Join(dir, name)
		lineErrs, err := readLines(ctx, path, kindQuery, func(line int, data []byte) error {
			var q struct {
				ID      string `json:"id"`
				Query   string `json:"query"`
				Calling []struct {
					API string `json:"api"`
				} `json:"calling"`
			}
			if err := json.Unmarshal(data, &q); err != nil {
				return err
			}
			var relevant, calls []string
			for _, call := range q.Calling {
				leaf, ok := apiField[call.API]
				if !ok {
					return fmt.Errorf("query %q calls unknown api %q", q.ID, call.API)
				}
				if id := d.Capabilities[leaf].ID; !slices.Contains(relevant, id) {
					relevant = append(relevant, id)
				}
				calls = append(calls, call.API)
			}
			d.Queries = append(d.Queries, Query{ID: q.ID, Intent: q.Query, Relevant: relevant, Calls: calls})
			return nil
		})
		if err != nil {
			return nil, err
		}
		errs = append(errs, lineErrs...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if err := cfg.Validate(&d); err != nil {
		return nil, fmt.Errorf("featurestore: seal-tools dataset in %s: %w", dir, err)
	}
	return &d, nil
}

// sealToolsSchema builds a tool's input_schema from Seal-Tools' parameters
// and required, keeping their bytes (and so the parameter order).
func sealToolsSchema(params, required json.RawMessage) (json.RawMessage, error) {
	if len(params) == 0 || bytes.Equal(params, []byte("null")) {
		params = json.RawMessage("{}")
	}
	if len(required) == 0 || bytes.Equal(required, []byte("null")) {
		required = json.RawMessage("[]")
	}
	if params[0] != '{' || required[0] != '[' {
		return nil, errors.New("parameters must be an object and required a list")
	}
	return json.Marshal(struct {
		Type       string          `json:"type"`
		Properties json.RawMessage `json:"properties"`
		Required   json.RawMessage `json:"required"`
	}{"object", params, required})
}

func sealToolsSep(n int) string {
	if n == 0 {
		return " "
	}
	return ", "
}
