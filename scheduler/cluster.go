package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/local"
)

// ClusterExecutor runs attempts on Ray-backed compute clusters, which
// share no disk with the server: the task fetches its folders from the
// server and sends its outputs back (see package ray).
type ClusterExecutor interface {
	// Run runs, or with run.Follow follows, an attempt on the compute's
	// cluster. running is called with the driver's id when a driver
	// takes the attempt, before the driver starts it.
	Run(ctx context.Context, c *wharf.Compute, run *wharf.ClusterRun, running func(driver string)) local.Result
	// Done says the attempt's end is recorded, so that the driver's
	// report of it may be acknowledged.
	Done(attempt string)
}

// serverOnlyVars are the variables of a local step's process that name
// the server's own files or programs, which a Ray task cannot reach. The
// task sets WHARF, and adds to PATH, the node's cached copy of the
// server's executable.
var serverOnlyVars = []string{"PATH", "HOME", "TMPDIR", "WHARF", "WHARF_WARM_DIR", "WHARF_JOB_STATE_DIR", "WHARF_STEP_ERROR_FILE"}

// runOnCluster runs an attempt on a Ray-backed cluster: its folders are
// staged on the server as for a local attempt, the task fetches them,
// and what it sends back is committed as a local attempt's outputs are.
func (s *Scheduler) runOnCluster(ctx context.Context, st, parent *wharf.Job, spec *StepSpec, compute *wharf.Compute,
	at *attemptRec, values map[string]wharf.JobValue, key string, release func(), logf io.Writer) error {
	say := func(format string, args ...any) { fmt.Fprintf(logf, "[wharf] "+format+"\n", args...) }
	if s.Cluster == nil {
		return s.failQueued(ctx, st, at, "compute "+compute.Name+" is a Ray cluster, and this server runs no Ray-backed clusters", logf)
	}
	at.started = s.Now().UTC()
	at.passing(ctx, st, wharf.JobStarting)
	dir := filepath.Join(s.jobDir(st.Workspace, st.Name), "attempt-"+strconv.Itoa(at.n))
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	workDir, inputPaths, outputPaths, verified, err := s.stage(ctx, dir, spec, values)
	if err != nil {
		return s.attemptFailed(ctx, st, at, spec, nil, "staging inputs: "+err.Error(), logf)
	}
	env := spec.Environment
	var python *wharf.ClusterPython
	if env.PythonVersion != "" || len(env.Pip) > 0 || len(env.Conda) > 0 {
		python = &wharf.ClusterPython{PythonVersion: env.PythonVersion, Pip: env.Pip, Conda: env.Conda}
		say("environment %s: built on the node by the server's own builder (wharf env build), cached there", envName(env))
	} else {
		say("environment %s: the task runs in a layer of its own on the Ray worker's Python", envName(env))
	}
	command, runEnv, bad, err := s.commandAndEnv(ctx, st, parent, spec, nil, dir, inputPaths, outputPaths)
	if bad != nil {
		return s.attemptFailed(ctx, st, at, spec, nil, "rendering the command: "+bad.Error(), logf)
	}
	if err != nil {
		return err
	}
	vars := map[string]string{}
	for _, kv := range runEnv {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	for _, k := range serverOnlyVars {
		if _, mine := spec.EnvVars[k]; !mine {
			delete(vars, k)
		}
	}
	id := newTaskID()
	base := "/api/v1/workspaces/" + url.PathEscape(st.Workspace) + "/computes/" + url.PathEscape(compute.Name) + "/attempts/" + id
	run := &wharf.ClusterRun{
		Assignment: wharf.ClusterAssignment{ID: id, Command: command, Env: vars, Dir: dir, Token: vars["MLFLOW_TRACKING_TOKEN"],
			Files: base + "/files", Log: base + "/log", Outputs: base + "/outputs",
			TimeoutSeconds: spec.TimeoutSeconds, Options: clusterOptions(spec, compute), Python: python},
		LogPath:  s.LogPath(st.Workspace, st.Name, at.n),
		Stopping: func() bool { return s.ctx.Err() != nil },
	}
	// The task is recorded before any driver can take it, so that a
	// server that dies from here on follows it rather than runs it twice.
	at.settle()
	if _, err := at.write(ctx, st, wharf.JobStarting, nil, func(r *wharf.JobAttempt) {
		r.Cluster, r.Server = &wharf.ClusterAttempt{Task: id}, s.Server
	}); err != nil {
		return err
	}
	if spec.Distribution != nil {
		if err := distributeOnCluster(&run.Assignment, spec, compute); err != nil {
			return s.attemptFailed(ctx, st, at, spec, nil, err.Error(), logf)
		}
		processes := len(run.Assignment.Ranks)
		if m := run.Assignment.MPI; m != nil {
			processes = m.Slots * instances(spec)
		}
		say("%d processes (distribution %s) in a Ray placement group of %d bundles", processes,
			spec.Distribution.Type, instances(spec))
	}
	say("running on Ray cluster %s as task %s: %s", compute.Name, id, command)
	defer s.clusterDone(id)
	res := s.Cluster.Run(ctx, compute, run, func(driver string) {
		_, _ = at.write(context.WithoutCancel(ctx), st, wharf.JobRunning, nil, func(r *wharf.JobAttempt) {
			r.Cluster = &wharf.ClusterAttempt{Task: id, Driver: driver}
		})
	})
	return s.finishAttempt(ctx, st, at, spec, &res, "the command", verified, key, dir, workDir, outputPaths, release, logf)
}

// followOnCluster follows an attempt a previous server handed to a
// cluster's driver, which went on running it: it is not run again.
func (s *Scheduler) followOnCluster(ctx context.Context, st *wharf.Job, spec *StepSpec, last *wharf.JobAttempt, key string) error {
	compute, err := s.Store.FindCompute(ctx, st.Workspace, spec.Compute)
	if err != nil {
		return fmt.Errorf("compute %s: %w", spec.Compute, err)
	}
	release, err := s.slots.Acquire(ctx, st.Workspace+"/"+compute.Name, compute.MaxInstances)
	if err != nil {
		return s.interrupted(st, &attemptRec{s: s, n: last.Number, started: last.Started}, "canceled")
	}
	defer release()
	dir := filepath.Join(s.jobDir(st.Workspace, st.Name), "attempt-"+strconv.Itoa(last.Number))
	// Another server's attempt has no folder here yet: its outputs and
	// the rest of its log come to this one.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(s.LogPath(st.Workspace, st.Name, last.Number), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "[wharf] the server restarted; following task %s on Ray cluster %s (driver %s)\n",
		last.Cluster.Task, compute.Name, last.Cluster.Driver)
	if last.Server != s.Server {
		// The log goes on here: other servers asked for it (job stream,
		// log URLs) are sent to this one, not to the one that handed
		// the attempt out, which died or gave up the scheduler. The
		// write is fenced by ctx, as the scheduler's writes are.
		if _, err := s.update(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
			if r := lastAttempt(j, last.Number); r != nil && r.Ended == nil {
				r.Server = s.Server
			}
			return nil
		}); err != nil {
			return err
		}
	}
	at := &attemptRec{s: s, n: last.Number, started: last.Started}
	timeout := 0
	if spec.TimeoutSeconds > 0 {
		left := time.Until(last.Started.Add(time.Duration(spec.TimeoutSeconds) * time.Second))
		timeout = max(1, int(left/time.Second))
	}
	run := &wharf.ClusterRun{
		Assignment: wharf.ClusterAssignment{ID: last.Cluster.Task, Dir: dir, Env: map[string]string{"WHARF_JOB_NAME": st.Name},
			TimeoutSeconds: timeout},
		LogPath:  s.LogPath(st.Workspace, st.Name, last.Number),
		Follow:   last.Cluster,
		Stopping: func() bool { return s.ctx.Err() != nil },
	}
	runCtx := ctx
	if st.Status == wharf.JobCancelRequested {
		// Asked to stop while no server was there to stop it.
		var cancel context.CancelFunc
		runCtx, cancel = context.WithCancel(ctx)
		cancel()
	}
	defer s.clusterDone(last.Cluster.Task)
	res := s.Cluster.Run(runCtx, compute, run, func(string) {})
	return s.finishAttempt(ctx, st, at, spec, &res, "the command", func() error { return nil }, key, dir,
		filepath.Join(dir, "code"), outputPathsOf(dir, spec), release, logf)
}

// clusterDone tells the cluster executor an attempt's end is recorded,
// unless the server is stopping: then the attempt was left running, and
// the driver's report of its end must wait for the next server.
func (s *Scheduler) clusterDone(task string) {
	if s.ctx.Err() == nil {
		s.Cluster.Done(task)
	}
}

// inFlightOnCluster returns the step's last attempt when a cluster's
// driver took it and the attempt has not ended: a previous server's,
// which this one follows.
func (s *Scheduler) inFlightOnCluster(st *wharf.Job) *wharf.JobAttempt {
	if s.Cluster == nil || len(st.Attempts) == 0 {
		return nil
	}
	a := st.Attempts[len(st.Attempts)-1]
	if a.Ended != nil || a.Cluster == nil || a.Cluster.Driver == "" || st.Status == wharf.JobFinalizing {
		return nil
	}
	return &a
}

// clusterOptions are the Ray task options of a step: a CPU and the GPUs
// it asks for.
func clusterOptions(spec *StepSpec, compute *wharf.Compute) wharf.ClusterTaskOptions {
	o := wharf.ClusterTaskOptions{NumCPUs: 1, Unsandboxed: compute.Sandbox != nil && !*compute.Sandbox,
		ReadOnlyPaths: compute.SandboxReadOnlyPaths}
	if n, _ := gpusPerInstance(spec, compute); n > 0 {
		o.NumGPUs = float64(n)
	}
	return o
}

func newTaskID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// distributeOnCluster lays out a distributed step on a Ray-backed cluster:
// a placement group of one bundle per instance, holding its processes'
// CPUs and its GPUs, and the processes with the variables they have on
// local compute (planRanks), a task each in its instance's bundle; an
// MPI step's processes are mpirun's to start (mpiOnCluster). The step's
// own environment_variables keep the last word, as locally.
func distributeOnCluster(a *wharf.ClusterAssignment, spec *StepSpec, compute *wharf.Compute) error {
	nodes := instances(spec)
	perNode := make([]int, nodes)
	var ranks []rank
	if spec.Distribution.Type == "mpi" {
		for n := range perNode {
			perNode[n] = max(spec.Distribution.ProcessCountPerInstance, 1)
		}
	} else {
		var err error
		if ranks, err = planRanks(spec.Distribution, freeLocalPort); err != nil {
			return err
		}
		for _, r := range ranks {
			perNode[r.Node]++
		}
	}
	gpus, _ := gpusPerInstance(spec, compute)
	pg := &wharf.ClusterPlacementGroup{Strategy: "PACK"}
	for n := range nodes {
		b := map[string]float64{"CPU": float64(max(perNode[n], 1))}
		if gpus > 0 {
			b["GPU"] = float64(gpus)
		}
		pg.Bundles = append(pg.Bundles, b)
	}
	a.Options.PlacementGroup = pg
	a.Options.NumGPUs = 0
	if spec.Distribution.Type == "mpi" {
		mpiOnCluster(a, spec)
		return nil
	}
	if gpus > 0 {
		// A bundle's GPUs are shared by the processes of its instance.
		a.Options.NumGPUs = float64(gpus) / float64(max(perNode[0], 1))
	}
	for _, r := range ranks {
		env := map[string]string{}
		for k, v := range r.Env {
			if _, own := spec.EnvVars[k]; !own {
				env[k] = v
			}
		}
		a.Ranks = append(a.Ranks, wharf.ClusterRank{Label: r.Label, Bundle: r.Node, Env: env})
	}
	return nil
}

// mpiRankCommand is what mpirun starts as each process of an MPI step on
// a Ray-backed cluster, after mpirunArgv's prelude: the step's command,
// in the folder of the daemon that started it (see wharf.ClusterMPI).
const mpiRankCommand = `cd "$WHARF_MPI_DIR" && exec /bin/sh -c "$WHARF_MPI_COMMAND"`

// mpiOnCluster lays out an MPI step on a Ray-backed cluster: mpirun's
// command line as on local compute, and the variables of local compute's
// mpirun in every process (the driver points the meeting point at bundle
// 0's node). A bundle's GPUs are its daemon's, which Ray shows to the
// processes it starts.
func mpiOnCluster(a *wharf.ClusterAssignment, spec *StepSpec) {
	d := spec.Distribution
	a.MPI = &wharf.ClusterMPI{Argv: mpirunArgv(d, mpiRankCommand, spec.EnvVars, nil), Slots: max(d.ProcessCountPerInstance, 1)}
	vars := meetingVars(instances(spec), 0)
	vars["HWLOC_HIDE_ERRORS"] = "2"
	if a.Env == nil {
		a.Env = map[string]string{}
	}
	for k, v := range vars {
		if _, own := spec.EnvVars[k]; !own {
			a.Env[k] = v
		}
	}
}
