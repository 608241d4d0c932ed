package scheduler_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/local"
	"github.com/wharfml/wharf/scheduler"
)

// dyingStore is a store whose scheduler dies (its writes fail from then
// on) just after it submits a job.
type dyingStore struct {
	wharf.Store
	mu   sync.Mutex
	dead bool
}

var errDied = errors.New("the server died")

func (s *dyingStore) CreateJobs(ctx context.Context, jobs []*wharf.Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return errDied
	}
	err := s.Store.CreateJobs(ctx, jobs)
	s.dead = true
	return err
}

func (s *dyingStore) UpdateSchedule(ctx context.Context, workspace, name string, fn func(*wharf.Schedule) error) (*wharf.Schedule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return nil, errDied
	}
	return s.Store.UpdateSchedule(ctx, workspace, name, fn)
}

// syncBuffer collects a scheduler's log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startWith starts a scheduler like the fixture's over store, with ctx.
func (f *fixture) startWith(ctx context.Context, store wharf.Store, log *syncBuffer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	s := &scheduler.Scheduler{Store: store, Blobs: f.blobs, Exec: &local.Executor{KillGrace: time.Second},
		WorkDir: filepath.Join(f.dir, "jobs"), TrackingURI: func(ws string) string { return "http://127.0.0.1:1/mlflow/" + ws },
		Now: f.now, Envs: f.envs, ScanInterval: noScan}
	if log != nil {
		s.Logger = slog.New(slog.NewTextHandler(log, nil))
	}
	if err := s.Start(ctx); err != nil {
		f.t.Fatal(err)
	}
	return func() { cancel(); s.Wait() }
}

func TestScheduleFiringMadeOnceAcrossACrashBeforeItsClaim(t *testing.T) {
	f, clk := newNightlyFixture(t)
	clk.Set(time.Date(2026, 11, 23, 12, 10, 5, 0, time.UTC))

	// The first scheduler submits the firing's job and dies before it can
	// record the firing on the schedule.
	dying := &dyingStore{Store: f.db}
	stop := f.startWith(context.Background(), dying, nil)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		dying.mu.Lock()
		dead := dying.dead
		dying.mu.Unlock()
		if dead {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the schedule never fired")
		}
	}
	stop()
	if sc, err := f.db.FindSchedule(t.Context(), "ws", "nightly"); err != nil || sc.LastJob != "" {
		t.Fatalf("the firing was recorded before the crash: %+v, %v", sc, err)
	}

	// The next scheduler finds the firing due still, and its job made.
	f.start()
	got := f.waitSchedule("nightly", func(s *wharf.Schedule) bool { return s.LastJob != "" })
	if want := time.Date(2026, 11, 23, 12, 20, 0, 0, time.UTC); got.NextRun == nil || !got.NextRun.Equal(want) || got.Missed != 0 {
		t.Fatalf("after the firing: next %v (want %v), missed %d", got.NextRun, want, got.Missed)
	}
	jobs, err := f.db.ListJobs(t.Context(), "ws", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].Name != got.LastJob || jobs[0].Tags[scheduler.FiringTag] != "2026-11-23T12:10:00Z" {
		var names []string
		for _, j := range jobs {
			names = append(names, j.Name+" "+j.Tags[scheduler.FiringTag])
		}
		t.Fatalf("jobs %v, last job %s: want the one firing of 12:10, once", names, got.LastJob)
	}
	if j := f.wait(got.LastJob); j.Status != wharf.JobCompleted {
		for _, st := range f.steps(j.Name) {
			t.Logf("step %s: %s %s %+v", st.Step, st.Status, st.Error, st.Attempts)
		}
		t.Fatalf("the scheduled job: %s %s", j.Status, j.Error)
	}
}

func TestStaleSchedulerIsRefusedItsFiring(t *testing.T) {
	f, clk := newNightlyFixture(t)
	clk.Set(time.Date(2026, 11, 23, 12, 10, 5, 0, time.UTC))

	ctx := t.Context()
	stale, err := f.db.AcquireLease(ctx, wharf.SchedulerLease, "paused server", time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.AcquireLease(ctx, wharf.SchedulerLease, "next server", time.Hour); err != nil {
		t.Fatal(err)
	}
	// The server whose lease lapsed carries on as the scheduler.
	log := &syncBuffer{}
	stop := f.startWith(wharf.WithFence(context.Background(), stale), f.db, log)
	defer stop()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(log.String(), wharf.ErrFenced.Message); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the stale scheduler never tried to fire; its log:\n%s", log.String())
		}
	}
	stop()
	jobs, err := f.db.ListJobs(ctx, "ws", "", 0)
	if err != nil || len(jobs) != 0 {
		t.Fatalf("the stale scheduler submitted %d jobs (%v)", len(jobs), err)
	}
	sc, err := f.db.FindSchedule(ctx, "ws", "nightly")
	if err != nil || sc.LastJob != "" || sc.LastRun != nil {
		t.Fatalf("the stale scheduler recorded a firing: %+v, %v", sc, err)
	}
}
