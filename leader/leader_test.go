package leader_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/leader"
	"github.com/wharfml/wharf/sqlite"
)

// Short timings, so that a takeover takes a moment; the test waits for
// events with a generous deadline and asserts nothing about durations.
const (
	ttl   = 400 * time.Millisecond
	renew = 100 * time.Millisecond
	retry = 20 * time.Millisecond
)

// stallable is a lease store whose renewals can be made to fail, as for a
// holder cut off from the database.
type stallable struct {
	wharf.LeaseService
	stalled atomic.Bool
}

func (s *stallable) RenewLease(ctx context.Context, l *wharf.Lease, ttl time.Duration) (*wharf.Lease, error) {
	if s.stalled.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.LeaseService.RenewLease(ctx, l, ttl)
}

// roles records who leads: never two at once, and the token each lead ran
// under.
type roles struct {
	t       *testing.T
	leading atomic.Int32
	mu      sync.Mutex
	tokens  map[string][]int64
	took    chan string
}

func (r *roles) lead(name string) func(ctx context.Context) {
	return func(ctx context.Context) {
		if n := r.leading.Add(1); n > 1 {
			r.t.Errorf("%s leads while %d others do", name, n-1)
		}
		l := wharf.FenceFromContext(ctx)
		if l == nil {
			r.t.Errorf("%s leads without a fence", name)
			r.leading.Add(-1)
			return
		}
		r.mu.Lock()
		r.tokens[name] = append(r.tokens[name], l.Token)
		r.mu.Unlock()
		r.took <- name
		<-ctx.Done()
		r.leading.Add(-1)
	}
}

func (r *roles) waitFor(name string) {
	r.t.Helper()
	select {
	case got := <-r.took:
		if got != name {
			r.t.Fatalf("%s took the lease, want %s", got, name)
		}
	case <-time.After(30 * time.Second):
		r.t.Fatalf("%s never took the lease", name)
	}
}

func TestOneLeaderAtATimeAndTakeover(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "wharf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r := &roles{t: t, tokens: map[string][]int64{}, took: make(chan string, 4)}
	run := func(name string, store wharf.LeaseService) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		e := &leader.Elector{Store: store, Name: wharf.SchedulerLease, Holder: name, TTL: ttl, Renew: renew, Retry: retry}
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.Run(ctx, r.lead(name))
		}()
		return func() { cancel(); <-done }
	}

	cutOff := &stallable{LeaseService: db}
	stopA := run("a", cutOff)
	r.waitFor("a")
	stopB := run("b", db)
	defer stopB()
	// a loses the database: it steps down before its lease lapses, and b
	// takes over once it has.
	cutOff.stalled.Store(true)
	r.waitFor("b")
	stopA()
	// b shuts down: it hands the lease over at once to a server that
	// starts afterwards.
	stopC := run("c", db)
	defer stopC()
	stopB()
	r.waitFor("c")

	r.mu.Lock()
	defer r.mu.Unlock()
	a, b, c := r.tokens["a"], r.tokens["b"], r.tokens["c"]
	if len(a) != 1 || len(b) != 1 || len(c) != 1 || !(a[0] < b[0] && b[0] < c[0]) {
		t.Fatalf("tokens a %v, b %v, c %v: want one lead each, each token above the last", a, b, c)
	}
}
