package pyworker

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// zygoteDir is a short folder for zygote sockets: t.TempDir's names can
// overflow a socket path.
func zygoteDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "wz-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startZygote starts a zygote and waits until it is warm.
func startZygote(t testing.TB, cfg ZygoteConfig) *Zygote {
	t.Helper()
	z, err := StartZygote(cfg)
	if err != nil {
		t.Fatalf("StartZygote: %v", err)
	}
	t.Cleanup(func() { z.Close() })
	deadline := time.Now().Add(2 * time.Minute)
	for !z.Ready() {
		select {
		case <-z.Exited():
			t.Fatal("the zygote exited before it was ready")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the zygote was not ready after 2 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return z
}

// lockedBuffer is a log the test reads while the zygote writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// parentOf returns a process's parent pid from /proc.
func parentOf(t testing.TB, pid int) int {
	t.Helper()
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	// "pid (comm) state ppid ...": comm may hold spaces, so cut at the
	// last parenthesis.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatalf("process %d: stat %q", pid, stat)
	}
	return ppid
}

// gone reports whether pid has ended (or is a zombie) within five seconds.
func gone(pid int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func workerPIDs(p *Pool) []int {
	var pids []int
	for _, s := range p.slots {
		s.mu.Lock()
		pids = append(pids, s.w.pid)
		s.mu.Unlock()
	}
	return pids
}

func allUsable(p *Pool) bool {
	for _, s := range p.slots {
		s.mu.Lock()
		ok := s.w.usable()
		s.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// startForked starts a zygote and a score mode pool on src that uses it,
// and checks that the pool's workers are the zygote's children.
func startForked(t *testing.T, src string, instances int) (*Pool, Config, *Zygote) {
	t.Helper()
	cfg := scoreConfig(t, src, instances)
	cfg.ZygoteDir = zygoteDir(t)
	z := startZygote(t, ZygoteConfig{Python: cfg.Python, Env: cfg.Env, Dir: cfg.ZygoteDir})
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	checkForked(t, p, z, cfg.LogPath)
	return p, cfg, z
}

// checkForked checks that every worker of p is a child of z.
func checkForked(t *testing.T, p *Pool, z *Zygote, logPath string) {
	t.Helper()
	for _, pid := range workerPIDs(p) {
		if got := parentOf(t, pid); got != z.cmd.Process.Pid {
			log, _ := os.ReadFile(logPath)
			t.Errorf("worker %d has parent %d, want the zygote %d; log:\n%s", pid, got, z.cmd.Process.Pid, log)
		}
	}
}

func TestZygoteForksWorkers(t *testing.T) {
	p, cfg, z := startForked(t, crashScore, 2)
	if got, want := predict(t, p, "ok"), `"OK"`; got != want {
		t.Errorf("answer = %s, want %s", got, want)
	}

	// A crash is reported with the exit status the zygote saw, and the
	// replacement is forked too.
	_, err := p.Predict(context.Background(), []byte("crash"))
	if !errors.Is(err, ErrWorkerCrashed) || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("Predict of crashing run: err = %v, want ErrWorkerCrashed with exit status 1", err)
	}
	if got, want := predict(t, p, "again"), `"AGAIN"`; got != want {
		t.Errorf("answer after restart = %s, want %s", got, want)
	}
	// The request may have gone to the other worker: wait for the
	// replacement.
	deadline := time.Now().Add(time.Minute)
	for p.Restarts() < 1 || !allUsable(p) {
		if time.Now().After(deadline) {
			t.Fatal("the crashed worker was not replaced within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkForked(t, p, z, cfg.LogPath)
	pids := workerPIDs(p)
	p.Close()
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("worker %d outlived Close", pid)
		}
	}
	log, _ := os.ReadFile(cfg.LogPath)
	if n := strings.Count(string(log), "forked from the warm process"); n != 3 {
		t.Errorf("log shows %d forked workers, want 3 (two, then one restart):\n%s", n, log)
	}
	if strings.Contains(string(log), "no warm start") {
		t.Errorf("log shows a refused warm start:\n%s", log)
	}
}

func TestZygoteTimeoutKillsForkedWorker(t *testing.T) {
	p, _, _ := startForked(t, slowScore, 1)
	old := workerPIDs(p)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := p.Predict(ctx, []byte("slow")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Predict: err = %v, want context.DeadlineExceeded", err)
	}
	if !gone(old) {
		t.Errorf("the timed-out worker %d is still running", old)
	}
	if got, want := predict(t, p, "fast"), `"fast"`; got != want {
		t.Errorf("answer after timeout = %s, want %s", got, want)
	}
}

func TestZygoteKillsWorkerWhenClientGoes(t *testing.T) {
	p, _, _ := startForked(t, echoScore, 1)
	w := p.slots[0].w
	// What the kernel does when the pool's process dies: its end of the
	// zygote connection closes, and nothing else is sent.
	w.zconn.Close()
	if !gone(w.pid) {
		t.Fatalf("worker %d outlived its client's connection", w.pid)
	}
}

func TestZygoteMatchesEnvironment(t *testing.T) {
	cfg := scoreConfig(t, echoScore, 1)
	cfg.ZygoteDir = zygoteDir(t)
	z := startZygote(t, ZygoteConfig{Python: cfg.Python, Env: cfg.Env, Dir: cfg.ZygoteDir})

	// A startup variable of its own names another zygote, which does not
	// exist: the pool starts its workers afresh.
	other := cfg
	other.Env = append(append([]string{}, cfg.Env...), "PYTHONPATH="+t.TempDir())
	other.LogPath = filepath.Join(t.TempDir(), "other.log")
	p, err := Start(context.Background(), other)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if p.zygote != "" {
		t.Errorf("a pool with its own PYTHONPATH uses zygote %s", p.zygote)
	}
	if got := parentOf(t, workerPIDs(p)[0]); got == z.cmd.Process.Pid {
		t.Error("the worker was forked from a zygote with another PYTHONPATH")
	}
	p.Close()

	// Other variables make no difference.
	same := cfg
	same.Env = append(append([]string{}, cfg.Env...), "MLFLOW_TRACKING_URI=http://127.0.0.1:1")
	if ZygoteSocket(cfg.ZygoteDir, cfg.Python, same.Env) != ZygoteSocket(cfg.ZygoteDir, cfg.Python, cfg.Env) {
		t.Error("a variable read after start changes the zygote's key")
	}

	// Asked directly, the zygote itself refuses a request whose startup
	// variables differ from its own, naming them.
	p2 := &Pool{zygote: z.Socket, env: append(append([]string{}, cfg.Env...), "PYTHONUNBUFFERED=1", "OMP_NUM_THREADS=1")}
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer wr.Close()
	w := &worker{exited: make(chan struct{})}
	err = p2.fork(w, []string{"worker.py", "--socket", filepath.Join(t.TempDir(), "x.sock"), "--mode", "score"}, "", wr)
	if err == nil || !strings.Contains(err.Error(), "OMP_NUM_THREADS") {
		t.Errorf("fork with another OMP_NUM_THREADS: err = %v, want a refusal naming it", err)
		if err == nil {
			syscall.Kill(w.pid, syscall.SIGKILL)
		}
	}
}

func TestZygoteGone(t *testing.T) {
	p, cfg, z := startForked(t, echoScore, 1)
	w := p.slots[0].w
	// A zygote that dies takes no worker with it, but the pool no longer
	// knows when the worker exits: it kills it and starts a fresh one.
	z.Close()
	if z.Ready() {
		t.Error("Ready() = true after Close")
	}
	if !gone(w.pid) {
		t.Fatalf("the orphaned worker %d still runs", w.pid)
	}
	if got, want := predict(t, p, "x"), `[1.5, 2.5]`; got != want {
		t.Errorf("answer = %s, want %s", got, want)
	}
	log, _ := os.ReadFile(cfg.LogPath)
	if !strings.Contains(string(log), "no warm start") || !strings.Contains(string(log), "its warm parent process ended") {
		t.Errorf("log does not tell of the zygote's end and the fresh start:\n%s", log)
	}
}

func TestZygoteWarmMLflowModel(t *testing.T) {
	py := mlflowPython(t)
	dir := t.TempDir()
	expect := trainSklearn(t, py, dir)
	// Laid out as a deployment's model folder is: the MLflow model one
	// level down.
	model := t.TempDir()
	if err := os.Rename(filepath.Join(dir, "model"), filepath.Join(model, "model")); err != nil {
		t.Fatal(err)
	}
	zdir := zygoteDir(t)
	zlog := &lockedBuffer{}
	// Not waited for: the pool finds it still importing mlflow and waits
	// for it rather than starting its workers afresh.
	z, err := StartZygote(ZygoteConfig{Python: py, Env: testEnv(), Dir: zdir, WarmModels: []string{model}, Log: zlog})
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()

	cfg := Config{Python: py, Mode: ModePyfunc, ModelDir: model, Env: testEnv(), Instances: 2,
		LogPath: filepath.Join(dir, "worker.log"), StartTimeout: 2 * time.Minute, ZygoteDir: zdir}
	if z.Ready() {
		t.Log("the zygote was ready before the pool started; the wait for it is not exercised")
	}
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer p.Close()
	checkForked(t, p, z, cfg.LogPath)
	checkSklearn(t, p, expect)

	// Asking for the model it started with answers how that went,
	// without loading it again; with no model, the error says why.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := z.Warm(ctx, model); err != nil {
		t.Errorf("Warm: %v", err)
	}
	var le *LoadError
	if err := z.Warm(ctx, filepath.Join(dir, "nothing-here")); !errors.As(err, &le) {
		t.Errorf("Warm of a missing model: %v, want a *LoadError", err)
	}
	if got, want := strings.Count(zlog.String(), "warmed with the model"), 1; got != want {
		t.Errorf("zygote log shows %d warm loads, want %d:\n%s", got, want, zlog)
	}
}

// A zygote whose interpreter cannot import mlflow still starts (a batch
// driver may not need it), and says so when asked about its model.
func TestZygoteWithoutMLflowSaysSo(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not on PATH")
	}
	if exec.Command(py, "-c", "import mlflow").Run() == nil {
		t.Skip("the host's python3 has mlflow")
	}
	model := t.TempDir()
	if err := os.WriteFile(filepath.Join(model, "MLmodel"), []byte("flavors:\n  python_function: {loader_module: mlflow.sklearn}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	z := startZygote(t, ZygoteConfig{Python: py, Env: testEnv(), Dir: zygoteDir(t), WarmModels: []string{model}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var le *LoadError
	if err := z.Warm(ctx, model); !errors.As(err, &le) || !strings.Contains(le.Message, "No module named 'mlflow'") || le.Model != model {
		t.Errorf("Warm: %v, want the missing mlflow", err)
	}
}
