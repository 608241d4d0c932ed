package serving

import (
	"context"
	"sync"
	"time"
)

// batcher gathers the concurrent requests of one deployment into
// micro-batches, each scored by one worker in one call. It adapts to the
// load: a request that finds the deployment idle (no call in flight) is
// sent at once, alone; requests that come while calls are in flight queue,
// and when a worker is free the queue's head is sent together with the
// queued requests that can be merged with it (the same key), once the group
// reaches maxRows or its oldest request has waited maxWait, whichever comes
// first. While every worker is busy nothing is sent, so the queue grows into
// the next batch without any timer.
type batcher struct {
	// capacity is how many calls may be in flight: the pool's workers.
	capacity int
	maxRows  int
	maxWait  time.Duration
	// score scores a group (one request or several with the same key)
	// and sets each item's out and err; ctx is the request's own for a
	// group of one.
	score func(ctx context.Context, group []*batchItem)
	// now and afterFunc are time.Now and time.AfterFunc, replaced in
	// tests.
	now       func() time.Time
	afterFunc func(time.Duration, func()) *time.Timer

	mu       sync.Mutex
	inflight int
	pending  []*batchItem
	timer    *time.Timer
	timerAt  time.Time
}

// batchItem is one request in a batcher.
type batchItem struct {
	// key says which requests may share a call: only those with equal,
	// non-empty keys.
	key  string
	rows int
	ctx  context.Context
	// value is the runtime's own form of the request.
	value any

	out []byte
	err error

	arrived    time.Time
	dispatched bool // guarded by batcher.mu
	// onArrival is set when the request was sent the moment it came,
	// without waiting for others.
	onArrival bool
	done      chan struct{}
}

func newBatcher(capacity, maxRows int, maxWait time.Duration, score func(context.Context, []*batchItem)) *batcher {
	return &batcher{capacity: max(capacity, 1), maxRows: max(maxRows, 1), maxWait: maxWait, score: score,
		now: time.Now, afterFunc: time.AfterFunc}
}

// submit queues it and waits for its answer, or for its context to end.
func (b *batcher) submit(it *batchItem) ([]byte, error) {
	it.done = make(chan struct{})
	b.mu.Lock()
	it.arrived = b.now()
	b.pending = append(b.pending, it)
	b.dispatchLocked()
	it.onArrival = it.dispatched
	b.mu.Unlock()
	select {
	case <-it.done:
		return it.out, it.err
	case <-it.ctx.Done():
	}
	b.mu.Lock()
	if !it.dispatched {
		for i, p := range b.pending {
			if p == it {
				b.pending = append(b.pending[:i], b.pending[i+1:]...)
				break
			}
		}
		b.mu.Unlock()
		return nil, it.ctx.Err()
	}
	b.mu.Unlock()
	// Sent alone, its call ends with its context; in a group, the others'
	// answers still come, and this one is dropped.
	select {
	case <-it.done:
		return it.out, it.err
	default:
		return nil, it.ctx.Err()
	}
}

// dispatchNow decides whether a group of queued requests, for which a
// worker is free, is sent now or waits for more requests to join it: now
// when no call is in flight (a request at low load never waits), when
// nothing could join it (full, or unmergeable), or when its oldest request
// has waited maxWait.
func dispatchNow(inflight int, full, mergeable bool, waited, maxWait time.Duration) bool {
	return inflight == 0 || full || !mergeable || waited >= maxWait
}

// dispatchLocked sends what can be sent while workers are free, and arms
// the timer for a group that waits.
func (b *batcher) dispatchLocked() {
	for b.inflight < b.capacity && len(b.pending) > 0 {
		now := b.now()
		head := b.pending[0]
		group, full := b.gatherLocked()
		waited := now.Sub(head.arrived)
		if !dispatchNow(b.inflight, full, head.key != "", waited, b.maxWait) {
			b.armLocked(head.arrived.Add(b.maxWait), now)
			return
		}
		b.removeLocked(group)
		b.inflight++
		go b.run(group)
	}
}

// gatherLocked returns the queue's head and the queued requests that can
// join it, within maxRows, and whether the group is full.
func (b *batcher) gatherLocked() (group []*batchItem, full bool) {
	head := b.pending[0]
	group = []*batchItem{head}
	if head.key == "" {
		return group, true
	}
	rows := max(head.rows, 1)
	for _, it := range b.pending[1:] {
		if it.key != head.key {
			continue
		}
		if rows+max(it.rows, 1) > b.maxRows {
			return group, true
		}
		rows += max(it.rows, 1)
		group = append(group, it)
	}
	return group, rows >= b.maxRows
}

// removeLocked takes group, in queue order, off the queue.
func (b *batcher) removeLocked(group []*batchItem) {
	in := make(map[*batchItem]bool, len(group))
	for _, it := range group {
		in[it] = true
		it.dispatched = true
	}
	kept := b.pending[:0]
	for _, it := range b.pending {
		if !in[it] {
			kept = append(kept, it)
		}
	}
	clear(b.pending[len(kept):])
	b.pending = kept
}

// armLocked makes the batcher look again at when, unless it already will.
func (b *batcher) armLocked(when, now time.Time) {
	if b.timer != nil && b.timerAt.Equal(when) {
		return
	}
	if b.timer != nil {
		b.timer.Stop()
	}
	b.timerAt = when
	b.timer = b.afterFunc(when.Sub(now), func() {
		b.mu.Lock()
		if b.timerAt.Equal(when) {
			b.timer = nil
		}
		b.dispatchLocked()
		b.mu.Unlock()
	})
}

// run scores a group and then sends what the freed worker can take.
func (b *batcher) run(group []*batchItem) {
	ctx := group[0].ctx
	if len(group) > 1 {
		var cancel context.CancelFunc
		ctx, cancel = groupContext(group)
		defer cancel()
	}
	b.score(ctx, group)
	for _, it := range group {
		close(it.done)
	}
	b.mu.Lock()
	b.inflight--
	b.dispatchLocked()
	b.mu.Unlock()
}

// groupContext is the context of a call shared by several requests: it
// ends at the latest of their deadlines, and not when one of them goes
// away, since the others still want their answers.
func groupContext(group []*batchItem) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, it := range group {
		d, ok := it.ctx.Deadline()
		if !ok {
			return context.WithCancel(context.Background())
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.Background(), latest)
}
