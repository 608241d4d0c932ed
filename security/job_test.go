package security

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// probe is a step that does what a hostile component would: it prints its
// token, keeps a copy, uses it against everything a job should not reach,
// and tries to read the server's files. It records what happened in its
// output, since it cannot be trusted to fail loudly.
const probe = `import json, os, sys, urllib.request, urllib.error

token = os.environ["MLFLOW_TRACKING_TOKEN"]
tracking = os.environ["MLFLOW_TRACKING_URI"]
base = tracking.split("/mlflow/")[0]
out = sys.argv[1]
print("MLFLOW_TRACKING_TOKEN=" + token, flush=True)
with open(os.path.join(out, "token.txt"), "w") as f:
    f.write(token)

def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code

api = {
  "other_secret": call("GET", base + "/api/v1/workspaces/other/secrets/db-password"),
  "own_secret": call("GET", base + "/api/v1/workspaces/dev/secrets/db-password"),
  "list_principals": call("GET", base + "/api/v1/servicePrincipals"),
  "create_principal": call("POST", base + "/api/v1/servicePrincipals", {"displayName": "backdoor"}),
  "assign_owner": call("POST", base + "/api/v1/roleAssignments",
      {"assignee": "backdoor", "role": "Owner", "scope": "/"}),
  "submit_job": call("POST", base + "/api/v1/workspaces/dev/jobs", {}),
  "other_workspace_runs": call("POST", base + "/mlflow/v1.0/workspaces/other/api/2.0/mlflow/runs/search", {"experiment_ids": ["0"]}),
  "own_metric": call("POST", tracking + "/api/2.0/mlflow/runs/log-metric",
      {"run_id": os.environ["MLFLOW_RUN_ID"], "key": "probe", "value": 1, "timestamp": 0, "step": 0}),
  "foreign_run_metric": call("POST", tracking + "/api/2.0/mlflow/runs/log-metric",
      {"run_id": os.environ["VICTIM_RUN"], "key": "forged", "value": 1, "timestamp": 0, "step": 0}),
}

def try_read(path):
    try:
        if os.path.isdir(path):
            # The folders above the step's own mounts exist in its
            # sandbox, holding nothing but the way down to them.
            names = sorted(os.listdir(path))
            return "read" if set(names) - {"jobs"} else "only the way to its mounts"
        else:
            with open(path, "rb") as f:
                f.read(1)
        return "read"
    except OSError as e:
        return type(e).__name__

data = os.environ["DATA_DIR"]
pid = os.environ["SERVER_PID"]
files = {name: try_read(p) for name, p in {
  "data_dir": data,
  "master_key": os.path.join(data, "master.key"),
  "database": os.path.join(data, "wharf.db"),
  "owner_credentials": os.path.join(data, "owner-credentials.json"),
  "other_job": os.environ["VICTIM_DIR"],
  "server_environ": "/proc/%s/environ" % pid,
  "server_cmdline": "/proc/%s/cmdline" % pid,
  "server_root": "/proc/%s/root/" % pid,
}.items()}
with open(os.path.join(out, "report.json"), "w") as f:
    json.dump({"api": api, "files": files, "uid": os.getuid()}, f)
`

type probeReport struct {
	API   map[string]int    `json:"api"`
	Files map[string]string `json:"files"`
	UID   int               `json:"uid"`
}

// TestHostileStepGetsNothingOfItsSubmitter plays the attack in which a
// component, run in an Owner's job, steals the job's token and the server's
// files: the token works only for the job's own runs in its workspace, and
// not at all once the job ends; the files are out of reach.
func TestHostileStepGetsNothingOfItsSubmitter(t *testing.T) {
	s := startServer(t)
	owner := s.ownerToken()
	for _, ws := range []string{"dev", "other"} {
		s.wharf("ml", "workspace", "create", "-n", ws)
		if code, body := call(t, "PUT", s.base+"/api/v1/workspaces/"+ws+"/secrets/db-password", owner, map[string]string{"value": "hunter2"}); code >= 300 {
			t.Fatalf("set secret in %s: %d %s", ws, code, body)
		}
	}
	s.wharf("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	dir := t.TempDir()

	// A job of someone else's, whose folder and run the probe goes after.
	writeFile(t, dir, "victim/train.py", "print('private training code')\n")
	victimYML := writeFile(t, dir, "victim.yml", `code: ./victim
command: python3 train.py
environment:
  image: python:3.11
compute: azureml:cpu-cluster
`)
	victim := strings.TrimSpace(s.wharf("ml", "job", "create", "--file", victimYML, "-w", "dev", "--query", "name", "-o", "tsv"))
	s.wharf("ml", "job", "stream", "-n", victim, "-w", "dev")
	var vj struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal([]byte(s.wharf("ml", "job", "show", "-n", victim, "-w", "dev")), &vj); err != nil || vj.RunID == "" {
		t.Fatalf("victim job: %+v %v", vj, err)
	}
	victimDir := filepath.Join(s.dataDir, "jobs", "dev", victim, "attempt-1", "code")
	if _, err := os.Stat(filepath.Join(victimDir, "train.py")); err != nil {
		t.Fatalf("the victim's folder is not where the probe looks: %v", err)
	}

	writeFile(t, dir, "probe/probe.py", probe)
	probeYML := writeFile(t, dir, "probe.yml", `code: ./probe
command: python3 probe.py ${{outputs.report}}
environment:
  image: python:3.11
compute: azureml:cpu-cluster
outputs:
  report:
    type: uri_folder
environment_variables:
  DATA_DIR: `+s.dataDir+`
  SERVER_PID: "`+strconv.Itoa(s.cmd.Process.Pid)+`"
  VICTIM_DIR: `+victimDir+`
  VICTIM_RUN: `+vj.RunID+`
`)
	name := strings.TrimSpace(s.wharf("ml", "job", "create", "--file", probeYML, "-w", "dev", "--query", "name", "-o", "tsv"))
	log := s.wharf("ml", "job", "stream", "-n", name, "-w", "dev")
	got := filepath.Join(dir, "got")
	s.wharf("ml", "job", "download", "-n", name, "-w", "dev", "--output-name", "report", "--download-path", got)
	var rep probeReport
	b, err := os.ReadFile(filepath.Join(got, "named-outputs", "report", "report.json"))
	if err == nil {
		err = json.Unmarshal(b, &rep)
	}
	if err != nil {
		t.Fatalf("probe report: %v\nlog:\n%s", err, log)
	}
	token, err := os.ReadFile(filepath.Join(got, "named-outputs", "report", "token.txt"))
	if err != nil || len(token) < 100 {
		t.Fatalf("stolen token: %q %v", token, err)
	}

	// The token does the job's work and nothing else.
	for what, want := range map[string]int{"own_metric": 200} {
		if rep.API[what] != want {
			t.Errorf("%s with the job's token: %d, want %d", what, rep.API[what], want)
		}
	}
	for _, what := range []string{"other_secret", "own_secret", "list_principals", "create_principal",
		"assign_owner", "submit_job", "other_workspace_runs", "foreign_run_metric"} {
		if code := rep.API[what]; code != 401 && code != 403 {
			t.Errorf("%s with the job's token: %d, want it refused", what, code)
		}
	}
	// The server's files and process are out of reach, and the step is
	// not root.
	for what, res := range rep.Files {
		if res == "read" {
			t.Errorf("the step read %s", what)
		}
	}
	if len(rep.Files) != 8 {
		t.Errorf("file probes: %v", rep.Files)
	}
	if os.Geteuid() == 0 && rep.UID == 0 {
		t.Error("the step ran as root")
	}

	// Whoever reads the log sees the token masked.
	if strings.Contains(log, string(token)) || !strings.Contains(log, "MLFLOW_TRACKING_TOKEN=***") {
		t.Errorf("the token is not masked in the log:\n%s", log)
	}
	// The token died with the job, everywhere.
	for _, u := range []string{
		s.base + "/mlflow/v1.0/workspaces/dev/api/2.0/mlflow/experiments/search?max_results=1",
		s.base + "/api/v1/workspaces/dev",
		s.base + "/api/v1/me",
	} {
		if code, _ := call(t, "GET", u, string(token), nil); code != 401 {
			t.Errorf("GET %s with the ended job's token: %d, want 401", u, code)
		}
	}
	// What the job did is audited as the job, on behalf of its submitter.
	_, body := call(t, "GET", s.base+"/api/v1/auditEvents", owner, nil)
	if !strings.Contains(body, "job "+name+" on behalf of") {
		t.Errorf("the audit log does not name the job:\n%.2000s", body)
	}
}

// TestSIGKILLedServerTakesItsSandboxedStepsWithIt kills the server under a
// running sandboxed step: nothing of the step may outlive it, or a step
// could keep running unsupervised with its token.
func TestSIGKILLedServerTakesItsSandboxedStepsWithIt(t *testing.T) {
	s := startServer(t)
	s.wharf("ml", "workspace", "create", "-n", "dev")
	s.wharf("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	dir := t.TempDir()
	marker := "wharf-sandbox-marker-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	yml := writeFile(t, dir, "sleep.yml", `command: sh -c 'sleep 300; echo `+marker+`' & sleep 300
environment:
  image: python:3.11
compute: azureml:cpu-cluster
`)
	name := strings.TrimSpace(s.wharf("ml", "job", "create", "--file", yml, "-w", "dev", "--query", "name", "-o", "tsv"))
	// The step counts as running once its inner shell is up. bwrap's own
	// processes carry the marker from their first instant, before the
	// sandbox's init has tied itself to its parent; killing the server
	// then leaves that init to the next server's recovery, which is not
	// what this test is about.
	deadline := time.Now().Add(60 * time.Second)
	for countProcesses("sh\x00-c\x00sleep 300; echo "+marker) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("job %s never started its processes", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Wait()
	deadline = time.Now().Add(10 * time.Second)
	for countProcesses(marker) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d processes of the sandboxed step outlived the server", countProcesses(marker))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countProcesses counts live processes whose command line holds s.
func countProcesses(s string) int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), s) {
			n++
		}
	}
	return n
}
