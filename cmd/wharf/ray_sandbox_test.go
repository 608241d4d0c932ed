package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wharfml/wharf/internal/raytest"
	"github.com/wharfml/wharf/ray"
)

// rayDriverPID finds the process of the compute's Ray driver on this
// machine (the test's single-node cluster at addr): the Python running
// the driver program whose environment names the driver job that the
// cluster runs for the compute. Its Ray workers share that environment,
// but not its command line; and other tests' heads on the machine run
// drivers of computes of the same names, which the job's id tells apart.
func rayDriverPID(t *testing.T, addr, workspace, compute string) int {
	t.Helper()
	jobs, err := (&ray.Client{Address: addr}).Jobs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var driver string
	for _, j := range jobs {
		if j.Metadata["wharf_compute"] == workspace+"/"+compute && !ray.Terminal(j.Status) {
			driver = j.SubmissionID
		}
	}
	if driver == "" {
		t.Fatalf("the Ray cluster at %s runs no driver job for %s/%s", addr, workspace, compute)
	}
	want := []byte("WHARF_DRIVER=" + driver + "\x00")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		argv, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if prog, _, _ := bytes.Cut(argv, []byte{0}); err == nil && strings.HasPrefix(filepath.Base(string(prog)), "python") &&
			bytes.Contains(argv, []byte("wharf-driver")) {
			return pid
		}
	}
	t.Fatalf("no process holds %s's driver environment (driver %s)", compute, driver)
	return 0
}

// probeDriver is a job whose step tries to read the driver's environ,
// cmdline and memory and to see its /proc entry, writing what happened to
// its output, then does its real work (which names the compute, so that
// the step is not reused from the other compute's run).
func probeDriver(t *testing.T, dir, compute string, pid int) string {
	p := "/proc/" + strconv.Itoa(pid)
	return writeFile(t, dir, "probe-"+compute+".yml", `command: >-
  for f in environ cmdline mem; do if od -N 16 `+p+`/$f > /dev/null 2>&1; then echo "$f: read"; else echo "$f: refused"; fi; done > ${{outputs.out}}/probe.txt &&
  if ls /proc | grep -qx `+strconv.Itoa(pid)+`; then echo "pid: seen"; else echo "pid: unseen"; fi >> ${{outputs.out}}/probe.txt &&
  echo "the real work on `+compute+`" > ${{outputs.out}}/work.txt
environment: {image: python:3.11}
compute: azureml:`+compute+`
outputs:
  out: {type: uri_folder}
`)
}

// TestRayStepsRunSandboxedOnTheNode: a step on a Ray-backed cluster runs
// in a sandbox on the node, where the driver that holds the compute's
// token cannot be seen, let alone read; the same step on a cluster
// attached with --sandbox=false reads the driver's environment.
func TestRayStepsRunSandboxedOnTheNode(t *testing.T) {
	e, addr := rayEnvWith(t)
	e.ok("ml", "compute", "attach", "--type", "ray", "--address", addr, "-n", "ray-open", "-w", "dev", "--sandbox=false")
	t.Cleanup(func() { e.wharf("ml", "compute", "delete", "-n", "ray-open", "-w", "dev", "--yes") })
	dir := t.TempDir()
	run := func(job string) string {
		t.Helper()
		name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
		if got := e.waitJob("dev", name); got != "Completed" {
			t.Fatalf("job: %s\n%s", got, e.ok("ml", "job", "stream", "-n", name, "-w", "dev"))
		}
		dl := filepath.Join(dir, "dl-"+name)
		e.ok("ml", "job", "download", "-n", name, "--all", "--download-path", dl, "-w", "dev")
		return dl
	}
	// A first step starts the driver, whose process the test then finds.
	run(writeFile(t, dir, "start.yml", "command: echo start\nenvironment: {image: python:3.11}\ncompute: azureml:ray-cluster\n"))
	pid := rayDriverPID(t, addr, "dev", "ray-cluster")

	dl := run(probeDriver(t, dir, "ray-cluster", pid))
	probe, _ := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "probe.txt"))
	if want := "environ: refused\ncmdline: refused\nmem: refused\npid: unseen\n"; string(probe) != want {
		t.Errorf("the sandboxed step's view of the driver (pid %d):\n%s\nwant:\n%s", pid, probe, want)
	}
	if b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "work.txt")); err != nil || string(b) != "the real work on ray-cluster\n" {
		t.Errorf("the sandboxed step's work: %q %v", b, err)
	}

	dl = run(probeDriver(t, dir, "ray-open", pid))
	probe, _ = os.ReadFile(filepath.Join(dl, "named-outputs", "out", "probe.txt"))
	if !strings.Contains(string(probe), "environ: read") || !strings.Contains(string(probe), "pid: seen") {
		t.Errorf("the unsandboxed step's view of the driver (pid %d):\n%s\nwant its environ read", pid, probe)
	}
}

// pathWithout returns a PATH holding every program on the test's PATH
// but the named ones, and the ray venv's bin first: a folder of links,
// one per program, as a node where those were never installed has.
func pathWithout(t *testing.T, rayBin string, left ...string) string {
	t.Helper()
	farm := t.TempDir()
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if slices.Contains(left, e.Name()) {
				continue
			}
			link := filepath.Join(farm, e.Name())
			if _, err := os.Lstat(link); err == nil {
				continue // an earlier folder's program of that name wins
			}
			if err := os.Symlink(filepath.Join(dir, e.Name()), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	return filepath.Dir(rayBin) + string(os.PathListSeparator) + farm
}

// TestRayNodeWithoutBwrapSaysWhatToInstall: on a Ray node whose PATH has
// no bwrap (the head and its workers started with a PATH that lacks it),
// a step on a sandboxed compute fails without running, saying the node
// lacks bwrap, what to install and how to opt out; the same step on a
// compute attached with --sandbox=false runs there.
func TestRayNodeWithoutBwrapSaysWhatToInstall(t *testing.T) {
	bin := raytest.Program(t)
	path := pathWithout(t, bin, "bwrap")
	head := raytest.Start(t, raytest.Options{Env: []string{"PATH=" + path}})
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "dev")
	for _, c := range []struct{ name, sandbox string }{{"ray-boxed", "--sandbox=true"}, {"ray-open", "--sandbox=false"}} {
		e.ok("ml", "compute", "attach", "--type", "ray", "--address", head.URL, "-n", c.name, "-w", "dev", c.sandbox)
		t.Cleanup(func() { e.wharf("ml", "compute", "delete", "-n", c.name, "-w", "dev", "--yes") })
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	job := func(compute string) string {
		return writeFile(t, dir, compute+".yml", `command: echo ran on `+compute+` >> `+marker+`
environment: {image: python:3.11}
compute: azureml:`+compute+`
`)
	}
	failsBeforeRunning(t, e, job("ray-boxed"), marker,
		"has no bwrap", "steps on compute ray-boxed run sandboxed", "apt-get install bubblewrap", "sandbox: false")

	name := lastLine(e.ok("ml", "job", "create", "--file", job("ray-open"), "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("job on --sandbox=false: %s\n%s", got, e.ok("ml", "job", "stream", "-n", name, "-w", "dev"))
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "ran on ray-open\n" {
		t.Errorf("the unsandboxed step's mark: %q %v", b, err)
	}
}

// TestRaySandboxReadOnlyPaths: a Ray-backed compute attached with
// --sandbox-ro-path shows its sandboxed steps that folder of the node,
// read-only: a step reads a dataset there and pip installs a wheel from
// it into its own layer, and cannot write there. The same step on a
// compute without it sees no such folder, and on a compute naming a
// folder the node lacks it fails without running, saying so.
func TestRaySandboxReadOnlyPaths(t *testing.T) {
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	fares := writeFile(t, shared, "fares.csv", "fare\n12.5\n7.25\n")
	wheel := writeWheel(t, shared, "7")
	if err := os.Chmod(wheel, 0o644); err != nil {
		t.Fatal(err)
	}
	e, addr := rayEnvWith(t, "--sandbox-ro-path", shared)
	lacking := filepath.Join(shared, "not-on-the-node")
	for _, c := range []struct{ name, path string }{{"ray-plain", ""}, {"ray-lacking", lacking}} {
		args := []string{"ml", "compute", "attach", "--type", "ray", "--address", addr, "-n", c.name, "-w", "dev"}
		if c.path != "" {
			args = append(args, "--sandbox-ro-path", c.path)
		}
		e.ok(args...)
		t.Cleanup(func() { e.wharf("ml", "compute", "delete", "-n", c.name, "-w", "dev", "--yes") })
	}
	if got := e.ok("ml", "compute", "show", "-n", "ray-cluster", "-w", "dev", "--query", "sandbox_read_only_paths[0]", "-o", "tsv"); strings.TrimSpace(got) != shared {
		t.Errorf("the compute's sandbox_read_only_paths[0] is %q, want %s", got, shared)
	}
	dir := t.TempDir()
	run := func(compute, want string) (name, dl string) {
		t.Helper()
		// The command names the compute, so that no job is another's
		// reuse.
		job := writeFile(t, dir, compute+".yml", `command: >-
  : `+compute+` && (cat `+fares+` || echo unseen) > ${{outputs.out}}/fares.csv &&
  (touch `+shared+`/written 2> /dev/null && echo writable || echo read-only) > ${{outputs.out}}/write.txt &&
  (pip install --no-index --no-deps --disable-pip-version-check `+wheel+` > ${{outputs.out}}/pip.txt 2>&1 &&
  python -c "import wharf_overlay_demo; print(wharf_overlay_demo.VALUE)" || echo not installed) > ${{outputs.out}}/import.txt
environment: {image: python:3.11}
compute: azureml:`+compute+`
outputs:
  out: {type: uri_folder}
`)
		name = lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
		if got := e.waitJob("dev", name); got != want {
			t.Fatalf("job on %s: %s, want %s\n%s", compute, got, want, e.ok("ml", "job", "stream", "-n", name, "-w", "dev"))
		}
		if want != "Completed" {
			return name, ""
		}
		dl = filepath.Join(dir, "dl-"+compute)
		e.ok("ml", "job", "download", "-n", name, "--output-name", "out", "--download-path", dl, "-w", "dev")
		return name, filepath.Join(dl, "named-outputs", "out")
	}
	read := func(dl, file string) string {
		b, _ := os.ReadFile(filepath.Join(dl, file))
		return string(b)
	}

	_, dl := run("ray-cluster", "Completed")
	if got := read(dl, "fares.csv"); got != "fare\n12.5\n7.25\n" {
		t.Errorf("the step read %q from the shared folder", got)
	}
	if got := read(dl, "write.txt"); got != "read-only\n" {
		t.Errorf("writing into the shared folder: %q, want read-only", got)
	}
	if got := read(dl, "import.txt"); got != "7\n" {
		t.Errorf("installing the shared folder's wheel into the step's layer: %q, want 7; pip said:\n%s", got, read(dl, "pip.txt"))
	}
	if _, err := os.Stat(filepath.Join(shared, "written")); err == nil {
		t.Errorf("the step wrote into the shared folder")
	}

	_, dl = run("ray-plain", "Completed")
	if got := read(dl, "fares.csv"); got != "unseen\n" {
		t.Errorf("a step of a compute without sandbox_read_only_paths read %q from the folder", got)
	}

	name, _ := run("ray-lacking", "Failed")
	msg := e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "attempts[0].error", "-o", "tsv")
	for _, want := range []string{"has no " + lacking, "compute ray-lacking shows its steps read-only (sandbox_read_only_paths)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the attempt's error lacks %q:\n%s", want, msg)
		}
	}
}
