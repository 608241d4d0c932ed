package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostPythonFactsRefusedClearly: `wharf sandbox exec` and `wharf env
// build` refuse --host-python-facts that are not what a Python says of
// itself with a usage error naming the flag and what is wrong, make no
// overlay and start nothing.
func TestHostPythonFactsRefusedClearly(t *testing.T) {
	dir := t.TempDir()
	spec := writeFile(t, dir, "environment.json", "{}")
	for _, c := range []struct{ facts, want string }{
		{`{"executable": "bin/python3", "version": "3.11.7"}`, "want an absolute path"},
		{`{"executable": "/usr/bin/python3", "version": "3.11.7", "prefix": "/usr"}`, `unknown field "prefix"`},
		{`{"executable": "/usr/bin/python3"`, "unexpected EOF"},
	} {
		overlay := filepath.Join(dir, "venv")
		for _, args := range [][]string{
			{"sandbox", "exec", "--overlay", overlay},
			{"env", "build", "--spec-file", spec, "--cache-dir", filepath.Join(dir, "envs"), "--overlay", overlay},
		} {
			args = append(args, "--host-python", "python3", "--host-python-facts", c.facts)
			var out, errb bytes.Buffer
			stdin := strings.NewReader(`{"argv": ["/bin/sh", "-c", "touch ` + filepath.Join(dir, "ran") + `"], "env": [], "dir": "` + dir + `", "mounts": [{"path": "` + dir + `", "writable": true}]}`)
			code := run(context.Background(), args, stdin, &out, &errb)
			if code != 2 || !strings.Contains(errb.String(), "--host-python-facts") || !strings.Contains(errb.String(), c.want) {
				t.Errorf("wharf %s: exit %d, stderr %q; want 2 and --host-python-facts: ...%s", strings.Join(args[:2], " "), code, errb.String(), c.want)
			}
			for _, p := range []string{overlay, filepath.Join(dir, "ran")} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("wharf %s with bad facts made %s", strings.Join(args[:2], " "), p)
				}
			}
		}
	}
}
