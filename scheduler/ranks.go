package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharfml/wharf/local"
)

// masterAddr is where the processes of a distributed attempt find each
// other: they all run on the server's machine, which is every instance.
const masterAddr = "127.0.0.1"

// logFollowPause is how often the log of a rank is read for new lines to
// copy into the attempt's log.
const logFollowPause = 50 * time.Millisecond

// rank is one process of a distributed attempt.
type rank struct {
	// Label names it in the attempt's log and its own log's file name:
	// "rank 1", or "worker 0" and "ps 0" for tensorflow.
	Label string
	// Node is the instance it runs on, of resources.instance_count.
	Node int
	// Env are the variables that tell it its place.
	Env map[string]string
}

// planRanks lays out the processes of a distributed step and the
// variables Azure ML sets in each, so that scripts written for it find
// their rank and each other unchanged. freePort gives a TCP port nothing
// listens on.
func planRanks(d *DistributionSpec, freePort func() (int, error)) ([]rank, error) {
	nodes := max(d.InstanceCount, 1)
	master, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("finding a free port for the processes to meet on: %w", err)
	}
	common := meetingVars(nodes, master)
	var ranks []rank
	switch d.Type {
	case "pytorch", "mpi":
		per := max(d.ProcessCountPerInstance, 1)
		world := nodes * per
		for r := range world {
			node, local := r/per, r%per
			env := map[string]string{"NODE_RANK": strconv.Itoa(node), "AZ_BATCHAI_TASK_INDEX": strconv.Itoa(node)}
			if d.Type == "pytorch" {
				env["MASTER_ADDR"], env["MASTER_PORT"] = masterAddr, strconv.Itoa(master)
				env["WORLD_SIZE"], env["RANK"] = strconv.Itoa(world), strconv.Itoa(r)
				env["LOCAL_RANK"], env["LOCAL_WORLD_SIZE"] = strconv.Itoa(local), strconv.Itoa(per)
				env["GROUP_RANK"] = strconv.Itoa(node)
			} else {
				// What mpirun gives each process, Open MPI's names and
				// the PMI ones of MPICH and Intel MPI.
				env["OMPI_COMM_WORLD_RANK"], env["OMPI_COMM_WORLD_SIZE"] = strconv.Itoa(r), strconv.Itoa(world)
				env["OMPI_COMM_WORLD_LOCAL_RANK"], env["OMPI_COMM_WORLD_LOCAL_SIZE"] = strconv.Itoa(local), strconv.Itoa(per)
				env["OMPI_COMM_WORLD_NODE_RANK"] = strconv.Itoa(node)
				env["PMI_RANK"], env["PMI_SIZE"] = strconv.Itoa(r), strconv.Itoa(world)
			}
			ranks = append(ranks, rank{Label: "rank " + strconv.Itoa(r), Node: node, Env: env})
		}
	case "tensorflow":
		workers := d.WorkerCount
		if workers == 0 {
			workers = nodes
		}
		cluster := map[string][]string{}
		type task struct {
			kind  string
			index int
		}
		var tasks []task
		for kind, n := range map[string]int{"worker": workers, "ps": d.ParameterServerCount} {
			for i := range n {
				port := master
				if kind != "worker" || i != 0 {
					if port, err = freePort(); err != nil {
						return nil, fmt.Errorf("finding a free port for %s %d: %w", kind, i, err)
					}
				}
				cluster[kind] = append(cluster[kind], masterAddr+":"+strconv.Itoa(port))
				tasks = append(tasks, task{kind, i})
			}
		}
		// Workers first, then parameter servers, each in index order.
		slices.SortFunc(tasks, func(a, b task) int {
			if a.kind != b.kind {
				return strings.Compare(b.kind, a.kind) // "worker" before "ps"
			}
			return a.index - b.index
		})
		for i, t := range tasks {
			config, err := json.Marshal(map[string]any{"cluster": cluster,
				"task": map[string]any{"type": t.kind, "index": t.index}, "environment": "cloud"})
			if err != nil {
				return nil, err
			}
			node := i % nodes
			ranks = append(ranks, rank{Label: t.kind + " " + strconv.Itoa(t.index), Node: node, Env: map[string]string{
				"TF_CONFIG": string(config), "NODE_RANK": strconv.Itoa(node), "AZ_BATCHAI_TASK_INDEX": strconv.Itoa(node)}})
		}
	default:
		return nil, fmt.Errorf("distribution type %q cannot run on local compute", d.Type)
	}
	for _, r := range ranks {
		for k, v := range common {
			r.Env[k] = v
		}
	}
	return ranks, nil
}

// meetingVars are the variables Azure ML sets in every process of a
// distributed step: where the first instance is, and how many there are.
func meetingVars(nodes, port int) map[string]string {
	return map[string]string{
		"AZ_BATCH_MASTER_NODE":       masterAddr + ":" + strconv.Itoa(port),
		"AZ_BATCHAI_MPI_MASTER_NODE": masterAddr,
		"AZUREML_NODE_COUNT":         strconv.Itoa(nodes),
	}
}

// freeLocalPort asks the kernel for a TCP port on the loopback address
// that nothing listens on. Another program could take it before the step
// does, as with torchrun's own choice of port.
func freeLocalPort() (int, error) {
	l, err := net.Listen("tcp", masterAddr+":0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// withVars returns env with vars set, except those the step's own
// environment_variables set: the user has the last word, as in
// processEnv.
func withVars(env []string, vars map[string]string, spec *StepSpec) []string {
	out := make([]string, 0, len(env)+len(vars))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if _, set := vars[k]; set {
			if _, own := spec.EnvVars[k]; !own {
				continue
			}
		}
		out = append(out, kv)
	}
	for k, v := range vars {
		if _, own := spec.EnvVars[k]; !own {
			out = append(out, k+"="+v)
		}
	}
	slices.Sort(out)
	return out
}

// rankLogPath is where one rank of an attempt logs, beside the attempt's
// log.
func (s *Scheduler) rankLogPath(workspace, job string, attempt int, label string) string {
	return strings.TrimSuffix(s.LogPath(workspace, job, attempt), ".log") + "." + strings.ReplaceAll(label, " ", "-") + ".log"
}

// rankFailure is how a distributed attempt failed: which rank, and how.
type rankFailure struct {
	Label string
	Res   local.Result
}

// runRanks runs the processes of a distributed attempt together, each a
// task of the executor like a single step's process, sandboxed alike,
// with its own log; their lines are copied into the attempt's log (log)
// prefixed with their rank, for `job stream`. The first to fail or time
// out stops the others, and is returned with the result. started is
// called with each process as it starts, as Executor.Run calls it.
func (s *Scheduler) runRanks(ctx context.Context, base *local.Task, ranks []rank, logPath func(label string) string,
	env func(r rank) []string, log io.Writer, started func(p local.Process)) (local.Result, *rankFailure) {
	group, stop := context.WithCancel(ctx)
	defer stop()
	results := make([]local.Result, len(ranks))
	var (
		mu      sync.Mutex
		failed  = -1
		logMu   sync.Mutex
		wg      sync.WaitGroup
		startMu sync.Mutex
	)
	for i, r := range ranks {
		t := *base
		t.ID = base.ID + "/" + strings.ReplaceAll(r.Label, " ", "-")
		t.Env = env(r)
		t.LogPath = logPath(r.Label)
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := followLog(t.LogPath, "["+r.Label+"] ", log, &logMu)
			res := s.Exec.Run(group, &t, func(p local.Process) {
				startMu.Lock()
				defer startMu.Unlock()
				started(p)
			})
			done()
			results[i] = res
			if res.Err != nil || res.TimedOut || (!res.Canceled && res.ExitCode != 0) {
				mu.Lock()
				if failed < 0 {
					failed = i
				}
				mu.Unlock()
				stop()
			}
		}()
	}
	wg.Wait()
	var out local.Result
	for _, r := range results {
		if !r.Started.IsZero() && (out.Started.IsZero() || r.Started.Before(out.Started)) {
			out.Started = r.Started
		}
		if r.Exited.After(out.Exited) {
			out.Exited = r.Exited
		}
		if r.Ended.After(out.Ended) {
			out.Ended = r.Ended
		}
	}
	switch {
	case ctx.Err() != nil:
		out.Canceled, out.ExitCode = true, -1
		return out, nil
	case failed >= 0:
		f := results[failed]
		out.ExitCode, out.TimedOut, out.Err = f.ExitCode, f.TimedOut, f.Err
		return out, &rankFailure{Label: ranks[failed].Label, Res: f}
	}
	return out, nil
}

// followLog copies the lines a rank writes to its log into the attempt's
// log, each after prefix, until the returned function is called, which
// copies what is left and returns. The rank's log is made here so that
// it can be read from the start.
func followLog(path, prefix string, dst io.Writer, mu *sync.Mutex) (done func()) {
	var pending []byte
	return tailFile(path, func(data []byte, final bool) {
		pending = append(pending, data...)
		end := bytes.LastIndexByte(pending, '\n') + 1
		if final && end < len(pending) {
			pending = append(pending, '\n')
			end = len(pending)
		}
		if end == 0 {
			return
		}
		var b bytes.Buffer
		for _, line := range bytes.SplitAfter(pending[:end], []byte("\n")) {
			if len(line) > 0 {
				b.WriteString(prefix)
				b.Write(line)
			}
		}
		mu.Lock()
		_, _ = dst.Write(b.Bytes())
		mu.Unlock()
		pending = append(pending[:0], pending[end:]...)
	})
}

// tailFile reads what is written to the file at path, creating it, every
// logFollowPause and hands it to read, until the returned function is
// called, which hands over what is left with final set and returns.
func tailFile(path string, read func(data []byte, final bool)) (done func()) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return func() {}
	}
	buf := make([]byte, 32<<10)
	readAll := func(final bool) {
		var data []byte
		for {
			n, _ := f.Read(buf)
			data = append(data, buf[:n]...)
			if n == 0 {
				break
			}
		}
		if len(data) > 0 || final {
			read(data, final)
		}
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(logFollowPause)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				readAll(true)
				f.Close()
				return
			case <-tick.C:
				readAll(false)
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}
