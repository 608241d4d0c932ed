package sandbox

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindMount shows src at target.
func bindMount(src, target string) error {
	return unix.Mount(src, target, "", unix.MS_BIND, "")
}

// makeShared makes the mount at dir, and those under it, propagate to the
// mount namespaces that copied it.
func makeShared(dir string) error {
	return unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, "")
}

// detach unmounts dir at once, even while it is in use.
func detach(dir string) error {
	return unix.Unmount(dir, unix.MNT_DETACH)
}

// OwnSession is the process attributes of user code's first process: a
// session (and process group) of its own, with no controlling terminal,
// killed when the server's thread that started it dies.
func OwnSession() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
}

// BecomeSubreaper makes the server adopt the orphans of its children, so
// that a step's leftover processes can still be found and stopped. Failure
// (a kernel without it) only means init reaps them instead.
func BecomeSubreaper() {
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}
