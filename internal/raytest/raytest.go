// Package raytest starts a real single-node Ray cluster for a test: a head
// with its dashboard, whose Jobs API (POST /api/jobs/ and friends) is what
// Wharf's Ray-backed compute talks to.
//
// scripts/test installs ray[default] into a venv in .tools/ and points
// WHARF_TEST_RAY at its ray program; without it a test is skipped on a
// developer machine and fails under CI, which must have every prerequisite.
//
// Several heads may run on one machine at once (tests of several packages
// run in parallel, and other users may run their own): each head gets free
// ports for every listener Ray would otherwise put on a fixed default port,
// a temp dir of its own, and is stopped by killing its own process group,
// never with `ray stop`, which stops every Ray process of the user.
package raytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharfml/wharf/internal/testneed"
)

// Options shape the head. The zero value is a head with 2 CPUs.
type Options struct {
	// CPUs is the number of CPUs the head offers to tasks (--num-cpus);
	// 0 means 2.
	CPUs int
	// GPUs is the number of GPUs it offers (--num-gpus); Ray counts them
	// as a resource like any other, so a test may offer GPUs the machine
	// lacks to see that a request for them is placed.
	GPUs int
	// Env is added to the head's environment, and so to every task's and
	// job's, after PATH with the ray venv's bin first: an entry for PATH
	// replaces that one.
	Env []string
}

// Head is a running Ray head.
type Head struct {
	// URL is the dashboard's address, http://127.0.0.1:PORT, which serves
	// the Jobs API.
	URL string
	// GCSAddress is the cluster's address, HOST:PORT, as ray.init and
	// `ray start --address` take it.
	GCSAddress string
	// TempDir holds the head's session: logs, sockets, spilled objects.
	TempDir string
	// Ray is the ray program that started the head, and Python the
	// interpreter of its venv, which has ray importable.
	Ray, Python string
	// env is what the head's environment adds to the test's, which a
	// node added to the cluster gets too.
	env []string
}

// launch starts a ray command (a head or a node, with --block) with env
// added to the test's environment, the venv's bin first on PATH: a job's
// `python` is then one that can import ray, as on a cluster built from
// Ray's images. It runs in a process group of its own, so that every
// process it starts stays in it and killing the group stops it and
// nothing else; its output goes to the file logPath, read (out) only when
// it fails. exited is closed when it has ended.
func launch(bin string, args, env []string, logPath string) (cmd *exec.Cmd, exited chan struct{}, out func() string, err error) {
	cmd = exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, nil, nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return cmd, exited, func() string { b, _ := os.ReadFile(logPath); return string(b) }, nil
}

// Program returns the ray program named by WHARF_TEST_RAY, skipping t (or
// failing it under CI) when it is unset.
func Program(t testing.TB) string {
	t.Helper()
	return testneed.Env(t, "WHARF_TEST_RAY", "./scripts/test installs ray[default] into .tools/")
}

// Start runs a Ray head until t ends and returns once its Jobs API answers
// and its dashboard agent, which runs submitted jobs, listens.
func Start(t testing.TB, opts Options) *Head {
	t.Helper()
	bin := Program(t)
	if opts.CPUs == 0 {
		opts.CPUs = 2
	}
	// Ray puts unix sockets under the temp dir, and a socket's path may not
	// exceed 107 bytes: t.TempDir's long names would not do.
	dir, err := os.MkdirTemp("", "ray")
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 4)
	gcsPort, dashPort, agentPort, clientPort := ports[0], ports[1], ports[2], ports[3]
	args := []string{"start", "--head", "--block",
		"--num-cpus", strconv.Itoa(opts.CPUs),
		"--num-gpus", strconv.Itoa(opts.GPUs),
		"--port", strconv.Itoa(gcsPort),
		"--dashboard-host", "127.0.0.1",
		"--dashboard-port", strconv.Itoa(dashPort),
		"--dashboard-agent-listen-port", strconv.Itoa(agentPort),
		"--ray-client-server-port", strconv.Itoa(clientPort),
		"--include-dashboard=true",
		// Workers bind ports the kernel picks rather than Ray's default
		// range, which another head's workers may hold.
		"--min-worker-port", "0", "--max-worker-port", "0",
		"--object-store-memory", strconv.Itoa(200 << 20),
		"--temp-dir", dir,
		"--disable-usage-stats",
	}
	env := append([]string{"PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH")}, opts.Env...)
	logPath := filepath.Join(dir, "head.log")
	cmd, exited, out, err := launch(bin, args, env, logPath)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start ray head: %v", err)
	}
	h := &Head{
		URL:     fmt.Sprintf("http://127.0.0.1:%d", dashPort),
		TempDir: dir,
		Ray:     bin,
		Python:  filepath.Join(filepath.Dir(bin), "python"),
		env:     env,
	}
	t.Cleanup(func() { h.stop(cmd.Process.Pid, exited) })

	for deadline := time.Now().Add(90 * time.Second); ; {
		if h.ready(agentPort) {
			break
		}
		select {
		case <-exited:
			t.Fatalf("ray head exited before its Jobs API answered:\n%s", out())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ray head's Jobs API did not answer at %s within 90s:\n%s", h.URL, out())
		}
		time.Sleep(200 * time.Millisecond)
	}
	h.GCSAddress = gcsAddress(dir, gcsPort)
	return h
}

// AddNode starts a second Ray node on this machine, joined to the head's
// cluster with cpus CPUs and the head's environment, until t ends, and
// returns once the head counts it alive: a cluster of two nodes, as far
// as Ray's scheduling (placement groups, SPREAD) can tell, on one machine.
// It gets free ports and a temp dir of its own, as the head does.
func (h *Head) AddNode(t testing.TB, cpus int) {
	t.Helper()
	dir, err := os.MkdirTemp("", "raynode")
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 6)
	args := []string{"start", "--block", "--address", h.GCSAddress,
		"--num-cpus", strconv.Itoa(cpus), "--num-gpus", "0",
		"--node-manager-port", strconv.Itoa(ports[0]),
		"--object-manager-port", strconv.Itoa(ports[1]),
		"--dashboard-agent-listen-port", strconv.Itoa(ports[2]),
		"--dashboard-agent-grpc-port", strconv.Itoa(ports[3]),
		"--runtime-env-agent-port", strconv.Itoa(ports[4]),
		"--metrics-export-port", strconv.Itoa(ports[5]),
		"--min-worker-port", "0", "--max-worker-port", "0",
		"--object-store-memory", strconv.Itoa(200 << 20),
		"--temp-dir", dir,
		"--disable-usage-stats",
	}
	cmd, exited, out, err := launch(h.Ray, args, h.env, filepath.Join(dir, "node.log"))
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start ray node: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		os.RemoveAll(dir)
	})
	before := h.aliveNodes()
	for deadline := time.Now().Add(90 * time.Second); h.aliveNodes() <= before; time.Sleep(200 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("ray node exited before it joined the cluster:\n%s", out())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ray node did not join the cluster at %s within 90s:\n%s", h.GCSAddress, out())
		}
	}
}

// aliveNodes is the number of the cluster's nodes Ray's state API lists
// as alive; 0 when it does not answer.
func (h *Head) aliveNodes() int {
	var resp struct {
		Data struct {
			Result struct {
				Result []struct {
					State string `json:"state"`
				} `json:"result"`
			} `json:"result"`
		} `json:"data"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.get(ctx, "/api/v0/nodes?limit=100", &resp); err != nil {
		return 0
	}
	n := 0
	for _, node := range resp.Data.Result.Result {
		if node.State == "ALIVE" {
			n++
		}
	}
	return n
}

// ready reports whether the Jobs API answers GET /api/version and the
// dashboard agent, without which a submission is refused with "No
// available agent", listens.
func (h *Head) ready(agentPort int) bool {
	resp, err := http.Get(h.URL + "/api/version")
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(agentPort)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// stop stops the head's jobs through the Jobs API, so that their drivers,
// which Ray starts in sessions of their own, outside the head's process
// group, end too; then kills the head's process group and removes its
// temp dir. Killing, not `ray stop` or SIGTERM: SIGTERM drains for up to
// 30 seconds, and `ray stop` would stop other heads as well.
func (h *Head) stop(pgid int, exited <-chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if jobs, err := h.jobs(ctx); err == nil {
		var running []string
		for _, j := range jobs {
			if !j.Terminal() {
				running = append(running, j.SubmissionID)
				_ = h.post(ctx, "/api/jobs/"+j.SubmissionID+"/stop", nil, nil)
			}
		}
		for _, id := range running {
			for ctx.Err() == nil {
				var j Job
				if err := h.get(ctx, "/api/jobs/"+id, &j); err != nil || j.Terminal() {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-exited
	os.RemoveAll(h.TempDir)
}

// Job is what the Jobs API says of a job (GET /api/jobs/{id}).
type Job struct {
	SubmissionID   string            `json:"submission_id"`
	Status         string            `json:"status"`
	Message        string            `json:"message"`
	Entrypoint     string            `json:"entrypoint"`
	Metadata       map[string]string `json:"metadata"`
	DriverExitCode *int              `json:"driver_exit_code"`
}

// Terminal reports whether the job has ended: SUCCEEDED, FAILED or STOPPED.
func (j Job) Terminal() bool {
	switch j.Status {
	case "SUCCEEDED", "FAILED", "STOPPED":
		return true
	}
	return false
}

// Submit submits entrypoint, a shell command, as a Ray job with env added
// to its environment (runtime_env.env_vars) and returns its submission id.
func (h *Head) Submit(t testing.TB, entrypoint string, env map[string]string) string {
	t.Helper()
	body := map[string]any{"entrypoint": entrypoint}
	if len(env) > 0 {
		body["runtime_env"] = map[string]any{"env_vars": env}
	}
	var resp struct {
		SubmissionID string `json:"submission_id"`
	}
	if err := h.post(context.Background(), "/api/jobs/", body, &resp); err != nil {
		t.Fatalf("submit %q: %v", entrypoint, err)
	}
	return resp.SubmissionID
}

// Wait waits until the job ends and returns what the Jobs API says of it,
// failing t after timeout.
func (h *Head) Wait(t testing.TB, id string, timeout time.Duration) Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		var j Job
		if err := h.get(ctx, "/api/jobs/"+id, &j); err != nil {
			t.Fatalf("job %s: %v", id, err)
		}
		if j.Terminal() {
			return j
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s still %s after %s; logs:\n%s", id, j.Status, timeout, h.Logs(t, id))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Logs returns a job's output (GET /api/jobs/{id}/logs).
func (h *Head) Logs(t testing.TB, id string) string {
	t.Helper()
	var resp struct {
		Logs string `json:"logs"`
	}
	if err := h.get(context.Background(), "/api/jobs/"+id+"/logs", &resp); err != nil {
		t.Fatalf("logs of job %s: %v", id, err)
	}
	return resp.Logs
}

func (h *Head) jobs(ctx context.Context) ([]Job, error) {
	var jobs []Job
	err := h.get(ctx, "/api/jobs/", &jobs)
	return jobs, err
}

func (h *Head) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL+path, nil)
	if err != nil {
		return err
	}
	return do(req, v)
}

func (h *Head) post(ctx context.Context, path string, body, v any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return do(req, v)
}

func do(req *http.Request, v any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(b)))
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s %s: %v: %s", req.Method, req.URL.Path, err, b)
	}
	return nil
}

// gcsAddress reads the cluster's address from ray_current_cluster, which
// the head writes under its temp dir: Ray binds the GCS on the node's own
// address, which it picks itself, so the port alone does not say it.
func gcsAddress(dir string, port int) string {
	if b, err := os.ReadFile(filepath.Join(dir, "ray_current_cluster")); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s
		}
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// freePorts returns n distinct TCP ports nothing listens on right now.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
