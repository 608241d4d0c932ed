package ray

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/local"
)

// DriverSource is the driver program: the server serves it, and the
// driver job's entrypoint fetches and runs it.
//
//go:embed driver.py
var DriverSource []byte

// DriverPath is where the server serves DriverSource, under its URL.
const DriverPath = "/api/v1/ray/driver.py"

// Defaults of Executor's zero fields.
const (
	DefaultCheckInterval = 2 * time.Second
	// DefaultCancelGrace is how long a cancelled attempt waits for the
	// driver to say its task ended before it is recorded cancelled
	// anyway.
	DefaultCancelGrace = 30 * time.Second
	// endedKept is how long an attempt that ended is still acknowledged,
	// for a driver that sends its report again.
	endedKept = 10 * time.Minute
	// reportHold is how long the report of an attempt's end waits for
	// the server to record it before the driver is told to send it again.
	reportHold = 20 * time.Second
	// DefaultAckTimeout is how long an attempt handed to a driver waits
	// for the driver to say it started it before it is offered again: a
	// poll's answer can be lost on the way (a dropped connection, a
	// driver restarted mid-read), and the driver starts an attempt once
	// however often it is offered.
	DefaultAckTimeout = 5 * time.Second
	// DefaultSubmitTries is how many times in a row a driver job may fail
	// to be submitted (the dashboard refuses connections, say) before the
	// attempts waiting for it fail, one CheckInterval apart.
	DefaultSubmitTries = 5
)

// Metadata keys of a driver job, by which a restarted server finds the
// driver it had submitted.
const (
	metaServer  = "wharf_server"
	metaCompute = "wharf_compute"
)

// Executor runs step attempts on Ray-backed compute clusters: one driver
// job per cluster, submitted through the Jobs API when the first attempt
// needs it and kept running, which fetches attempts from the server and
// runs each as a Ray task. It is the server's side of the driver too
// (wharf.ClusterDriverService).
type Executor struct {
	// URL is where the cluster reaches the server.
	URL string
	// Token returns the compute's credential, which the driver holds.
	Token func(workspace, compute string) (string, error)
	// Python runs the driver on the cluster; empty means "python".
	Python string
	// CheckInterval is how often the driver job's status is read; zero
	// is DefaultCheckInterval.
	CheckInterval time.Duration
	// CancelGrace: zero is DefaultCancelGrace.
	CancelGrace time.Duration
	// AckTimeout: zero is DefaultAckTimeout.
	AckTimeout time.Duration
	// SubmitTries: zero is DefaultSubmitTries.
	SubmitTries int
	Logger      *slog.Logger
	// Executable is the server's own program, which tasks fetch and run
	// steps with as $WHARF; its zero value is os.Executable().
	Executable Executable

	mu       sync.Mutex
	clusters map[string]*cluster // by workspace/compute
	// codes holds, by driver submission id, the digest of the one-time
	// code a driver trades for its compute token (Register).
	codes    map[string]driverCode
	attempts map[string]*attempt  // by id
	ended    map[string]time.Time // ids of attempts that ended, when
}

// driverCode is a submitted driver's registration code, kept as its
// digest, and the compute it was made for.
type driverCode struct {
	digest [sha256.Size]byte
	key    string // workspace/compute
}

// cluster is one Ray-backed compute's driver and work.
type cluster struct {
	key, workspace, name string
	client               *Client
	// driver is the current driver's submission id; checked is closed
	// once the supervisor has looked for a driver left running.
	driver  string
	checked chan struct{}
	queue   []*attempt
	cancels []string
	notify  chan struct{}
}

// attempt is one attempt the server runs or follows on a cluster.
type attempt struct {
	id, workspace, job string
	c                  *cluster
	a                  wharf.ClusterAssignment
	logPath            string
	// driver took the attempt; empty while it is queued. offered is when
	// it was last handed to driver, and acked whether the driver has
	// since shown it has the attempt (a report, its log, its files), all
	// guarded by Executor.mu.
	driver  string
	offered time.Time
	acked   bool

	// running is called when a driver takes the attempt.
	running func(driver string)
	// finished is closed by Done, once the server recorded the end.
	finished chan struct{}
	doneOnce sync.Once

	// logMu guards the log's end (-1 until the driver's first chunk says
	// where it is, for a log another server kept so far) and startedAt,
	// when its first line came.
	logMu     sync.Mutex
	logEnd    int64
	startedAt time.Time

	endOnce sync.Once
	done    chan struct{}
	report  *wharf.ClusterReport
	lost    string
	endedAt time.Time
}

func (e *Executor) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}

// NewAttemptID returns a fresh attempt id.
func NewAttemptID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Run runs an attempt on the compute's Ray cluster and returns how it
// ended. running is called with the driver's submission id when the
// driver takes the attempt, before the driver hears of it. Cancelling ctx
// cancels the task (ray.cancel, force) unless run.Stopping says the
// server is stopping. Done must follow, once the end is recorded.
func (e *Executor) Run(ctx context.Context, comp *wharf.Compute, run *wharf.ClusterRun, running func(driver string)) local.Result {
	a := &attempt{id: run.Assignment.ID, workspace: comp.Workspace, a: run.Assignment, logPath: run.LogPath,
		running: running, done: make(chan struct{}), finished: make(chan struct{})}
	a.job = jobOf(run)
	if info, err := e.Executable.Info(); err == nil {
		a.a.Wharf = info
	} else {
		// The step runs without $WHARF, as one whose command needs it
		// will say.
		e.logger().Error("the server's executable cannot be served to Ray nodes", "err", err)
	}
	if n, err := readOffset(a.logPath); err == nil {
		a.logEnd = n
	} else if run.Follow != nil {
		// Followed from another server, which kept the log so far: it
		// goes on here from wherever the driver has got to.
		a.logEnd = -1
	}
	c := e.cluster(comp, a)

	queue := true
	if f := run.Follow; f != nil && f.Driver != "" {
		// A previous server's attempt that a driver took: follow it if
		// that driver still runs, else it is lost with it.
		select {
		case <-c.checked:
		case <-ctx.Done():
		}
		e.mu.Lock()
		current := c.driver
		if current == f.Driver {
			a.driver, a.acked = f.Driver, true
			queue = false
		}
		e.mu.Unlock()
		if current != f.Driver {
			return local.Result{ExitCode: -1, Err: fmt.Errorf("the Ray driver job %s that ran the attempt is gone", f.Driver)}
		}
	}
	if queue {
		e.mu.Lock()
		c.queue = append(c.queue, a)
		e.mu.Unlock()
		c.poke()
	}
	var deadline <-chan time.Time
	if t := run.Assignment.TimeoutSeconds; t > 0 {
		timer := time.NewTimer(time.Duration(t) * time.Second)
		defer timer.Stop()
		deadline = timer.C
	}
	timedOut := false
	select {
	case <-a.done:
		return a.result(false)
	case <-ctx.Done():
		if run.Stopping != nil && run.Stopping() {
			return local.Result{ExitCode: -1, Canceled: true}
		}
	case <-deadline:
		timedOut = true
	}
	if e.cancel(a) {
		grace := e.CancelGrace
		if grace == 0 {
			grace = DefaultCancelGrace
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-a.done:
		case <-t.C:
		}
	}
	res := a.result(timedOut)
	res.Canceled, res.TimedOut, res.Err = !timedOut, timedOut, nil
	return res
}

// jobOf is the job an attempt belongs to, named in its environment.
func jobOf(run *wharf.ClusterRun) string { return run.Assignment.Env["WHARF_JOB_NAME"] }

// result is how the attempt ended, from the driver's report.
func (a *attempt) result(timedOut bool) local.Result {
	a.logMu.Lock()
	started := a.startedAt
	a.logMu.Unlock()
	select {
	case <-a.done:
	default:
		return local.Result{ExitCode: -1, Started: started, Ended: time.Now()}
	}
	// end wrote what follows before closing done.
	res := local.Result{ExitCode: -1, Started: started, Exited: a.endedAt, Ended: a.endedAt}
	switch r := a.report; {
	case a.lost != "":
		res.Err = errors.New(a.lost)
	case r.Canceled:
		res.Canceled = true
	case r.Error != "":
		res.Err = errors.New(r.Error)
	case r.ExitCode != nil:
		res.ExitCode = *r.ExitCode
	default:
		res.Err = errors.New("the driver reported the task ended without an exit status")
	}
	if res.Started.IsZero() {
		res.Started = a.endedAt
	}
	return res
}

// cancel withdraws a queued attempt, or asks the driver that took it to
// cancel its task; it reports whether a driver was asked.
func (e *Executor) cancel(a *attempt) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := a.c
	if i := slices.Index(c.queue, a); i >= 0 {
		c.queue = slices.Delete(c.queue, i, i+1)
		if a.driver == "" {
			return false
		}
		// Offered again, so a driver may have it after all.
	}
	c.cancels = append(c.cancels, a.id)
	c.poke()
	return true
}

// end records how an attempt ended, once.
func (a *attempt) end(r *wharf.ClusterReport, lost string) {
	a.endOnce.Do(func() {
		a.report, a.lost, a.endedAt = r, lost, time.Now()
		close(a.done)
	})
}

// Done forgets an attempt whose end the server recorded; the driver's
// report of its end, held until now, is acknowledged.
func (e *Executor) Done(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.attempts[id]
	if a == nil {
		return
	}
	delete(e.attempts, id)
	a.doneOnce.Do(func() { close(a.finished) })
	if e.ended == nil {
		e.ended = map[string]time.Time{}
	}
	now := time.Now()
	e.ended[a.id] = now
	for id, t := range e.ended {
		if now.Sub(t) > endedKept {
			delete(e.ended, id)
		}
	}
}

func (c *cluster) poke() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// cluster returns the compute's cluster, starting its supervisor the
// first time, and registers a, if not nil, as one of its attempts: in one
// step, so that a supervisor that finds nothing to do does not end
// between the two.
func (e *Executor) cluster(comp *wharf.Compute, a *attempt) *cluster {
	key := comp.Workspace + "/" + comp.Name
	e.mu.Lock()
	defer e.mu.Unlock()
	defer func() {
		if a != nil {
			if e.attempts == nil {
				e.attempts = map[string]*attempt{}
			}
			a.c = e.clusters[key]
			e.attempts[a.id] = a
		}
	}()
	if e.clusters == nil {
		e.clusters = map[string]*cluster{}
	}
	c := e.clusters[key]
	if c == nil {
		c = &cluster{key: key, workspace: comp.Workspace, name: comp.Name, client: &Client{Address: comp.Address},
			checked: make(chan struct{}), notify: make(chan struct{}, 1)}
		e.clusters[key] = c
		go e.supervise(c)
	}
	c.client.Address = comp.Address
	return c
}

// supervise keeps one driver running for the cluster: it adopts a driver
// a previous server left running, submits one when there is none, and
// when the driver's Ray job ends, ends the attempts it had taken and
// submits another.
func (e *Executor) supervise(c *cluster) {
	ctx := context.Background()
	interval := e.CheckInterval
	if interval == 0 {
		interval = DefaultCheckInterval
	}
	if id := e.findDriver(ctx, c); id != "" {
		e.mu.Lock()
		if c.driver == "" {
			c.driver = id
		}
		e.mu.Unlock()
		e.logger().Info("following the Ray driver job left running", "compute", c.key, "driver", id)
	}
	close(c.checked)
	tries := e.SubmitTries
	if tries == 0 {
		tries = DefaultSubmitTries
	}
	failures := 0
	for {
		e.mu.Lock()
		driver, work := c.driver, len(c.queue) > 0
		if driver == "" && !e.busy(c) {
			// Nothing to run and no driver to watch (the compute was
			// deleted, say): the next attempt starts another supervisor.
			delete(e.clusters, c.key)
			e.mu.Unlock()
			return
		}
		e.reoffer(c)
		e.mu.Unlock()
		if driver == "" && work {
			id, err := e.submitDriver(ctx, c)
			if err != nil {
				failures++
				e.logger().Error("submitting the Ray driver job failed", "compute", c.key, "address", c.client.Address,
					"try", failures, "of", tries, "err", err)
				if failures >= tries {
					e.failQueued(c, fmt.Sprintf("compute %s: the Ray cluster at %s did not take the driver job in %d tries: %v",
						c.name, c.client.Address, failures, err))
					failures = 0
				}
			} else {
				failures = 0
				e.mu.Lock()
				if c.driver == "" {
					c.driver = id
				}
				e.mu.Unlock()
			}
		} else if driver != "" {
			d, err := c.client.Job(ctx, driver)
			var he *HTTPError
			switch {
			case errors.As(err, &he) && he.Status == http.StatusNotFound:
				e.driverEnded(c, driver, "is gone from the cluster")
			case err != nil:
				e.logger().Warn("reading the Ray driver job's status failed", "compute", c.key, "driver", driver, "err", err)
			case Terminal(d.Status):
				why := "ended " + d.Status
				if d.Message != "" {
					why += ": " + d.Message
				}
				e.driverEnded(c, driver, why)
			}
		}
		time.Sleep(interval)
	}
}

// reoffer queues again the attempts handed to c's driver that it has not
// acknowledged within AckTimeout: the poll's answer that carried them was
// lost. The driver starts an attempt once, however often it gets it, and
// acknowledges it again. e.mu is held.
func (e *Executor) reoffer(c *cluster) {
	wait := e.AckTimeout
	if wait == 0 {
		wait = DefaultAckTimeout
	}
	again := false
	for _, a := range e.attempts {
		if a.c != c || a.driver == "" || a.acked || time.Since(a.offered) < wait || slices.Contains(c.queue, a) {
			continue
		}
		select {
		case <-a.done:
			continue
		default:
		}
		e.logger().Warn("the Ray driver did not acknowledge an attempt; offering it again", "compute", c.key,
			"driver", a.driver, "attempt", a.id, "offered", a.offered)
		c.queue = append(c.queue, a)
		again = true
	}
	if again {
		c.poke()
	}
}

// ack records that the driver has the attempt, which is then not
// offered again.
func (e *Executor) ack(a *attempt) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a.acked {
		return
	}
	a.acked = true
	c := a.c
	if i := slices.Index(c.queue, a); i >= 0 && a.driver != "" {
		c.queue = slices.Delete(c.queue, i, i+1)
	}
}

// failQueued ends the attempts waiting for c's driver with why: the
// cluster cannot be reached, and no driver will come to take them.
func (e *Executor) failQueued(c *cluster, why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range c.queue {
		a.end(nil, why)
	}
	c.queue = nil
}

// busy reports whether the server runs or follows attempts on c. e.mu
// is held.
func (e *Executor) busy(c *cluster) bool {
	for _, a := range e.attempts {
		if a.c == c {
			return true
		}
	}
	return false
}

// driverEnded fails the attempts the driver had taken, which died with
// it, and clears the way for a new driver.
func (e *Executor) driverEnded(c *cluster, driver, why string) {
	e.logger().Warn("the Ray driver job ended", "compute", c.key, "driver", driver, "why", why)
	e.mu.Lock()
	defer e.mu.Unlock()
	if c.driver == driver {
		c.driver = ""
	}
	for _, a := range e.attempts {
		if a.c == c && a.driver == driver {
			a.end(nil, fmt.Sprintf("the Ray driver job %s %s", driver, why))
		}
	}
}

// findDriver returns a running driver job this server submitted for the
// cluster, stopping any others.
func (e *Executor) findDriver(ctx context.Context, c *cluster) string {
	jobs, err := c.client.Jobs(ctx)
	if err != nil {
		e.logger().Warn("listing the Ray cluster's jobs failed", "compute", c.key, "err", err)
		return ""
	}
	best := ""
	var bestStart int64 = -1
	var others []string
	for _, j := range jobs {
		if Terminal(j.Status) || j.Metadata[metaServer] != e.URL || j.Metadata[metaCompute] != c.key {
			continue
		}
		if j.StartTime > bestStart {
			if best != "" {
				others = append(others, best)
			}
			best, bestStart = j.SubmissionID, j.StartTime
		} else {
			others = append(others, j.SubmissionID)
		}
	}
	for _, id := range others {
		_ = c.client.Stop(ctx, id)
	}
	return best
}

// submitDriver submits a driver job for the cluster. The job carries a
// one-time registration code, not the compute's token: a Ray job's
// runtime_env is readable by anyone who can reach the Ray dashboard,
// steps on the cluster included, and the code is spent by the time they
// could read it (Register).
func (e *Executor) submitDriver(ctx context.Context, c *cluster) (string, error) {
	python := e.Python
	if python == "" {
		python = "python"
	}
	id := "wharf-" + c.name + "-" + NewAttemptID()[:12]
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	code := hex.EncodeToString(raw[:])
	e.mu.Lock()
	if e.codes == nil {
		e.codes = map[string]driverCode{}
	}
	e.codes[id] = driverCode{digest: sha256.Sum256([]byte(code)), key: c.key}
	e.mu.Unlock()
	entry := python + ` -c "import os, urllib.request; exec(compile(urllib.request.urlopen(os.environ['WHARF_URL'] + '` +
		DriverPath + `').read(), 'wharf-driver', 'exec'))"`
	job, err := c.client.Submit(ctx, &JobRequest{
		Entrypoint:   entry,
		SubmissionID: id,
		RuntimeEnv: map[string]any{"env_vars": map[string]string{
			"WHARF_URL": e.URL, "WHARF_DRIVER": id, "WHARF_DRIVER_CODE": code,
			"WHARF_COMPUTE_PATH": "/api/v1/workspaces/" + c.workspace + "/computes/" + c.name,
		}},
		Metadata: map[string]string{metaServer: e.URL, metaCompute: c.key},
	})
	if err != nil {
		e.mu.Lock()
		delete(e.codes, id)
		e.mu.Unlock()
	}
	return job, err
}

// Register trades a driver's one-time registration code for the
// compute's token. A code works once, for the driver and compute it was
// made for; whoever else read it from the Ray job finds it spent.
func (e *Executor) Register(ctx context.Context, comp *wharf.Compute, driver, code string) (string, error) {
	digest := sha256.Sum256([]byte(code))
	e.mu.Lock()
	want, ok := e.codes[driver]
	if ok && want.key == comp.Workspace+"/"+comp.Name && subtle.ConstantTimeCompare(want.digest[:], digest[:]) == 1 {
		delete(e.codes, driver)
	} else {
		ok = false
	}
	e.mu.Unlock()
	if !ok {
		return "", wharf.Errorf(wharf.EFORBIDDEN, "driver %s of compute %s cannot register: its code is wrong or already used", driver, comp.Name)
	}
	return e.Token(comp.Workspace, comp.Name)
}

// StopDriver stops the compute's driver job, as deleting the compute
// does; its tasks end with it.
func (e *Executor) StopDriver(ctx context.Context, comp *wharf.Compute) error {
	key := comp.Workspace + "/" + comp.Name
	e.mu.Lock()
	c := e.clusters[key]
	e.mu.Unlock()
	var driver string
	if c != nil {
		<-c.checked
		e.mu.Lock()
		driver = c.driver
		e.mu.Unlock()
	} else {
		// Not used since the server started: a driver may be left.
		c = &cluster{key: key, client: &Client{Address: comp.Address}}
		driver = e.findDriver(ctx, c)
	}
	if driver == "" {
		return nil
	}
	return c.client.Stop(ctx, driver)
}

// Poll implements wharf.ClusterDriverService.
func (e *Executor) Poll(ctx context.Context, comp *wharf.Compute, driver string, wait time.Duration) (*wharf.ClusterPoll, error) {
	c := e.cluster(comp, nil)
	select {
	case <-c.checked:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		e.mu.Lock()
		if c.driver == "" {
			// A driver the supervisor did not find (the listing failed)
			// proves itself by its credential.
			c.driver = driver
		}
		if c.driver != driver {
			e.mu.Unlock()
			return nil, wharf.Errorf(wharf.ECONFLICT, "driver %s is not compute %s's driver (%s is)", driver, comp.Name, c.driver)
		}
		p := &wharf.ClusterPoll{Assign: []wharf.ClusterAssignment{}, Cancel: c.cancels}
		var taken []*attempt
		now := time.Now()
		for _, a := range c.queue {
			select {
			case <-a.done:
				continue // its driver ended while it was offered again
			default:
			}
			if a.driver == "" {
				taken = append(taken, a)
			}
			a.driver, a.offered = driver, now
			p.Assign = append(p.Assign, a.a)
		}
		c.queue, c.cancels = nil, nil
		e.mu.Unlock()
		// Each attempt is recorded as the driver's before the driver
		// hears of it: a server that dies before the answer leaves
		// attempts no driver has, which the next one runs again.
		for _, a := range taken {
			if a.running != nil {
				a.running(driver)
			}
		}
		if len(p.Assign) > 0 || len(p.Cancel) > 0 {
			return p, nil
		}
		select {
		case <-c.notify:
		case <-timer.C:
			return p, nil
		case <-ctx.Done():
			return p, nil
		}
	}
}

// Report implements wharf.ClusterDriverService.
func (e *Executor) Report(ctx context.Context, comp *wharf.Compute, id string, r *wharf.ClusterReport) error {
	a, err := e.lookup(comp.Workspace, "", id)
	if err != nil || a == nil {
		return err
	}
	if a.c.name != comp.Name {
		return wharf.Errorf(wharf.ENOTFOUND, "attempt %s is not compute %s's", id, comp.Name)
	}
	switch r.Event {
	case wharf.ClusterSubmitted:
		e.ack(a)
	case wharf.ClusterEnded:
		e.ack(a)
		a.end(r, "")
		// Acknowledged once the end is recorded: a server that dies
		// first hears of it again from the driver.
		t := time.NewTimer(reportHold)
		defer t.Stop()
		select {
		case <-a.finished:
		case <-t.C:
			return wharf.Errorf(wharf.EUNAVAILABLE, "attempt %s's end is not recorded yet; send again", id)
		case <-ctx.Done():
			return ctx.Err()
		}
	default:
		return wharf.Errorf(wharf.EINVALID, "event %q is not one of submitted, ended", r.Event).WithField("event")
	}
	return nil
}

// lookup finds an attempt the server follows: nil with no error for one
// that ended recently (a report sent again), EUNAVAILABLE for one it does
// not follow yet (it restarted), and ENOTFOUND for another job's.
func (e *Executor) lookup(workspace, job, id string) (*attempt, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.attempts[id]
	if a == nil {
		if _, ok := e.ended[id]; ok {
			return nil, nil
		}
		return nil, wharf.Errorf(wharf.EUNAVAILABLE, "attempt %s is not followed yet; send again", id)
	}
	if a.workspace != workspace || job != "" && a.job != job {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "attempt %s not found", id)
	}
	return a, nil
}

// followed is lookup for the task's own calls, which need the attempt.
func (e *Executor) followed(workspace, job, id string) (*attempt, error) {
	a, err := e.lookup(workspace, job, id)
	if err == nil && a == nil {
		err = wharf.Errorf(wharf.ENOTFOUND, "attempt %s has ended", id)
	}
	return a, err
}

// Files implements wharf.ClusterDriverService.
func (e *Executor) Files(ctx context.Context, workspace, job, id string, w io.Writer) error {
	a, err := e.followed(workspace, job, id)
	if err != nil {
		return err
	}
	e.ack(a)
	return writeTar(w, a.a.Dir, "code", "inputs", "outputs")
}

// AppendLog implements wharf.ClusterDriverService. The first chunk marks
// the attempt running.
func (e *Executor) AppendLog(ctx context.Context, workspace, job, id string, offset int64, data io.Reader) (int64, error) {
	a, err := e.followed(workspace, job, id)
	if err != nil {
		return 0, err
	}
	e.ack(a)
	a.logMu.Lock()
	defer a.logMu.Unlock()
	if a.startedAt.IsZero() {
		a.startedAt = time.Now()
	}
	if a.logEnd < 0 {
		a.logEnd = offset
	}
	if offset != a.logEnd {
		return a.logEnd, nil
	}
	f, err := os.OpenFile(a.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, io.LimitReader(data, 8<<20))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	a.logEnd += n
	if werr := os.WriteFile(a.logPath+".offset", []byte(strconv.FormatInt(a.logEnd, 10)), 0o600); err == nil {
		err = werr
	}
	return a.logEnd, err
}

// readOffset reads how much of the attempt's log came from the cluster,
// as AppendLog recorded it.
func readOffset(logPath string) (int64, error) {
	b, err := os.ReadFile(logPath + ".offset")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(b), 10, 64)
}

// OpenExecutable implements wharf.ClusterDriverService.
func (e *Executor) OpenExecutable() (io.ReadSeekCloser, *wharf.ClusterExecutable, error) {
	return e.Executable.Open()
}

// PutOutputs implements wharf.ClusterDriverService.
func (e *Executor) PutOutputs(ctx context.Context, workspace, job, id string, r io.Reader) error {
	a, err := e.followed(workspace, job, id)
	if err != nil {
		return err
	}
	return readTar(r, a.a.Dir, "outputs", "code/outputs", "code/logs")
}
