package mlflowclient

import (
	"os"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"sync"
)

// SystemTags returns the tags the MLflow UI shows for a run's origin:
// mlflow.user (the OS user), mlflow.source.name (the main module path or the
// executable), mlflow.source.type (LOCAL) and mlflow.source.git.commit when
// the binary was built from a git checkout (Go stamps vcs.revision).
func SystemTags() []Tag { return append([]Tag(nil), systemTags()...) }

var systemTags = sync.OnceValue(func() []Tag {
	tags := []Tag{{TagSourceType, SourceTypeLocal}}
	if u, err := user.Current(); err == nil && u.Username != "" {
		tags = append(tags, Tag{TagUser, u.Username})
	}
	source := filepath.Base(os.Args[0])
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Path != "" && bi.Path != "command-line-arguments" {
			source = bi.Path
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				tags = append(tags, Tag{TagGitCommit, s.Value})
			}
		}
	}
	return append(tags, Tag{TagSourceName, source})
})
