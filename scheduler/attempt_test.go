package scheduler

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/local"
	"github.com/wharfml/wharf/sqlite"
)

// A passing status is written only when the attempt stays in it, never
// after the write that follows it; the attempt's first write carries the
// step's fields and its record, started when it got its slot.
func TestPassingStatusIsWrittenOnlyWhenItLasts(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "wharf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.PutWorkspace(t.Context(), &wharf.Workspace{Name: "ws"}); err != nil {
		t.Fatal(err)
	}
	s := &Scheduler{Store: db, Now: time.Now}
	job := func(name string) (*wharf.Job, *attemptRec) {
		j := &wharf.Job{Workspace: "ws", Name: name, Type: wharf.JobTypeCommand, Status: wharf.JobNotStarted}
		if err := db.CreateJobs(t.Context(), []*wharf.Job{j}); err != nil {
			t.Fatal(err)
		}
		at := &attemptRec{s: s, n: 1, started: time.Now().UTC().Add(-time.Minute),
			fields: func(j *wharf.Job) { j.Compute = "cpu-cluster" }}
		return j, at
	}
	find := func(name string) *wharf.Job {
		j, err := db.FindJob(t.Context(), "ws", name)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}

	// Quick: Starting is never written; Running carries everything.
	quick, at := job("quick")
	at.passing(t.Context(), quick, wharf.JobStarting)
	if _, err := at.set(t.Context(), quick, wharf.JobRunning, &local.Process{PID: 42, PGID: 42}); err != nil {
		t.Fatal(err)
	}
	at.passing(t.Context(), quick, wharf.JobFinalizing)
	at.settle()
	got := find("quick")
	if got.Status != wharf.JobRunning || got.Compute != "cpu-cluster" || len(got.Attempts) != 1 ||
		got.Attempts[0].PID != 42 || !got.Attempts[0].Started.Equal(at.started) {
		t.Errorf("quick attempt stored as %s, compute %q, attempts %+v", got.Status, got.Compute, got.Attempts)
	}

	// Slow: Starting is written once it lasts, with the fields.
	slow, at := job("slow")
	at.passing(t.Context(), slow, wharf.JobStarting)
	for find("slow").Status != wharf.JobStarting {
		time.Sleep(10 * time.Millisecond)
	}
	at.settle()
	if got := find("slow"); got.Compute != "cpu-cluster" || len(got.Attempts) != 1 || got.Attempts[0].Status != wharf.JobStarting {
		t.Errorf("slow attempt stored with compute %q, attempts %+v", got.Compute, got.Attempts)
	}
	if at.fields != nil {
		t.Error("the fields are still pending after they were written")
	}
}
