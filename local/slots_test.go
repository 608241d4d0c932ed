package local

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// waitQueued yields until key has n waiters, so goroutines can be lined up
// in a known order without sleeping.
func waitQueued(s *Slots, key string, n int) {
	for s.Queued(key) != n {
		runtime.Gosched()
	}
}

func mustAcquire(t *testing.T, s *Slots, key string, limit int) func() {
	t.Helper()
	release, err := s.Acquire(context.Background(), key, limit)
	if err != nil {
		t.Fatal(err)
	}
	return release
}

func TestSlotsServeWaitersInArrivalOrder(t *testing.T) {
	var s Slots
	holder := mustAcquire(t, &s, "cpu", 1)
	const n = 8
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := s.Acquire(context.Background(), "cpu", 1)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			release()
		}()
		waitQueued(&s, "cpu", i)
	}
	if got := s.Running("cpu"); got != 1 {
		t.Errorf("Running = %d, want 1", got)
	}
	holder()
	wg.Wait()
	for i, got := range order {
		if got != i+1 {
			t.Fatalf("served in order %v, want 1..%d", order, n)
		}
	}
	if len(order) != n || s.Running("cpu") != 0 || s.Queued("cpu") != 0 {
		t.Errorf("order %v, running %d, queued %d", order, s.Running("cpu"), s.Queued("cpu"))
	}
}

func TestSlotsNeverExceedTheLimit(t *testing.T) {
	var s Slots
	const limit, workers = 3, 10
	gate := make(chan struct{})
	in := make(chan struct{}, workers)
	var holding, most atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := s.Acquire(context.Background(), "gpu", limit)
			if err != nil {
				t.Error(err)
				return
			}
			h := holding.Add(1)
			for {
				m := most.Load()
				if h <= m || most.CompareAndSwap(m, h) {
					break
				}
			}
			in <- struct{}{}
			<-gate
			holding.Add(-1)
			release()
		}()
	}
	for range limit {
		<-in
	}
	waitQueued(&s, "gpu", workers-limit)
	if r := s.Running("gpu"); r != limit {
		t.Errorf("Running = %d, want %d", r, limit)
	}
	close(gate)
	wg.Wait()
	if m := most.Load(); m != limit {
		t.Errorf("at most %d held at once, want exactly %d", m, limit)
	}
	// Keys are independent: another one is free while this one is busy.
	if r := s.Running("other"); r != 0 {
		t.Errorf("Running(other) = %d", r)
	}
}

func TestSlotsUseTheLatestLimit(t *testing.T) {
	var s Slots
	first := mustAcquire(t, &s, "c", 1)
	granted := make(chan string, 3)
	releases := make(chan func(), 3)
	wait := func(name string, limit int) {
		release, err := s.Acquire(context.Background(), "c", limit)
		if err != nil {
			t.Error(err)
			return
		}
		releases <- release
		granted <- name
	}
	go wait("b", 1)
	waitQueued(&s, "c", 1)
	go wait("c", 1)
	waitQueued(&s, "c", 2)
	// Raising the limit to 3 admits the two earlier waiters; the caller
	// that raised it queues behind them since 3 are then running.
	go wait("d", 3)
	got := []string{<-granted, <-granted}
	if !(got[0] == "b" && got[1] == "c" || got[0] == "c" && got[1] == "b") {
		t.Errorf("granted %v, want b and c", got)
	}
	waitQueued(&s, "c", 1)
	if r := s.Running("c"); r != 3 {
		t.Errorf("Running = %d, want 3", r)
	}
	first()
	if name := <-granted; name != "d" {
		t.Errorf("granted %q, want d", name)
	}
	// Lowering the limit admits nobody until holders drop below it.
	done := make(chan error, 1)
	go func() {
		release, err := s.Acquire(context.Background(), "c", 1)
		if err == nil {
			release()
		}
		done <- err
	}()
	waitQueued(&s, "c", 1)
	for range 2 {
		(<-releases)()
		if q := s.Queued("c"); q != 1 {
			t.Errorf("Queued = %d while over the new limit, want 1", q)
		}
	}
	(<-releases)()
	if err := <-done; err != nil {
		t.Error(err)
	}
	if r, q := s.Running("c"), s.Queued("c"); r != 0 || q != 0 {
		t.Errorf("running %d queued %d, want 0 0", r, q)
	}
}

func TestSlotsCancelRemovesAWaiter(t *testing.T) {
	var s Slots
	holder := mustAcquire(t, &s, "k", 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		release, err := s.Acquire(ctx, "k", 1)
		if release != nil {
			release()
		}
		done <- err
	}()
	waitQueued(&s, "k", 1)
	next := make(chan error, 1)
	go func() {
		release, err := s.Acquire(context.Background(), "k", 1)
		if release != nil {
			defer release()
		}
		next <- err
	}()
	waitQueued(&s, "k", 2)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("canceled waiter got %v", err)
	}
	if q := s.Queued("k"); q != 1 {
		t.Errorf("Queued = %d after cancel, want 1", q)
	}
	holder()
	if err := <-next; err != nil {
		t.Errorf("next waiter got %v", err)
	}
	if _, err := s.Acquire(ctx, "k", 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with a done ctx = %v", err)
	}
}

func TestSlotsReleaseTwiceCountsOnce(t *testing.T) {
	var s Slots
	a := mustAcquire(t, &s, "k", 2)
	b := mustAcquire(t, &s, "k", 2)
	a()
	a()
	if r := s.Running("k"); r != 1 {
		t.Errorf("Running = %d, want 1", r)
	}
	b()
	if r := s.Running("k"); r != 0 {
		t.Errorf("Running = %d, want 0", r)
	}
	// A limit below 1 still lets one holder in.
	c := mustAcquire(t, &s, "k", 0)
	if r := s.Running("k"); r != 1 {
		t.Errorf("Running = %d with limit 0, want 1", r)
	}
	c()
}

// TestSlotsTryAcquire: a free slot is taken at once; a full key is
// refused without waiting, and a waiter that was there first is served
// first.
func TestSlotsTryAcquire(t *testing.T) {
	var s Slots
	holder, ok := s.TryAcquire("cpu", 1)
	if !ok || s.Running("cpu") != 1 {
		t.Fatalf("free slot: ok %v, running %d", ok, s.Running("cpu"))
	}
	if _, ok := s.TryAcquire("cpu", 1); ok {
		t.Fatal("a full key granted a slot")
	}
	done := make(chan func())
	go func() { r, _ := s.Acquire(context.Background(), "cpu", 1); done <- r }()
	waitQueued(&s, "cpu", 1)
	// Raising the limit frees a slot, and the waiter ahead takes it.
	if _, ok := s.TryAcquire("cpu", 2); ok {
		t.Fatal("TryAcquire went ahead of a waiter")
	}
	waiter := <-done
	holder()
	if r, ok := s.TryAcquire("cpu", 2); !ok {
		t.Fatal("a free slot was refused")
	} else {
		r()
	}
	waiter()
	if s.Running("cpu") != 0 || s.Queued("cpu") != 0 {
		t.Errorf("after release: running %d, queued %d", s.Running("cpu"), s.Queued("cpu"))
	}
	if r, ok := s.TryAcquire("gpu", 0); !ok {
		t.Error("a limit below 1 is not taken as 1")
	} else {
		r()
	}
}
