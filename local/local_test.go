package local

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

// testGrace keeps SIGTERM-ignoring processes from slowing the tests; it is a
// setting, not something the tests assert on.
const testGrace = 100 * time.Millisecond

var testEnv = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}

func shTask(t *testing.T, script string) *Task {
	t.Helper()
	dir := t.TempDir()
	return &Task{
		ID:      t.Name(),
		Argv:    []string{"/bin/sh", "-c", script},
		Dir:     dir,
		Env:     testEnv,
		LogPath: filepath.Join(dir, "log.txt"),
	}
}

func readLog(t *testing.T, task *Task) string {
	t.Helper()
	b, err := os.ReadFile(task.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// reaped reports whether pid no longer exists at all, not even as a zombie.
func reaped(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestExitCodes(t *testing.T) {
	e := &Executor{KillGrace: testGrace}
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"true", 0},
		{"exit 3", 3},
		{"exit 255", 255},
		{"kill -KILL $$", 128 + 9},
	} {
		res := e.Run(context.Background(), shTask(t, tc.script), nil)
		if res.Err != nil {
			t.Fatalf("%q: %v", tc.script, res.Err)
		}
		if res.ExitCode != tc.want || res.Canceled || res.TimedOut {
			t.Errorf("%q: got %+v, want exit code %d", tc.script, res, tc.want)
		}
		if res.Started.IsZero() || res.Ended.Before(res.Started) {
			t.Errorf("%q: bad times started=%v ended=%v", tc.script, res.Started, res.Ended)
		}
	}
}

func TestLogCapturesBothStreamsInOrderAndAppends(t *testing.T) {
	e := &Executor{KillGrace: testGrace}
	task := shTask(t, "echo out1; echo err1 >&2; echo out2; echo err2 >&2")
	if res := e.Run(context.Background(), task, nil); res.ExitCode != 0 || res.Err != nil {
		t.Fatalf("run: %+v", res)
	}
	task.Argv = []string{"/bin/sh", "-c", "echo second"}
	if res := e.Run(context.Background(), task, nil); res.ExitCode != 0 || res.Err != nil {
		t.Fatalf("second run: %+v", res)
	}
	if got, want := readLog(t, task), "out1\nerr1\nout2\nerr2\nsecond\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	info, err := os.Stat(task.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("log mode = %o, want 600", perm)
	}
}

func TestEnvAndDirAreHonoured(t *testing.T) {
	e := &Executor{KillGrace: testGrace}
	task := shTask(t, `echo "foo=$FOO home=${HOME-unset}"; pwd -P`)
	task.Env = append(testEnv, "FOO=bar baz")
	if res := e.Run(context.Background(), task, nil); res.ExitCode != 0 || res.Err != nil {
		t.Fatalf("run: %+v", res)
	}
	dir, err := filepath.EvalSymlinks(task.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readLog(t, task), "foo=bar baz home=unset\n"+dir+"\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}

func TestCommandIsFoundInTaskPath(t *testing.T) {
	e := &Executor{KillGrace: testGrace}
	task := shTask(t, "")
	bin := filepath.Join(task.Dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "hello-wharf"), []byte("#!/bin/sh\necho hello \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	task.Argv = []string{"hello-wharf", "world"}
	task.Env = []string{"PATH=" + bin + ":/usr/bin:/bin"}
	if res := e.Run(context.Background(), task, nil); res.ExitCode != 0 || res.Err != nil {
		t.Fatalf("run: %+v", res)
	}
	if got := readLog(t, task); got != "hello world\n" {
		t.Errorf("log = %q", got)
	}
}

func TestStartFailuresAreClear(t *testing.T) {
	e := &Executor{KillGrace: testGrace}
	dir := t.TempDir()
	notExec := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(notExec, []byte("echo hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		argv   []string
		dir    string
		logDir string
		want   string
	}{
		{"missing absolute", []string{"/no/such/binary"}, dir, dir, `command "/no/such/binary" does not exist`},
		{"missing in PATH", []string{"no-such-binary-wharf"}, dir, dir, `command "no-such-binary-wharf" not found in PATH "/usr/local/bin:/usr/bin:/bin"`},
		{"not executable", []string{notExec}, dir, dir, "is not executable"},
		{"missing dir", []string{"/bin/true"}, filepath.Join(dir, "nope"), dir, "working directory " + strconv.Quote(filepath.Join(dir, "nope")) + " does not exist"},
		{"dir is a file", []string{"/bin/true"}, notExec, dir, "is not a directory"},
		{"empty argv", nil, dir, dir, "task has no command"},
		{"unwritable log", []string{"/bin/true"}, dir, filepath.Join(dir, "nope"), "open log"},
	} {
		task := &Task{ID: "x", Argv: tc.argv, Dir: tc.dir, Env: testEnv, LogPath: filepath.Join(tc.logDir, "log.txt")}
		called := false
		res := e.Run(context.Background(), task, func(Process) { called = true })
		if res.Err == nil || !strings.Contains(res.Err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.name, res.Err, tc.want)
		}
		if res.ExitCode != -1 || called || !res.Started.IsZero() {
			t.Errorf("%s: got %+v (started called: %v), want a task that never started", tc.name, res, called)
		}
	}
	// Mistakes in the job are the user's to fix, so they carry EINVALID.
	res := e.Run(context.Background(), &Task{Argv: []string{"/no/such"}, Dir: dir, LogPath: filepath.Join(dir, "l")}, nil)
	if code := wharf.ErrorCode(res.Err); code != wharf.EINVALID {
		t.Errorf("code = %q, want %q", code, wharf.EINVALID)
	}
}

func TestStartedReportsTheRunningProcess(t *testing.T) {
	e := &Executor{KillGrace: testGrace}
	// The shell waits for the callback, so /proc is read while it runs.
	task := shTask(t, "echo $$ > pid; until [ -e proceed ]; do sleep 0.01; done")
	var got Process
	var live Process
	var liveErr error
	res := e.Run(context.Background(), task, func(p Process) {
		got = p
		live, liveErr = LookupProcess(p.PID)
		if err := os.WriteFile(filepath.Join(task.Dir, "proceed"), nil, 0o644); err != nil {
			t.Error(err)
		}
	})
	if res.ExitCode != 0 || res.Err != nil {
		t.Fatalf("run: %+v", res)
	}
	pid, err := os.ReadFile(filepath.Join(task.Dir, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	if strconv.Itoa(got.PID) != strings.TrimSpace(string(pid)) {
		t.Errorf("started PID = %d, process says %s", got.PID, pid)
	}
	if liveErr != nil || got.PGID != got.PID || got != live || got.StartTime == 0 {
		t.Errorf("started %+v, /proc said %+v (%v)", got, live, liveErr)
	}
}

func TestCanceledBeforeStartRunsNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	task := shTask(t, "echo ran > ran")
	res := (&Executor{}).Run(ctx, task, nil)
	if !res.Canceled || res.ExitCode != -1 || res.Err != nil {
		t.Errorf("got %+v", res)
	}
	if _, err := os.Stat(filepath.Join(task.Dir, "ran")); !os.IsNotExist(err) {
		t.Errorf("the command ran: %v", err)
	}
}

// treeTask runs a shell whose child and grandchild both ignore SIGTERM; the
// grandchild is an orphan-to-be that only SIGKILL to the group can end.
func treeTask(t *testing.T) *Task {
	task := shTask(t, "sh ./child.sh; echo main-after-child")
	files := map[string]string{
		"child.sh": "trap '' TERM\nsh ./grandchild.sh &\necho $$ > child.tmp && mv child.tmp child.pid\nwait\n",
		"grandchild.sh": "trap '' TERM\necho $$ > gc.tmp && mv gc.tmp grandchild.pid\n" +
			"exec sleep 1000\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(task.Dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return task
}

// waitForPIDs waits until the tree's processes have written their PIDs.
func waitForPIDs(t *testing.T, dir string) (child, grandchild int) {
	t.Helper()
	read := func(name string) int {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	// A safety net against a hung test, not a measurement.
	giveUp := time.Now().Add(30 * time.Second)
	for time.Now().Before(giveUp) {
		child, grandchild = read("child.pid"), read("grandchild.pid")
		if child > 0 && grandchild > 0 {
			return child, grandchild
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("the process tree never wrote its PIDs")
	return 0, 0
}

func checkTreeGone(t *testing.T, p Process, child, grandchild int) {
	t.Helper()
	for name, pid := range map[string]int{"main": p.PID, "child": child, "grandchild": grandchild} {
		if pid <= 0 || !reaped(pid) {
			t.Errorf("%s process %d survived Run", name, pid)
		}
	}
	if groupAlive(p.PGID) {
		t.Errorf("process group %d still has members", p.PGID)
	}
}

func TestTimeoutKillsTheWholeTree(t *testing.T) {
	e := &Executor{KillGrace: testGrace}
	task := treeTask(t)
	// Run holds the timeout until started returns, and started waits for
	// the whole tree, so the tree exists when the timeout fires.
	task.Timeout = time.Millisecond
	var p Process
	var child, grandchild int
	res := e.Run(context.Background(), task, func(proc Process) {
		p = proc
		child, grandchild = waitForPIDs(t, task.Dir)
	})
	if !res.TimedOut || res.Canceled || res.Err != nil {
		t.Fatalf("got %+v, want a timeout", res)
	}
	if res.ExitCode != 128+int(syscall.SIGTERM) {
		t.Errorf("exit code %d, want %d (main shell ended by SIGTERM)", res.ExitCode, 128+int(syscall.SIGTERM))
	}
	checkTreeGone(t, p, child, grandchild)
	log := readLog(t, task)
	for _, want := range []string{"timed out after 1ms", "sending SIGKILL"} {
		if !strings.Contains(log, want) {
			t.Errorf("log %q lacks %q", log, want)
		}
	}
}

func TestCancelKillsTheWholeTree(t *testing.T) {
	e := &Executor{KillGrace: testGrace}
	task := treeTask(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var p Process
	var child, grandchild int
	res := e.Run(ctx, task, func(proc Process) {
		p = proc
		child, grandchild = waitForPIDs(t, task.Dir)
		cancel()
	})
	if !res.Canceled || res.TimedOut || res.Err != nil {
		t.Fatalf("got %+v, want canceled", res)
	}
	checkTreeGone(t, p, child, grandchild)
	if log := readLog(t, task); !strings.Contains(log, "canceled; sending SIGTERM") {
		t.Errorf("log %q does not say it was canceled", log)
	}
}

func TestProcessesLeftBehindAreKilled(t *testing.T) {
	e := &Executor{KillGrace: testGrace}
	// The main shell exits 0 at once, leaving a SIGTERM-proof sleeper.
	task := shTask(t, `sh -c 'trap "" TERM; echo $$ > bg.tmp && mv bg.tmp bg.pid; exec sleep 1000' &
		until [ -s bg.pid ]; do sleep 0.01; done`)
	var p Process
	res := e.Run(context.Background(), task, func(proc Process) { p = proc })
	if res.ExitCode != 0 || res.Canceled || res.TimedOut || res.Err != nil {
		t.Fatalf("got %+v", res)
	}
	b, err := os.ReadFile(filepath.Join(task.Dir, "bg.pid"))
	if err != nil {
		t.Fatal(err)
	}
	bg, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if bg <= 0 || !reaped(bg) {
		t.Errorf("background process %d survived Run", bg)
	}
	if groupAlive(p.PGID) {
		t.Errorf("process group %d still has members", p.PGID)
	}
}

// startOrphan starts a process group the way a previous server instance
// would have, outside any Executor.
func startOrphan(t *testing.T, script string) (*exec.Cmd, Process) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = t.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_, _ = cmd.Process.Wait()
	})
	p, err := LookupProcess(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return cmd, p
}

func TestKillOrphanRefusesAMismatchedStartTime(t *testing.T) {
	_, p := startOrphan(t, "exec sleep 1000")
	for _, wrong := range []Process{
		{PID: p.PID, PGID: p.PGID, StartTime: p.StartTime + 1},
		{PID: p.PID, PGID: p.PGID + 1, StartTime: p.StartTime},
	} {
		killed, err := KillOrphan(wrong)
		if killed || err != nil {
			t.Errorf("KillOrphan(%+v) = %v, %v; want false, nil", wrong, killed, err)
		}
	}
	if err := syscall.Kill(p.PID, 0); err != nil {
		t.Errorf("process was signalled anyway: %v", err)
	}
	if _, err := KillOrphan(Process{}); err == nil {
		t.Error("KillOrphan of a zero Process gave no error")
	}
}

func TestKillOrphanKillsALiveMatchingGroup(t *testing.T) {
	cmd, p := startOrphan(t, "trap '' TERM; sleep 1000 & echo $! > bg.tmp && mv bg.tmp bg.pid; wait")
	bgFile := filepath.Join(cmd.Dir, "bg.pid")
	var bg int
	for giveUp := time.Now().Add(30 * time.Second); bg == 0 && time.Now().Before(giveUp); {
		if b, err := os.ReadFile(bgFile); err == nil {
			bg, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if bg == 0 {
		t.Fatal("background process never started")
	}
	killed, err := KillOrphan(p)
	if !killed || err != nil {
		t.Fatalf("KillOrphan = %v, %v; want true, nil", killed, err)
	}
	state, _ := cmd.Process.Wait()
	if ws := state.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("leader ended with %v, want SIGKILL", state)
	}
	// The sleeper was a child of the leader, not of this process, so
	// whoever adopts it reaps it; it must at least be dead.
	for giveUp := time.Now().Add(30 * time.Second); time.Now().Before(giveUp); time.Sleep(5 * time.Millisecond) {
		if deadOrZombie(bg) {
			break
		}
	}
	if !deadOrZombie(bg) {
		t.Errorf("background process %d survived KillOrphan", bg)
	}
	// Once gone, the same Process is refused: its PID may be reused.
	if killed, err := KillOrphan(p); killed || err != nil {
		t.Errorf("second KillOrphan = %v, %v; want false, nil", killed, err)
	}
}

func deadOrZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && strings.HasPrefix(s[i+1:], " Z")
}

func TestLookupProcessOfMissingPID(t *testing.T) {
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	// The PID of a reaped process is free until reused, which takes a
	// full cycle of the PID space.
	_, err := LookupProcess(cmd.Process.Pid)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not-exist", err)
	}
}

func BenchmarkRunTrue(b *testing.B) {
	e := &Executor{}
	dir := b.TempDir()
	task := &Task{ID: "bench", Argv: []string{"/bin/true"}, Dir: dir, Env: testEnv, LogPath: filepath.Join(dir, "log")}
	for b.Loop() {
		if res := e.Run(context.Background(), task, nil); res.ExitCode != 0 || res.Err != nil {
			b.Fatalf("run: %+v", res)
		}
	}
}

// BenchmarkRunToStarted measures the time from calling Run until the started
// callback, i.e. what the executor adds before a job is known to be running.
func BenchmarkRunToStarted(b *testing.B) {
	e := &Executor{}
	dir := b.TempDir()
	task := &Task{ID: "bench", Argv: []string{"/bin/true"}, Dir: dir, Env: testEnv, LogPath: filepath.Join(dir, "log")}
	var total time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		e.Run(context.Background(), task, func(Process) { total += time.Since(t0) })
		n++
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(n), "ns-to-started/op")
}

// BenchmarkExecTrueBaseline is os/exec alone running /bin/true, the floor
// that BenchmarkRunTrue's overhead is measured against.
func BenchmarkExecTrueBaseline(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestKillOrphanKillsTheGroupOfADeadLeader: the server's death takes the
// group leader with it (Pdeathsig), but not what the leader started; those
// processes are still the job's and must be stopped on recovery.
func TestKillOrphanKillsTheGroupOfADeadLeader(t *testing.T) {
	cmd, p := startOrphan(t, "sleep 1000 & echo $! > bg.tmp && mv bg.tmp bg.pid; wait")
	bgFile := filepath.Join(cmd.Dir, "bg.pid")
	var bg int
	for giveUp := time.Now().Add(30 * time.Second); bg == 0 && time.Now().Before(giveUp); {
		if b, err := os.ReadFile(bgFile); err == nil {
			bg, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if bg == 0 {
		t.Fatal("background process never started")
	}
	// The leader dies alone, as with the server.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Wait()
	if deadOrZombie(bg) {
		t.Fatal("the background process died with its leader; the test shows nothing")
	}
	killed, err := KillOrphan(p)
	if !killed || err != nil {
		t.Fatalf("KillOrphan with the leader gone = %v, %v; want true, nil", killed, err)
	}
	for giveUp := time.Now().Add(30 * time.Second); time.Now().Before(giveUp) && !deadOrZombie(bg); time.Sleep(5 * time.Millisecond) {
	}
	if !deadOrZombie(bg) {
		t.Errorf("process %d of the dead leader's group survived", bg)
	}
}
