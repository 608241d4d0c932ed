// Command pipeload times pipeline runs for bench/pipeline.sh: Wharf
// pipelines submitted with the wharf CLI, and any other orchestrator's run
// command (Metaflow's local runtime). It prints one JSON line of medians
// and percentiles and, with -raw, appends one JSON line per repetition.
//
//	pipeload wharf -wharf BIN -file pipeline.yml -workspace bench -reps 5 -slots 16 -expect fresh
//	pipeload metaflow -reps 3 -log run.log -- python flow.py --no-pylint run --max-workers 16
//	pipeload rayjobs -address http://127.0.0.1:8265 -flow fanout -steps 200 -slots 16 -reps 3
//
// wharf: each repetition runs `wharf ml job create --file F --query name -o
// tsv`, then `wharf ml job stream` until the job ends, then `wharf ml job
// show -o json`, and reads the timings from the job's stored data. The CLI
// takes its server and credentials from the environment (WHARF_URL,
// WHARF_CREDENTIALS, WHARF_CONFIG_DIR). The end-to-end time is from just
// before the create command starts to the job's ended_at: the server and
// this program share one clock, so the poll interval of `job stream` is not
// counted; the time to the stream command's exit is reported beside it.
//
// metaflow: each repetition runs the command after -- and times it from
// start to exit; the command's output is parsed for Metaflow's task lines
// ("[run/step/task (pid N)] Task is starting." and "Task finished
// successfully.") to time each task.
//
// rayjobs: the same flows with each step submitted straight to a Ray
// cluster as a Ray job of its own through the Jobs API (POST /api/jobs/,
// then GET /api/jobs/{id} every 10 ms until it ends), which is how a step
// runs on Ray without a driver that stays: a chain of -steps jobs, each
// submitted when the one before succeeded; or a fan-out, one job, then
// -steps jobs with at most -slots submitted and not yet ended, then one
// job. Each repetition is timed from the first submission to the last
// job's end, and each job from its submission to its end as seen here.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wharfml/wharf/bench/internal/loadstat"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pipeload wharf|metaflow|rayjobs [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	var err error
	switch os.Args[1] {
	case "wharf":
		err = runWharf(ctx, os.Args[2:])
	case "metaflow":
		err = runMetaflow(ctx, os.Args[2:])
	case "rayjobs":
		err = runRayJobs(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q (want wharf, metaflow or rayjobs)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeload:", err)
		os.Exit(1)
	}
}

// ---- Wharf ---------------------------------------------------------------

// wharfJob is the part of `wharf ml job show -o json` that is timed.
type wharfJob struct {
	Name      string      `json:"name"`
	Status    string      `json:"status"`
	CreatedAt time.Time   `json:"created_at"`
	EndedAt   *time.Time  `json:"ended_at"`
	Steps     []wharfStep `json:"steps"`
}

type wharfStep struct {
	Step       string         `json:"step"`
	Status     string         `json:"status"`
	ReusedFrom string         `json:"reused_from"`
	Attempts   []wharfAttempt `json:"attempts"`
	Spec       struct {
		Deps []string `json:"deps"`
	} `json:"spec"`
}

type wharfAttempt struct {
	Number  int        `json:"number"`
	Status  string     `json:"status"`
	Started time.Time  `json:"started"`
	Ended   *time.Time `json:"ended"`
	// ProcessStarted and ProcessEnded bound the step's own process; a
	// server older than these fields leaves them out.
	ProcessStarted *time.Time `json:"process_started"`
	ProcessEnded   *time.Time `json:"process_ended"`
}

// wharfRep is one repetition's measurements, in milliseconds.
type wharfRep struct {
	Tool  string `json:"tool"`
	Flow  string `json:"flow"`
	Mode  string `json:"mode"`
	Rep   int    `json:"rep"`
	Job   string `json:"job"`
	Steps int    `json:"steps"`
	// WallMS: create command started → job ended_at.
	WallMS float64 `json:"wall_ms"`
	// CLIMS: create command started → `job stream` exited.
	CLIMS float64 `json:"cli_ms"`
	// ServerMS: job created_at → ended_at.
	ServerMS float64 `json:"server_ms"`
	// SubmitMS: create command started → job created_at.
	SubmitMS float64 `json:"submit_ms"`
	// FirstMS: job created_at → the first attempt started (fresh runs).
	FirstMS float64 `json:"first_ms,omitempty"`
	// ReadyMS: per step with upstreams, the time from being ready to its
	// attempt starting (see dispatchLatencies).
	ReadyMS []float64 `json:"ready_ms,omitempty"`
	// JoinMS: the step with the most upstreams, from the last of them
	// ending to its attempt starting (fan-in).
	JoinMS float64 `json:"join_ms,omitempty"`
	// AttemptMS: each attempt from started to ended.
	AttemptMS []float64 `json:"attempt_ms,omitempty"`
	// ProcMS: each attempt's process, from its fork to its exit (servers
	// that record it).
	ProcMS []float64 `json:"proc_ms,omitempty"`
	// BeyondMS: (ServerMS − the sum of ProcMS) ÷ steps, what each step
	// cost beyond its own process; meaningful for a chain, where no two
	// processes overlap. 0 when the server records no process times.
	BeyondMS float64 `json:"beyond_ms,omitempty"`
}

// summary is the one line printed on stdout: medians over repetitions and
// percentiles over the pooled per-step samples, in milliseconds.
type summary struct {
	Tool          string  `json:"tool"`
	Flow          string  `json:"flow"`
	Mode          string  `json:"mode"`
	Reps          int     `json:"reps"`
	Steps         int     `json:"steps"`
	WallMS        float64 `json:"wall_ms"`
	CLIMS         float64 `json:"cli_ms,omitempty"`
	ServerMS      float64 `json:"server_ms,omitempty"`
	SubmitMS      float64 `json:"submit_ms,omitempty"`
	FirstMS       float64 `json:"first_ms,omitempty"`
	ReadyP50MS    float64 `json:"ready_p50_ms,omitempty"`
	ReadyP95MS    float64 `json:"ready_p95_ms,omitempty"`
	ReadyN        int     `json:"ready_n,omitempty"`
	JoinMS        float64 `json:"join_ms,omitempty"`
	AttemptP50MS  float64 `json:"attempt_p50_ms,omitempty"`
	AttemptP95MS  float64 `json:"attempt_p95_ms,omitempty"`
	ProcP50MS     float64 `json:"proc_p50_ms,omitempty"`
	ProcP95MS     float64 `json:"proc_p95_ms,omitempty"`
	BeyondMS      float64 `json:"beyond_ms,omitempty"`
	TaskP50MS     float64 `json:"task_p50_ms,omitempty"`
	TaskP95MS     float64 `json:"task_p95_ms,omitempty"`
	GapP50MS      float64 `json:"gap_p50_ms,omitempty"`
	GapP95MS      float64 `json:"gap_p95_ms,omitempty"`
	WallMinMS     float64 `json:"wall_min_ms"`
	WallMaxMS     float64 `json:"wall_max_ms"`
	StepsReused   int     `json:"steps_reused,omitempty"`
	StepsExecuted int     `json:"steps_executed,omitempty"`
}

func runWharf(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("wharf", flag.ContinueOnError)
	bin := fs.String("wharf", "wharf", "the wharf binary")
	file := fs.String("file", "", "pipeline YAML to submit")
	ws := fs.String("workspace", "bench", "workspace")
	reps := fs.Int("reps", 5, "measured repetitions")
	warmup := fs.Int("warmup", 0, "unmeasured submissions before the measured ones")
	slots := fs.Int("slots", 16, "the compute's max instances (steps that may run at once)")
	expect := fs.String("expect", "fresh", "fresh: every step must run; reused: every step must be reused")
	flow := fs.String("flow", "", "flow label for the output")
	raw := fs.String("raw", "", "append one JSON line per repetition to this file")
	wait := fs.String("wait", "stream", "stream: wait with `wharf ml job stream`; show: poll `wharf ml job show` every 250 ms")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *wait != "stream" && *wait != "show" {
		return fmt.Errorf("-wait %q: want stream or show", *wait)
	}
	if *file == "" || *reps < 1 || *slots < 1 {
		return errors.New("-file, -reps >= 1 and -slots >= 1 are required")
	}
	if *expect != "fresh" && *expect != "reused" {
		return fmt.Errorf("-expect %q: want fresh or reused", *expect)
	}
	cli := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, *bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("wharf %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return out, nil
	}
	rf, closeRaw, err := openRaw(*raw)
	if err != nil {
		return err
	}
	defer closeRaw()
	var got []*wharfRep
	for i := -*warmup; i < *reps; i++ {
		t0 := time.Now()
		out, err := cli("ml", "job", "create", "--file", *file, "-w", *ws, "--query", "name", "-o", "tsv")
		if err != nil {
			return err
		}
		name := strings.TrimSpace(string(out))
		if name == "" {
			return errors.New("job create printed no name")
		}
		if *wait == "stream" {
			if _, err := cli("ml", "job", "stream", "-n", name, "-w", *ws); err != nil {
				return err
			}
		} else if err := pollStatus(ctx, cli, name, *ws); err != nil {
			return err
		}
		tStream := time.Now()
		out, err = cli("ml", "job", "show", "-n", name, "-w", *ws, "-o", "json")
		if err != nil {
			return err
		}
		var j wharfJob
		if err := json.Unmarshal(out, &j); err != nil {
			return fmt.Errorf("job show %s: %w", name, err)
		}
		if i < 0 {
			// A warm-up, or the submission that fills the cache: only
			// its outcome is checked.
			if j.Status != "Completed" {
				return fmt.Errorf("job %s: status %s, want Completed", name, j.Status)
			}
			fmt.Fprintf(os.Stderr, "    wharf %s %s unmeasured submission: %d of %d steps reused\n",
				*flow, *expect, countReused(&j), len(j.Steps))
			continue
		}
		rep, err := measureWharf(&j, t0, tStream, *slots, *expect == "reused")
		if err != nil {
			return fmt.Errorf("job %s: %w", name, err)
		}
		rep.Tool, rep.Flow, rep.Mode, rep.Rep = "wharf", *flow, *expect, i+1
		got = append(got, rep)
		b, _ := json.Marshal(rep)
		fmt.Fprintf(rf, "%s\n", b)
		fmt.Fprintf(os.Stderr, "    wharf %s %s rep %d: %.1f ms (server %.1f ms, CLI %.1f ms)\n",
			*flow, *expect, i+1, rep.WallMS, rep.ServerMS, rep.CLIMS)
	}
	s := summarizeWharf(got)
	s.Flow, s.Mode = *flow, *expect
	b, _ := json.Marshal(s)
	fmt.Printf("%s\n", b)
	return nil
}

// pollStatus waits for a job to end by asking for its status every 250 ms.
func pollStatus(ctx context.Context, cli func(...string) ([]byte, error), name, ws string) error {
	for {
		out, err := cli("ml", "job", "show", "-n", name, "-w", ws, "--query", "status", "-o", "tsv")
		if err != nil {
			return err
		}
		switch strings.TrimSpace(string(out)) {
		case "Completed", "Failed", "Canceled":
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func countReused(j *wharfJob) int {
	n := 0
	for _, st := range j.Steps {
		if st.ReusedFrom != "" {
			n++
		}
	}
	return n
}

// measureWharf turns a finished job into one repetition's numbers. With
// reused, every step must have been reused from an earlier job; without,
// every step must have run exactly one attempt.
func measureWharf(j *wharfJob, t0, tStream time.Time, slots int, reused bool) (*wharfRep, error) {
	if j.Status != "Completed" || j.EndedAt == nil {
		return nil, fmt.Errorf("status %s, want Completed", j.Status)
	}
	rep := &wharfRep{Job: j.Name, Steps: len(j.Steps),
		WallMS:   loadstat.Ms(j.EndedAt.Sub(t0)),
		CLIMS:    loadstat.Ms(tStream.Sub(t0)),
		ServerMS: loadstat.Ms(j.EndedAt.Sub(j.CreatedAt)),
		SubmitMS: loadstat.Ms(j.CreatedAt.Sub(t0)),
	}
	for _, st := range j.Steps {
		switch {
		case reused && st.ReusedFrom == "":
			return nil, fmt.Errorf("step %s was not reused", st.Step)
		case !reused && st.ReusedFrom != "":
			return nil, fmt.Errorf("step %s was reused from %s (force_rerun should prevent it)", st.Step, st.ReusedFrom)
		case !reused && (len(st.Attempts) != 1 || st.Attempts[0].Ended == nil):
			return nil, fmt.Errorf("step %s has %d attempts, want one that ended", st.Step, len(st.Attempts))
		}
	}
	if reused {
		return rep, nil
	}
	steps := make([]dagStep, len(j.Steps))
	var procs time.Duration
	for i, st := range j.Steps {
		a := st.Attempts[0]
		steps[i] = dagStep{Name: st.Step, Deps: st.Spec.Deps, Started: a.Started, Ended: *a.Ended}
		rep.AttemptMS = append(rep.AttemptMS, loadstat.Ms(a.Ended.Sub(a.Started)))
		if a.ProcessStarted != nil && a.ProcessEnded != nil {
			d := a.ProcessEnded.Sub(*a.ProcessStarted)
			procs += d
			rep.ProcMS = append(rep.ProcMS, loadstat.Ms(d))
		}
	}
	if len(rep.ProcMS) == len(j.Steps) {
		rep.BeyondMS = loadstat.Round((rep.ServerMS-loadstat.Ms(procs))/float64(len(j.Steps)), 3)
	}
	first := steps[0].Started
	for _, s := range steps {
		if s.Started.Before(first) {
			first = s.Started
		}
	}
	rep.FirstMS = loadstat.Ms(first.Sub(j.CreatedAt))
	ready, join, err := dispatchLatencies(steps, slots)
	if err != nil {
		return nil, err
	}
	for _, d := range ready {
		rep.ReadyMS = append(rep.ReadyMS, loadstat.Ms(d))
	}
	if join >= 0 {
		rep.JoinMS = loadstat.Ms(join)
	}
	return rep, nil
}

// dagStep is one executed step: its upstream steps and its attempt's
// start and end.
type dagStep struct {
	Name    string
	Deps    []string
	Started time.Time
	Ended   time.Time
}

// dispatchLatencies gives, for every step with upstreams, the time from
// the step being ready to its attempt starting. A step is ready when the
// last of its upstreams has ended and a compute slot is free: with slots
// steps at most at once, attempts are matched to slots in the order they
// started, each taking the slot that came free earliest (a slot comes free
// when its previous attempt ends). join is the same latency for the step
// with the most upstreams (more than one), counted from its last
// upstream's end only; -1 when no step has more than one.
func dispatchLatencies(steps []dagStep, slots int) (ready []time.Duration, join time.Duration, err error) {
	byName := make(map[string]*dagStep, len(steps))
	for i := range steps {
		byName[steps[i].Name] = &steps[i]
	}
	order := make([]*dagStep, len(steps))
	for i := range steps {
		order[i] = &steps[i]
	}
	slices.SortStableFunc(order, func(a, b *dagStep) int { return a.Started.Compare(b.Started) })
	free := make([]time.Time, slots) // when each slot came free; zero = always
	join = -1
	most := 1
	for _, s := range order {
		k := 0
		for i := range free {
			if free[i].Before(free[k]) {
				k = i
			}
		}
		slotFree := free[k]
		free[k] = s.Ended
		if len(s.Deps) == 0 {
			continue
		}
		var last time.Time
		for _, d := range s.Deps {
			up := byName[d]
			if up == nil {
				return nil, 0, fmt.Errorf("step %s: upstream %s not in the job", s.Name, d)
			}
			if up.Ended.After(last) {
				last = up.Ended
			}
		}
		if s.Started.Before(last) {
			return nil, 0, fmt.Errorf("step %s started before its upstreams ended", s.Name)
		}
		r := last
		if slotFree.After(r) {
			r = slotFree
		}
		ready = append(ready, s.Started.Sub(r))
		if len(s.Deps) > most {
			most = len(s.Deps)
			join = s.Started.Sub(last)
		}
	}
	return ready, join, nil
}

func summarizeWharf(reps []*wharfRep) *summary {
	s := &summary{Tool: "wharf", Reps: len(reps)}
	var wall, cli, server, submit, first, join, ready, attempt, proc, beyond []float64
	for _, r := range reps {
		s.Steps = r.Steps
		wall = append(wall, r.WallMS)
		cli = append(cli, r.CLIMS)
		server = append(server, r.ServerMS)
		submit = append(submit, r.SubmitMS)
		if r.Mode == "reused" {
			s.StepsReused = r.Steps
			continue
		}
		s.StepsExecuted = r.Steps
		first = append(first, r.FirstMS)
		if r.JoinMS > 0 {
			join = append(join, r.JoinMS)
		}
		ready = append(ready, r.ReadyMS...)
		attempt = append(attempt, r.AttemptMS...)
		proc = append(proc, r.ProcMS...)
		if r.BeyondMS != 0 {
			beyond = append(beyond, r.BeyondMS)
		}
	}
	s.WallMS, s.WallMinMS, s.WallMaxMS = median(wall), quantile(wall, 0), quantile(wall, 1)
	s.CLIMS, s.ServerMS, s.SubmitMS = median(cli), median(server), median(submit)
	s.FirstMS, s.JoinMS = median(first), median(join)
	s.ReadyP50MS, s.ReadyP95MS, s.ReadyN = quantile(ready, 0.5), quantile(ready, 0.95), len(ready)
	s.AttemptP50MS, s.AttemptP95MS = quantile(attempt, 0.5), quantile(attempt, 0.95)
	s.ProcP50MS, s.ProcP95MS = quantile(proc, 0.5), quantile(proc, 0.95)
	s.BeyondMS = median(beyond)
	return s
}

// ---- Metaflow ------------------------------------------------------------

// metaflowRep is one repetition of a Metaflow run, in milliseconds.
type metaflowRep struct {
	Tool   string  `json:"tool"`
	Flow   string  `json:"flow"`
	Rep    int     `json:"rep"`
	WallMS float64 `json:"wall_ms"`
	Tasks  int     `json:"tasks"`
	// TaskMS: each task from "Task is starting" to "Task finished".
	TaskMS []float64 `json:"task_ms"`
	// GapMS: when no two tasks overlapped (a chain), each task's start
	// minus the previous task's finish.
	GapMS []float64 `json:"gap_ms,omitempty"`
}

func runMetaflow(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("metaflow", flag.ContinueOnError)
	reps := fs.Int("reps", 3, "measured repetitions")
	warmup := fs.Int("warmup", 0, "unmeasured runs before the measured ones")
	flow := fs.String("flow", "", "flow label for the output")
	logPath := fs.String("log", "", "append the command's output to this file")
	raw := fs.String("raw", "", "append one JSON line per repetition to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 || *reps < 1 {
		return errors.New("a command after -- and -reps >= 1 are required")
	}
	var logw io.Writer = io.Discard
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		logw = f
	}
	rf, closeRaw, err := openRaw(*raw)
	if err != nil {
		return err
	}
	defer closeRaw()
	var got []*metaflowRep
	for i := -*warmup; i < *reps; i++ {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = &out, &out
		// Its own process group, so that a stopped benchmark takes the
		// runtime's task processes down with it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		t0 := time.Now()
		err := cmd.Run()
		wall := time.Since(t0)
		_, _ = logw.Write(out.Bytes())
		if err != nil {
			tail := out.String()
			if len(tail) > 4000 {
				tail = tail[len(tail)-4000:]
			}
			return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, tail)
		}
		rep, err := parseMetaflow(out.Bytes())
		if err != nil {
			return err
		}
		if i < 0 {
			continue
		}
		rep.Tool, rep.Flow, rep.Rep, rep.WallMS = "metaflow", *flow, i+1, loadstat.Ms(wall)
		got = append(got, rep)
		b, _ := json.Marshal(rep)
		fmt.Fprintf(rf, "%s\n", b)
		fmt.Fprintf(os.Stderr, "    metaflow %s rep %d: %.1f ms (%d tasks)\n", *flow, i+1, rep.WallMS, rep.Tasks)
	}
	s := &summary{Tool: "metaflow", Flow: *flow, Reps: len(got)}
	var wall, task, gap []float64
	for _, r := range got {
		s.Steps = r.Tasks
		wall = append(wall, r.WallMS)
		task = append(task, r.TaskMS...)
		gap = append(gap, r.GapMS...)
	}
	s.WallMS, s.WallMinMS, s.WallMaxMS = median(wall), quantile(wall, 0), quantile(wall, 1)
	s.TaskP50MS, s.TaskP95MS = quantile(task, 0.5), quantile(task, 0.95)
	s.GapP50MS, s.GapP95MS = quantile(gap, 0.5), quantile(gap, 0.95)
	b, _ := json.Marshal(s)
	fmt.Printf("%s\n", b)
	return nil
}

// metaflowLine matches the runtime's task lines, for example
// "2026-11-23 11:32:28.788 [1795433548754687/start/1 (pid 19214)] Task is starting."
var metaflowLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \[([^ \]]+) \(pid \d+\)\] Task (is starting|finished successfully)\.`)

// parseMetaflow reads a run's output: every task's start and finish, and
// "Done!" at the end.
func parseMetaflow(out []byte) (*metaflowRep, error) {
	type span struct{ start, end time.Time }
	tasks := map[string]*span{}
	var order []string
	done := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasSuffix(line, " Done!") {
			done = true
		}
		m := metaflowLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02 15:04:05.000", m[1], time.Local)
		if err != nil {
			return nil, err
		}
		sp := tasks[m[2]]
		if sp == nil {
			sp = &span{}
			tasks[m[2]] = sp
			order = append(order, m[2])
		}
		if m[3] == "is starting" {
			sp.start = t
		} else {
			sp.end = t
		}
	}
	if !done {
		return nil, errors.New("metaflow run did not print Done!")
	}
	rep := &metaflowRep{Tasks: len(order)}
	spans := make([]span, 0, len(order))
	for _, id := range order {
		sp := tasks[id]
		if sp.start.IsZero() || sp.end.IsZero() {
			return nil, fmt.Errorf("task %s: no start or finish line", id)
		}
		rep.TaskMS = append(rep.TaskMS, loadstat.Ms(sp.end.Sub(sp.start)))
		spans = append(spans, *sp)
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start.Compare(b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start.Before(spans[i-1].end) {
			rep.GapMS = nil
			break
		}
		rep.GapMS = append(rep.GapMS, loadstat.Ms(spans[i].start.Sub(spans[i-1].end)))
	}
	return rep, nil
}

// openRaw opens the file of -raw for appending, or discards what is
// written when path is empty.
func openRaw(path string) (io.Writer, func(), error) {
	if path == "" {
		return io.Discard, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// ---- arithmetic ----------------------------------------------------------

// quantile returns the nearest-rank p-quantile of v (v is not changed):
// the smallest sample with at least a fraction p of the samples at or
// below it; p = 0 gives the minimum. 0 for no samples.
func quantile(v []float64, p float64) float64 {
	n := len(v)
	if n == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	// The epsilon keeps exact multiples (0.95*100) from rounding up a rank.
	rank := int(math.Ceil(p*float64(n) - 1e-9))
	rank = min(max(rank, 1), n)
	return loadstat.Round(s[rank-1], 2)
}

// median is the nearest-rank median: with an even count, the lower of the
// two middle samples.
func median(v []float64) float64 { return quantile(v, 0.5) }
