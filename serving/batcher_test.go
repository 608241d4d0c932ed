package serving

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestDispatchNowNeverHoldsARequestAtLowLoad(t *testing.T) {
	for _, tc := range []struct {
		inflight        int
		full, mergeable bool
		waited          time.Duration
		want            bool
	}{
		{inflight: 0, mergeable: true, want: true},             // idle: sent on arrival
		{inflight: 1, mergeable: true, want: false},            // busy: gathers
		{inflight: 1, mergeable: true, full: true, want: true}, // full
		{inflight: 1, mergeable: false, want: true},            // nothing can join it
		{inflight: 1, mergeable: true, waited: time.Hour, want: true},
	} {
		if got := dispatchNow(tc.inflight, tc.full, tc.mergeable, tc.waited, time.Hour); got != tc.want {
			t.Errorf("dispatchNow(%+v) = %v, want %v", tc, got, tc.want)
		}
	}
}

// frozenBatcher is a batcher whose clock never moves and whose timers
// never fire: a request it holds for the gather wait is held for good.
func frozenBatcher(capacity, maxRows int, score func(context.Context, []*batchItem)) *batcher {
	b := newBatcher(capacity, maxRows, time.Hour, score)
	at := time.Unix(1_000_000, 0)
	b.now = func() time.Time { return at }
	b.afterFunc = func(time.Duration, func()) *time.Timer { return time.NewTimer(time.Hour) }
	return b
}

func TestBatcherSendsALoneRequestOnArrival(t *testing.T) {
	var groups [][]int
	b := frozenBatcher(2, 100, func(_ context.Context, group []*batchItem) {
		groups = append(groups, rowsOf(group))
		for _, it := range group {
			it.out = []byte("ok")
		}
	})
	for i := range 3 {
		it := &batchItem{key: "k", rows: 1, ctx: context.Background()}
		out, err := b.submit(it)
		if err != nil || string(out) != "ok" {
			t.Fatalf("request %d: %q, %v", i, out, err)
		}
		if !it.onArrival {
			t.Errorf("request %d, alone at an idle deployment, was not sent on arrival", i)
		}
	}
	if len(groups) != 3 {
		t.Errorf("groups %v, want three of one request", groups)
	}
}

// recording is a frozen batcher over one worker whose calls record their
// groups' rows and answer each request with its row count; a blocker (a
// request of blockRows rows) holds the worker until release is closed.
type recording struct {
	*batcher
	release chan struct{}
	mu      sync.Mutex
	groups  [][]int
}

const blockRows = 99

func newRecording(t *testing.T, maxRows int) *recording {
	r := &recording{release: make(chan struct{})}
	r.batcher = frozenBatcher(1, maxRows, func(_ context.Context, group []*batchItem) {
		r.mu.Lock()
		r.groups = append(r.groups, rowsOf(group))
		r.mu.Unlock()
		if group[0].rows == blockRows {
			<-r.release
		}
		for _, it := range group {
			it.out = []byte(strconv.Itoa(it.rows))
		}
	})
	go r.submit(&batchItem{key: "k", rows: blockRows, ctx: context.Background()})
	waitPending(t, r.batcher, 0, 1)
	return r
}

func (r *recording) got() [][]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.groups
}

// TestBatcherMergesWhileBusy holds the only worker busy, queues requests
// behind it and checks that they go out together, each with its answer.
func TestBatcherMergesWhileBusy(t *testing.T) {
	r := newRecording(t, 100)
	var wg sync.WaitGroup
	outs := make([]string, 5)
	for i := range 5 {
		key := "k"
		if i == 4 {
			// Queued last, so that the queue's head has key k.
			waitPending(t, r.batcher, 4, 1)
			key = "other"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := r.submit(&batchItem{key: key, rows: i + 1, ctx: context.Background()})
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
			outs[i] = string(out)
		}()
	}
	waitPending(t, r.batcher, 5, 1)
	close(r.release)
	wg.Wait()
	for i, out := range outs {
		if out != strconv.Itoa(i+1) {
			t.Errorf("request %d got %q, another's answer", i, out)
		}
	}
	// The blocker alone, then the four with key k in one group (in
	// whatever order they queued), then the one with another key.
	if groups := r.got(); len(groups) != 3 || len(groups[1]) != 4 || !slices.Equal(groups[2], []int{5}) {
		t.Errorf("groups %v, want [%d], then rows 1-4 together, then [5]", groups, blockRows)
	}
}

func TestBatcherCapsRows(t *testing.T) {
	r := newRecording(t, 4)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.submit(&batchItem{key: "k", rows: 2, ctx: context.Background()})
		}()
	}
	waitPending(t, r.batcher, 6, 1)
	close(r.release)
	wg.Wait()
	if groups := r.got(); !slices.EqualFunc(groups, [][]int{{blockRows}, {2, 2}, {2, 2}, {2, 2}}, slices.Equal) {
		t.Errorf("groups %v, want the blocker then pairs of 2 rows (max 4)", groups)
	}
}

func TestBatcherDropsARequestWhoseContextEndsInTheQueue(t *testing.T) {
	r := newRecording(t, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := r.submit(&batchItem{key: "k", rows: 1, ctx: ctx})
		done <- err
	}()
	waitPending(t, r.batcher, 1, 1)
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	waitPending(t, r.batcher, 0, 1)
	close(r.release)
	waitPending(t, r.batcher, 0, 0)
	if groups := r.got(); len(groups) != 1 {
		t.Errorf("groups %v: the request that went away was sent", groups)
	}
}

func rowsOf(group []*batchItem) []int {
	var out []int
	for _, it := range group {
		out = append(out, it.rows)
	}
	return out
}

// waitPending waits until the batcher holds pending queued requests and
// inflight calls.
func waitPending(t *testing.T, b *batcher, pending, inflight int) {
	t.Helper()
	for range 10_000 {
		b.mu.Lock()
		p, f := len(b.pending), b.inflight
		b.mu.Unlock()
		if p == pending && f == inflight {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the batcher never held %d queued and %d in flight", pending, inflight)
}
