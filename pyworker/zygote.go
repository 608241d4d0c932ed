package pyworker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wharfml/wharf/sandbox"
)

// A zygote is a warm Python process: it has imported mlflow, pandas,
// pyarrow and the libraries of the models it was warmed with, and forks
// workers on request. A worker forked from it loads its model in tens of
// milliseconds, where a fresh interpreter spends seconds importing the
// same libraries; that is the whole start-up of a batch job's workers.
//
// Zygotes live in a folder, each under a socket named by ZygoteSocket for
// its interpreter and startup environment, so a pool given the folder
// (Config.ZygoteDir) finds the one that matches it, in this process or in
// a job's.

// startupPrefixes name the environment variables that take effect when an
// interpreter or a native library starts (module search, loader paths,
// thread pools). A forked worker keeps its zygote's, so they are part of a
// zygote's key; worker.py refuses a request whose values differ.
var startupPrefixes = []string{"PYTHON", "LD_", "OMP_", "MKL_", "OPENBLAS_", "GOTO_", "BLIS_",
	"VECLIB_", "NUMEXPR_", "KMP_", "CUDA_", "MALLOC_"}

// startupVars returns env's startup variables, sorted, the last value of a
// repeated name winning as it does for exec.
func startupVars(env []string) []string {
	last := map[string]string{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		for _, pre := range startupPrefixes {
			if strings.HasPrefix(k, pre) {
				last[k] = kv
				break
			}
		}
	}
	out := make([]string, 0, len(last))
	for _, kv := range last {
		out = append(out, kv)
	}
	slices.Sort(out)
	return out
}

// ZygoteSocket returns the socket in dir of the zygote for interpreter
// python (a path) running with environment env.
func ZygoteSocket(dir, python string, env []string) string {
	h := sha256.New()
	io.WriteString(h, python)
	for _, kv := range startupVars(env) {
		io.WriteString(h, "\x00"+kv)
	}
	return filepath.Join(dir, "z-"+hex.EncodeToString(h.Sum(nil))[:16]+".sock")
}

// warmingSuffix marks a zygote that is still importing: its socket name
// with this suffix exists from its start until it is ready or has exited.
const warmingSuffix = ".warming"

// awaitZygote returns sock if its zygote is ready, after waiting (up to
// timeout) for one that is still warming: it does the same imports a fresh
// worker would and began earlier, so waiting never costs more than starting
// afresh. It returns "" when there is no zygote to use.
func awaitZygote(ctx context.Context, sock string, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		if fileExists(sock) {
			return sock
		}
		if !fileExists(sock+warmingSuffix) || time.Now().After(deadline) {
			return ""
		}
		select {
		case <-ctx.Done():
			return ""
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ZygoteConfig describes a zygote.
type ZygoteConfig struct {
	// Python is the interpreter, as in Config.
	Python string
	// Env is the complete environment, as in Config; pools whose
	// environment has the same startup variables can use the zygote.
	Env []string
	// Dir is the folder of zygotes, given to pools as Config.ZygoteDir.
	// Its path must be short enough for a socket name (about 80 bytes).
	Dir string
	// WarmModels are MLflow model folders loaded once at start, for their
	// libraries; a model that fails to load is logged and skipped.
	WarmModels []string
	// Log receives the zygote's output; nil discards it.
	Log io.Writer
	// Sandbox, when set, runs the zygote, and so every worker forked
	// from it, in a sandbox as the sandbox's user. It sees Dir
	// (read-write), its models, its interpreter's installation and
	// Mounts; a worker forked for a job reads the job's files, so
	// Mounts must show them (see scheduler.Warm).
	Sandbox *sandbox.Sandbox
	// Mounts are further host paths the sandboxed zygote may reach.
	Mounts []sandbox.Mount
}

// Socket returns where the zygote cfg describes listens, which names it:
// starting a second one with the same socket replaces the first.
func (cfg ZygoteConfig) Socket() (string, error) {
	_, _, sock, err := cfg.resolve()
	return sock, err
}

// resolve finds the interpreter, the environment a zygote runs with (as a
// pool's workers would) and its socket.
func (cfg ZygoteConfig) resolve() (python string, env []string, sock string, err error) {
	python = cfg.Python
	if python == "" {
		python = "python3"
	}
	if python, err = findPython(python, cfg.Env); err != nil {
		return "", nil, "", err
	}
	env = append(append([]string{}, cfg.Env...), "PYTHONUNBUFFERED=1")
	sock = ZygoteSocket(cfg.Dir, python, env)
	if len(sock) > socketPathMax {
		return "", nil, "", fmt.Errorf("pyworker: zygote socket path %s is too long for a socket", sock)
	}
	return python, env, sock, nil
}

// Zygote is a running warm process.
type Zygote struct {
	// Socket is where it listens, once warm.
	Socket string

	cmd    *exec.Cmd
	dir    string // private folder with worker.py
	exited chan struct{}
	mu     sync.Mutex // serializes Warm requests
}

// StartZygote starts a zygote and returns at once; it takes requests once
// warm (Ready). It dies with this process.
func StartZygote(cfg ZygoteConfig) (*Zygote, error) {
	python, env, sock, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("pyworker: zygote folder: %w", err)
	}
	dir, err := os.MkdirTemp("", "wharf-zygote-")
	if err != nil {
		return nil, fmt.Errorf("pyworker: create work folder: %w", err)
	}
	script := filepath.Join(dir, "worker.py")
	if err := os.WriteFile(script, workerScript, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pyworker: write worker script: %w", err)
	}
	_ = os.Remove(sock) // left by a zygote that was killed
	if err := os.WriteFile(sock+warmingSuffix, nil, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pyworker: %w", err)
	}
	args := []string{python, script, "--socket", sock, "--mode", "zygote"}
	for _, m := range cfg.WarmModels {
		args = append(args, "--warm-model", m)
	}
	out := cfg.Log
	if out == nil {
		out = io.Discard
	}
	z := &Zygote{Socket: sock, dir: dir, exited: make(chan struct{})}
	z.cmd = &exec.Cmd{Path: python, Args: args, Env: env, Dir: dir}
	if cfg.Sandbox != nil {
		if z.cmd, err = cfg.sandboxed(python, args, env, dir); err != nil {
			_ = os.Remove(sock + warmingSuffix)
			os.RemoveAll(dir)
			return nil, err
		}
	}
	z.cmd.Stdout, z.cmd.Stderr = out, out
	z.cmd.SysProcAttr = sandbox.OwnSession()
	err = startPinned(z.cmd, func() {
		_ = os.Remove(sock)
		_ = os.Remove(sock + warmingSuffix)
		os.RemoveAll(dir)
		close(z.exited)
	})
	if err != nil {
		_ = os.Remove(sock + warmingSuffix)
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pyworker: cannot run %s: %w", python, err)
	}
	return z, nil
}

// sandboxed returns the command that runs the zygote in cfg.Sandbox,
// handing it its socket folder, its script and its models.
func (cfg ZygoteConfig) sandboxed(python string, args, env []string, dir string) (*exec.Cmd, error) {
	box := cfg.Sandbox
	if err := box.Own(append([]string{cfg.Dir, dir}, cfg.WarmModels...)...); err != nil {
		return nil, err
	}
	mounts := append([]sandbox.Mount{{Path: cfg.Dir, Writable: true}, {Path: dir}}, cfg.Mounts...)
	for _, m := range cfg.WarmModels {
		mounts = append(mounts, sandbox.Mount{Path: m})
	}
	mounts = append(mounts, sandbox.ProgramMounts(python)...)
	return box.Command(sandbox.Spec{Argv: args, Env: env, Dir: dir, Mounts: mounts})
}

// Ready reports whether the zygote is warm and taking requests.
func (z *Zygote) Ready() bool {
	select {
	case <-z.exited:
		return false
	default:
		return fileExists(z.Socket)
	}
}

// Exited is closed when the zygote's process has ended.
func (z *Zygote) Exited() <-chan struct{} { return z.exited }

// LoadError is a model a zygote could not load: its interpreter lacks
// what the model needs (mlflow itself, or the model's libraries), so
// workers of that interpreter cannot serve it either.
type LoadError struct {
	// Model is the model folder.
	Model string
	// Message is the Python exception, as "ModuleNotFoundError: No
	// module named 'mlflow'".
	Message string
}

// Error returns the exception.
func (e *LoadError) Error() string { return e.Message }

// Warm asks a ready zygote to load one more model for its libraries. It
// returns a *LoadError if the model failed to load. Asking for a model the
// zygote was started with, or has loaded before, costs no second load: it
// answers what loading it gave, so a caller learns whether the models it
// was started with loaded.
func (z *Zygote) Warm(ctx context.Context, modelDir string) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unixpacket", z.Socket)
	if err != nil {
		return err
	}
	c := conn.(*net.UnixConn)
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req, _ := json.Marshal(map[string]string{"warm": modelDir})
	if _, err := c.Write(req); err != nil {
		return err
	}
	rep, err := readReply(c, time.Time{})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if rep.Error != "" {
		return &LoadError{Model: modelDir, Message: rep.Error}
	}
	return nil
}

// Close kills the zygote and waits for it. Workers forked from it live on
// until their pools end them.
func (z *Zygote) Close() error {
	_ = syscall.Kill(-z.cmd.Process.Pid, syscall.SIGKILL)
	<-z.exited
	return nil
}
