package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

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
// user. Unlike Own it also changes files with several links: no file of a
// finished environment may stay writable by later builds, whatever else
// links to it.
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

// Deferred is a wharf.BuildRunner whose Sandbox is made by New when a
// build first needs it, so that a process which only finds its environment
// already built (a step on a Ray node, most of the time) starts no test
// sandbox.
type Deferred struct {
	// Options are New's.
	Options Options

	once sync.Once
	box  *Sandbox
	err  error
}

func (d *Deferred) sandbox() (*Sandbox, error) {
	d.once.Do(func() {
		if d.box, d.err = New(d.Options); d.err != nil {
			d.err = fmt.Errorf("environment builds run sandboxed, as steps do: %w", d.err)
		}
	})
	return d.box, d.err
}

// BuildCommand implements wharf.BuildRunner.
func (d *Deferred) BuildCommand(c wharf.BuildCommand) (*exec.Cmd, error) {
	s, err := d.sandbox()
	if err != nil {
		return nil, err
	}
	return s.BuildCommand(c)
}

// Own implements wharf.BuildRunner.
func (d *Deferred) Own(paths ...string) error {
	s, err := d.sandbox()
	if err != nil {
		return err
	}
	return s.Own(paths...)
}

// Reclaim implements wharf.BuildRunner.
func (d *Deferred) Reclaim(paths ...string) error {
	s, err := d.sandbox()
	if err != nil {
		return err
	}
	return s.Reclaim(paths...)
}

// Isolation implements wharf.BuildRunner.
func (d *Deferred) Isolation() string {
	s, err := d.sandbox()
	if err != nil {
		return "nowhere: " + err.Error()
	}
	return s.Isolation()
}
