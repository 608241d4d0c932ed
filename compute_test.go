package wharf_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
)

// A Ray-backed compute's sandbox_read_only_paths are cleaned; paths that
// are not absolute, the root folder, a path named twice, paths on a
// compute whose steps are not sandboxed and paths on local compute are
// refused, naming the field and saying why.
func TestComputeSandboxReadOnlyPaths(t *testing.T) {
	no := false
	cases := []struct {
		typ     string
		sandbox *bool
		paths   []string
		want    []string
		err     string
	}{
		{typ: "ray", paths: []string{"/mnt/datasets/", "/srv//shared"}, want: []string{"/mnt/datasets", "/srv/shared"}},
		{typ: "ray", paths: nil, want: nil},
		{typ: "ray", paths: []string{"datasets"}, err: `sandbox_read_only_paths[0] "datasets" is not an absolute path`},
		{typ: "ray", paths: []string{"/mnt/a", "/"}, err: "sandbox_read_only_paths[1] is the root folder"},
		{typ: "ray", paths: []string{"/mnt/a", "/mnt/a/"}, err: `sandbox_read_only_paths[1] "/mnt/a/" is named twice`},
		{typ: "ray", sandbox: &no, paths: []string{"/mnt/a"}, err: "with sandbox: false they run as the Ray worker's user"},
		{typ: "amlcompute", paths: []string{"/mnt/a"}, err: "sandbox_read_only_paths is for type ray only"},
	}
	for _, c := range cases {
		cp := &wharf.Compute{Name: "c", Type: c.typ, Sandbox: c.sandbox, SandboxReadOnlyPaths: c.paths}
		if c.typ == "ray" {
			cp.Address = "http://head:8265"
		}
		err := cp.Validate()
		if c.err == "" {
			if err != nil {
				t.Errorf("%q: %v", c.paths, err)
			} else if !slices.Equal(cp.SandboxReadOnlyPaths, c.want) {
				t.Errorf("%q validated as %q, want %q", c.paths, cp.SandboxReadOnlyPaths, c.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s %q: error %v, want one saying %q", c.typ, c.paths, err, c.err)
			continue
		}
		var we *wharf.Error
		if !errors.As(err, &we) || !strings.HasPrefix(we.Field, "sandbox_read_only_paths") {
			t.Errorf("%s %q: error %#v does not name the field sandbox_read_only_paths", c.typ, c.paths, err)
		}
	}
}
