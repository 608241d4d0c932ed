package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

// RunLeases runs the conformance suite of leases and the fencing of
// writes made under them, on a store that implements wharf.LeaseService.
func RunLeases(t *testing.T, open func(t *testing.T) wharf.Store) {
	t.Run("TakeoverFencesTheStaleHolder", func(t *testing.T) { testLeaseTakeover(t, open) })
}

// lapsed is a lease lifetime that is over by the time anyone asks again.
const lapsed = time.Microsecond

func testLeaseTakeover(t *testing.T, open Opener) {
	s := open(t)
	ls, ok := s.(wharf.LeaseService)
	if !ok {
		t.Fatalf("%T does not hand out leases", s)
	}
	ctx := t.Context()
	mkWorkspace(t, s, "ws")
	job := &wharf.Job{Workspace: "ws", Name: "j", Type: wharf.JobTypeCommand, Status: wharf.JobQueued}
	if err := s.CreateJobs(ctx, []*wharf.Job{job}); err != nil {
		t.Fatal(err)
	}

	if l, err := ls.FindLease(ctx, wharf.SchedulerLease); err != nil || l != nil {
		t.Fatalf("a lease no one took is held: %+v %v", l, err)
	}
	a, err := ls.AcquireLease(ctx, wharf.SchedulerLease, "a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := ls.FindLease(ctx, wharf.SchedulerLease); err != nil || l == nil || l.Holder != "a" || l.Token != a.Token {
		t.Fatalf("the lease a took is found as %+v %v", l, err)
	}
	if _, err := ls.AcquireLease(ctx, wharf.SchedulerLease, "b", time.Hour); wharf.ErrorCode(err) != wharf.ECONFLICT {
		t.Fatalf("a held lease taken by another: %v", err)
	}
	setStatus := func(ctx context.Context, status string) error {
		_, err := s.UpdateJob(ctx, "ws", "j", func(j *wharf.Job) error { j.Status = status; return nil })
		return err
	}
	if err := setStatus(wharf.WithFence(ctx, a), wharf.JobRunning); err != nil {
		t.Fatalf("the holder's write: %v", err)
	}

	// a stops renewing (paused, cut off): its lease lapses and b takes it.
	if a, err = ls.RenewLease(ctx, a, lapsed); err != nil {
		t.Fatal(err)
	}
	b, err := ls.AcquireLease(ctx, wharf.SchedulerLease, "b", time.Hour)
	if err != nil {
		t.Fatalf("a lapsed lease not taken: %v", err)
	}
	if b.Token <= a.Token {
		t.Fatalf("the new holder's token %d is not above the old one's %d", b.Token, a.Token)
	}

	// a wakes up and carries on as if it still held the lease: every
	// write it makes under it is refused, and changes nothing.
	stale := wharf.WithFence(ctx, a)
	if err := setStatus(stale, wharf.JobFailed); !errors.Is(err, wharf.ErrFenced) {
		t.Fatalf("the stale holder's update: %v, want ErrFenced", err)
	}
	late := &wharf.Job{Workspace: "ws", Name: "late", Type: wharf.JobTypeCommand, Status: wharf.JobQueued}
	if err := s.CreateJobs(stale, []*wharf.Job{late}); !errors.Is(err, wharf.ErrFenced) {
		t.Fatalf("the stale holder's new job: %v, want ErrFenced", err)
	}
	if _, err := s.FindJob(ctx, "ws", "late"); !wharf.IsNotFound(err) {
		t.Fatalf("the stale holder's job was stored: %v", err)
	}
	if j, err := s.FindJob(ctx, "ws", "j"); err != nil || j.Status != wharf.JobRunning {
		t.Fatalf("after the stale write: %v, %v; want it unchanged (Running)", j, err)
	}
	if _, err := ls.RenewLease(ctx, a, time.Hour); !errors.Is(err, wharf.ErrFenced) {
		t.Fatalf("the stale holder renewed: %v, want ErrFenced", err)
	}
	// Its release on the way out leaves b's lease alone.
	if err := ls.ReleaseLease(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.AcquireLease(ctx, wharf.SchedulerLease, "c", time.Hour); wharf.ErrorCode(err) != wharf.ECONFLICT {
		t.Fatalf("b's lease taken after a's release: %v", err)
	}
	if err := setStatus(wharf.WithFence(ctx, b), wharf.JobCompleted); err != nil {
		t.Fatalf("the new holder's write: %v", err)
	}
	if b, err = ls.RenewLease(ctx, b, time.Hour); err != nil {
		t.Fatalf("the holder renewing: %v", err)
	}

	// A holder that lets go hands the lease over at once.
	if err := ls.ReleaseLease(ctx, b); err != nil {
		t.Fatal(err)
	}
	if l, err := ls.FindLease(ctx, wharf.SchedulerLease); err != nil || l != nil {
		t.Fatalf("a released lease is held: %+v %v", l, err)
	}
	c, err := ls.AcquireLease(ctx, wharf.SchedulerLease, "c", time.Hour)
	if err != nil || c.Token != b.Token+1 {
		t.Fatalf("after a release: %+v, %v; want token %d", c, err, b.Token+1)
	}
	// Writes with no fence (a person's, through the API) need no lease.
	if err := setStatus(ctx, wharf.JobCanceled); err != nil {
		t.Fatal(err)
	}
}
