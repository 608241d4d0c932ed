package scheduler_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

// testClock is the scheduler's clock in schedule tests: firings are minutes
// apart, and the test cannot wait for them.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// newNightlyFixture is a stopped fixture whose clock reads 12:00:30, with
// a schedule "nightly" made then that submits chain every ten minutes.
func newNightlyFixture(t *testing.T) (*fixture, *testClock) {
	t.Helper()
	f := newFixture(t)
	f.stop()
	clk := &testClock{now: time.Date(2026, 11, 23, 12, 0, 30, 0, time.UTC)}
	f.now = clk.Now
	f.sched.Now = clk.Now

	job, err := json.Marshal(chain("scheduled"))
	if err != nil {
		t.Fatal(err)
	}
	sc := &wharf.Schedule{Workspace: "ws", Name: "nightly", Enabled: true, CreatedBy: "alice", Job: job,
		Trigger: json.RawMessage(`{"type":"cron","expression":"*/10 * * * *","time_zone":"UTC"}`)}
	if err := f.sched.PrepareSchedule(t.Context(), sc); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 23, 12, 10, 0, 0, time.UTC); sc.NextRun == nil || !sc.NextRun.Equal(want) {
		t.Fatalf("next run %v, want %v", sc.NextRun, want)
	}
	if _, err := f.db.PutSchedule(t.Context(), sc); err != nil {
		t.Fatal(err)
	}
	return f, clk
}

func TestScheduleFiresOnceForMissedRunsThenOnTime(t *testing.T) {
	f, clk := newNightlyFixture(t)
	// The server comes back 35 minutes later: the firings of 12:10, 12:20
	// and 12:30 were missed; they make one run.
	clk.Set(time.Date(2026, 11, 23, 12, 35, 0, 0, time.UTC))
	f.start()
	got := f.waitSchedule("nightly", func(s *wharf.Schedule) bool { return s.LastJob != "" })
	if got.Missed != 2 || got.NextRun == nil || !got.NextRun.Equal(time.Date(2026, 11, 23, 12, 40, 0, 0, time.UTC)) {
		t.Fatalf("after the outage: missed %d, next %v", got.Missed, got.NextRun)
	}
	first := f.wait(got.LastJob)
	if first.Status != wharf.JobCompleted || first.Tags["wharf.schedule"] != "nightly" || first.SubmittedBy != "alice" {
		t.Fatalf("scheduled job %s: %s, tags %v, by %s", first.Name, first.Status, first.Tags, first.SubmittedBy)
	}
	// Nothing more before the next firing...
	clk.Set(time.Date(2026, 11, 23, 12, 39, 0, 0, time.UTC))
	f.sched.Wake()
	// ...and one run at it.
	clk.Set(time.Date(2026, 11, 23, 12, 40, 1, 0, time.UTC))
	f.sched.Wake()
	got = f.waitSchedule("nightly", func(s *wharf.Schedule) bool { return s.LastJob != first.Name })
	if got.Missed != 2 || !got.NextRun.Equal(time.Date(2026, 11, 23, 12, 50, 0, 0, time.UTC)) {
		t.Errorf("on time: missed %d, next %v", got.Missed, got.NextRun)
	}
	jobs, err := f.db.ListJobs(t.Context(), "ws", "", 0)
	if err != nil || len(jobs) != 2 {
		t.Errorf("%d jobs submitted, want 2 (%v)", len(jobs), err)
	}
	// A disabled schedule is never due.
	if _, err := f.db.UpdateSchedule(t.Context(), "ws", "nightly", func(s *wharf.Schedule) error { s.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if due, err := f.db.DueSchedules(t.Context(), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil || len(due) != 0 {
		t.Errorf("disabled schedule due: %d (%v)", len(due), err)
	}
}

func (f *fixture) waitSchedule(name string, ok func(*wharf.Schedule) bool) *wharf.Schedule {
	f.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		s, err := f.db.FindSchedule(f.t.Context(), "ws", name)
		if err != nil {
			f.t.Fatal(err)
		}
		if ok(s) {
			return s
		}
		f.sched.Wake()
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("schedule %s never reached the expected state", name)
	return nil
}
