package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wharfml/wharf/pyenv/pyenvtest"
)

// probeJob writes a job on compute whose environment installs the probe
// package at src and whose step writes what the probe's build code saw to
// its output.
func probeJob(t *testing.T, dir, compute, src string) string {
	t.Helper()
	writeFile(t, dir, "conda-"+compute+".yml", "name: probe\ndependencies:\n  - pip\n  - pip:\n    - "+src+"\n")
	return writeFile(t, dir, "probe-env-"+compute+".yml", `command: >-
  python -c "import `+pyenvtest.ProbeModule+` as p; print(p.SEEN)" > ${{outputs.out}}/seen.txt
environment: {image: python:3.11, conda_file: conda-`+compute+`.yml}
compute: azureml:`+compute+`
outputs:
  out: {type: uri_folder}
`)
}

// runProbeJob runs the job, which must complete, and returns the probe's
// report and the job's log.
func runProbeJob(t *testing.T, e *cliEnv, dir, job string) (pyenvtest.Report, string) {
	t.Helper()
	name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	log, _, _ := e.wharf("ml", "job", "stream", "-n", name, "-w", "dev")
	if st := e.waitJob("dev", name); st != "Completed" {
		t.Fatalf("%s: %s\n%s", job, st, log)
	}
	dl := filepath.Join(dir, "dl-"+name)
	e.ok("ml", "job", "download", "-n", name, "--output-name", "out", "--download-path", dl, "-w", "dev")
	b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "seen.txt"))
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	return pyenvtest.Report(strings.TrimSpace(string(b))), log
}

// probeVariable is a variable of the server's environment that builds
// must not see.
const probeVariable = "WHARF_BUILD_PROBE_TOKEN"

// probeServer starts a server, with probeVariable in its environment and
// steps unsandboxed when unsafe is set, with a workspace dev holding a
// local cluster; it returns the server's data folder and a folder for the
// test's files that every user may read.
func probeServer(t *testing.T, unsafe bool) (*cliEnv, string, string) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		missing(t, "no python3 on PATH")
	}
	t.Setenv(probeVariable, "a token of the server's")
	var data string
	e := newCLIEnvWith(t, func(o *serverOptions) { data, o.unsafeSteps = o.dataDir, unsafe })
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	if _, err := os.Stat(filepath.Join(data, "master.key")); err != nil {
		t.Fatalf("the server has no master key to probe for: %v", err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return e, data, dir
}

// TestJobEnvironmentBuildCannotReachTheServer: a job whose environment's
// pip section names a package's source folder runs, in its environment,
// and that package's build code, run when the server built the
// environment, could neither read the server's master key nor create a
// file in its data folder nor see a variable of the server's environment;
// the job's log says where the build ran.
func TestJobEnvironmentBuildCannotReachTheServer(t *testing.T) {
	e, data, dir := probeServer(t, false)
	key, planted := filepath.Join(data, "master.key"), filepath.Join(data, "planted-by-a-build")
	src := pyenvtest.WriteProbe(t, dir, []string{key}, []string{planted}, []string{probeVariable})

	report, log := runProbeJob(t, e, dir, probeJob(t, dir, "cpu-cluster", src))
	if reached := report.Reached(); len(reached) > 0 {
		t.Errorf("the environment's build code reached %q:\n%s", reached, report)
	}
	if os.Geteuid() == 0 && report.Has("uid: 0") {
		t.Errorf("a root server's environment build ran as root:\n%s", report)
	}
	if _, err := os.Stat(planted); err == nil {
		t.Error("the build code created a file in the server's data folder")
	}
	if !strings.Contains(log, "wharf: build commands run in a bwrap sandbox") {
		t.Errorf("the job's log does not say the build ran sandboxed:\n%s", log)
	}
}

// TestUnsandboxedServerBuildsAsItself: a server started with
// --unsafe-run-steps-as-server-user builds environments as it runs steps,
// as its own user, and each build's log says so; the server's variables
// are still kept from the build.
func TestUnsandboxedServerBuildsAsItself(t *testing.T) {
	e, data, dir := probeServer(t, true)
	key := filepath.Join(data, "master.key")
	src := pyenvtest.WriteProbe(t, dir, []string{key}, nil, []string{probeVariable})

	report, log := runProbeJob(t, e, dir, probeJob(t, dir, "cpu-cluster", src))
	if !report.Has("read "+key+": yes") || !report.Has("variable "+probeVariable+": no") {
		t.Errorf("built as the server, the probe should read the key but not see the variable:\n%s", report)
	}
	if !strings.Contains(log, "WARNING: this build runs as the server's own user, unisolated") {
		t.Errorf("the job's log does not say the build ran unisolated:\n%s", log)
	}
}

// TestRayEnvironmentBuildRunsSandboxed: on a Ray-backed cluster the
// environment is built on the node by `wharf env build`, whose commands
// run sandboxed as the node's steps do: a package's build code cannot see
// the driver that holds the compute's token, nor read its environment.
// On a cluster attached with --sandbox=false, as its steps, the build
// code reads the driver's environment, which shows the probe can tell.
func TestRayEnvironmentBuildRunsSandboxed(t *testing.T) {
	e, addr := rayEnvWith(t)
	e.ok("ml", "compute", "attach", "--type", "ray", "--address", addr, "-n", "ray-open", "-w", "dev", "--sandbox=false")
	t.Cleanup(func() { e.wharf("ml", "compute", "delete", "-n", "ray-open", "-w", "dev", "--yes") })
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A first step starts the driver, whose process the probe looks for.
	name := lastLine(e.ok("ml", "job", "create", "--file",
		writeFile(t, dir, "start.yml", "command: echo start\nenvironment: {image: python:3.11}\ncompute: azureml:ray-cluster\n"),
		"-w", "dev", "--query", "name", "-o", "tsv"))
	if st := e.waitJob("dev", name); st != "Completed" {
		t.Fatalf("start: %s", st)
	}
	pid := rayDriverPID(t, addr, "dev", "ray-cluster")
	environ := "/proc/" + strconv.Itoa(pid) + "/environ"

	// Each compute's probe is a folder of its own, so that the second
	// is not the first one's environment, cached on the node.
	for _, compute := range []string{"ray-cluster", "ray-open"} {
		src := pyenvtest.WriteProbe(t, filepath.Join(dir, compute), []string{environ}, nil, []string{"WHARF_COMPUTE_PATH"})
		report, log := runProbeJob(t, e, dir, probeJob(t, dir, compute, src))
		switch compute {
		case "ray-cluster":
			if reached := report.Reached(); len(reached) > 0 {
				t.Errorf("the build code on the node reached %q:\n%s", reached, report)
			}
			if !strings.Contains(log, "wharf: build commands run in a bwrap sandbox") {
				t.Errorf("the step's log does not say the build ran sandboxed:\n%s", log)
			}
		case "ray-open":
			if !report.Has("read " + environ + ": yes") {
				t.Errorf("unsandboxed, the build code should read the driver's environment:\n%s", report)
			}
		}
	}
}
