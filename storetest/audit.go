package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

func testAudit(t *testing.T, open Opener) {
	s := open(t)
	clk := withClock(t, s)
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

	ev := func(who string, at time.Time) *wharf.AuditEvent {
		return &wharf.AuditEvent{Time: at, PrincipalID: who, PrincipalName: "name-" + who,
			Action: wharf.ActionComputeWrite, Method: "PUT", Path: "/workspaces/ws/computes/c",
			Scope: "/workspaces/ws", Status: 201, Outcome: wharf.AuditSucceeded, RequestID: "req-" + who}
	}
	// Recorded out of time order: listing is by time, not by id.
	e1 := ev("a", base.Add(2*time.Second))
	e2 := ev("b", base)
	e3 := ev("a", base.Add(time.Second))
	e4 := ev("b", base.Add(time.Second)) // same time as e3, recorded later
	var last int64
	for _, e := range []*wharf.AuditEvent{e1, e2, e3, e4} {
		must(t, s.RecordAuditEvent(ctx(t), e))
		if e.ID <= last {
			t.Fatalf("ID %d after %d", e.ID, last)
		}
		last = e.ID
	}
	now := &wharf.AuditEvent{Action: "x", Outcome: wharf.AuditDenied, Status: 403}
	must(t, s.RecordAuditEvent(ctx(t), now))
	if !now.Time.Equal(clk.stored()) {
		t.Errorf("zero Time set to %v, want %v", now.Time, clk.stored())
	}

	all, err := s.ListAuditEvents(ctx(t), wharf.AuditFilter{})
	must(t, err)
	// The clock is set before base, so the defaulted event is the oldest.
	same(t, "all", all, []*wharf.AuditEvent{e1, e4, e3, e2, now})

	got, err := s.ListAuditEvents(ctx(t), wharf.AuditFilter{PrincipalID: "a"})
	must(t, err)
	same(t, "principal a", got, []*wharf.AuditEvent{e1, e3})

	got, err = s.ListAuditEvents(ctx(t), wharf.AuditFilter{Since: base.Add(time.Second)})
	must(t, err)
	same(t, "since", got, []*wharf.AuditEvent{e1, e4, e3})
	// Since is inclusive to the microsecond and not rounded down past an
	// earlier event.
	got, err = s.ListAuditEvents(ctx(t), wharf.AuditFilter{Since: base.Add(time.Second - time.Nanosecond),
		PrincipalID: "b"})
	must(t, err)
	same(t, "since with nanoseconds", got, []*wharf.AuditEvent{e4})
	got, err = s.ListAuditEvents(ctx(t), wharf.AuditFilter{Since: base.Add(time.Nanosecond), PrincipalID: "b"})
	must(t, err)
	same(t, "since just after an event", got, []*wharf.AuditEvent{e4})

	// The defaulted event has the empty scope; the others the workspace's.
	got, err = s.ListAuditEvents(ctx(t), wharf.AuditFilter{Scope: "/workspaces/ws", Limit: 3})
	must(t, err)
	same(t, "scope", got, []*wharf.AuditEvent{e1, e4, e3})
	got, err = s.ListAuditEvents(ctx(t), wharf.AuditFilter{Scope: "/workspaces/other"})
	must(t, err)
	if len(got) != 0 {
		t.Errorf("another scope: %d events", len(got))
	}

	got, err = s.ListAuditEvents(ctx(t), wharf.AuditFilter{Limit: 2})
	must(t, err)
	same(t, "limit", got, []*wharf.AuditEvent{e1, e4})
	got, err = s.ListAuditEvents(ctx(t), wharf.AuditFilter{PrincipalID: "nobody"})
	must(t, err)
	if len(got) != 0 {
		t.Errorf("unknown principal: %d events", len(got))
	}
}

func testAuditLimit(t *testing.T, open Opener) {
	s := open(t)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 105 {
		must(t, s.RecordAuditEvent(ctx(t), &wharf.AuditEvent{Time: base.Add(time.Duration(i) * time.Millisecond),
			Action: fmt.Sprint(i)}))
	}
	got, err := s.ListAuditEvents(ctx(t), wharf.AuditFilter{})
	must(t, err)
	if len(got) != 100 {
		t.Fatalf("default limit returned %d events", len(got))
	}
	if got[0].Action != "104" || got[99].Action != "5" {
		t.Errorf("default limit kept %s..%s, want the newest 104..5", got[0].Action, got[99].Action)
	}
	got, err = s.ListAuditEvents(ctx(t), wharf.AuditFilter{Limit: 105})
	must(t, err)
	if len(got) != 105 {
		t.Errorf("limit 105 returned %d", len(got))
	}
}

func testSettings(t *testing.T, open Opener) {
	s := open(t)
	_, ok, err := s.Setting(ctx(t), "tenant_id")
	must(t, err)
	if ok {
		t.Fatal("unset setting reported set")
	}
	v, err := s.InitSetting(ctx(t), "tenant_id", "t-1")
	must(t, err)
	if v != "t-1" {
		t.Fatalf("InitSetting = %q", v)
	}
	v, err = s.InitSetting(ctx(t), "tenant_id", "t-2")
	must(t, err)
	if v != "t-1" {
		t.Fatalf("second InitSetting = %q, want the first value", v)
	}
	v, ok, err = s.Setting(ctx(t), "tenant_id")
	must(t, err)
	if !ok || v != "t-1" {
		t.Fatalf("Setting = %q, %v", v, ok)
	}
}

// testInitSettingRace starts many first-time initialisations at once, as
// several servers booting against one database would: all must agree.
func testInitSettingRace(t *testing.T, open Opener) {
	s := open(t)
	const n = 16
	results := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.InitSetting(ctx(t), "tenant_id", fmt.Sprintf("tenant-%d", i))
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		must(t, errs[i])
		if results[i] != results[0] {
			t.Fatalf("goroutine %d got %q, goroutine 0 got %q", i, results[i], results[0])
		}
	}
	v, ok, err := s.Setting(ctx(t), "tenant_id")
	must(t, err)
	if !ok || v != results[0] {
		t.Fatalf("stored %q, callers were told %q", v, results[0])
	}
}

// testConcurrentWriters checks that parallel writers all land: none is
// lost and none fails with a busy or serialisation error.
func testConcurrentWriters(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	const writers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				c := &wharf.Compute{Workspace: "ws", Name: fmt.Sprintf("c-%d-%d", w, i)}
				if err := c.Validate(); err != nil {
					errs <- err
					return
				}
				if _, err := s.PutCompute(ctx(t), c); err != nil {
					errs <- err
				}
				// Readers run alongside the writers.
				if i%10 == 0 {
					if _, err := s.ListComputes(ctx(t), "ws"); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	list, err := s.ListComputes(ctx(t), "ws")
	must(t, err)
	if len(list) != writers*each {
		t.Fatalf("%d computes stored, want %d", len(list), writers*each)
	}
}

// testAuditConcurrent records many events at once, as concurrent requests
// do, so that they are committed in groups: each call that returns nil has
// its event stored with its fields, its ID and its Time, in the order the
// IDs give. Where the engine refuses an event (PostgreSQL takes no NUL in
// text), that call alone fails and nothing of its event is stored, however
// it was grouped.
func testAuditConcurrent(t *testing.T, open Opener) {
	s := open(t)
	const n = 48
	events := make([]*wharf.AuditEvent, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		e := &wharf.AuditEvent{PrincipalID: fmt.Sprint("p-", i%3), PrincipalName: "name", Action: wharf.ActionJobWrite,
			Method: "PUT", Path: fmt.Sprint("/workspaces/ws/jobs/j", i), Scope: "/workspaces/ws", Status: 200,
			Outcome: wharf.AuditSucceeded, RequestID: fmt.Sprint("req-", i)}
		if i%16 == 7 {
			e.Path += "\x00"
		}
		events[i] = e
		wg.Go(func() {
			<-start
			errs[i] = s.RecordAuditEvent(ctx(t), e)
		})
	}
	close(start)
	wg.Wait()
	stored, err := s.ListAuditEvents(ctx(t), wharf.AuditFilter{Limit: 2 * n})
	must(t, err)
	byRequest := map[string]*wharf.AuditEvent{}
	for i, e := range stored {
		byRequest[e.RequestID] = e
		if i > 0 && (e.ID >= stored[i-1].ID || e.Time.After(stored[i-1].Time)) {
			t.Errorf("event %d (id %d, %v) listed after id %d, %v", i, e.ID, e.Time, stored[i-1].ID, stored[i-1].Time)
		}
	}
	ok := 0
	for i, e := range events {
		got := byRequest[e.RequestID]
		switch {
		case errs[i] != nil && got != nil:
			t.Errorf("%s failed (%v) but was stored: %+v", e.RequestID, errs[i], got)
		case errs[i] != nil && !strings.Contains(e.Path, "\x00"):
			t.Errorf("%s failed: %v", e.RequestID, errs[i])
		case errs[i] == nil:
			ok++
			if e.ID == 0 || e.Time.IsZero() {
				t.Errorf("%s recorded without its ID or Time: %+v", e.RequestID, e)
			}
			same(t, e.RequestID, got, e)
		}
	}
	if len(stored) != ok {
		t.Errorf("%d events stored, %d calls succeeded", len(stored), ok)
	}
}

// testAuditWithWrite arms a request's audit record (wharf.ArmAudit) and
// writes through the store: the record commits with the write, once,
// with the armed status; a write that fails leaves no record and its
// pending record unwritten, for the request pipeline to record the
// failure; an unarmed one writes none.
func testAuditWithWrite(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	exp := mkExperiment(t, s, "ws", "e")
	run := mkRun(t, s, "ws", exp.ID, "r")
	batch := []*wharf.Metric{metric("loss", 1, 1, 0)}
	pending := func(id string) (context.Context, *wharf.PendingAudit) {
		return wharf.NewContextWithPendingAudit(ctx(t), &wharf.AuditEvent{PrincipalID: "p", PrincipalName: "name",
			Action: wharf.ActionExperimentWrite, Method: "POST", Path: "/log-batch", Scope: "/workspaces/ws", RequestID: id})
	}
	stored := func() map[string]*wharf.AuditEvent {
		all, err := s.ListAuditEvents(ctx(t), wharf.AuditFilter{Limit: 100})
		must(t, err)
		m := map[string]*wharf.AuditEvent{}
		for _, e := range all {
			if m[e.RequestID] != nil {
				t.Errorf("two records of %s", e.RequestID)
			}
			m[e.RequestID] = e
		}
		return m
	}

	c, armed := pending("armed")
	must(t, s.LogBatch(wharf.ArmAudit(c, 200), "ws", run.ID, batch, nil, nil))
	// A second write under the same context does not write it again.
	must(t, s.LogBatch(c, "ws", run.ID, batch, nil, map[string]string{"k": "v"}))
	c, failed := pending("failed")
	wantCode(t, s.LogBatch(wharf.ArmAudit(c, 200), "ws", "no-such-run", batch, nil, nil), wharf.ENOTFOUND)
	c, unarmed := pending("unarmed")
	must(t, s.LogBatch(c, "ws", run.ID, batch, nil, nil))

	got := stored()
	e := armed.Written()
	if e == nil || got["armed"] == nil {
		t.Fatalf("armed write: pending says %+v, stored %+v", e, got["armed"])
	}
	if e.Status != 200 || e.Outcome != wharf.AuditSucceeded || e.ID == 0 {
		t.Errorf("armed record: %+v", e)
	}
	same(t, "armed record", got["armed"], e)
	if failed.Written() != nil || got["failed"] != nil {
		t.Errorf("failed write: pending says %+v, stored %+v", failed.Written(), got["failed"])
	}
	if unarmed.Written() != nil || got["unarmed"] != nil {
		t.Errorf("unarmed write: pending says %+v, stored %+v", unarmed.Written(), got["unarmed"])
	}
}
