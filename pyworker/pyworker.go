// Package pyworker serves MLflow pyfunc models, Azure-style scoring scripts
// (score.py with init and run) and Azure-style batch drivers
// (batch_driver.py with init and run(mini_batch)) through a pool of Python
// processes.
//
// Each worker is a Python process running the embedded worker.py. It loads
// the model, or imports the scoring script and calls its init, once; then it
// answers one request at a time over a Unix domain socket that only the pool
// is connected to. Messages are length-prefixed frames with a 13-byte binary
// header, so a request costs one write and usually one read on each side.
// A frame may carry a micro-batch, several requests answered together
// (PredictMerged, PredictEach), with one outcome per request.
//
// Workers run in their own process groups and die with the server
// (Pdeathsig, or for a worker forked from a zygote, the zygote killing it
// when the pool's connection to it closes). A pool given a folder of
// zygotes (Config.ZygoteDir, see StartZygote) forks its workers from the
// warm one that matches its interpreter and startup environment, so they
// skip importing their libraries. A worker that exits is replaced at once, and with growing
// pauses if its replacements keep dying young. A request whose context ends
// while a worker is on it gets ctx.Err() at once, and that worker is killed
// and replaced rather than waited for: Python offers no safe way to
// interrupt the user's code, waiting for it is unbounded (a stuck run()
// never answers), and a killed worker cannot deliver a late answer to the
// next request.
package pyworker

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/sandbox"
)

//go:embed worker.py
var workerScript []byte

// Modes a pool can serve in.
const (
	// ModePyfunc loads an MLflow model with mlflow.pyfunc.load_model
	// and predicts on tabular JSON: {"columns": [...], "data": [[...]]}
	// with optional "params" (also accepted under "input_data" or
	// "dataframe_split", or as records under "dataframe_records").
	// The answer is the predictions as a JSON value, without a wrapper
	// object, as Azure ML's MLflow deployments answer.
	ModePyfunc = "pyfunc"
	// ModeScore imports an Azure ML scoring script, calls its init()
	// once with AZUREML_MODEL_DIR set to the model folder, and answers
	// each request with json.dumps(run(body)).
	ModeScore = "score"
	// ModeBatch imports an Azure ML batch driver, which must define
	// init() and run(mini_batch), and calls init() once with
	// AZUREML_MODEL_DIR set to the model folder. Each request is a JSON
	// list of file paths, passed to run() as a list of str; the answer is
	// a JSON list of strings, the output rows run() returned: a pandas
	// DataFrame gives one CSV line per row, without header or index; a
	// list gives one row per element, a str as it is, a list, tuple or
	// numpy row as a CSV line of its items. Anything else run() returns
	// is a *ModelError (TypeError).
	ModeBatch = "batch"
)

// DefaultStartTimeout is how long a worker may take to load its model when
// Config.StartTimeout is zero. Large models take minutes to deserialize.
const DefaultStartTimeout = 5 * time.Minute

// MaxMessage is the largest request or answer a worker exchanges, in bytes.
// It stops a corrupt length from allocating gigabytes; the router limits
// request bodies far below it.
const MaxMessage = 1 << 30

// Frame kinds; worker.py defines the same.
const (
	kindPredict    = 'P'
	kindReady      = 'R'
	kindResult     = 'O'
	kindInputError = 'B'
	kindModelError = 'E'
	kindFatal      = 'F'
	kindEach       = 'S'
	kindMulti      = 'M'
)

// multiUnmerged is the flag of a MULTI answer whose worker scored each
// request alone because the model's output did not have one row per input
// row.
const multiUnmerged = 1

// headerSize is the frame header: payload length (uint32), kind (byte),
// request id (uint64), big-endian.
const headerSize = 13

const (
	// stableAfter is how long a worker must have served for its death
	// to count as a fresh failure rather than part of a crash loop.
	stableAfter = 30 * time.Second
	// Pauses before restarting a worker that keeps dying young: none for
	// the first death, then minBackoff doubling up to maxBackoff.
	minBackoff = 250 * time.Millisecond
	maxBackoff = 10 * time.Second
	// exitWait bounds how long a failed exchange waits for the worker's
	// exit status, to say how it died.
	exitWait = 500 * time.Millisecond
	// socketPathMax keeps socket paths under the kernel's sun_path limit.
	socketPathMax = 100
)

// defaultPath is searched for the interpreter when Config.Env has no PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Errors from Predict besides *InputError, *ModelError and the context's own
// error. Router mapping: ErrWorkerCrashed to 502, ErrUnavailable and
// ErrClosed to 503.
var (
	// ErrWorkerCrashed wraps the error of a request whose worker died
	// (or broke the protocol) while handling it. The worker is being
	// replaced; the request may be retried if it is idempotent.
	ErrWorkerCrashed = errors.New("pyworker: model worker crashed")
	// ErrUnavailable wraps the error of a request that came while no
	// worker was running and the last attempt to start one failed.
	ErrUnavailable = errors.New("pyworker: no model worker is running")
	// ErrClosed is returned for requests to a closed pool.
	ErrClosed = errors.New("pyworker: pool is closed")
)

// ModelError is an exception raised by the model's predict or the scoring
// script's run (or by encoding its result as JSON). The worker survives it
// and its traceback goes to the log. It maps to HTTP 500 with Error() as
// the message.
type ModelError struct {
	// Type is the exception class, module-qualified unless built in.
	Type string `json:"type"`
	// Message is str() of the exception.
	Message string `json:"message"`
}

// Error returns "Type: Message", as Python prints an exception.
func (e *ModelError) Error() string { return e.Type + ": " + e.Message }

// InputError is a request body the worker could not turn into model input
// (pyfunc mode only): not JSON, not a table, or rejected by the model's
// signature. It maps to HTTP 400.
type InputError struct {
	// Message says what is wrong with the input.
	Message string `json:"message"`
}

// Error returns the reason the input was refused.
func (e *InputError) Error() string { return "invalid model input: " + e.Message }

// StartError is a worker that did not become ready: loading the model or the
// scoring script's init failed, the process died, or it took longer than
// StartTimeout.
type StartError struct {
	// Message says what went wrong in one line, e.g. the exception as
	// "ValueError: no such file".
	Message string
	// Detail is Python's traceback, or the last lines the worker wrote
	// when it died without reporting one; it may be empty.
	Detail string
}

// Error returns Message and, on the following lines, Detail.
func (e *StartError) Error() string {
	if e.Detail == "" {
		return "pyworker: model worker failed to start: " + e.Message
	}
	return "pyworker: model worker failed to start: " + e.Message + "\n" + strings.TrimRight(e.Detail, "\n")
}

// Config describes a pool.
type Config struct {
	// Python is the interpreter, e.g. a pyenv environment's. A name
	// without a slash is looked up in the PATH of Env. Empty means
	// python3.
	Python string
	// Mode is ModePyfunc, ModeScore or ModeBatch.
	Mode string
	// ModelDir is the folder AZUREML_MODEL_DIR names. In pyfunc mode
	// (required) the MLflow model is loaded from it, or from its one
	// sub-folder as Azure ML lays out a registered folder
	// (AZUREML_MODEL_DIR/model/MLmodel); score and batch mode workers
	// find their files in it themselves (may be empty).
	ModelDir string
	// CodeDir holds the scoring script and its modules (score and
	// batch). It goes first on sys.path and is the worker's working
	// directory.
	CodeDir string
	// ScoringScript is the script's path relative to CodeDir (score and
	// batch, required).
	ScoringScript string
	// Env is the complete environment of the workers; nothing is
	// inherited from the server. PYTHONUNBUFFERED=1 is added so prints
	// reach the log as they happen.
	Env []string
	// Instances is the number of worker processes; zero means one.
	Instances int
	// LogPath receives the workers' stdout and stderr, tracebacks of
	// failed requests, and a line for each worker start and exit. It is
	// created with mode 0600 if needed and appended to. Empty sends it
	// to Log.
	LogPath string
	// Log receives what LogPath would when LogPath is empty, e.g. a
	// batch job's own output; nil discards it. Writes to it are
	// serialized.
	Log io.Writer
	// ZygoteDir is a folder of warm processes (StartZygote). When it
	// holds one for this pool's interpreter and startup environment
	// (ZygoteSocket), workers are forked from it, skipping the imports;
	// otherwise, or when it refuses, they are started afresh.
	ZygoteDir string
	// StartTimeout bounds loading the model in each worker, at Start and
	// on every restart; zero means DefaultStartTimeout.
	StartTimeout time.Duration
	// Sandbox, when set, starts every worker in a sandbox (and never
	// forks one from a zygote, which runs outside it). The sandbox sees
	// the model and code folders read-only, the pool's own socket folder,
	// the interpreter's installation and Mounts.
	Sandbox *sandbox.Sandbox
	// Mounts are further host paths the sandboxed workers may reach.
	Mounts []sandbox.Mount
	// ProgramArgs (batch) are the driver's command-line arguments: its
	// sys.argv after the script's own path, as an Azure ML parallel
	// job's program_arguments reach its entry script.
	ProgramArgs []string
	// SpaceRows (batch) writes the rows of a returned DataFrame or list
	// space-separated, as a parallel job appends them, instead of as CSV.
	SpaceRows bool
	// LoggingLevel (batch), when set, configures Python's logging at that
	// level (DEBUG, INFO, WARNING) on the worker's stderr.
	LoggingLevel string
}

// Pool is a set of running workers for one model. Its methods are safe for
// concurrent use.
type Pool struct {
	cfg     Config
	python  string
	env     []string
	dir     string // private folder with worker.py and the sockets
	script  string
	zygote  string // socket of the warm process to fork from, if any
	timeout time.Duration

	log     io.Writer // nil when there is no log
	logFile *os.File  // the log opened from LogPath, closed by cleanup
	logMu   sync.Mutex

	slots []*slot
	// idle holds the slots whose worker is ready and not busy; each
	// slot is in it at most once, so sends never block.
	idle chan *slot

	ctx       context.Context // ended by Close, to stop restarts
	cancel    context.CancelFunc
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	errMu   sync.Mutex
	lastErr error // the last failed restart, cleared by a good one

	restarts atomic.Int64
}

// slot is one of the pool's Instances places; its worker is replaced when it
// dies.
type slot struct {
	index  int
	mu     sync.Mutex
	w      *worker // the current worker; a dead one while restarting
	queued bool    // in Pool.idle
	busy   bool    // held by a request
}

// worker is one Python process.
type worker struct {
	slot    int
	pid     int
	readyAt time.Time

	exited chan struct{} // closed once the process is reaped
	status string        // how it ended ("exit status 1"), set before exited is closed
	// zconn is the connection to the zygote a worker was forked from;
	// nil for a worker this pool started itself.
	zconn      *net.UnixConn
	output     *tailBuffer
	outputDone chan struct{}

	// broken is set when the pool gave up on the worker: its stream is
	// out of step or it is being killed. intentional is set when that
	// was the pool's choice (a request timed out), not a failure.
	broken      atomic.Bool
	intentional atomic.Bool

	mu     sync.Mutex
	conn   *net.UnixConn
	reaped bool

	// Used only by the request holding the worker.
	br     *bufio.Reader
	nextID uint64
	rhdr   [headerSize]byte
	wbuf   []byte
}

// Start starts cfg.Instances workers and returns once all of them have
// loaded the model. If any fails, all are stopped and the error is a
// *StartError carrying the worker's own exception and traceback (or a
// configuration error, or ctx's error). ctx bounds only the start; the pool
// runs until Close.
func Start(ctx context.Context, cfg Config) (*Pool, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	python := cfg.Python
	if python == "" {
		python = "python3"
	}
	python, err := findPython(python, cfg.Env)
	if err != nil {
		return nil, err
	}
	n := cfg.Instances
	if n == 0 {
		n = 1
	}
	p := &Pool{
		cfg:     cfg,
		python:  python,
		env:     append(append([]string{}, cfg.Env...), "PYTHONUNBUFFERED=1"),
		timeout: cfg.StartTimeout,
		idle:    make(chan *slot, n),
		closed:  make(chan struct{}),
	}
	if p.timeout <= 0 {
		p.timeout = DefaultStartTimeout
	}
	if cfg.ZygoteDir != "" {
		p.zygote = awaitZygote(ctx, ZygoteSocket(cfg.ZygoteDir, python, p.env), p.timeout)
	}
	if err := p.prepare(); err != nil {
		p.cleanup()
		return nil, err
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())

	workers := make([]*worker, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			workers[i], errs[i] = p.startWorker(ctx, i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, w := range workers {
			if w != nil {
				w.kill(true)
				<-w.exited
			}
		}
		p.cancel()
		p.cleanup()
		// Every worker loads the same model, so the first error
		// usually says it all.
		for _, e := range errs {
			if e != nil {
				return nil, e
			}
		}
	}
	for i, w := range workers {
		s := &slot{index: i, w: w, queued: true}
		p.slots = append(p.slots, s)
		p.idle <- s
		p.wg.Add(1)
		go p.supervise(s, w)
	}
	return p, nil
}

func (c *Config) validate() error {
	switch c.Mode {
	case ModePyfunc:
		if c.ModelDir == "" {
			return wharf.Errorf(wharf.EINVALID, "a pyfunc model worker needs the model folder")
		}
	case ModeScore, ModeBatch:
		if c.ScoringScript == "" {
			return wharf.Errorf(wharf.EINVALID, "a scoring script worker needs the scoring script")
		}
	default:
		return wharf.Errorf(wharf.EINVALID, "unknown model worker mode %q; want %q, %q or %q", c.Mode, ModePyfunc, ModeScore, ModeBatch)
	}
	if c.Instances < 0 {
		return wharf.Errorf(wharf.EINVALID, "instance count %d is negative", c.Instances)
	}
	return nil
}

// prepare creates the pool's private folder, writes worker.py into it and
// opens the log.
func (p *Pool) prepare() error {
	parent, prefix := "", "wharf-pyworker-"
	if p.zygote != "" {
		// Beside the zygote's socket: a worker forked from a sandboxed
		// zygote sees that folder, not this process's temporary one. A
		// short name, since the sockets go in it.
		parent, prefix = filepath.Dir(p.zygote), "p-"
	}
	dir, err := os.MkdirTemp(parent, prefix)
	if err == nil && len(dir)+len("/w0000.sock") > socketPathMax {
		// A long TMPDIR would overflow sun_path.
		os.Remove(dir)
		dir, err = os.MkdirTemp("/tmp", "wharf-pyworker-")
	}
	if err != nil {
		return fmt.Errorf("pyworker: create work folder: %w", err)
	}
	p.dir = dir
	p.script = filepath.Join(dir, "worker.py")
	if err := os.WriteFile(p.script, workerScript, 0o600); err != nil {
		return fmt.Errorf("pyworker: write worker script: %w", err)
	}
	if p.cfg.LogPath != "" {
		f, err := os.OpenFile(p.cfg.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("pyworker: open log: %w", err)
		}
		p.logFile, p.log = f, f
	} else if p.cfg.Log != nil {
		p.log = p.cfg.Log
	}
	return nil
}

func (p *Pool) cleanup() {
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
	if p.logFile != nil {
		p.logFile.Close()
	}
}

// startWorker starts the worker of slot index and waits until it is ready.
// On failure nothing of it is left running.
func (p *Pool) startWorker(ctx context.Context, index int) (*worker, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	began := time.Now()
	sock := filepath.Join(p.dir, "w"+strconv.Itoa(index)+".sock")
	// Left behind by a worker that died before it accepted.
	_ = os.Remove(sock)
	args := []string{p.python, p.script, "--socket", sock, "--mode", p.cfg.Mode, "--model-dir", p.cfg.ModelDir}
	dir := ""
	if p.cfg.Mode == ModeScore || p.cfg.Mode == ModeBatch {
		args = append(args, "--code-dir", p.cfg.CodeDir, "--scoring-script", p.cfg.ScoringScript)
		dir = p.cfg.CodeDir
	}
	if p.cfg.Mode == ModeBatch {
		args = append(args, p.cfg.batchArgs()...)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pyworker: %w", err)
	}
	w := &worker{
		slot:       index,
		exited:     make(chan struct{}),
		output:     &tailBuffer{max: 8 << 10},
		outputDone: make(chan struct{}),
	}
	forked := false
	if p.zygote != "" && p.cfg.Sandbox == nil {
		if err = p.fork(w, args[1:], dir, pw); err == nil {
			forked = true
		} else {
			p.logf("worker %d: no warm start (%v); starting it afresh", index, err)
		}
	}
	if !forked {
		err = p.exec(w, args, dir, pw)
	}
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, &StartError{Message: fmt.Sprintf("cannot run %s: %v", p.python, err)}
	}
	go p.copyOutput(w, pr)
	if forked {
		p.logf("worker %d (pid %d) forked from the warm process", index, w.pid)
	} else {
		p.logf("worker %d (pid %d) starting", index, w.pid)
	}

	fail := func(err error) (*worker, error) {
		w.kill(true)
		<-w.exited
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	conn, err := dial(sctx, sock, w.exited)
	if err == nil {
		w.mu.Lock()
		if w.reaped {
			conn.Close()
		} else {
			w.conn = conn
		}
		w.mu.Unlock()
		w.br = bufio.NewReaderSize(conn, 64<<10)
		fired := make(chan struct{})
		stop := context.AfterFunc(sctx, func() {
			conn.SetReadDeadline(time.Unix(1, 0))
			close(fired)
		})
		var kind byte
		var payload []byte
		kind, _, payload, err = w.readFrame()
		if !stop() {
			<-fired
			conn.SetReadDeadline(time.Time{})
		}
		switch {
		case err == nil && kind == kindReady:
			w.readyAt = time.Now()
			p.logf("worker %d (pid %d) ready in %s", index, w.pid, w.readyAt.Sub(began).Round(time.Millisecond))
			return w, nil
		case err == nil && kind == kindFatal:
			var report struct {
				Type      string `json:"type"`
				Message   string `json:"message"`
				Traceback string `json:"traceback"`
			}
			if json.Unmarshal(payload, &report) != nil {
				report.Message = string(payload)
			}
			msg := report.Message
			if report.Type != "" {
				msg = report.Type + ": " + report.Message
			}
			// It exits by itself after reporting.
			select {
			case <-w.exited:
			case <-time.After(5 * time.Second):
			}
			p.logf("worker %d (pid %d) failed to load the model: %s", index, w.pid, msg)
			return fail(&StartError{Message: msg, Detail: report.Traceback})
		case err == nil:
			err = fmt.Errorf("unexpected message kind %q", kind)
		}
	}
	switch {
	case ctx.Err() != nil:
		return fail(ctx.Err())
	case sctx.Err() != nil:
		p.logf("worker %d (pid %d) not ready after %s; killing it", index, w.pid, p.timeout)
		return fail(&StartError{Message: fmt.Sprintf("not ready after %s", p.timeout), Detail: w.lastOutput()})
	}
	select {
	case <-w.exited:
		msg := "exited with " + w.status + " before it was ready"
		p.logf("worker %d (pid %d) %s", index, w.pid, msg)
		return fail(&StartError{Message: msg, Detail: w.lastOutput()})
	case <-time.After(exitWait):
	}
	return fail(&StartError{Message: fmt.Sprintf("talking to the worker: %v", err), Detail: w.lastOutput()})
}

// exec starts w as a new process running args, its output going to out.
func (p *Pool) exec(w *worker, args []string, dir string, out *os.File) error {
	cmd := &exec.Cmd{
		Path: p.python,
		Args: args,
		Dir:  dir,
		Env:  p.env,
	}
	if p.cfg.Sandbox != nil {
		var err error
		if cmd, err = p.sandboxed(args, dir); err != nil {
			return err
		}
	}
	// A pipe of our own rather than exec's copying: Wait then returns
	// when the worker exits, whatever inherited the pipe.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sandbox.OwnSession()
	err := startPinned(cmd, func() {
		w.mu.Lock()
		w.status = exitText(cmd.ProcessState)
		w.reaped = true
		// Whatever the worker started goes with it. Its group id
		// cannot be reused while members remain.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if w.conn != nil {
			w.conn.Close()
		}
		w.mu.Unlock()
		close(w.exited)
	})
	if err != nil {
		return err
	}
	w.pid = cmd.Process.Pid
	return nil
}

// sandboxed returns the command that runs a worker in the pool's sandbox,
// handing it the pool's socket folder.
func (p *Pool) sandboxed(args []string, dir string) (*exec.Cmd, error) {
	box := p.cfg.Sandbox
	// The model and code are mounted read-only; owning them lets the
	// worker read files materialized only for the server.
	if err := box.Own(p.dir, p.cfg.ModelDir, p.cfg.CodeDir); err != nil {
		return nil, err
	}
	mounts := append([]sandbox.Mount{{Path: p.dir, Writable: true}}, p.cfg.Mounts...)
	for _, d := range []string{p.cfg.ModelDir, p.cfg.CodeDir} {
		if d != "" {
			mounts = append(mounts, sandbox.Mount{Path: d})
		}
	}
	mounts = append(mounts, sandbox.ProgramMounts(p.python)...)
	return box.Command(sandbox.Spec{Argv: args, Env: p.env, Dir: dir, Mounts: mounts})
}

// startPinned starts cmd and, once it has exited and been waited for,
// calls reaped. Pdeathsig fires when the thread that forked the child
// exits; holding that thread until the child is reaped keeps the runtime
// from retiring it under a live process.
func startPinned(cmd *exec.Cmd, reaped func()) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait() // the status is in cmd.ProcessState
		reaped()
	}()
	return <-started
}

// forkTimeout bounds a zygote's answer to a fork request; forking takes
// milliseconds, unless the zygote is busy loading a model to warm.
const forkTimeout = 30 * time.Second

// fork asks the pool's zygote for a worker running args (without the
// interpreter), its output going to out. The zygote reports the worker's
// exit on the same connection, and kills it when the connection ends, so
// the worker dies with this process as an exec'd one does by Pdeathsig.
func (p *Pool) fork(w *worker, args []string, dir string, out *os.File) error {
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: p.zygote, Net: "unixpacket"})
	if err != nil {
		return err
	}
	req, err := json.Marshal(forkRequest{Args: args, Dir: dir, Env: p.env})
	if err == nil {
		_, _, err = c.WriteMsgUnix(req, syscall.UnixRights(int(out.Fd())), nil)
	}
	var rep zygoteReply
	if err == nil {
		rep, err = readReply(c, time.Now().Add(forkTimeout))
	}
	if err == nil && rep.Error != "" {
		err = errors.New(rep.Error)
	}
	if err == nil && rep.PID <= 0 {
		err = fmt.Errorf("the warm process answered no pid")
	}
	if err != nil {
		c.Close()
		return err
	}
	w.pid, w.zconn = rep.PID, c
	go func() {
		last, err := readReply(c, time.Time{})
		w.mu.Lock()
		switch {
		case err != nil:
			// The zygote died: the worker may live on, orphaned.
			_ = syscall.Kill(-w.pid, syscall.SIGKILL)
			_ = syscall.Kill(w.pid, syscall.SIGKILL)
			w.status = "an unknown status (its warm parent process ended)"
		case last.Signal != 0:
			w.status = "signal " + syscall.Signal(last.Signal).String()
		default:
			w.status = "exit status " + strconv.Itoa(last.Exit)
		}
		w.reaped = true
		c.Close()
		if w.conn != nil {
			w.conn.Close()
		}
		w.mu.Unlock()
		close(w.exited)
	}()
	return nil
}

// forkRequest is what a zygote is asked: the worker's arguments (the
// script first), its working folder and its complete environment.
type forkRequest struct {
	Args []string `json:"args"`
	Dir  string   `json:"dir,omitempty"`
	Env  []string `json:"env"`
}

// zygoteReply is any of a zygote's messages.
type zygoteReply struct {
	PID    int    `json:"pid"`
	Error  string `json:"error"`
	Exit   int    `json:"exit"`
	Signal int    `json:"signal"`
	OK     bool   `json:"ok"`
}

// readReply reads one message from a zygote; a zero deadline waits as long
// as it takes.
func readReply(c *net.UnixConn, deadline time.Time) (zygoteReply, error) {
	var rep zygoteReply
	if err := c.SetReadDeadline(deadline); err != nil {
		return rep, err
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return rep, err
	}
	if n == 0 {
		return rep, io.EOF
	}
	if err := json.Unmarshal(buf[:n], &rep); err != nil {
		return rep, fmt.Errorf("the warm process answered %q: %w", buf[:n], err)
	}
	return rep, nil
}

// errExited stops dialing a worker that died before it listened.
var errExited = errors.New("worker exited")

// dial connects to the worker's socket, which appears once Python has
// started; polling costs a few milliseconds against a start of at least
// tens.
func dial(ctx context.Context, sock string, exited <-chan struct{}) (*net.UnixConn, error) {
	addr := &net.UnixAddr{Name: sock, Net: "unix"}
	pause := time.Millisecond
	for {
		c, err := net.DialUnix("unix", nil, addr)
		if err == nil {
			return c, nil
		}
		t := time.NewTimer(pause)
		select {
		case <-exited:
			t.Stop()
			return nil, errExited
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		if pause < 50*time.Millisecond {
			pause *= 2
		}
	}
}

// copyOutput sends the worker's stdout and stderr to the log, keeping the
// tail for start errors.
func (p *Pool) copyOutput(w *worker, r *os.File) {
	defer close(w.outputDone)
	defer r.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			w.output.Write(buf[:n])
			if p.log != nil {
				p.logMu.Lock()
				p.log.Write(buf[:n])
				p.logMu.Unlock()
			}
		}
		if err != nil {
			return
		}
	}
}

// logf writes a line of the pool's own to the log, marked as Wharf's.
func (p *Pool) logf(format string, args ...any) {
	if p.log == nil {
		return
	}
	line := "wharf: " + fmt.Sprintf(format, args...) + "\n"
	p.logMu.Lock()
	io.WriteString(p.log, line)
	p.logMu.Unlock()
}

// lastOutput returns the last lines the worker wrote, once its output has
// been read to the end or a moment has passed.
func (w *worker) lastOutput() string {
	select {
	case <-w.outputDone:
	case <-time.After(time.Second):
	}
	return lastLines(w.output.String(), 20)
}

// kill ends the worker's process group and its connection. intentional
// marks a kill that is not the worker's fault, so its restart is not
// delayed.
func (w *worker) kill(intentional bool) {
	if intentional {
		w.intentional.Store(true)
	}
	w.broken.Store(true)
	w.mu.Lock()
	defer w.mu.Unlock()
	// After reaping, the group id may belong to someone else.
	if !w.reaped {
		_ = syscall.Kill(-w.pid, syscall.SIGKILL)
		if w.zconn != nil {
			// Before the worker has its own group the kill above
			// misses it; the zygote kills it when this end closes.
			_ = w.zconn.CloseWrite()
		}
	}
	if w.conn != nil {
		w.conn.Close()
	}
}

// usable reports whether the worker can take a request.
func (w *worker) usable() bool {
	if w.broken.Load() {
		return false
	}
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}

// supervise replaces the slot's worker whenever it dies, until Close.
func (p *Pool) supervise(s *slot, w *worker) {
	defer p.wg.Done()
	streak := 0
	for {
		select {
		case <-w.exited:
		case <-p.closed:
			return
		}
		if p.isClosed() {
			return
		}
		if w.intentional.Load() || time.Since(w.readyAt) >= stableAfter {
			streak = 0
		} else {
			streak++
		}
		how := "was stopped"
		if !w.intentional.Load() {
			how = "exited with " + w.status
		}
		p.logf("worker %d (pid %d) %s; restarting it", s.index, w.pid, how)
		for {
			if d := backoff(streak); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-p.closed:
					t.Stop()
					return
				}
			}
			p.restarts.Add(1)
			nw, err := p.startWorker(p.ctx, s.index)
			if err != nil {
				if p.isClosed() {
					return
				}
				p.setLastErr(err)
				p.logf("worker %d failed to restart: %v", s.index, err)
				streak++
				continue
			}
			if !p.publish(s, nw) {
				nw.kill(true)
				<-nw.exited
				return
			}
			p.setLastErr(nil)
			w = nw
			break
		}
	}
}

// publish makes w the slot's worker and offers it to requests, unless the
// pool has been closed meanwhile.
func (p *Pool) publish(s *slot, w *worker) bool {
	s.mu.Lock()
	if p.isClosed() {
		s.mu.Unlock()
		return false
	}
	s.w = w
	push := !s.queued && !s.busy
	if push {
		s.queued = true
	}
	s.mu.Unlock()
	if push {
		p.idle <- s
	}
	return true
}

func backoff(streak int) time.Duration {
	if streak <= 1 {
		return 0
	}
	d := minBackoff
	for i := 2; i < streak && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

func (p *Pool) setLastErr(err error) {
	p.errMu.Lock()
	p.lastErr = err
	p.errMu.Unlock()
}

func (p *Pool) isClosed() bool {
	select {
	case <-p.closed:
		return true
	default:
		return false
	}
}

// Predict sends body to an idle worker, waiting for one if all are busy, and
// returns the worker's JSON answer. The request waits as long as ctx allows:
// the caller limits concurrency itself.
//
// Errors: *InputError (the body is not usable model input), *ModelError (the
// model or script raised), ctx.Err() (the worker is then killed and
// replaced), ErrWorkerCrashed (wrapped; the worker died on this request),
// ErrUnavailable (wrapped; no worker runs and restarting fails) and
// ErrClosed.
func (p *Pool) Predict(ctx context.Context, body []byte) ([]byte, error) {
	return p.call(ctx, kindPredict, kindResult, body)
}

// Outcome is one request's answer within a micro-batch: the JSON answer,
// or the *InputError or *ModelError it would have got alone.
type Outcome struct {
	Out []byte
	Err error
}

// Batch is the answer to a micro-batch, one Outcome per request in order.
type Batch struct {
	Outcomes []Outcome
	// Unmerged is set when the model's output did not have one row per
	// input row, so the worker scored each request alone: merging
	// requests for this model gains nothing.
	Unmerged bool
}

// PredictMerged sends a pyfunc pool the tables of n requests merged into
// one body, {"columns": [...], "data": [...], "sizes": [...]} with each
// request's row count in sizes, in order. The worker scores them in one
// predict() call and splits the output at those counts; when that call
// fails or its output has not one row per input row, it scores each
// request alone, so each Outcome is what that request would have got by
// itself. Errors are those of Predict and apply to every request.
func (p *Pool) PredictMerged(ctx context.Context, body []byte, n int) (*Batch, error) {
	out, err := p.call(ctx, kindPredict, kindMulti, body)
	if err != nil {
		return nil, err
	}
	return parseMulti(out, n)
}

// PredictEach sends a score mode pool several request bodies at once: the
// scoring script's run() gets them as one list of str and returns a list
// with one answer per body (the micro-batching contract of score.py). If
// that call fails, each body is run alone, as a list of one, so that an
// error is its own request's. Errors are those of Predict and apply to
// every request.
func (p *Pool) PredictEach(ctx context.Context, bodies [][]byte) (*Batch, error) {
	if p.cfg.Mode != ModeScore {
		return nil, wharf.Errorf(wharf.EINVALID, "PredictEach needs a %q pool, not %q", ModeScore, p.cfg.Mode)
	}
	size := 0
	for _, b := range bodies {
		size += 4 + len(b)
	}
	body := make([]byte, 0, size)
	for _, b := range bodies {
		body = binary.BigEndian.AppendUint32(body, uint32(len(b)))
		body = append(body, b...)
	}
	out, err := p.call(ctx, kindEach, kindMulti, body)
	if err != nil {
		return nil, err
	}
	return parseMulti(out, len(bodies))
}

// parseMulti reads a MULTI answer that must hold n outcomes.
func parseMulti(b []byte, n int) (*Batch, error) {
	bad := func(why string) (*Batch, error) {
		return nil, fmt.Errorf("%w: the worker's answer to a micro-batch of %d %s", ErrWorkerCrashed, n, why)
	}
	if len(b) < 1 {
		return bad("is empty")
	}
	batch := &Batch{Unmerged: b[0]&multiUnmerged != 0, Outcomes: make([]Outcome, 0, n)}
	b = b[1:]
	for len(b) > 0 {
		if len(b) < 5 {
			return bad("is truncated")
		}
		size := binary.BigEndian.Uint32(b)
		kind := b[4]
		b = b[5:]
		if uint64(size) > uint64(len(b)) {
			return bad("is truncated")
		}
		payload := b[:size:size]
		b = b[size:]
		o, err := answer(kind, payload)
		if err != nil {
			return bad(err.Error())
		}
		batch.Outcomes = append(batch.Outcomes, o)
	}
	if len(batch.Outcomes) != n {
		return bad(fmt.Sprintf("has %d answers", len(batch.Outcomes)))
	}
	return batch, nil
}

// answer reads one answer frame's payload: a result, or the request's
// *InputError or *ModelError.
func answer(kind byte, payload []byte) (Outcome, error) {
	switch kind {
	case kindResult:
		return Outcome{Out: payload}, nil
	case kindInputError:
		e := &InputError{}
		if json.Unmarshal(payload, e) != nil {
			e.Message = string(payload)
		}
		return Outcome{Err: e}, nil
	case kindModelError:
		e := &ModelError{}
		if json.Unmarshal(payload, e) != nil {
			e.Type, e.Message = "Exception", string(payload)
		}
		return Outcome{Err: e}, nil
	}
	return Outcome{}, fmt.Errorf("unexpected message kind %q", kind)
}

// call sends one frame of kind to an idle worker and returns the payload of
// its answer, which must be of kind want (or an input or model error).
func (p *Pool) call(ctx context.Context, kind, want byte, body []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(body) > MaxMessage {
		return nil, &InputError{Message: fmt.Sprintf("the request of %d bytes is over the limit of %d", len(body), MaxMessage)}
	}
	s, w, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	out, err := w.roundTrip(ctx, kind, want, body)
	if err != nil {
		var ie *InputError
		var me *ModelError
		if !errors.As(err, &ie) && !errors.As(err, &me) {
			err = p.failed(ctx, w, err)
		}
	}
	p.release(s)
	return out, err
}

// RunBatch sends one mini-batch of file paths to a ModeBatch pool's driver
// and returns the output rows its run() gave, each without a line end.
// Errors are those of Predict; a *ModelError carries the exception run()
// raised.
func (p *Pool) RunBatch(ctx context.Context, paths []string) ([]string, error) {
	if paths == nil {
		paths = []string{}
	}
	return p.runBatch(ctx, paths)
}

func (p *Pool) runBatch(ctx context.Context, batch any) ([]string, error) {
	if p.cfg.Mode != ModeBatch {
		return nil, wharf.Errorf(wharf.EINVALID, "a mini-batch needs a %q pool, not %q", ModeBatch, p.cfg.Mode)
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return nil, err
	}
	out, err := p.Predict(ctx, body)
	if err != nil {
		return nil, err
	}
	var rows []string
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("pyworker: the batch driver's answer is not a list of rows: %w", err)
	}
	return rows, nil
}

// RunTable sends a ModeBatch pool's driver one mini-batch of rows, the
// CSV or Parquet file at path, which run() gets as a pandas DataFrame,
// and returns the output rows as RunBatch does.
func (p *Pool) RunTable(ctx context.Context, path string) ([]string, error) {
	return p.runBatch(ctx, map[string]string{"table": path})
}

// batchArgs are the worker's arguments for a driver's program arguments,
// row format and logging.
func (c *Config) batchArgs() []string {
	var args []string
	if len(c.ProgramArgs) > 0 {
		b, _ := json.Marshal(c.ProgramArgs)
		args = append(args, "--program-args", string(b))
	}
	if c.SpaceRows {
		args = append(args, "--row-format", "space")
	}
	if c.LoggingLevel != "" {
		args = append(args, "--logging-level", c.LoggingLevel)
	}
	return args
}

// failed handles an exchange that broke off: the worker's stream can no
// longer be trusted, so it is killed (if not dead already) and replaced.
func (p *Pool) failed(ctx context.Context, w *worker, cause error) error {
	if ctx.Err() != nil {
		w.kill(true)
		if p.isClosed() {
			return ErrClosed
		}
		return ctx.Err()
	}
	w.broken.Store(true)
	select {
	case <-w.exited:
	case <-time.After(exitWait):
		// Alive but out of step (a protocol error): just as broken.
		w.kill(false)
		if p.isClosed() {
			return ErrClosed
		}
		return fmt.Errorf("%w: %v", ErrWorkerCrashed, cause)
	}
	if p.isClosed() {
		return ErrClosed
	}
	return fmt.Errorf("%w: it exited with %s", ErrWorkerCrashed, w.status)
}

// acquire takes an idle slot with a usable worker.
func (p *Pool) acquire(ctx context.Context) (*slot, *worker, error) {
	for {
		if p.isClosed() {
			return nil, nil, ErrClosed
		}
		var s *slot
		select {
		case s = <-p.idle:
		default:
			if err := p.unavailable(); err != nil {
				return nil, nil, err
			}
			select {
			case s = <-p.idle:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-p.closed:
				return nil, nil, ErrClosed
			}
		}
		s.mu.Lock()
		s.queued = false
		w := s.w
		if w == nil || !w.usable() {
			// Died while idle; its supervisor queues the slot
			// again once the replacement is ready.
			s.mu.Unlock()
			continue
		}
		s.busy = true
		s.mu.Unlock()
		return s, w, nil
	}
}

// unavailable returns an error when no worker runs and the last restart
// failed, so requests fail fast instead of waiting out their timeouts.
func (p *Pool) unavailable() error {
	p.errMu.Lock()
	err := p.lastErr
	p.errMu.Unlock()
	if err == nil || p.Ready() {
		return nil
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// release returns the slot after a request; it is offered again only if its
// worker is usable, else its supervisor does that after the restart.
func (p *Pool) release(s *slot) {
	s.mu.Lock()
	s.busy = false
	push := !s.queued && s.w != nil && s.w.usable()
	if push {
		s.queued = true
	}
	s.mu.Unlock()
	if push {
		p.idle <- s
	}
}

// roundTrip sends one request and reads its answer. Ending ctx unblocks the
// read at once through the connection's deadline.
func (w *worker) roundTrip(ctx context.Context, kind, want byte, body []byte) ([]byte, error) {
	w.nextID++
	id := w.nextID
	if ctx.Done() == nil {
		return w.exchange(kind, want, id, body)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		w.conn.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	out, err := w.exchange(kind, want, id, body)
	if !stop() {
		// ctx ended just as the answer came in: the answer stands,
		// but the deadline it set must be undone before the next
		// request.
		<-fired
		if err == nil {
			w.conn.SetDeadline(time.Time{})
		}
	}
	return out, err
}

func (w *worker) exchange(kind, want byte, id uint64, body []byte) ([]byte, error) {
	if err := w.writeFrame(kind, id, body); err != nil {
		return nil, err
	}
	got, rid, payload, err := w.readFrame()
	if err != nil {
		return nil, err
	}
	if rid != id {
		return nil, fmt.Errorf("answer for request %d came to request %d", rid, id)
	}
	if got == want {
		return payload, nil
	}
	if got == kindResult || got == kindMulti {
		return nil, fmt.Errorf("unexpected message kind %q", got)
	}
	o, err := answer(got, payload)
	if err != nil {
		return nil, err
	}
	return nil, o.Err
}

// writeFrame sends a frame in one write: small bodies are copied behind the
// header in a reused buffer, large ones go out with writev.
func (w *worker) writeFrame(kind byte, id uint64, body []byte) error {
	var hdr [headerSize]byte
	binary.BigEndian.PutUint32(hdr[0:4], uint32(len(body)))
	hdr[4] = kind
	binary.BigEndian.PutUint64(hdr[5:13], id)
	if len(body) <= 64<<10 {
		w.wbuf = append(append(w.wbuf[:0], hdr[:]...), body...)
		_, err := w.conn.Write(w.wbuf)
		return err
	}
	bufs := net.Buffers{hdr[:], body}
	_, err := bufs.WriteTo(w.conn)
	return err
}

func (w *worker) readFrame() (kind byte, id uint64, payload []byte, err error) {
	if _, err = io.ReadFull(w.br, w.rhdr[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.BigEndian.Uint32(w.rhdr[0:4])
	kind = w.rhdr[4]
	id = binary.BigEndian.Uint64(w.rhdr[5:13])
	if n > MaxMessage {
		return 0, 0, nil, fmt.Errorf("answer of %d bytes is over the limit of %d", n, MaxMessage)
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(w.br, payload); err != nil {
		return 0, 0, nil, err
	}
	return kind, id, payload, nil
}

// Ready reports whether the pool is open and at least one worker can take
// requests.
func (p *Pool) Ready() bool {
	if p.isClosed() {
		return false
	}
	for _, s := range p.slots {
		s.mu.Lock()
		ok := s.w != nil && s.w.usable()
		s.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// Restarts returns how many times a worker has been started to replace one
// that died or was killed after a request timed out, counting failed
// attempts.
func (p *Pool) Restarts() int { return int(p.restarts.Load()) }

// Close stops every worker and waits until they are gone. Requests in
// flight and waiting get ErrClosed. It is safe to call more than once.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		close(p.closed)
		p.cancel()
		var workers []*worker
		for _, s := range p.slots {
			// Under the slot lock, so a worker published by a
			// restart racing with Close is seen here or refused.
			s.mu.Lock()
			if s.w != nil {
				workers = append(workers, s.w)
			}
			s.mu.Unlock()
		}
		for _, w := range workers {
			w.kill(true)
		}
		for _, w := range workers {
			<-w.exited
		}
		p.wg.Wait()
		for _, w := range workers {
			select {
			case <-w.outputDone:
			case <-time.After(time.Second):
			}
		}
		p.cleanup()
	})
	return nil
}

// exitText says how a process ended, as in "exit status 1" or "signal
// killed".
func exitText(ps *os.ProcessState) string {
	if ps == nil {
		return "an unknown status"
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return "exit status " + strconv.Itoa(ps.ExitCode())
}

// findPython resolves name the way a shell in env would.
func findPython(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := checkExecutable(name); err != nil {
			return "", wharf.Errorf(wharf.EINVALID, "Python interpreter %q %v", name, err)
		}
		return name, nil
	}
	path := defaultPath
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			path = v
			break
		}
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		candidate := filepath.Join(d, name)
		if checkExecutable(candidate) == nil {
			return candidate, nil
		}
	}
	return "", wharf.Errorf(wharf.EUNAVAILABLE, "Python interpreter %q not found in PATH %q", name, path)
}

func checkExecutable(path string) error {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return errors.New("does not exist")
	case err != nil:
		return err
	case info.IsDir():
		return errors.New("is a directory")
	case info.Mode()&0o111 == 0:
		return errors.New("is not executable")
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.mu.Unlock()
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// lastLines returns the last n non-empty lines of s.
func lastLines(s string, n int) string {
	var lines []string
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) != "" {
			lines = append(lines, strings.TrimRight(line, "\r"))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
