package local

import (
	"context"
	"sync"
)

// Slots limits how many holders each key (a compute target) has at once and
// queues the rest in arrival order, so jobs start in the order they were
// submitted. The zero value is ready to use and safe for concurrent use.
type Slots struct {
	mu     sync.Mutex
	queues map[string]*slotQueue
}

type slotQueue struct {
	limit   int
	running int
	waiters []*slotWaiter // oldest first
}

type slotWaiter struct {
	ready   chan struct{} // closed when granted
	granted bool
}

// Acquire waits until key has fewer than limit holders and no earlier waiter,
// then takes a slot and returns the function that gives it back. The release
// function may be called more than once; only the first call counts.
//
// The latest limit given for a key applies to everyone: raising it admits
// waiters at once, lowering it lets running holders finish but admits no one
// until the count drops below it. A limit below 1 is taken as 1, since a
// limit of zero would queue work forever.
//
// If ctx ends first, the waiter leaves the queue and Acquire returns ctx's
// error and a nil release function.
func (s *Slots) Acquire(ctx context.Context, key string, limit int) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	q := s.queue(key, limit)
	if len(q.waiters) == 0 && q.running < q.limit {
		q.running++
		s.mu.Unlock()
		return s.releaser(key), nil
	}
	w := &slotWaiter{ready: make(chan struct{})}
	q.waiters = append(q.waiters, w)
	s.mu.Unlock()

	select {
	case <-w.ready:
		return s.releaser(key), nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	if w.granted {
		// Granted while ctx ended; hand the slot on rather than leak it.
		s.mu.Unlock()
		s.releaser(key)()
		return nil, ctx.Err()
	}
	for i, other := range q.waiters {
		if other == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			break
		}
	}
	s.forgetIfIdle(key, q)
	s.mu.Unlock()
	return nil, ctx.Err()
}

// TryAcquire takes a slot of key if Acquire would grant one at once, and
// reports whether it did; it never waits. A caller that is to wait can
// record that before calling Acquire, and one that is not skips the
// record.
func (s *Slots) TryAcquire(key string, limit int) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue(key, limit)
	if len(q.waiters) > 0 || q.running >= q.limit {
		s.forgetIfIdle(key, q)
		return nil, false
	}
	q.running++
	return s.releaser(key), true
}

// queue returns key's queue, made if need be, with the latest limit
// applied: waiters it admits are granted their slots. s.mu must be held.
func (s *Slots) queue(key string, limit int) *slotQueue {
	if s.queues == nil {
		s.queues = make(map[string]*slotQueue)
	}
	q := s.queues[key]
	if q == nil {
		q = &slotQueue{}
		s.queues[key] = q
	}
	q.limit = max(limit, 1)
	s.dispatch(q)
	return q
}

// releaser returns the release function of one slot of key.
func (s *Slots) releaser(key string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			q := s.queues[key]
			q.running--
			s.dispatch(q)
			s.forgetIfIdle(key, q)
		})
	}
}

// dispatch grants slots to the oldest waiters while the limit allows.
// s.mu must be held.
func (s *Slots) dispatch(q *slotQueue) {
	for len(q.waiters) > 0 && q.running < q.limit {
		w := q.waiters[0]
		q.waiters[0] = nil
		q.waiters = q.waiters[1:]
		w.granted = true
		q.running++
		close(w.ready)
	}
}

// forgetIfIdle drops the state of a key nobody holds or waits for, so keys
// that come and go do not accumulate. s.mu must be held.
func (s *Slots) forgetIfIdle(key string, q *slotQueue) {
	if q.running == 0 && len(q.waiters) == 0 {
		delete(s.queues, key)
	}
}

// Queued returns how many callers are waiting for a slot of key.
func (s *Slots) Queued(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queues[key]; q != nil {
		return len(q.waiters)
	}
	return 0
}

// Running returns how many slots of key are held.
func (s *Slots) Running(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queues[key]; q != nil {
		return q.running
	}
	return 0
}
