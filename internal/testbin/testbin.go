// Package testbin builds the wharf binary for tests that must run it as a
// process of its own (a server to kill, a server whose steps run it as
// $WHARF), once per test binary.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once sync.Once
	path string
	err  error
)

// Wharf returns the path of a wharf binary built from this module's
// cmd/wharf, building it on first use. Its folder may be entered by anyone,
// so that a sandboxed step running as another user can run it.
func Wharf(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		var dir string
		dir, err = os.MkdirTemp("", "wharf-bin-")
		if err == nil {
			err = os.Chmod(dir, 0o755)
		}
		if err != nil {
			return
		}
		path = filepath.Join(dir, "wharf")
		out, berr := exec.Command("go", "build", "-o", path, "github.com/wharfml/wharf/cmd/wharf").CombinedOutput()
		if berr != nil {
			err = fmt.Errorf("go build ./cmd/wharf: %v\n%s", berr, out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}
