package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

// RunJobs runs the conformance suite of assets and jobs.
func RunJobs(t *testing.T, open func(t *testing.T) wharf.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"Assets", testAssets},
		{"AssetVersionRace", testAssetVersionRace},
		{"AssetLatestIsNewestCreated", testAssetLatest},
		{"Jobs", testJobs},
		{"UpdateJobFailureKeepsJob", testUpdateJobFailure},
		{"ReusableJob", testReusableJob},
		{"EveryStepListed", testEveryStepListed},
		{"SearchJobs", testSearchJobs},
		{"Schedules", testSchedules},
		{"MonitorResults", testMonitorResults},
		{"MonitorAlerts", testMonitorAlerts},
		{"OnlineEndpoints", testOnlineEndpoints},
		{"BatchEndpoints", testBatchEndpoints},
		{"BlobRefs", testBlobRefs},
		{"StorageBlobs", testStorageBlobs},
		{"DatastoreObjects", testDatastoreObjects},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func testAssets(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	mkWorkspace(t, s, "other")
	spec := json.RawMessage(`{"type": "uri_file", "path": "taxi.csv"}`)
	a := &wharf.Asset{Workspace: "ws", Kind: wharf.AssetData, Name: "taxi-data", Spec: spec, Digest: "sha256:aa",
		Tags: map[string]string{"k": "v"}, CreatedBy: "alice"}
	must(t, s.CreateAsset(ctx(t), a))
	if a.Version != "1" || a.CreatedAt.IsZero() {
		t.Fatalf("first version %q created %v, want 1 and a time", a.Version, a.CreatedAt)
	}
	b := &wharf.Asset{Workspace: "ws", Kind: wharf.AssetData, Name: "taxi-data", Spec: spec, Digest: "sha256:bb"}
	must(t, s.CreateAsset(ctx(t), b))
	if b.Version != "2" {
		t.Fatalf("second version %q, want 2", b.Version)
	}
	// An explicit version is kept, and numbering continues above it.
	c := &wharf.Asset{Workspace: "ws", Kind: wharf.AssetData, Name: "taxi-data", Version: "10", Spec: spec, Digest: "sha256:cc"}
	must(t, s.CreateAsset(ctx(t), c))
	d := &wharf.Asset{Workspace: "ws", Kind: wharf.AssetData, Name: "taxi-data", Spec: spec, Digest: "sha256:dd"}
	must(t, s.CreateAsset(ctx(t), d))
	if d.Version != "11" {
		t.Fatalf("version after 10 is %q, want 11", d.Version)
	}
	// Same content again under an existing version is not an error...
	again := &wharf.Asset{Workspace: "ws", Kind: wharf.AssetData, Name: "taxi-data", Version: "10",
		Spec: json.RawMessage(`{"path":"taxi.csv","type":"uri_file"}`), Digest: "sha256:cc"}
	must(t, s.CreateAsset(ctx(t), again))
	// ...different content is, and the stored version is untouched.
	wantCode(t, s.CreateAsset(ctx(t), &wharf.Asset{Workspace: "ws", Kind: wharf.AssetData, Name: "taxi-data",
		Version: "10", Spec: spec, Digest: "sha256:zz"}), wharf.ECONFLICT)
	got, err := s.FindAsset(ctx(t), "ws", wharf.AssetData, "taxi-data", "10")
	must(t, err)
	if got.Digest != "sha256:cc" {
		t.Errorf("version 10 digest %q after a refused overwrite", got.Digest)
	}
	first, err := s.FindAsset(ctx(t), "ws", wharf.AssetData, "taxi-data", "1")
	must(t, err)
	if first.CreatedBy != "alice" || first.Tags["k"] != "v" || !jsonSame(first.Spec, spec) {
		t.Errorf("version 1 read back as %+v", first)
	}
	latest, err := s.FindAsset(ctx(t), "ws", wharf.AssetData, "taxi-data", wharf.LatestVersion)
	must(t, err)
	if latest.Version != "11" {
		t.Errorf("latest is %q, want 11", latest.Version)
	}
	versions, err := s.ListAssets(ctx(t), "ws", wharf.AssetData, "taxi-data")
	must(t, err)
	var vs []string
	for _, v := range versions {
		vs = append(vs, v.Version)
	}
	same(t, "versions newest first", vs, []string{"11", "10", "2", "1"})

	must(t, s.CreateAsset(ctx(t), &wharf.Asset{Workspace: "ws", Kind: wharf.AssetEnvironment, Name: "taxi-data"}))
	must(t, s.CreateAsset(ctx(t), &wharf.Asset{Workspace: "ws", Kind: wharf.AssetData, Name: "bikes"}))
	names, err := s.ListAssets(ctx(t), "ws", wharf.AssetData, "")
	must(t, err)
	var ns []string
	for _, n := range names {
		ns = append(ns, n.Name+":"+n.Version)
	}
	same(t, "names with their latest", ns, []string{"bikes:1", "taxi-data:11"})

	_, err = s.FindAsset(ctx(t), "other", wharf.AssetData, "taxi-data", "1")
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = s.FindAsset(ctx(t), "ws", wharf.AssetComponent, "taxi-data", "")
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = s.ListAssets(ctx(t), "nope", wharf.AssetData, "")
	wantCode(t, err, wharf.ENOTFOUND)
	wantCode(t, s.CreateAsset(ctx(t), &wharf.Asset{Workspace: "nope", Kind: wharf.AssetData, Name: "x"}), wharf.ENOTFOUND)
	wantCode(t, s.CreateAsset(ctx(t), &wharf.Asset{Workspace: "ws", Kind: wharf.AssetData, Name: "bad name!"}), wharf.EINVALID)
	wantCode(t, s.CreateAsset(ctx(t), &wharf.Asset{Workspace: "ws", Kind: wharf.AssetData, Name: "x", Version: "latest"}), wharf.EINVALID)
}

func jsonSame(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && fmt.Sprint(x) == fmt.Sprint(y)
}

// testAssetVersionRace creates versions of one name concurrently: every
// creation gets its own number.
func testAssetVersionRace(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	const n = 8
	var wg sync.WaitGroup
	versions := make(chan string, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a := &wharf.Asset{Workspace: "ws", Kind: wharf.AssetComponent, Name: "train", Digest: fmt.Sprint(i)}
			if err := s.CreateAsset(ctx(t), a); err != nil {
				errs <- err
				return
			}
			versions <- a.Version
		}(i)
	}
	wg.Wait()
	close(versions)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for v := range versions {
		if seen[v] {
			t.Errorf("version %s handed out twice", v)
		}
		seen[v] = true
	}
	for i := 1; i <= n; i++ {
		if !seen[fmt.Sprint(i)] {
			t.Errorf("version %d missing; got %v", i, seen)
		}
	}
}

// testAssetLatest: @latest is the newest created, not the highest number.
func testAssetLatest(t *testing.T, open Opener) {
	s := open(t)
	clk := withClock(t, s)
	mkWorkspace(t, s, "ws")
	for _, v := range []string{"9", "3"} {
		must(t, s.CreateAsset(ctx(t), &wharf.Asset{Workspace: "ws", Kind: wharf.AssetEnvironment, Name: "env", Version: v}))
		clk.Advance(time.Second)
	}
	latest, err := s.FindAsset(ctx(t), "ws", wharf.AssetEnvironment, "env", "")
	must(t, err)
	if latest.Version != "3" {
		t.Errorf("latest is %s, want 3 (created last)", latest.Version)
	}
}

func mkJobs(t *testing.T, s wharf.Store) (*wharf.Job, *wharf.Job, *wharf.Job) {
	t.Helper()
	p := &wharf.Job{Workspace: "ws", Name: "brave_lion", Type: wharf.JobTypePipeline, Status: wharf.JobNotStarted,
		ExperimentName: "taxi", SubmittedBy: "alice", Spec: json.RawMessage(`{"steps":2}`)}
	a := &wharf.Job{Workspace: "ws", Name: "brave_lion_prep", Parent: "brave_lion", Step: "prep", Type: wharf.JobTypeCommand,
		Status: wharf.JobNotStarted}
	b := &wharf.Job{Workspace: "ws", Name: "brave_lion_train", Parent: "brave_lion", Step: "train", Type: wharf.JobTypeCommand,
		Status: wharf.JobNotStarted}
	must(t, s.CreateJobs(ctx(t), []*wharf.Job{p, a, b}))
	return p, a, b
}

func testJobs(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	p, _, _ := mkJobs(t, s)
	other := &wharf.Job{Workspace: "ws", Name: "calm_owl", Type: wharf.JobTypeCommand, Status: wharf.JobCompleted}
	must(t, s.CreateJobs(ctx(t), []*wharf.Job{other}))

	got, err := s.FindJob(ctx(t), "ws", "brave_lion")
	must(t, err)
	if got.ExperimentName != "taxi" || got.SubmittedBy != "alice" || string(got.Spec) != `{"steps":2}` || got.CreatedAt.IsZero() {
		t.Errorf("pipeline read back as %+v", got)
	}
	top, err := s.ListJobs(ctx(t), "ws", "", 0)
	must(t, err)
	same(t, "top-level newest first", jobNames(top), []string{"calm_owl", "brave_lion"})
	steps, err := s.ListJobs(ctx(t), "ws", p.Name, 0)
	must(t, err)
	same(t, "steps in creation order", jobNames(steps), []string{"brave_lion_prep", "brave_lion_train"})
	unfinished, err := s.ListUnfinishedJobs(ctx(t))
	must(t, err)
	same(t, "unfinished", jobNames(unfinished), []string{"brave_lion", "brave_lion_prep", "brave_lion_train"})

	code := 0
	up, err := s.UpdateJob(ctx(t), "ws", "brave_lion_prep", func(j *wharf.Job) error {
		j.Status = wharf.JobCompleted
		j.ReuseKey = "k1"
		j.Outputs = map[string]wharf.JobOutput{"train_data": {Type: "uri_folder", Kind: "folder", Digest: "sha256:x", Files: 2}}
		j.Attempts = append(j.Attempts, wharf.JobAttempt{Number: 1, Status: wharf.JobCompleted, ExitCode: &code})
		return nil
	})
	must(t, err)
	if up.Status != wharf.JobCompleted {
		t.Fatal("update did not return the new job")
	}
	back, err := s.FindJob(ctx(t), "ws", "brave_lion_prep")
	must(t, err)
	if back.Outputs["train_data"].Digest != "sha256:x" || len(back.Attempts) != 1 || *back.Attempts[0].ExitCode != 0 {
		t.Errorf("update not stored: %+v", back)
	}
	unfinished, err = s.ListUnfinishedJobs(ctx(t))
	must(t, err)
	same(t, "unfinished after completion", jobNames(unfinished), []string{"brave_lion", "brave_lion_train"})

	wantCode(t, s.CreateJobs(ctx(t), []*wharf.Job{{Workspace: "ws", Name: "calm_owl", Status: wharf.JobQueued}}), wharf.ECONFLICT)
	wantCode(t, s.CreateJobs(ctx(t), []*wharf.Job{{Workspace: "nope", Name: "x", Status: wharf.JobQueued}}), wharf.ENOTFOUND)
	_, err = s.FindJob(ctx(t), "ws", "missing")
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = s.UpdateJob(ctx(t), "ws", "missing", func(*wharf.Job) error { return nil })
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = s.ListJobs(ctx(t), "nope", "", 0)
	wantCode(t, err, wharf.ENOTFOUND)
}

// testSearchJobs: the job list's filters and pages, newest first, steps
// never among them, and a filter column kept in step with updates.
func testSearchJobs(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	var jobs []*wharf.Job
	for i := range 25 {
		j := &wharf.Job{Workspace: "ws", Name: fmt.Sprintf("j%02d", i), Type: wharf.JobTypeCommand, Status: wharf.JobCompleted,
			ExperimentName: []string{"taxi", "iris"}[i%2], Compute: []string{"cpu", "gpu", "cpu"}[i%3], SubmittedBy: []string{"alice", "bob"}[i/20]}
		if i%5 == 0 {
			j.Status = wharf.JobFailed
		}
		jobs = append(jobs, j)
	}
	jobs = append(jobs, &wharf.Job{Workspace: "ws", Name: "j00_step", Parent: "j00", Type: wharf.JobTypeCommand, Status: wharf.JobFailed,
		ExperimentName: "taxi", Compute: "cpu", SubmittedBy: "alice"})
	must(t, s.CreateJobs(ctx(t), jobs))
	var all []string
	token := ""
	for pages := 0; ; pages++ {
		page, next, err := s.SearchJobs(ctx(t), "ws", wharf.JobFilter{}, 10, token)
		must(t, err)
		if len(page) > 10 || pages > 3 {
			t.Fatalf("page of %d jobs, or too many pages", len(page))
		}
		all = append(all, jobNames(page)...)
		if token = next; token == "" {
			break
		}
	}
	var want []string
	for i := 24; i >= 0; i-- {
		want = append(want, fmt.Sprintf("j%02d", i))
	}
	same(t, "every top-level job over three pages, newest first", all, want)

	failed, next, err := s.SearchJobs(ctx(t), "ws", wharf.JobFilter{Status: wharf.JobFailed, ExperimentName: "taxi"}, 10, "")
	must(t, err)
	same(t, "failed taxi jobs", jobNames(failed), []string{"j20", "j10", "j00"})
	if next != "" {
		t.Errorf("a last page gave the token %q", next)
	}
	byWho, _, err := s.SearchJobs(ctx(t), "ws", wharf.JobFilter{SubmittedBy: "bob", Compute: "gpu"}, 10, "")
	must(t, err)
	same(t, "bob's gpu jobs", jobNames(byWho), []string{"j22"})

	_, err = s.UpdateJob(ctx(t), "ws", "j22", func(j *wharf.Job) error { j.Compute = "big"; return nil })
	must(t, err)
	moved, _, err := s.SearchJobs(ctx(t), "ws", wharf.JobFilter{Compute: "big"}, 10, "")
	must(t, err)
	same(t, "after an update", jobNames(moved), []string{"j22"})

	facets, err := s.JobFacets(ctx(t), "ws", 100)
	must(t, err)
	same(t, "statuses", facets.Statuses, []string{wharf.JobCompleted, wharf.JobFailed})
	same(t, "experiments", facets.ExperimentNames, []string{"iris", "taxi"})
	same(t, "computes", facets.Computes, []string{"big", "cpu", "gpu"})
	same(t, "submitters", facets.SubmittedBy, []string{"alice", "bob"})

	_, _, err = s.SearchJobs(ctx(t), "ws", wharf.JobFilter{}, 10, "not-a-token")
	wantCode(t, err, wharf.EINVALID)
	_, _, err = s.SearchJobs(ctx(t), "nope", wharf.JobFilter{}, 10, "")
	wantCode(t, err, wharf.ENOTFOUND)
}

// testEveryStepListed: a pipeline's steps are listed in full, however many
// there are, while top-level jobs are listed 1000 at a time by default.
func testEveryStepListed(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	const n = 1002
	jobs := []*wharf.Job{{Workspace: "ws", Name: "wide", Type: wharf.JobTypePipeline, Status: wharf.JobNotStarted}}
	for i := range n {
		jobs = append(jobs, &wharf.Job{Workspace: "ws", Name: fmt.Sprintf("wide_s%04d", i), Parent: "wide",
			Step: fmt.Sprintf("s%04d", i), Type: wharf.JobTypeCommand, Status: wharf.JobNotStarted})
	}
	must(t, s.CreateJobs(ctx(t), jobs))
	steps, err := s.ListJobs(ctx(t), "ws", "wide", 0)
	must(t, err)
	if len(steps) != n || steps[n-1].Step != fmt.Sprintf("s%04d", n-1) {
		t.Fatalf("%d steps listed, want %d in creation order", len(steps), n)
	}
	if steps, err = s.ListJobs(ctx(t), "ws", "wide", 10); err != nil || len(steps) != 10 {
		t.Errorf("with a limit of 10: %d steps (%v)", len(steps), err)
	}
}

// testUpdateJobFailure: a failing update function changes nothing, and a
// job cannot be renamed by one.
func testUpdateJobFailure(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	mkJobs(t, s)
	boom := errors.New("boom")
	_, err := s.UpdateJob(ctx(t), "ws", "brave_lion", func(j *wharf.Job) error {
		j.Status = wharf.JobFailed
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want the function's", err)
	}
	_, err = s.UpdateJob(ctx(t), "ws", "brave_lion", func(j *wharf.Job) error {
		j.Name = "renamed"
		j.Status = wharf.JobFailed
		return nil
	})
	if err == nil {
		t.Fatal("renaming update accepted")
	}
	j, err := s.FindJob(ctx(t), "ws", "brave_lion")
	must(t, err)
	if j.Status != wharf.JobNotStarted {
		t.Errorf("status %s after failed updates", j.Status)
	}
}

func testReusableJob(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	mkWorkspace(t, s, "other")
	for i, st := range []string{wharf.JobCompleted, wharf.JobCompleted, wharf.JobFailed} {
		must(t, s.CreateJobs(ctx(t), []*wharf.Job{{Workspace: "ws", Name: fmt.Sprintf("j%d", i), Status: st, ReuseKey: "key"}}))
	}
	j, err := s.FindReusableJob(ctx(t), "ws", "key")
	must(t, err)
	if j.Name != "j1" {
		t.Errorf("reusable job %s, want the newest completed j1", j.Name)
	}
	_, err = s.FindReusableJob(ctx(t), "other", "key")
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = s.FindReusableJob(ctx(t), "ws", "nokey")
	wantCode(t, err, wharf.ENOTFOUND)
}

func jobNames(js []*wharf.Job) []string {
	out := []string{}
	for _, j := range js {
		out = append(out, j.Name)
	}
	return out
}

func testSchedules(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	at := func(m int) *time.Time { v := time.Date(2026, 11, 23, 12, m, 0, 0, time.UTC); return &v }
	sc := &wharf.Schedule{Workspace: "ws", Name: "nightly", Enabled: true, CreatedBy: "alice",
		Trigger: json.RawMessage(`{"type":"cron"}`), Job: json.RawMessage(`{"type":"pipeline"}`), NextRun: at(10)}
	created, err := s.PutSchedule(ctx(t), sc)
	must(t, err)
	if !created {
		t.Error("first put did not create")
	}
	off := &wharf.Schedule{Workspace: "ws", Name: "off", Enabled: false, NextRun: at(5),
		Trigger: json.RawMessage(`{}`), Job: json.RawMessage(`{}`)}
	_, err = s.PutSchedule(ctx(t), off)
	must(t, err)
	due, err := s.DueSchedules(ctx(t), *at(9))
	must(t, err)
	if len(due) != 0 {
		t.Errorf("%d due before the first firing", len(due))
	}
	due, err = s.DueSchedules(ctx(t), *at(10))
	must(t, err)
	if len(due) != 1 || due[0].Name != "nightly" || due[0].CreatedBy != "alice" {
		t.Fatalf("due at 12:10: %+v", due)
	}
	up, err := s.UpdateSchedule(ctx(t), "ws", "nightly", func(x *wharf.Schedule) error {
		x.NextRun, x.LastJob = at(20), "job1"
		return nil
	})
	must(t, err)
	if up.LastJob != "job1" {
		t.Error("update not returned")
	}
	due, err = s.DueSchedules(ctx(t), *at(15))
	must(t, err)
	if len(due) != 0 {
		t.Errorf("still due after its next run moved: %d", len(due))
	}
	// Replacing keeps the history.
	created, err = s.PutSchedule(ctx(t), &wharf.Schedule{Workspace: "ws", Name: "nightly", Enabled: true, NextRun: at(30),
		Trigger: json.RawMessage(`{}`), Job: json.RawMessage(`{}`)})
	must(t, err)
	got, err := s.FindSchedule(ctx(t), "ws", "nightly")
	must(t, err)
	if created || got.LastJob != "job1" || got.CreatedBy != "alice" || !got.NextRun.Equal(*at(30)) {
		t.Errorf("replaced schedule %+v (created %v)", got, created)
	}
	list, err := s.ListSchedules(ctx(t), "ws")
	must(t, err)
	if len(list) != 2 || list[0].Name != "nightly" || list[1].Name != "off" {
		t.Errorf("list %+v", list)
	}
	must(t, s.DeleteSchedule(ctx(t), "ws", "off"))
	wantCode(t, s.DeleteSchedule(ctx(t), "ws", "off"), wharf.ENOTFOUND)
	_, err = s.FindSchedule(ctx(t), "ws", "off")
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = s.UpdateSchedule(ctx(t), "ws", "off", func(*wharf.Schedule) error { return nil })
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = s.ListSchedules(ctx(t), "nope")
	wantCode(t, err, wharf.ENOTFOUND)
}

func testOnlineEndpoints(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	e := &wharf.OnlineEndpoint{Workspace: "ws", Name: "taxi-online", AuthMode: wharf.AuthModeKey}
	must(t, e.Validate())
	created, err := s.PutOnlineEndpoint(ctx(t), e)
	must(t, err)
	if !created {
		t.Error("not created")
	}
	// Traffic to a deployment that does not exist is refused.
	e.Traffic = map[string]int{"blue": 100}
	_, err = s.PutOnlineEndpoint(ctx(t), e)
	wantCode(t, err, wharf.EINVALID)
	for _, name := range []string{"blue", "green"} {
		_, err := s.PutOnlineDeployment(ctx(t), &wharf.OnlineDeployment{Workspace: "ws", Endpoint: "taxi-online", Name: name,
			Model: "taxi-model:1", Spec: json.RawMessage(`{"instance_count": 1}`)})
		must(t, err)
	}
	_, err = s.PutOnlineDeployment(ctx(t), &wharf.OnlineDeployment{Workspace: "ws", Endpoint: "nope", Name: "x"})
	wantCode(t, err, wharf.ENOTFOUND)
	e.Traffic = map[string]int{"blue": 90, "green": 10}
	created, err = s.PutOnlineEndpoint(ctx(t), e)
	must(t, err)
	if created {
		t.Error("update reported as created")
	}
	got, err := s.FindOnlineEndpoint(ctx(t), "ws", "taxi-online")
	must(t, err)
	if got.Traffic["green"] != 10 || got.AuthMode != wharf.AuthModeKey || got.CreatedAt.IsZero() {
		t.Errorf("endpoint read back as %+v", got)
	}
	ds, err := s.ListOnlineDeployments(ctx(t), "ws", "taxi-online")
	must(t, err)
	if len(ds) != 2 || ds[0].Name != "blue" || string(ds[0].Spec) != `{"instance_count": 1}` && string(ds[0].Spec) != `{"instance_count":1}` {
		t.Errorf("deployments %+v", ds)
	}
	// A deployment with traffic cannot be deleted; at 0% it can.
	wantCode(t, s.DeleteOnlineDeployment(ctx(t), "ws", "taxi-online", "green"), wharf.ECONFLICT)
	e.Traffic = map[string]int{"blue": 100, "green": 0}
	_, err = s.PutOnlineEndpoint(ctx(t), e)
	must(t, err)
	must(t, s.DeleteOnlineDeployment(ctx(t), "ws", "taxi-online", "green"))
	got, err = s.FindOnlineEndpoint(ctx(t), "ws", "taxi-online")
	must(t, err)
	if _, ok := got.Traffic["green"]; ok {
		t.Error("a deleted deployment stays in the traffic map")
	}
	_, err = s.FindOnlineDeployment(ctx(t), "ws", "taxi-online", "green")
	wantCode(t, err, wharf.ENOTFOUND)
	eps, err := s.ListOnlineEndpoints(ctx(t), "ws")
	must(t, err)
	if len(eps) != 1 {
		t.Errorf("%d endpoints", len(eps))
	}
	must(t, s.DeleteOnlineEndpoint(ctx(t), "ws", "taxi-online"))
	_, err = s.FindOnlineDeployment(ctx(t), "ws", "taxi-online", "blue")
	wantCode(t, err, wharf.ENOTFOUND)
	wantCode(t, s.DeleteOnlineEndpoint(ctx(t), "ws", "taxi-online"), wharf.ENOTFOUND)
	_, err = s.ListOnlineEndpoints(ctx(t), "nope")
	wantCode(t, err, wharf.ENOTFOUND)
}

func testBatchEndpoints(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	e := &wharf.BatchEndpoint{Workspace: "ws", Name: "taxi-batch"}
	created, err := s.PutBatchEndpoint(ctx(t), e)
	must(t, err)
	if !created || e.CreatedAt.IsZero() {
		t.Errorf("created %v at %v", created, e.CreatedAt)
	}
	e.DefaultDeployment = "dp"
	_, err = s.PutBatchEndpoint(ctx(t), e)
	wantCode(t, err, wharf.EINVALID) // no such deployment yet
	d := &wharf.BatchDeployment{Workspace: "ws", Endpoint: "taxi-batch", Name: "dp", Model: "m:1", Spec: json.RawMessage(`{"compute":"c"}`)}
	_, err = s.PutBatchDeployment(ctx(t), d)
	must(t, err)
	_, err = s.PutBatchEndpoint(ctx(t), e)
	must(t, err)
	got, err := s.FindBatchEndpoint(ctx(t), "ws", "taxi-batch")
	must(t, err)
	if got.DefaultDeployment != "dp" || !got.CreatedAt.Equal(e.CreatedAt) {
		t.Errorf("endpoint %+v", got)
	}
	wantCode(t, s.DeleteBatchDeployment(ctx(t), "ws", "taxi-batch", "dp"), wharf.ECONFLICT)
	ds, err := s.ListBatchDeployments(ctx(t), "ws", "taxi-batch")
	must(t, err)
	if len(ds) != 1 || ds[0].Model != "m:1" || ds[0].Workspace != "ws" {
		t.Errorf("deployments %+v", ds)
	}
	_, err = s.PutBatchDeployment(ctx(t), &wharf.BatchDeployment{Workspace: "ws", Endpoint: "nope", Name: "x"})
	wantCode(t, err, wharf.ENOTFOUND)
	must(t, s.DeleteBatchEndpoint(ctx(t), "ws", "taxi-batch"))
	_, err = s.FindBatchDeployment(ctx(t), "ws", "taxi-batch", "dp")
	wantCode(t, err, wharf.ENOTFOUND)
	eps, err := s.ListBatchEndpoints(ctx(t), "ws")
	must(t, err)
	if len(eps) != 0 {
		t.Errorf("%d endpoints after delete", len(eps))
	}
	_, err = s.ListBatchEndpoints(ctx(t), "nope")
	wantCode(t, err, wharf.ENOTFOUND)
}
