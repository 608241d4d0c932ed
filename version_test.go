package wharf

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	info := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/wharfml/wharf", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	var b BuildInfo
	fromBuildInfo(&b, info)
	want := BuildInfo{Version: "1.4.0", Commit: "0123456789abcdef-dirty", BuildDate: "2026-12-01T10:00:00Z"}
	if b != want {
		t.Errorf("from go install's record: %+v, want %+v", b, want)
	}

	// Values stamped by the linker win over the toolchain's.
	stamped := BuildInfo{Version: "2.0.0", Commit: "feedface", BuildDate: "2026-12-07T00:00:00Z"}
	b = stamped
	fromBuildInfo(&b, info)
	if b != stamped {
		t.Errorf("stamped values replaced: %+v", b)
	}

	// A checkout build without a tag reports (devel): no version from it.
	b = BuildInfo{}
	fromBuildInfo(&b, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}})
	if b.Version != "" {
		t.Errorf("(devel) taken as a version: %q", b.Version)
	}
}
