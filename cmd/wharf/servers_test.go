package main

import (
	"bufio"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/scheduler"
)

// sharedServer is one of several `wharf server` processes over one
// PostgreSQL database.
type sharedServer struct {
	cmd     *exec.Cmd
	base    string
	dataDir string
}

// startSharedServers starts n servers over one fresh PostgreSQL database,
// one after the other (the first creates the owner and takes the
// scheduler's lease). Each has a data dir of its own, holding the first
// one's master key; all keep stored content in one folder (--artifacts).
func startSharedServers(t *testing.T, n int, flags ...string) (db string, servers []*sharedServer) {
	t.Helper()
	return startSharedServersWith(t, n, nil, func(int) []string { return flags })
}

// startSharedServersWith is startSharedServers with env added to each
// server's environment and the flags of server i (from 0) given by flagsOf.
func startSharedServersWith(t *testing.T, n int, env []string, flagsOf func(i int) []string) (db string, servers []*sharedServer) {
	t.Helper()
	db = freshPostgres(t)
	root := t.TempDir()
	artifacts := filepath.Join(root, "artifacts")
	if err := os.MkdirAll(artifacts, 0o700); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		dir := filepath.Join(root, "server"+strconv.Itoa(i+1))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			key, err := os.ReadFile(filepath.Join(servers[0].dataDir, "master.key"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "master.key"), key, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cmd, listening := launchProcessWith(t, env, dir, db, append([]string{"--artifacts", "file://" + artifacts}, flagsOf(i)...)...)
		base := listening()
		servers = append(servers, &sharedServer{cmd: cmd, base: base, dataDir: dir})
	}
	return db, servers
}

// Three servers started at the same moment on an empty database all find
// no principal; exactly one creates the first Owner and writes its
// credential, the others start too, and that one credential is an Owner's
// on all three.
func TestServersStartingTogetherOnAnEmptyDatabaseMakeOneOwner(t *testing.T) {
	db := freshPostgres(t)
	root := t.TempDir()
	artifacts := filepath.Join(root, "artifacts")
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	var dirs []string
	var waits []func() string
	for i := range 3 {
		dir := filepath.Join(root, "server"+strconv.Itoa(i+1))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "master.key"), key, 0o600); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	for _, dir := range dirs {
		_, listening := launchProcess(t, dir, db, "--artifacts", "file://"+artifacts, "--unsafe-run-steps-as-server-user", "--warm-python=false")
		waits = append(waits, listening)
	}
	var bases []string
	for _, listening := range waits {
		bases = append(bases, listening())
	}

	var withCredential []string
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "owner-credentials.json")); err == nil {
			withCredential = append(withCredential, dir)
		}
	}
	if len(withCredential) != 1 {
		t.Fatalf("%d data dirs hold an owner credential, want 1: %v", len(withCredential), withCredential)
	}
	conn, err := sql.Open("pgx", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var principals, owners, credentials int
	if err := conn.QueryRow(`SELECT (SELECT count(*) FROM service_principals),
		(SELECT count(*) FROM role_assignments WHERE role_name = $1 AND scope = $2),
		(SELECT count(*) FROM password_credentials)`, wharf.RoleOwner, wharf.ServerScope).Scan(&principals, &owners, &credentials); err != nil {
		t.Fatal(err)
	}
	// The Owner user, created next to the principal, is an Owner too.
	if principals != 1 || owners != 2 || credentials != 1 {
		t.Fatalf("after three first starts: %d service principals, %d Owner assignments at /, %d credentials; want 1, 2 (principal and user), 1",
			principals, owners, credentials)
	}
	for _, base := range bases {
		var list []wharf.ServicePrincipal
		if err := ownerClient(t, withCredential[0], base).Do(t.Context(), "GET", "/api/v1/servicePrincipals", nil, &list); err != nil || len(list) != 1 {
			t.Fatalf("the owner's credential on %s: %v, %d principals", base, err, len(list))
		}
	}
}

// leaseHolder reads who holds the scheduler's lease, and its token.
func leaseHolder(t *testing.T, db string) (string, int64) {
	t.Helper()
	conn, err := sql.Open("pgx", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var holder string
	var token int64
	err = conn.QueryRow(`SELECT holder, token FROM leases WHERE name = $1 AND expires_at > clock_timestamp()`, wharf.SchedulerLease).Scan(&holder, &token)
	if err == sql.ErrNoRows {
		return "", 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return holder, token
}

// scorer posts to an endpoint through each of a list of servers in turn
// and counts what fails.
type scorer struct {
	path, key           string
	sent, failed        atomic.Int64
	mu                  sync.Mutex
	firstFailure        string
	stop                chan struct{}
	done                chan struct{}
	deploymentsAnswered sync.Map
}

func startScorer(path, key string, bases ...string) *scorer {
	s := &scorer{path: path, key: key, stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			default:
			}
			req, _ := http.NewRequest(http.MethodPost, bases[i%len(bases)]+s.path, strings.NewReader(`{"input_data": [[1, 1]]}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+s.key)
			s.sent.Add(1)
			resp, err := client.Do(req)
			why := ""
			if err != nil {
				why = err.Error()
			} else {
				if resp.StatusCode != http.StatusOK {
					why = resp.Status
				}
				s.deploymentsAnswered.Store(resp.Header.Get("azureml-model-deployment"), true)
				resp.Body.Close()
			}
			if why != "" {
				s.failed.Add(1)
				s.mu.Lock()
				if s.firstFailure == "" {
					s.firstFailure = bases[i%len(bases)] + ": " + why
				}
				s.mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return s
}

func (s *scorer) finish() { close(s.stop); <-s.done }

// stepLine is a line a step of the fault test appends to its log.
type stepLine struct {
	step, event, attempt string
	at                   int64 // nanoseconds
}

func readStepLog(t *testing.T, p string) []stepLine {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []stepLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 4 {
			continue // a line cut short by the kill
		}
		at, err := strconv.ParseInt(fs[3], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, stepLine{step: fs[0], event: fs[1], attempt: fs[2], at: at})
	}
	return out
}

// attemptSpans is, for each step, the first and last moment each of its
// attempts was seen running, by the attempts' own log lines.
func attemptSpans(lines []stepLine) map[string]map[string][2]int64 {
	out := map[string]map[string][2]int64{}
	for _, l := range lines {
		if out[l.step] == nil {
			out[l.step] = map[string][2]int64{}
		}
		sp, ok := out[l.step][l.attempt]
		if !ok {
			sp = [2]int64{l.at, l.at}
		}
		sp[0], sp[1] = min(sp[0], l.at), max(sp[1], l.at)
		out[l.step][l.attempt] = sp
	}
	return out
}

// loggingStep is the command of a fault test step: it appends start, a
// tick every 50 ms while it runs, and end to log, each with its attempt
// (process id and start time) and the time, and runs until the file
// release exists (or for ticks ticks, with none).
func loggingStep(name, log, release string, ticks int) string {
	return `sh -c 'a=$$-$(date +%s%N); echo "` + name + ` start $a $(date +%s%N)" >> ` + log + `; n=0; ` +
		`while [ ! -f ` + release + ` ] && [ $n -lt ` + strconv.Itoa(ticks) + ` ]; do echo "` + name + ` tick $a $(date +%s%N)" >> ` + log + `; sleep 0.05; n=$((n+1)); done; ` +
		`echo "` + name + ` end $a $(date +%s%N)" >> ` + log + `'`
}

// TestSchedulerMovesToAnotherServerWhenItsServerIsKilled is the fault
// test of several servers: three over one PostgreSQL; the one running the
// scheduler is killed (SIGKILL) in the middle of a pipeline while a
// schedule fires every minute and a client scores through the other two.
// Another server takes the scheduler over; the pipeline completes; no
// step ever ran twice at once, by the steps' own logs; every minute's
// firing was made once; and not one scoring request failed.
func TestSchedulerMovesToAnotherServerWhenItsServerIsKilled(t *testing.T) {
	db, servers := startSharedServers(t, 3, "--unsafe-run-steps-as-server-user", "--warm-python=false")
	holder, token := leaseHolder(t, db)
	if !strings.Contains(holder, strings.TrimPrefix(servers[0].base, "http://")) {
		t.Fatalf("the scheduler's lease is held by %q, want the first server %s", holder, servers[0].base)
	}
	// Everything is asked of the second server: jobs submitted there run
	// on the first.
	cli := cliAgainst(t, servers[0].dataDir, servers[1].base)
	root := t.TempDir()
	cli("ml", "workspace", "create", "-n", "mlw")
	cli("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw", "--max-instances", "4")
	cli("ml", "model", "create", "--name", "taxi-model", "--path", nativeModel(t, 2.0, 0.5, 1.0), "-w", "mlw")
	writeFile(t, root, "ep.yml", "name: taxi\nauth_mode: key\n")
	writeFile(t, root, "dep.yml", "name: blue\nendpoint_name: taxi\nmodel: azureml:taxi-model:1\ninstance_count: 1\n")
	cli("ml", "online-endpoint", "create", "-f", filepath.Join(root, "ep.yml"), "-w", "mlw")
	cli("ml", "online-deployment", "create", "-f", filepath.Join(root, "dep.yml"), "-w", "mlw", "--all-traffic")
	key := strings.TrimSpace(cli("ml", "online-endpoint", "get-credentials", "-n", "taxi", "-w", "mlw", "--query", "primaryKey", "-o", "tsv"))

	writeFile(t, root, "tick.yml", "command: echo fired\nenvironment: {image: python:3.11}\ncompute: azureml:cpu-cluster\n")
	writeFile(t, root, "schedule.yml", "name: every-minute\ntrigger:\n  type: cron\n  expression: \"* * * * *\"\ncreate_job: ./tick.yml\n")
	cli("ml", "schedule", "create", "--file", filepath.Join(root, "schedule.yml"), "-w", "mlw")

	stepLog, release := filepath.Join(root, "steps.log"), filepath.Join(root, "release")
	job := writeFile(t, root, "pipeline.yml", `type: pipeline
settings:
  default_compute: azureml:cpu-cluster
jobs:
  first:
    command: `+loggingStep("first", stepLog, release, 10)+` && echo one > ${{outputs.out}}/one.txt
    environment: {image: python:3.11}
    outputs:
      out:
  middle:
    command: `+loggingStep("middle", stepLog, release, 100000)+` && cat ${{inputs.in}}/one.txt > ${{outputs.out}}/two.txt
    environment: {image: python:3.11}
    inputs:
      in: ${{parent.jobs.first.outputs.out}}
    outputs:
      out:
  last:
    command: `+loggingStep("last", stepLog, release, 10)+` && echo "the last step ran" && cat ${{inputs.in}}/two.txt > ${{outputs.out}}/three.txt
    environment: {image: python:3.11}
    inputs:
      in: ${{parent.jobs.middle.outputs.out}}
    outputs:
      out:
`)
	firings := func() []*wharf.Job {
		conn, err := sql.Open("pgx", db)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		rows, err := conn.Query(`SELECT doc FROM jobs WHERE workspace = 'mlw' AND parent = ''`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []*wharf.Job
		for rows.Next() {
			var doc string
			var j wharf.Job
			if err := rows.Scan(&doc); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(doc), &j); err != nil {
				t.Fatal(err)
			}
			if j.Tags["wharf.schedule"] == "every-minute" {
				out = append(out, &j)
			}
		}
		return out
	}
	scoring := startScorer("/endpoints/mlw/taxi/score", key, servers[1].base, servers[2].base)
	name := strings.TrimSpace(cli("ml", "job", "create", "--file", job, "-w", "mlw", "--query", "name", "-o", "tsv"))
	starts := func(step string) int {
		n := 0
		if _, err := os.Stat(stepLog); err != nil {
			return 0
		}
		for _, l := range readStepLog(t, stepLog) {
			if l.step == step && l.event == "start" {
				n++
			}
		}
		return n
	}
	waitUntil := func(what string, limit time.Duration, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(limit); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, limit)
			}
		}
	}
	waitUntil("the middle step starts", 60*time.Second, func() bool { return starts("middle") == 1 })
	// The schedule has fired from the first server before it is killed.
	waitUntil("the schedule fires", 90*time.Second, func() bool { return len(firings()) > 0 })

	killed := time.Now().UTC()
	if err := syscall.Kill(-servers[0].cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = servers[0].cmd.Wait()
	// Another server takes the scheduler over, with a higher token, and
	// runs the interrupted step again.
	waitUntil("another server takes the scheduler's lease", 10*time.Second, func() bool {
		h, tok := leaseHolder(t, db)
		return h != "" && tok > token
	})
	t.Logf("the scheduler's lease changed servers %s after the kill", time.Since(killed).Round(100*time.Millisecond))
	waitUntil("the middle step runs again", 60*time.Second, func() bool { return starts("middle") == 2 })
	writeFile(t, root, "release", "go\n")
	if status := strings.TrimSpace(cli("ml", "job", "show", "-n", name, "-w", "mlw", "--query", "status", "-o", "tsv")); status != "Completed" {
		for giveUp := time.Now().Add(120 * time.Second); status != "Completed" && status != "Failed" && status != "Canceled" && time.Now().Before(giveUp); time.Sleep(200 * time.Millisecond) {
			status = strings.TrimSpace(cli("ml", "job", "show", "-n", name, "-w", "mlw", "--query", "status", "-o", "tsv"))
		}
		if status != "Completed" {
			t.Fatalf("pipeline after the takeover: %s", status)
		}
	}

	// The schedule keeps firing from the new scheduler.
	waitUntil("the schedule fires from the new scheduler", 90*time.Second, func() bool {
		for _, j := range firings() {
			if due, err := time.Parse(time.RFC3339, j.Tags[scheduler.FiringTag]); err == nil && due.After(killed) {
				return true
			}
		}
		return false
	})
	scoring.finish()

	// Every minute from the first firing to the last was fired once.
	var dues []time.Time
	seen := map[string]string{}
	for _, j := range firings() {
		d := j.Tags[scheduler.FiringTag]
		if other, ok := seen[d]; ok {
			t.Errorf("the firing due %s made two jobs: %s and %s", d, other, j.Name)
		}
		seen[d] = j.Name
		due, err := time.Parse(time.RFC3339, d)
		if err != nil {
			t.Fatalf("job %s of the schedule has no firing time: %v", j.Name, j.Tags)
		}
		dues = append(dues, due)
	}
	sort.Slice(dues, func(i, k int) bool { return dues[i].Before(dues[k]) })
	for i := 1; i < len(dues); i++ {
		if gap := dues[i].Sub(dues[i-1]); gap != time.Minute {
			t.Errorf("firings due %s and %s are %s apart: a firing was lost", dues[i-1], dues[i], gap)
		}
	}

	// No step ran twice at once: each attempt's lines end before the
	// next attempt's begin.
	spans := attemptSpans(readStepLog(t, stepLog))
	for step, want := range map[string]int{"first": 1, "middle": 2, "last": 1} {
		if got := len(spans[step]); got != want {
			t.Errorf("step %s ran %d times, want %d", step, got, want)
		}
		var list [][2]int64
		for _, sp := range spans[step] {
			list = append(list, sp)
		}
		sort.Slice(list, func(i, k int) bool { return list[i][0] < list[k][0] })
		for i := 1; i < len(list); i++ {
			if list[i][0] <= list[i-1][1] {
				t.Errorf("step %s: an attempt started at %d while the one before still ran (until %d)", step, list[i][0], list[i-1][1])
			}
		}
	}

	// The log of a step is read through any server: the one that did
	// not run it asks the one that did.
	holder, _ = leaseHolder(t, db)
	other := servers[1]
	if strings.Contains(holder, strings.TrimPrefix(other.base, "http://")) {
		other = servers[2]
	}
	if log := cliAgainst(t, servers[0].dataDir, other.base)("ml", "job", "stream", "-n", scheduler.StepJobName(name, "last"), "-w", "mlw"); !strings.Contains(log, "the last step ran") {
		t.Errorf("the last step's log through a server that did not run it:\n%s", log)
	}

	t.Logf("%d scoring requests, %d firings of the schedule", scoring.sent.Load(), len(dues))
	if n := scoring.sent.Load(); n == 0 || scoring.failed.Load() != 0 {
		t.Errorf("%d of %d scoring requests through the surviving servers failed; the first: %s", scoring.failed.Load(), n, scoring.firstFailure)
	}
}

// TestRoutingChangesReachEveryServer: a traffic shift and a new key made
// through one server are what another serves within a second.
func TestRoutingChangesReachEveryServer(t *testing.T) {
	_, servers := startSharedServers(t, 2, "--warm-python=false")
	cli := cliAgainst(t, servers[0].dataDir, servers[0].base)
	root := t.TempDir()
	cli("ml", "workspace", "create", "-n", "mlw")
	cli("ml", "model", "create", "--name", "taxi-model", "--path", nativeModel(t, 2.0, 0.5, 1.0), "-w", "mlw")
	writeFile(t, root, "ep.yml", "name: taxi\nauth_mode: key\n")
	writeFile(t, root, "dep.yml", "name: blue\nendpoint_name: taxi\nmodel: azureml:taxi-model:1\ninstance_count: 1\n")
	cli("ml", "online-endpoint", "create", "-f", filepath.Join(root, "ep.yml"), "-w", "mlw")
	cli("ml", "online-deployment", "create", "-f", filepath.Join(root, "dep.yml"), "-w", "mlw", "--all-traffic")
	cli("ml", "online-deployment", "create", "-f", filepath.Join(root, "dep.yml"), "-w", "mlw", "--name", "green")
	key := strings.TrimSpace(cli("ml", "online-endpoint", "get-credentials", "-n", "taxi", "-w", "mlw", "--query", "primaryKey", "-o", "tsv"))

	other := servers[1].base + "/endpoints/mlw/taxi/score"
	score := func(key string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, other, strings.NewReader(`{"input_data": [[1, 1]]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("azureml-model-deployment")
	}
	// The other server has read the endpoint (and holds it) before the
	// change.
	if code, dep := score(key); code != http.StatusOK || dep != "blue" {
		t.Fatalf("before the shift: %d from %q", code, dep)
	}
	within := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not seen by the other server within a second", what)
			}
		}
	}
	cli("ml", "online-endpoint", "update", "-n", "taxi", "--traffic", "blue=0 green=100", "-w", "mlw")
	within("the traffic shift", func() bool { code, dep := score(key); return code == http.StatusOK && dep == "green" })

	cli("ml", "online-endpoint", "regenerate-keys", "-n", "taxi", "--key-type", "primary", "-w", "mlw")
	within("the regenerated key", func() bool { code, _ := score(key); return code == http.StatusUnauthorized })
	fresh := strings.TrimSpace(cli("ml", "online-endpoint", "get-credentials", "-n", "taxi", "-w", "mlw", "--query", "primaryKey", "-o", "tsv"))
	if code, dep := score(fresh); code != http.StatusOK || dep != "green" {
		t.Fatalf("the new key on the other server: %d from %q", code, dep)
	}
}

// TestSecondServerOnADataDirIsRefused: a data dir (and the SQLite
// database in it) serves one server at a time.
func TestSecondServerOnADataDirIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	o := serverOptions{dataDir: dir, addr: "127.0.0.1:0", tokenTTL: time.Hour, logLevel: "error", unsafeSteps: true}
	first, err := startServer(t.Context(), o, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := startServer(t.Context(), o, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "is in use by another wharf server") {
		t.Fatalf("a second server on %s: %v", dir, err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := startServer(t.Context(), o, &strings.Builder{})
	if err != nil {
		t.Fatalf("a server on the data dir its last server left: %v", err)
	}
	again.Close()
}

// TestServerWithAnotherMasterKeyIsRefused: a server over a database whose
// secrets another master key sealed says which key it needs.
func TestServerWithAnotherMasterKeyIsRefused(t *testing.T) {
	db := freshPostgres(t)
	root := t.TempDir()
	options := func(dir string) serverOptions {
		return serverOptions{dataDir: filepath.Join(root, dir), db: db, addr: "127.0.0.1:0", tokenTTL: time.Hour, logLevel: "error", unsafeSteps: true}
	}
	first, err := startServer(t.Context(), options("first"), &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := startServer(t.Context(), options("stranger"), &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "needs the same master.key") {
		t.Fatalf("a server with a master key of its own: %v", err)
	}
	key, err := os.ReadFile(filepath.Join(root, "first", "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "second"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "second", "master.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	second, err := startServer(t.Context(), options("second"), &strings.Builder{})
	if err != nil {
		t.Fatalf("a server with the first one's master key: %v", err)
	}
	second.Close()
}
