package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wharfml/wharf/local"
)

// An MPI step runs under Open MPI's own launcher, mpirun, as on Azure ML:
// the processes of an MPI job find each other through the runtime mpirun
// starts (PMIx), which no set of environment variables can stand in for,
// so a script that calls MPI.COMM_WORLD works unchanged. Wharf starts
// mpirun as the step's one process, in the step's sandbox, and mpirun
// starts instance_count x process_count_per_instance copies of the
// command on this machine.

// mpirunFlags are mpirun's options for a step: more processes than cores
// is allowed and none is pinned to a core (steps share the machine);
// every line of output is tagged with its rank, which splits the output
// into the ranks' logs; and the shared-memory transport copies through a
// buffer rather than by reading another process's memory, which a
// sandbox's process namespace may forbid.
var mpirunFlags = []string{"--oversubscribe", "--bind-to", "none", "--tag-output",
	"--mca", "btl_vader_single_copy_mechanism", "none"}

// mpirunArgv returns the command that runs command as the processes of an
// MPI step. mpirun tells each process its rank among all of them; a
// prelude in each sets the variables that place it as if the step's
// instances were machines of their own (Azure ML's NODE_RANK and the
// local rank within an instance), except those the step's
// environment_variables set, and the CUDA devices of its instance where
// the step holds GPUs (gpus[i] for instance i).
func mpirunArgv(d *DistributionSpec, command string, own map[string]string, gpus []string) []string {
	nodes, per := max(d.InstanceCount, 1), max(d.ProcessCountPerInstance, 1)
	node := "$((OMPI_COMM_WORLD_RANK / " + strconv.Itoa(per) + "))"
	place := [][2]string{
		{"NODE_RANK", node},
		{"AZ_BATCHAI_TASK_INDEX", node},
		{"OMPI_COMM_WORLD_LOCAL_RANK", "$((OMPI_COMM_WORLD_RANK % " + strconv.Itoa(per) + "))"},
		{"OMPI_COMM_WORLD_LOCAL_SIZE", strconv.Itoa(per)},
		{"OMPI_COMM_WORLD_NODE_RANK", node},
		{"PMI_RANK", "$OMPI_COMM_WORLD_RANK"},
		{"PMI_SIZE", "$OMPI_COMM_WORLD_SIZE"},
	}
	var prelude strings.Builder
	for _, kv := range place {
		if _, set := own[kv[0]]; !set {
			fmt.Fprintf(&prelude, "export %s=%s\n", kv[0], kv[1])
		}
	}
	if _, set := own["CUDA_VISIBLE_DEVICES"]; !set && len(gpus) == nodes {
		fmt.Fprintf(&prelude, "case %s in\n", node)
		for i, ids := range gpus {
			fmt.Fprintf(&prelude, "%d) export CUDA_VISIBLE_DEVICES=%s ;;\n", i, ids)
		}
		prelude.WriteString("esac\n")
	}
	argv := append([]string{"mpirun"}, mpirunFlags...)
	return append(argv, "-np", strconv.Itoa(nodes*per), "/bin/sh", "-c", prelude.String()+command)
}

// runMPIStep runs an MPI step's command, rendered, under mpirun (see
// runMPI), with the variables of mpirunArgv and meetingVars. gpus are
// the devices the step holds. The error says why it could not start.
func (s *Scheduler) runMPIStep(ctx context.Context, task *local.Task, spec *StepSpec, command string, gpus []string,
	logPath func(label string) string, log io.Writer, started func(p local.Process)) (local.Result, *rankFailure, error) {
	if _, err := exec.LookPath("mpirun"); err != nil {
		return local.Result{}, nil, fmt.Errorf("distribution type mpi runs under Open MPI's mpirun, which is not on " +
			"the server's PATH (Debian and Ubuntu: apt-get install openmpi-bin)")
	}
	port, err := freeLocalPort()
	if err != nil {
		return local.Result{}, nil, fmt.Errorf("finding a free port for the processes to meet on: %w", err)
	}
	nodes := instances(spec)
	var perNode []string
	for n := range nodes {
		if visible, hide := s.visibleGPUs(gpus, spec, n); hide {
			perNode = append(perNode, visible)
		}
	}
	t := *task
	t.Argv = mpirunArgv(spec.Distribution, command, spec.EnvVars, perNode)
	t.Env = withVars(task.Env, meetingVars(nodes, port), spec)
	// A sandbox shows no /sys, where hwloc, which Open MPI asks for the
	// machine's layout, would find it: its complaint is not the step's.
	t.Env = withVars(t.Env, map[string]string{"HWLOC_HIDE_ERRORS": "2"}, spec)
	if os.Geteuid() == 0 && (s.Sandbox == nil || s.Sandbox.UID == 0) {
		// mpirun refuses root unless told that it is meant.
		t.Env = withVars(t.Env, map[string]string{"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}, spec)
	}
	fmt.Fprintf(log, "[wharf] starting %d processes under mpirun (distribution mpi, %d instances)\n",
		nodes*max(spec.Distribution.ProcessCountPerInstance, 1), nodes)
	res, failed := s.runMPI(ctx, &t, logPath, log, started)
	return res, failed, nil
}

// runMPI runs an MPI step's mpirun (task, with Argv from mpirunArgv),
// logging to the file logPath("mpirun") and sorting what it writes by
// rank: each rank's lines go to its own log, logPath("rank N"), and into
// the attempt's log (log) after "[rank N] ", and mpirun's own after
// "[mpirun] ". When the step fails, the rank mpirun names as the first
// to fail is returned with the result. started is called with mpirun's
// process.
func (s *Scheduler) runMPI(ctx context.Context, task *local.Task, logPath func(label string) string, log io.Writer,
	started func(p local.Process)) (local.Result, *rankFailure) {
	t := *task
	t.ID = task.ID + "/mpirun"
	t.LogPath = logPath("mpirun")
	out := &mpiOutput{attempt: log, rankLog: logPath, ranks: map[int]*rankOutput{}, failed: -1}
	done := tailFile(t.LogPath, out.feed)
	ranks := &rankGroups{started: started, stop: make(chan struct{})}
	res := s.Exec.Run(ctx, &t, ranks.watch)
	ranks.end()
	done()
	out.close()
	if ctx.Err() != nil || res.Canceled {
		return res, nil
	}
	if res.Err != nil || res.TimedOut || res.ExitCode != 0 {
		label := "mpirun"
		if out.failed >= 0 {
			label = "rank " + strconv.Itoa(out.failed)
		}
		return res, &rankFailure{Label: label, Res: res}
	}
	return res, nil
}

// mpirunTag is the tag mpirun's --tag-output puts before what a process
// writes: [JOB,RANK]<stdout>: at the start of each line and of each write
// that does not begin one.
var mpirunTag = regexp.MustCompile(`\[\d+,(\d+)\]<(?:stdout|stderr|stddiag)>:`)

// mpirunFirstFailure finds the rank mpirun reports as the first to fail:
// "Process name: [[JOB,1],RANK]" when it exited with an error, "process
// rank RANK with PID" when a signal ended it.
var mpirunFirstFailure = regexp.MustCompile(`Process name: \[\[\d+,\d+\],(\d+)\]|process rank (\d+) with PID`)

// mpiOutput sorts mpirun's tagged output into the ranks' logs and the
// attempt's.
type mpiOutput struct {
	attempt io.Writer
	rankLog func(label string) string
	ranks   map[int]*rankOutput
	// pending is output not yet ended by a newline: a tag may be cut.
	pending []byte
	// failed is the first rank mpirun says failed, -1 until it says so.
	failed int
	mu     sync.Mutex
}

// rankOutput is one rank's log and its line not yet ended.
type rankOutput struct {
	file    *os.File
	pending []byte
}

// feed takes what mpirun wrote since the last call; lines are passed on
// whole, except at the end (final), when what is left ends with a
// newline added.
func (o *mpiOutput) feed(data []byte, final bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pending = append(o.pending, data...)
	end := bytes.LastIndexByte(o.pending, '\n') + 1
	if final {
		end = len(o.pending)
	}
	var attempt bytes.Buffer
	for _, line := range bytes.SplitAfter(o.pending[:end], []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		tags := mpirunTag.FindAllSubmatchIndex(line, -1)
		if len(tags) == 0 || tags[0][0] > 0 {
			// mpirun's own words, or a rank's unfinished line that
			// something untagged followed.
			own := line
			if len(tags) > 0 {
				own = line[:tags[0][0]]
			}
			attempt.WriteString("[mpirun] ")
			attempt.Write(own)
			if own[len(own)-1] != '\n' {
				attempt.WriteByte('\n')
			}
			if m := mpirunFirstFailure.FindSubmatch(own); m != nil && o.failed < 0 {
				o.failed, _ = strconv.Atoi(string(m[1]) + string(m[2]))
			}
		}
		for i, tag := range tags {
			rank, _ := strconv.Atoi(string(line[tag[2]:tag[3]]))
			to := len(line)
			if i+1 < len(tags) {
				to = tags[i+1][0]
			}
			o.rank(rank).pending = append(o.rank(rank).pending, line[tag[1]:to]...)
		}
	}
	o.pending = append(o.pending[:0], o.pending[end:]...)
	for _, rank := range slices.Sorted(maps.Keys(o.ranks)) {
		r := o.ranks[rank]
		n := bytes.LastIndexByte(r.pending, '\n') + 1
		if final && n < len(r.pending) {
			r.pending = append(r.pending, '\n')
			n = len(r.pending)
		}
		if n == 0 {
			continue
		}
		if r.file != nil {
			_, _ = r.file.Write(r.pending[:n])
		}
		for _, line := range bytes.SplitAfter(r.pending[:n], []byte("\n")) {
			if len(line) > 0 {
				fmt.Fprintf(&attempt, "[rank %d] %s", rank, line)
			}
		}
		r.pending = append(r.pending[:0], r.pending[n:]...)
	}
	if attempt.Len() > 0 {
		_, _ = o.attempt.Write(attempt.Bytes())
	}
}

// rank returns the output of rank r, opening its log on first use.
func (o *mpiOutput) rank(r int) *rankOutput {
	if ro, ok := o.ranks[r]; ok {
		return ro
	}
	ro := &rankOutput{}
	ro.file, _ = os.OpenFile(o.rankLog("rank "+strconv.Itoa(r)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	o.ranks[r] = ro
	return ro
}

// close closes the ranks' logs.
func (o *mpiOutput) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.ranks {
		if r.file != nil {
			r.file.Close()
		}
	}
}

// rankGroups keeps track of the ranks mpirun starts. Open MPI puts each in
// a process group of its own, out of reach of the executor, which stops
// and reaps the group of the process it started: mpirun kills its ranks
// when one fails or it is stopped, but does not wait for them, so they
// would be left to the server, which adopts orphans, as zombies; and a
// server that dies would leave them running. Each is recorded with the
// attempt like a rank of Wharf's own launcher, for recovery to stop, and
// is killed and reaped when mpirun has ended. In a sandbox, whose process
// namespace ends with it, none is left by then.
type rankGroups struct {
	started func(local.Process)
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	known   []local.Process
}

// rankPollPause is how often the processes under mpirun are looked for.
const rankPollPause = 100 * time.Millisecond

// watch is Executor.Run's started: it records mpirun's process and looks
// for the group leaders under it until end.
func (g *rankGroups) watch(root local.Process) {
	g.started(root)
	g.done = make(chan struct{})
	go func() {
		defer close(g.done)
		tick := time.NewTicker(rankPollPause)
		defer tick.Stop()
		for {
			g.look(root)
			select {
			case <-g.stop:
				return
			case <-tick.C:
			}
		}
	}()
}

// look records the group leaders among root's descendants it has not seen.
func (g *rankGroups) look(root local.Process) {
	for _, p := range groupLeadersUnder(root) {
		g.mu.Lock()
		seen := slices.ContainsFunc(g.known, func(k local.Process) bool { return k.PID == p.PID && k.StartTime == p.StartTime })
		if !seen {
			g.known = append(g.known, p)
		}
		g.mu.Unlock()
		if !seen {
			g.started(p)
		}
	}
}

// end stops looking and kills and reaps the groups of the ranks still
// there once mpirun has ended.
func (g *rankGroups) end() {
	close(g.stop)
	if g.done != nil {
		<-g.done
	}
	for _, p := range g.known {
		_, _ = local.KillOrphan(p)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-p.PGID, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.EINTR) || pid > 0 {
				continue
			}
			if err != nil {
				break // none of the group is the server's child, or none is left
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// groupLeadersUnder returns the descendants of root that lead process
// groups other than root's, read from /proc.
func groupLeadersUnder(root local.Process) []local.Process {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name, which may hold spaces and
		// parentheses: state, parent, ...
		end := bytes.LastIndexByte(b, ')')
		if end < 0 {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var leaders []local.Process
	queue := slices.Clone(children[root.PID])
	for len(queue) > 0 {
		pid := queue[0]
		queue = append(queue[1:], children[pid]...)
		if p, err := local.LookupProcess(pid); err == nil && p.PGID == pid && p.PGID != root.PGID {
			leaders = append(leaders, p)
		}
	}
	return leaders
}
