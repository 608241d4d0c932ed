package mlflowtest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startMLflowServer starts MLflow's own `mlflow server` from the venv of
// py, on SQLite with the artifact proxy (so that run artifact URIs are
// mlflow-artifacts: URIs, as Wharf's are), and returns a function that
// waits until it answers and returns its tracking URI. The server starts
// slowly; the test does other work meanwhile.
func startMLflowServer(t *testing.T, py string) (ready func() string) {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	args := []string{"server", "--backend-store-uri", "sqlite:///" + filepath.Join(dir, "mlflow.db"),
		"--artifacts-destination", filepath.Join(dir, "artifacts"),
		"--host", "127.0.0.1", "--port", fmt.Sprint(port), "--workers", "1"}
	cmd := exec.Command(filepath.Join(filepath.Dir(py), "mlflow"), args...)
	cmd.Dir = dir
	// The job runner (for GenAI scorers) is not needed and would take CPU.
	cmd.Env = append(pythonEnv("", ""), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("mlflow server log (tail):\n%s", tail(logs.String(), 60))
		}
	})
	uri := fmt.Sprintf("http://127.0.0.1:%d", port)
	return func() string {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) {
			resp, err := http.Get(uri + "/health")
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return uri
				}
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Fatalf("mlflow server did not answer /health within 3 minutes; log:\n%s", logs.String())
		return ""
	}
}

type paritySummary struct {
	Client string         `json:"client"`
	Result map[string]any `json:"result"`
}

// TestMLflowParity runs testdata/parity.py, with each generation of the
// client, against Wharf and against MLflow's own server of that version,
// and compares what came back: logged-model metrics, links and searches,
// the registry's order, paging and source checks, download URIs, and the
// routes of MLflow's web UI, under /ajax-api as well.
func TestMLflowParity(t *testing.T) {
	gens := []struct{ name, env string }{
		{"mlflow3", "WHARF_TEST_MLFLOW3_PYTHON"},
		{"mlflow2", "WHARF_TEST_MLFLOW2_PYTHON"},
	}
	for _, g := range gens {
		t.Run(g.name, func(t *testing.T) {
			py := mlflowPython(t, g.env)
			// MLflow's server takes the longest to start: start it first,
			// and use Wharf meanwhile.
			ready := startMLflowServer(t, py)
			f := newFixture(t)
			var wharf, mlflow paritySummary
			runScript(t, py, "parity.py", pythonEnv(f.trackingURI("ws-a"), f.dsToken), &wharf)
			runScript(t, py, "parity.py", pythonEnv(ready(), ""), &mlflow)
			checkParity(t, g.name, wharf, mlflow)
		})
	}
}

func checkParity(t *testing.T, gen string, wharf, mlflow paritySummary) {
	t.Helper()
	if wharf.Client != mlflow.Client {
		t.Fatalf("the script ran mlflow %s against Wharf and %s against MLflow", wharf.Client, mlflow.Client)
	}
	// Each section must be there, so that a script that stopped early
	// cannot pass by comparing nothing.
	want := []string{"ui", "registry", "ajax"}
	if gen == "mlflow3" {
		want = append(want, "links")
	}
	for _, k := range want {
		if _, ok := mlflow.Result[k]; !ok {
			t.Fatalf("MLflow's result has no section %q: %v", k, mlflow.Result)
		}
	}
	var diffs []string
	diffJSON("", wharf.Result, mlflow.Result, &diffs)
	for i, d := range diffs {
		if i == 30 {
			t.Errorf("and %d more differences", len(diffs)-i)
			break
		}
		t.Error(d)
	}
	if len(diffs) > 0 {
		w, _ := json.Marshal(wharf.Result)
		m, _ := json.Marshal(mlflow.Result)
		t.Logf("Wharf:  %s\nMLflow: %s", w, m)
	}
}

// diffJSON lists where got (Wharf's) differs from want (MLflow's).
func diffJSON(path string, got, want any, out *[]string) {
	if reflect.DeepEqual(got, want) {
		return
	}
	gm, gok := got.(map[string]any)
	wm, wok := want.(map[string]any)
	if gok && wok {
		keys := map[string]bool{}
		for k := range gm {
			keys[k] = true
		}
		for k := range wm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			diffJSON(path+"."+k, gm[k], wm[k], out)
		}
		return
	}
	gl, gok := got.([]any)
	wl, wok := want.([]any)
	if gok && wok && len(gl) == len(wl) {
		for i := range gl {
			diffJSON(fmt.Sprintf("%s[%d]", path, i), gl[i], wl[i], out)
		}
		return
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	*out = append(*out, fmt.Sprintf("%s: Wharf gave %s, MLflow %s", strings.TrimPrefix(path, "."), g, w))
}
