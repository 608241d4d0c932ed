package wharf

import (
	"runtime/debug"
	"strings"
)

// Version, Commit and BuildDate describe the build. A release build sets
// them with -ldflags "-X github.com/wharfml/wharf.Version=..."; otherwise
// Build fills them from what the Go toolchain embedded (`go install
// github.com/wharfml/wharf/cmd/wharf@VERSION` records the module version,
// `go build` in a git checkout the commit and its time).
var (
	Version   = ""
	Commit    = ""
	BuildDate = ""
)

// devVersion is reported when neither the linker nor the toolchain named one.
const devVersion = "0.0.0-dev"

// BuildInfo identifies the running binary.
type BuildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"date"`
}

// Build returns the binary's version, commit and build date: the values
// stamped at link time, else those of the embedded build information,
// else "0.0.0-dev" and "unknown".
func Build() BuildInfo {
	b := BuildInfo{Version: Version, Commit: Commit, BuildDate: BuildDate}
	if info, ok := debug.ReadBuildInfo(); ok {
		fromBuildInfo(&b, info)
	}
	if b.Version == "" {
		b.Version = devVersion
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.BuildDate == "" {
		b.BuildDate = "unknown"
	}
	return b
}

// fromBuildInfo fills what the linker left empty from the toolchain's record.
func fromBuildInfo(b *BuildInfo, info *debug.BuildInfo) {
	if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		b.Version = strings.TrimPrefix(info.Main.Version, "v")
	}
	stamped := b.Commit != ""
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if !stamped {
				b.Commit = s.Value
			}
		case "vcs.time":
			if b.BuildDate == "" {
				b.BuildDate = s.Value
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && !stamped && b.Commit != "" {
		b.Commit += "-dirty"
	}
}
