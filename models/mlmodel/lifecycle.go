package mlmodel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/capflow/capflow/mlflowclient"
)

// Version tags that record a version's stage history, so that Rollback can
// tell a version that served in Production from one archived out of Staging.
// Times are the server's last_updated_timestamp of the transition, in ms.
const (
	TagProductionEntered = "capflow.production.entered_ms" // last time it entered Production
	TagProductionLeft    = "capflow.production.left_ms"    // last time it left Production
	TagStageHistory      = "capflow.stage_history"         // "Staging@<ms> Production@<ms> Archived@<ms>…", newest last
)

// maxHistory bounds the entries kept in TagStageHistory.
const maxHistory = 50

// Transition is what Promote and Rollback did.
type Transition struct {
	Version  *mlflowclient.ModelVersion // the version moved, as it is now (tags included)
	From     mlflowclient.Stage         // its stage before
	Archived []string                   // versions that left the target stage for Archived
}

// Promote moves version of the registered model name to Staging or
// Production; the versions already in that stage are archived, so each
// stage holds one version. Each move is recorded in the versions' tags
// (TagStageHistory, and TagProductionEntered / TagProductionLeft), which
// Rollback reads. Promote is not safe against a concurrent Promote or
// Rollback of the same model from another client.
func Promote(ctx context.Context, c *mlflowclient.Client, name, version string, stage mlflowclient.Stage) (*Transition, error) {
	fail := func(err error) error { return &RegistryError{Name: name, Version: version, Err: err} }
	st, err := mlflowclient.ParseStage(string(stage))
	if err != nil || (st != mlflowclient.StageStaging && st != mlflowclient.StageProduction) {
		return nil, fail(fmt.Errorf("%w: %q (want Staging or Production)", ErrBadStage, stage))
	}
	if strings.Contains(name, "'") {
		return nil, fail(fmt.Errorf("%w: names with a quote are not supported", ErrBadModel))
	}
	mv, err := c.Registry.GetVersion(ctx, name, version)
	if err != nil {
		return nil, fail(err)
	}
	versions, err := allVersions(ctx, c, name)
	if err != nil {
		return nil, fail(err)
	}
	var before []*mlflowclient.ModelVersion
	for _, v := range versions {
		if v.CurrentStage == st && v.Version != mv.Version {
			before = append(before, v)
		}
	}
	moved, err := c.Registry.TransitionStage(ctx, name, mv.Version, st, true)
	if err != nil {
		return nil, fail(err)
	}
	at := moved.LastUpdatedTimestamp
	if at == 0 {
		at = time.Now().UnixMilli()
	}
	tr := &Transition{From: mv.CurrentStage}
	var tags []mlflowclient.Tag
	if st == mlflowclient.StageProduction && mv.CurrentStage != st {
		tags = append(tags, mlflowclient.Tag{Key: TagProductionEntered, Value: strconv.FormatInt(at, 10)})
	}
	if mv.CurrentStage == mlflowclient.StageProduction && st != mlflowclient.StageProduction {
		tags = append(tags, mlflowclient.Tag{Key: TagProductionLeft, Value: strconv.FormatInt(at, 10)})
	}
	if err := record(ctx, c, mv, st, at, tags...); err != nil {
		return nil, fail(err)
	}
	for _, v := range before {
		var tags []mlflowclient.Tag
		if st == mlflowclient.StageProduction {
			tags = append(tags, mlflowclient.Tag{Key: TagProductionLeft, Value: strconv.FormatInt(at, 10)})
		}
		if err := record(ctx, c, v, mlflowclient.StageArchived, at, tags...); err != nil {
			return nil, &RegistryError{Name: name, Version: v.Version, Err: err}
		}
		tr.Archived = append(tr.Archived, v.Version)
	}
	if tr.Version, err = c.Registry.GetVersion(ctx, name, mv.Version); err != nil {
		return nil, fail(err)
	}
	return tr, nil
}

// record appends stage@at to v's stage history and sets tags.
func record(ctx context.Context, c *mlflowclient.Client, v *mlflowclient.ModelVersion, stage mlflowclient.Stage, at int64, tags ...mlflowclient.Tag) error {
	hist, _ := v.Tag(TagStageHistory)
	entries := append(strings.Fields(hist), string(stage)+"@"+strconv.FormatInt(at, 10))
	entries = entries[max(0, len(entries)-maxHistory):]
	tags = append(tags, mlflowclient.Tag{Key: TagStageHistory, Value: strings.Join(entries, " ")})
	for _, t := range tags {
		if err := c.Registry.SetVersionTag(ctx, v.Name, v.Version, t.Key, t.Value); err != nil {
			return fmt.Errorf("recording the transition in tag %s: %w", t.Key, err)
		}
	}
	return nil
}

func allVersions(ctx context.Context, c *mlflowclient.Client, name string) ([]*mlflowclient.ModelVersion, error) {
	var out []*mlflowclient.ModelVersion
	for v, err := range c.Registry.AllVersions(ctx, mlflowclient.SearchOptions{Filter: "name = '" + name + "'"}) {
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Rollback puts the previous Production version of name back into
// Production and archives the current one. The previous version is, among
// the versions now in Archived that have left Production before (they carry
// TagProductionLeft, which Promote and Rollback set), the one that left it
// last; on equal times, the higher version number. Versions archived out of
// Staging, or moved by other tools than Promote, are never chosen. Without
// such a version the error wraps ErrNoRollbackTarget. When nothing is in
// Production, the previous version is restored all the same.
func Rollback(ctx context.Context, c *mlflowclient.Client, name string) (*Transition, error) {
	fail := func(err error) error { return &RegistryError{Name: name, Err: err} }
	if strings.Contains(name, "'") {
		return nil, fail(fmt.Errorf("%w: names with a quote are not supported", ErrBadModel))
	}
	versions, err := allVersions(ctx, c, name)
	if err != nil {
		return nil, fail(err)
	}
	if len(versions) == 0 { // say so if the model itself is missing
		if _, err := c.Registry.GetModel(ctx, name); err != nil {
			return nil, fail(err)
		}
	}
	var best *mlflowclient.ModelVersion
	var bestLeft, bestNum int64
	for _, v := range versions {
		if v.CurrentStage != mlflowclient.StageArchived {
			continue
		}
		s, ok := v.Tag(TagProductionLeft)
		if !ok {
			continue
		}
		left, err1 := strconv.ParseInt(s, 10, 64)
		num, err2 := strconv.ParseInt(v.Version, 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if best == nil || left > bestLeft || left == bestLeft && num > bestNum {
			best, bestLeft, bestNum = v, left, num
		}
	}
	if best == nil {
		return nil, fail(ErrNoRollbackTarget)
	}
	return Promote(ctx, c, name, best.Version, mlflowclient.StageProduction)
}

// Download downloads the model a URI names — models:/<name>/<stage>,
// models:/<name>@<alias>, models:/<name>/<version>, models:/<model_id>,
// runs:/… — into dst, and verifies it with Read. dst must not exist or be an
// empty directory; the files land in a temporary sibling first, so dst holds
// either nothing or a verified folder.
func Download(ctx context.Context, c *mlflowclient.Client, uri, dst string) (*Folder, error) {
	if err := checkTarget(dst); err != nil {
		return nil, err
	}
	parent := filepath.Dir(filepath.Clean(dst))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("mlmodel: download %s: %w", uri, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dst)+".download-*")
	if err != nil {
		return nil, fmt.Errorf("mlmodel: download %s: %w", uri, err)
	}
	defer os.RemoveAll(tmp)
	got, err := c.DownloadURI(ctx, uri, tmp)
	if err != nil {
		return nil, fmt.Errorf("mlmodel: download %s: %w", uri, err)
	}
	if _, err := Read(got); err != nil {
		return nil, fmt.Errorf("mlmodel: download %s: %w", uri, err)
	}
	if err := os.Chmod(got, 0o755); err != nil {
		return nil, fmt.Errorf("mlmodel: download %s: %w", uri, err)
	}
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, &FolderError{Dir: dst, Err: fmt.Errorf("%w: %v", ErrExists, err)}
	}
	if err := os.Rename(got, dst); err != nil {
		return nil, fmt.Errorf("mlmodel: download %s: %w", uri, err)
	}
	return Read(dst)
}
