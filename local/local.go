// Package local runs job step attempts as processes on the server's own
// machine.
//
// Each attempt runs in its own process group, so cancelling it or hitting its
// timeout ends everything it started, not just the shell at its top. The
// server also marks itself a child subreaper (see Executor), so processes
// orphaned inside a group are handed to it and reaped rather than lingering.
// What Run learns about a process (Process) is enough to find and kill its
// group again after a server crash (KillOrphan).
package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/sandbox"
)

// DefaultKillGrace is how long a cancelled or timed-out process group gets
// between SIGTERM and SIGKILL when Executor.KillGrace is zero. It matches the
// common container default, long enough for a training script to save a
// checkpoint or flush its metrics.
const DefaultKillGrace = 10 * time.Second

// exitSettle is how long the rest of a process group may take to be gone
// after its main process exited on its own before it counts as left
// running.
const exitSettle = 200 * time.Millisecond

// defaultPath is searched for the command when the task's environment has no
// PATH, the same list a POSIX shell falls back to.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Task is one attempt of a job step to run as a process.
type Task struct {
	// ID names the attempt in errors and log lines.
	ID string
	// Argv is the command and its arguments, e.g.
	// ["/bin/sh", "-c", renderedCommand]. A command without a slash is
	// looked up in the PATH of Env, not of the server.
	Argv []string
	// Dir is the working directory; empty means the server's own.
	Dir string
	// Env is the complete environment of the process; nothing is
	// inherited from the server, so nil means an empty environment.
	Env []string
	// LogPath receives stdout and stderr, interleaved in the order they
	// are written. The file is created with mode 0600 if needed and
	// appended to, so retries of a step can share one log.
	LogPath string
	// Timeout ends the attempt this long after it started; zero means
	// no limit.
	Timeout time.Duration
	// Mounts are the host paths the process may reach when the executor
	// sandboxes it (Executor.Sandbox); ignored otherwise.
	Mounts []sandbox.Mount
}

// Result is how an attempt ended.
type Result struct {
	// ExitCode is the exit status of the process, or 128+N when signal
	// N ended it (as a shell reports it), or -1 when it never started.
	ExitCode int
	// Canceled is set when the context passed to Run was cancelled
	// before the process exited on its own.
	Canceled bool
	// TimedOut is set when Task.Timeout elapsed before the process
	// exited on its own.
	TimedOut bool
	// Err is set only when the process could not be started: command
	// not found or not executable, missing working directory, log file
	// not writable. The message says which, for the person who wrote
	// the job.
	Err error
	// Started is when the process was started, just before the fork,
	// so that forking and executing it count as its time; Exited is when
	// it was reaped, and Ended when it and every process left in its
	// group were gone. All are zero if it never started.
	Started, Exited, Ended time.Time
}

// Executor runs tasks. The zero value is ready to use and safe for
// concurrent use by many goroutines.
//
// The first Run marks the server process a child subreaper
// (PR_SET_CHILD_SUBREAPER): a process whose parent exits is then re-parented
// to the server instead of to init, which is what lets Run reap the
// grandchildren it kills. Orphans of other programs the server starts are
// re-parented to it as well.
type Executor struct {
	// KillGrace is the time between SIGTERM and SIGKILL when a task is
	// cancelled, times out, or leaves processes behind after its main
	// process exits. Zero means DefaultKillGrace.
	KillGrace time.Duration
	// Sandbox, when set, runs every task in a sandbox that sees only the
	// task's Mounts besides the system folders, as the sandbox's user.
	Sandbox *sandbox.Sandbox
}

var subreaperOnce sync.Once

func becomeSubreaper() {
	subreaperOnce.Do(func() {
		sandbox.BecomeSubreaper()
	})
}

func (e *Executor) grace() time.Duration {
	if e.KillGrace > 0 {
		return e.KillGrace
	}
	return DefaultKillGrace
}

// Run runs t to completion and returns how it ended. Once the process is
// running, started (if not nil) is called with it, so the caller can persist
// it for crash recovery before anything else happens; Run waits for started
// to return before it acts on cancellation or the timeout.
//
// Cancelling ctx or reaching t.Timeout sends SIGTERM to the whole process
// group and SIGKILL after the grace period. Processes still in the group when
// the main process exits on its own get the same treatment, so nothing the
// attempt started survives Run. A ctx that is already done gives a Result
// with Canceled set and nothing started.
func (e *Executor) Run(ctx context.Context, t *Task, started func(Process)) Result {
	notStarted := func(err error) Result { return Result{ExitCode: -1, Err: err} }
	if t == nil || len(t.Argv) == 0 || t.Argv[0] == "" {
		return notStarted(wharf.Errorf(wharf.EINVALID, "task has no command to run"))
	}
	if ctx.Err() != nil {
		return Result{ExitCode: -1, Canceled: true}
	}
	if t.Dir != "" {
		if err := checkDir(t.Dir); err != nil {
			return notStarted(err)
		}
	}
	path, err := findCommand(t.Argv[0], t.Env, t.Dir)
	if err != nil {
		return notStarted(err)
	}
	logFile, err := os.OpenFile(t.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return notStarted(fmt.Errorf("local: open log of task %s: %w", t.ID, err))
	}
	defer logFile.Close()

	becomeSubreaper()
	cmd := &exec.Cmd{
		Path: path,
		Args: t.Argv,
		Dir:  t.Dir,
		Env:  append([]string{}, t.Env...),
	}
	if e.Sandbox != nil {
		if cmd, err = e.Sandbox.Command(sandbox.Spec{Argv: t.Argv, Env: t.Env, Dir: t.Dir, Mounts: t.Mounts}); err != nil {
			return notStarted(wharf.Errorf(wharf.EINVALID, "%v", err))
		}
	}
	// One *os.File for both streams: the child writes to the log
	// directly, in the order it writes, with no copying goroutine that a
	// lingering grandchild could keep alive.
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A session of its own: a new process group that the whole attempt
	// stays in, and no controlling terminal to inject input into.
	cmd.SysProcAttr = sandbox.OwnSession()

	type startResult struct {
		proc Process
		at   time.Time
		err  error
	}
	startCh := make(chan startResult, 1)
	exited := make(chan struct{})
	var exitedAt time.Time // set before exited is closed
	go func() {
		// Pdeathsig fires when the thread that forked the child exits,
		// not the process; keeping this goroutine on its thread until
		// the child is reaped stops the runtime from retiring that
		// thread under a running job.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		at := time.Now()
		if err := cmd.Start(); err != nil {
			startCh <- startResult{err: err}
			return
		}
		pid := cmd.Process.Pid
		proc := Process{PID: pid, PGID: pid}
		// Read before Wait: until it is reaped, even a child that
		// exited at once is still in /proc.
		if p, err := LookupProcess(pid); err == nil {
			proc = p
		}
		startCh <- startResult{proc: proc, at: at}
		_ = cmd.Wait() // the status is read from cmd.ProcessState
		exitedAt = time.Now()
		close(exited)
	}()
	start := <-startCh
	if start.err != nil {
		return notStarted(wharf.Errorf(wharf.EINVALID, "cannot start %q: %v", t.Argv[0], unwrapPath(start.err)))
	}
	res := Result{Started: start.at}
	proc := start.proc
	var deadline <-chan time.Time
	if t.Timeout > 0 {
		timer := time.NewTimer(t.Timeout)
		defer timer.Stop()
		deadline = timer.C
	}
	if started != nil {
		started(proc)
	}

	select {
	case <-exited:
	case <-ctx.Done():
		res.Canceled = true
	case <-deadline:
		res.TimedOut = true
	}
	select {
	case <-exited:
		// It finished on its own; a cancel racing with that changes
		// nothing.
		res.Canceled, res.TimedOut = false, false
	default:
	}

	reason := ""
	switch {
	case res.Canceled:
		reason = "canceled"
	case res.TimedOut:
		reason = fmt.Sprintf("timed out after %s", t.Timeout)
	}
	e.stopGroup(proc.PGID, exited, reason, logFile)

	res.ExitCode = exitCode(cmd.ProcessState)
	res.Exited, res.Ended = exitedAt, time.Now()
	return res
}

// stopGroup returns once the process group is empty and every member that
// was the server's child is reaped. If reason is not empty the attempt is
// being stopped and the group gets SIGTERM at once; otherwise only
// processes that outlive the main one are signalled.
func (e *Executor) stopGroup(pgid int, exited <-chan struct{}, reason string, log *os.File) {
	grace := e.grace()
	var termAt time.Time
	killed := false
	terminate := func(why string) {
		fmt.Fprintf(log, "\nwharf: %s; sending SIGTERM to process group %d\n", why, pgid)
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		termAt = time.Now()
	}
	kill := func() {
		fmt.Fprintf(log, "\nwharf: process group %d still running %s after SIGTERM; sending SIGKILL\n", pgid, grace)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		killed = true
	}

	if reason != "" {
		terminate(reason)
		timer := time.NewTimer(grace)
		select {
		case <-exited:
		case <-timer.C:
			kill()
		}
		timer.Stop()
	}
	<-exited

	// The main process is reaped; now the rest of its group. Members
	// that exited with it (a sandbox's helpers) may take a moment to be
	// handed over and reaped: that is not a process left running.
	if waitGroupGone(pgid, time.Now().Add(exitSettle)) {
		return
	}
	if termAt.IsZero() {
		terminate("the main process exited but left processes running")
	}
	if !killed {
		if waitGroupGone(pgid, termAt.Add(grace)) {
			return
		}
		kill()
	}
	// SIGKILL cannot be ignored, but a process in uninterruptible sleep
	// only dies when it wakes; give up waiting eventually rather than
	// hang the job forever.
	if !waitGroupGone(pgid, time.Now().Add(grace)) {
		fmt.Fprintf(log, "\nwharf: process group %d did not exit after SIGKILL\n", pgid)
	}
}

// waitGroupGone polls until the group is empty or until passes, reaping
// members as they exit, and reports whether it emptied.
func waitGroupGone(pgid int, until time.Time) bool {
	pause := time.Millisecond
	for {
		reapGroup(pgid)
		if !groupAlive(pgid) {
			return true
		}
		if !time.Now().Before(until) {
			return false
		}
		time.Sleep(pause)
		if pause < 20*time.Millisecond {
			pause *= 2
		}
	}
}

// exitCode follows the shell convention so a job's status reads the same
// whether or not a shell ran it.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func checkDir(dir string) error {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return wharf.Errorf(wharf.EINVALID, "working directory %q does not exist", dir)
	case err != nil:
		return wharf.Errorf(wharf.EINVALID, "working directory %q: %v", dir, unwrapPath(err))
	case !info.IsDir():
		return wharf.Errorf(wharf.EINVALID, "working directory %q is not a directory", dir)
	}
	return nil
}

// findCommand resolves name the way a shell would for the process: relative
// to dir if it holds a slash, else in the PATH of env.
func findCommand(name string, env []string, dir string) (string, error) {
	if strings.Contains(name, "/") {
		path := name
		if !filepath.IsAbs(path) && dir != "" {
			path = filepath.Join(dir, path)
		}
		if err := checkExecutable(path); err != nil {
			return "", wharf.Errorf(wharf.EINVALID, "command %q %s", name, err.Error())
		}
		// exec.Cmd resolves a relative Path against Dir itself.
		return name, nil
	}
	searchPath, ok := lookupEnv(env, "PATH")
	if !ok {
		searchPath = defaultPath
	}
	var found error
	for _, d := range filepath.SplitList(searchPath) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) && dir != "" {
			d = filepath.Join(dir, d)
		}
		path := filepath.Join(d, name)
		err := checkExecutable(path)
		if err == nil {
			return path, nil
		}
		if err != errMissing && found == nil {
			found = fmt.Errorf("%s: %w", path, err)
		}
	}
	if found != nil {
		return "", wharf.Errorf(wharf.EINVALID, "command %q found but cannot be run: %v", name, found)
	}
	return "", wharf.Errorf(wharf.EINVALID, "command %q not found in PATH %q", name, searchPath)
}

// errMissing reads as the end of "command X does not exist".
var errMissing = errors.New("does not exist")

// checkExecutable returns errMissing for a missing file and an error saying
// why otherwise for one that cannot be run.
func checkExecutable(path string) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return errMissing
	}
	if err != nil {
		return unwrapPath(err)
	}
	if info.IsDir() {
		return errors.New("is a directory")
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		return errors.New("is not executable")
	}
	return nil
}

func lookupEnv(env []string, key string) (string, bool) {
	// The last entry wins, as it does for exec.Cmd.
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// unwrapPath drops the operation and path from a *fs.PathError (such as
// "fork/exec /x: exec format error"), which the messages here already name.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
