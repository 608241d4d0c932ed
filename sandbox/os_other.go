//go:build !linux

package sandbox

import (
	"errors"
	"runtime"
	"syscall"
)

// errNoMounts is why a share cannot be made off Linux: sandboxes, and the
// server that runs them, need Linux; the CLI runs anywhere.
var errNoMounts = errors.New("bind mounts need Linux, not " + runtime.GOOS)

func bindMount(src, target string) error { return errNoMounts }

func makeShared(dir string) error { return errNoMounts }

func detach(dir string) error { return nil }

// OwnSession is the process attributes of user code's first process: a
// session (and process group) of its own, with no controlling terminal.
// Only Linux also kills it with the server.
func OwnSession() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true}
}

// BecomeSubreaper does nothing: only Linux has child subreapers.
func BecomeSubreaper() {}
