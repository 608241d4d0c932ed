package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/wharfml/wharf"
)

var _ wharf.BuildRunner = (*Sandbox)(nil)

// BuildCommand returns the command that runs one step of a Python
// environment's build in a sandbox, as the account steps run as: it sees
// the system folders, its PATH, the folders it writes (c.Writable) and
// reads (c.ReadOnly), and nothing of the server's data folder, files or
// environment. A read-only path inside a hidden folder (a requirement that
// names a file of the data folder) is left out rather than shown.
func (s *Sandbox) BuildCommand(c wharf.BuildCommand) (*exec.Cmd, error) {
	spec := Spec{Argv: c.Argv, Env: c.Env, Dir: c.Dir}
	for _, p := range c.Writable {
		spec.Mounts = append(spec.Mounts, Mount{Path: p, Writable: true})
	}
	for _, p := range c.ReadOnly {
		real, err := filepath.EvalSymlinks(p)
		if err != nil || s.hidden(real) {
			continue
		}
		spec.Mounts = append(spec.Mounts, Mount{Path: p})
	}
	return s.Command(spec)
}

// Reclaim hands the folders, and everything in them, back to the server's
// own user: what a sandboxed build made becomes read-only to the sandbox's
// user. Unlike Own it also changes files with several links, since an
// installer's cache links its files into the environments it fills, and a
// later build must not be able to change a finished environment through
// them.
func (s *Sandbox) Reclaim(paths ...string) error {
	if !s.Privileged() {
		return nil
	}
	for _, root := range paths {
		if err := chownTree(root, os.Getuid(), os.Getgid(), false); err != nil {
			return fmt.Errorf("sandbox: taking %s back from user %s: %w", root, s.User, err)
		}
	}
	return nil
}

// Isolation implements wharf.BuildRunner.
func (s *Sandbox) Isolation() string {
	if s.Privileged() {
		return fmt.Sprintf("in a bwrap sandbox as user %s (uid %d)", s.User, s.UID)
	}
	return fmt.Sprintf("in a bwrap sandbox (user namespace) as the server's user %s", s.User)
}
