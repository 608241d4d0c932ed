package resolve_test

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
	"github.com/wharfml/wharf/internal/pgtest"
	"github.com/wharfml/wharf/internal/testclock"
	"github.com/wharfml/wharf/local"
	"github.com/wharfml/wharf/postgres"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/scheduler"
	"github.com/wharfml/wharf/snapshot"
	"github.com/wharfml/wharf/sqlite"
	"github.com/wharfml/wharf/storetest"
)

// env is a store, a blob store and a running scheduler whose schedules
// resolve their documents through a Resolver.
type env struct {
	t     *testing.T
	db    wharf.Store
	blobs *blob.FS
	sched *scheduler.Scheduler
	clk   *testclock.Clock
	res   *resolve.Resolver
}

func newEnv(t *testing.T, db wharf.Store) *env {
	t.Helper()
	dir := t.TempDir()
	blobs, err := blob.NewFS(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := db.PutWorkspace(ctx, &wharf.Workspace{Name: "ws"}); err != nil {
		t.Fatal(err)
	}
	c := &wharf.Compute{Workspace: "ws", Name: "cpu", MaxInstances: 2}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutCompute(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutDatastore(ctx, &wharf.Datastore{Workspace: "ws", Name: "landing", Type: wharf.DatastoreLocal}); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, blobs: blobs, clk: testclock.New(time.Date(2026, 12, 1, 6, 0, 30, 0, time.UTC))}
	e.res = &resolve.Resolver{Store: db, Blobs: blobs}
	runCtx, cancel := context.WithCancel(context.Background())
	e.sched = &scheduler.Scheduler{Store: db, Blobs: blobs, Exec: &local.Executor{KillGrace: time.Second},
		WorkDir: filepath.Join(dir, "jobs"), TrackingURI: func(ws string) string { return "http://127.0.0.1:1/mlflow/" + ws },
		Now: e.clk.Now, Resolve: e.res.Job}
	if err := e.sched.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); e.sched.Wait() })
	return e
}

// put stores content as a blob the workspace references.
func (e *env) put(text string) string {
	e.t.Helper()
	d, _, err := e.blobs.Put(e.t.Context(), strings.NewReader(text))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.AddBlobRefs(e.t.Context(), "ws", []string{d}); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// dataVersion registers a file data asset version of d.
func (e *env) dataVersion(version, text string) {
	e.t.Helper()
	digest := e.put(text)
	spec, _ := json.Marshal(resolve.DataAsset{Type: "uri_file", Path: "taxi.csv", Kind: "file", FileName: "taxi.csv"})
	if err := e.db.CreateAsset(e.t.Context(), &wharf.Asset{Workspace: "ws", Kind: wharf.AssetData, Name: "d",
		Version: version, Spec: spec, Digest: digest}); err != nil {
		e.t.Fatal(err)
	}
}

// landFile writes a file under the landing datastore's folder.
func (e *env) landFile(name, text string) {
	e.t.Helper()
	if err := e.db.PutDatastoreFile(e.t.Context(), &wharf.DatastoreFile{Workspace: "ws", Datastore: "landing",
		Path: "incoming/" + name, Digest: e.put(text), Kind: "file"}); err != nil {
		e.t.Fatal(err)
	}
}

// fire moves the clock past the next firing and returns the job it made.
func (e *env) fire(last string) *wharf.Job {
	e.t.Helper()
	e.clk.Advance(time.Minute)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		sc, err := e.db.FindSchedule(e.t.Context(), "ws", "retrain")
		if err != nil {
			e.t.Fatal(err)
		}
		if sc.LastJob != "" && sc.LastJob != last {
			if strings.HasPrefix(sc.LastJob, "refused") {
				e.t.Fatalf("the firing was refused: %s", sc.LastJob)
			}
			return e.wait(sc.LastJob)
		}
		e.sched.Wake()
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatal("the schedule did not fire")
	return nil
}

func (e *env) wait(name string) *wharf.Job {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		j, err := e.db.FindJob(e.t.Context(), "ws", name)
		if err != nil {
			e.t.Fatal(err)
		}
		if wharf.JobTerminal(j.Status) {
			if j.Status != wharf.JobCompleted {
				e.t.Fatalf("job %s: %s %s", name, j.Status, j.Error)
			}
			return j
		}
		e.sched.Wake()
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("job %s did not end", name)
	return nil
}

// reused reports, by step, whether each step of job took an earlier result.
func (e *env) reused(job string) map[string]bool {
	e.t.Helper()
	steps, err := e.db.ListJobs(e.t.Context(), "ws", job, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, st := range steps {
		out[st.Step] = st.ReusedFrom != ""
	}
	return out
}

// folderFiles lists the files the read_folder step of job produced.
func (e *env) folderFiles(job string) []string {
	e.t.Helper()
	st, err := e.db.FindJob(e.t.Context(), "ws", job+"_read_folder")
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := snapshot.Load(e.t.Context(), st.Outputs["out"].Digest, e.blobs)
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, f := range m.Files {
		names = append(names, f.Path)
	}
	sort.Strings(names)
	return names
}

// retrainDocument is a pipeline that reads the newest version of data
// asset d and whatever lies in the landing datastore's incoming folder.
const retrainDocument = `{
  "type": "pipeline",
  "settings": {"default_compute": "azureml:cpu"},
  "jobs": {
    "read_data": {
      "type": "command",
      "command": "cp ${{inputs.data}} ${{outputs.out}}/",
      "environment": {"image": "python:3.11"},
      "inputs": {"data": {"type": "uri_file", "path": "azureml:d@latest"}},
      "outputs": {"out": {"type": "uri_folder"}}
    },
    "read_folder": {
      "type": "command",
      "command": "cp -r ${{inputs.folder}}/. ${{outputs.out}}/",
      "environment": {"image": "python:3.11"},
      "inputs": {"folder": {"type": "uri_folder", "path": "azureml://datastores/landing/paths/incoming/"}},
      "outputs": {"out": {"type": "uri_folder"}}
    }
  }
}`

// openSQLite opens a store of the test's own, closed when it ends.
func openSQLite(t *testing.T) wharf.Store {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "wharf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestScheduleRetrainsOnNewData is scheduled retraining as users expect
// it: each firing resolves azureml:d@latest and the datastore folder
// anew, so a new data version or a newly landed file re-runs the steps
// that read it, and a firing with nothing new reuses every step.
func TestScheduleRetrainsOnNewData(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) wharf.Store{
		"sqlite": openSQLite,
		"postgres": func(t *testing.T) wharf.Store {
			db, err := postgres.Open(t.Context(), pgtest.FreshDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			db.Sealer = storetest.NewSealer(t)
			t.Cleanup(func() { db.Close() })
			return db
		},
	} {
		t.Run(name, func(t *testing.T) { testScheduleRetrainsOnNewData(t, open(t)) })
	}
}

func testScheduleRetrainsOnNewData(t *testing.T, db wharf.Store) {
	e := newEnv(t, db)
	ctx := t.Context()
	e.dataVersion("1", "fare\n1\n")
	e.landFile("jan.csv", "fare\n10\n")
	sc := &wharf.Schedule{Workspace: "ws", Name: "retrain", Enabled: true, CreatedBy: "alice",
		Job: json.RawMessage(retrainDocument), Trigger: json.RawMessage(`{"type":"cron","expression":"* * * * *","time_zone":"UTC"}`)}
	if err := e.sched.PrepareSchedule(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutSchedule(ctx, sc); err != nil {
		t.Fatal(err)
	}

	first := e.fire("")
	if src := first.Resolved["read_data.data"].Source; src != "azureml:d:1" {
		t.Errorf("first firing resolved d to %q, want azureml:d:1", src)
	}
	if got := e.folderFiles(first.Name); strings.Join(got, ",") != "jan.csv" {
		t.Errorf("first firing's folder: %v", got)
	}

	// Nothing new: every step is reused.
	second := e.fire(first.Name)
	if r := e.reused(second.Name); !r["read_data"] || !r["read_folder"] {
		t.Errorf("a firing with no new data reused %v, want every step", r)
	}

	// A new version of d: the step reading it runs again on it.
	e.dataVersion("2", "fare\n2\n")
	third := e.fire(second.Name)
	if src := third.Resolved["read_data.data"].Source; src != "azureml:d:2" {
		t.Errorf("after v2 the firing resolved d to %q, want azureml:d:2", src)
	}
	if r := e.reused(third.Name); r["read_data"] || !r["read_folder"] {
		t.Errorf("after v2: reused %v, want read_data run again and read_folder reused", r)
	}

	// A file lands in the folder: the step reading the folder runs again
	// and sees both files.
	e.landFile("feb.csv", "fare\n20\n")
	fourth := e.fire(third.Name)
	if r := e.reused(fourth.Name); !r["read_data"] || r["read_folder"] {
		t.Errorf("after a new file: reused %v, want read_folder run again and read_data reused", r)
	}
	if got := e.folderFiles(fourth.Name); strings.Join(got, ",") != "feb.csv,jan.csv" {
		t.Errorf("folder after a new file: %v", got)
	}
	if fourth.Resolved["read_folder.folder"].Digest == first.Resolved["read_folder.folder"].Digest {
		t.Error("the folder resolved to the same content after a file landed")
	}
}

// TestDocumentProblemsNameTheirField: what is wrong in a document is
// reported by field path, every problem at once.
func TestDocumentProblemsNameTheirField(t *testing.T) {
	db := openSQLite(t)
	e := newEnv(t, db)
	for _, c := range []struct{ doc, field, msg string }{
		{`{"command":"true","environment":{"image":"x"},"compute":"azureml:cpu","colour":"red"}`, "colour", "unknown field"},
		{strings.Replace(retrainDocument, `"azureml:d@latest"`, `"azureml:nope@latest"`, 1), "jobs.read_data.inputs.data.path", "nope"},
		{`{"type":"pipeline","jobs":{"a":{"component":"azureml:missing:1","compute":"azureml:cpu"}}}`, "jobs.a.component", "missing"},
		{`{"type":"pipeline","settings":{"default_compute":"azureml:cpu"},"jobs":{"a":{"command":"echo ${{inputs.x}}","environment":{"image":"x"},"inputs":{"x":"${{parent.jobs.b.outputs.y}}"}}}}`, "jobs.a.inputs.x", "b"},
	} {
		_, err := e.res.Job(t.Context(), "ws", []byte(c.doc))
		we, ok := err.(*wharf.Error)
		if !ok || we.Code != wharf.EINVALID {
			t.Errorf("%s: got %v, want EINVALID", c.field, err)
			continue
		}
		found := false
		for _, d := range we.Details {
			if d.Field == c.field && strings.Contains(d.Message, c.msg) {
				found = true
			}
		}
		if !found || we.Field == "" {
			t.Errorf("%s: no problem naming the field and %q: %+v", c.field, c.msg, we)
		}
	}
	// Uploaded content must have been uploaded to this workspace.
	doc := `{"command":"true","environment":{"image":"x"},"compute":"azureml:cpu","code":"azureml://datastores/workspaceblobstore/paths/LocalUpload/` +
		strings.Repeat("0", 64) + `/src/"}`
	if _, err := e.res.Job(t.Context(), "ws", []byte(doc)); wharf.ErrorCode(err) != wharf.EINVALID || !strings.Contains(wharf.ErrorMessage(err), "not been uploaded") {
		t.Errorf("code never uploaded: %v", err)
	}
}

// TestJobWithoutComputeRunsServerless: a job that names no compute, or
// names azureml:serverless, runs on the workspace's serverless cluster,
// made when first needed, as Azure runs it on serverless compute.
func TestJobWithoutComputeRunsServerless(t *testing.T) {
	db := openSQLite(t)
	e := newEnv(t, db)
	for _, doc := range []string{
		`{"command":"echo hi","environment":{"image":"python:3.11"},"resources":{"instance_type":"Standard_DS3_v2"}}`,
		`{"command":"echo hi","environment":{"image":"python:3.11"},"compute":"azureml:serverless","queue_settings":{"job_tier":"standard"}}`,
	} {
		sub, err := e.res.Job(t.Context(), "ws", []byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if c := sub.Steps[0].Spec.Compute; c != resolve.Serverless {
			t.Errorf("compute %q, want %q", c, resolve.Serverless)
		}
		j, err := e.sched.Submit(t.Context(), "ws", "alice", sub)
		if err != nil {
			t.Fatal(err)
		}
		e.wait(j.Name)
	}
	c, err := db.FindCompute(t.Context(), "ws", resolve.Serverless)
	if err != nil || c.MaxInstances < 2 {
		t.Errorf("serverless cluster: %+v %v", c, err)
	}
}

// TestScheduleExpressionsAreTheFirings: a scheduled job's
// ${{creation_context.trigger_time}} is the time the schedule fired and
// ${{name}} the name of the job it submitted, in an input's value and in
// its display name; an output's path keeps ${{name}} for the job that
// writes it, which for a command job is the same name.
func TestScheduleExpressionsAreTheFirings(t *testing.T) {
	db := openSQLite(t)
	e := newEnv(t, db)
	ctx := t.Context()
	if _, err := db.PutDatastore(ctx, &wharf.Datastore{Workspace: "ws", Name: "out", Type: wharf.DatastoreLocal}); err != nil {
		t.Fatal(err)
	}
	doc := `{
  "command": "echo ${{inputs.when}} ${{inputs.run}} > ${{outputs.stamp}}/stamp.txt",
  "environment": {"image": "python:3.11"},
  "compute": "azureml:cpu",
  "display_name": "retrain ${{creation_context.trigger_time}}",
  "inputs": {"when": "${{creation_context.trigger_time}}", "run": {"type": "string", "default": "${{name}}"}},
  "outputs": {"stamp": {"type": "uri_folder", "path": "azureml://datastores/out/paths/stamps/${{name}}/"}}
}`
	sc := &wharf.Schedule{Workspace: "ws", Name: "retrain", Enabled: true, CreatedBy: "alice",
		Job: json.RawMessage(doc), Trigger: json.RawMessage(`{"type":"cron","expression":"* * * * *","time_zone":"UTC"}`)}
	if err := e.sched.PrepareSchedule(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutSchedule(ctx, sc); err != nil {
		t.Fatal(err)
	}
	j := e.fire("")
	if j.Status != wharf.JobCompleted {
		t.Fatalf("job %s: %s %s", j.Name, j.Status, j.Error)
	}
	// The firing was due at the first whole minute after the schedule
	// was made (06:00:30).
	when := "2026-12-01T06:01:00Z"
	if j.DisplayName != "retrain "+when {
		t.Errorf("display name %q, want %q", j.DisplayName, "retrain "+when)
	}
	f, err := db.FindDatastoreFile(ctx, "ws", "out", "stamps/"+j.Name)
	if err != nil {
		t.Fatalf("output at stamps/%s/: %v", j.Name, err)
	}
	m, err := snapshot.Load(ctx, f.Digest, e.blobs)
	if err != nil || len(m.Files) != 1 || m.Files[0].Path != "stamp.txt" {
		t.Fatalf("output folder: %+v %v", m, err)
	}
	r, _, err := e.blobs.Open(ctx, m.Files[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	if got, want := string(b), when+" "+j.Name+"\n"; got != want {
		t.Errorf("stamp.txt = %q, want %q", got, want)
	}
}
