// Package leader runs a role on exactly one of several servers at a time:
// the one holding a lease in the shared store. A holder renews the lease
// well inside its lifetime; when it dies, the lease lapses and the next
// server to try takes it, with a higher fencing token, so that whatever
// the old holder still tries to write is refused by the store.
package leader

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/wharfml/wharf"
)

// Timings of the scheduler's lease. A holder that dies is replaced within
// DefaultTTL+DefaultRetry (7 s): the lease lapses DefaultTTL after its last
// renewal, and every other server tries to take it every DefaultRetry. A
// live holder renews every DefaultRenew; when it cannot renew for
// DefaultTTL-DefaultRenew (a slow database, a lost connection), it steps
// down, a DefaultRenew before another server could take over.
const (
	DefaultTTL   = 6 * time.Second
	DefaultRenew = 2 * time.Second
	DefaultRetry = time.Second
)

// Elector campaigns for a lease and runs a role while it holds it.
type Elector struct {
	Store  wharf.LeaseService
	Name   string // the lease
	Holder string // this server, as the lease records it
	Logger *slog.Logger
	// TTL, Renew and Retry default to DefaultTTL, DefaultRenew and
	// DefaultRetry.
	TTL, Renew, Retry time.Duration
}

// Run campaigns until ctx is done. Each time it takes the lease it calls
// lead with a context fenced by the lease (see wharf.WithFence), which is
// canceled when the lease is lost or ctx is done; lead must return soon
// after. When lead returns the lease is released, so that another server
// takes over at once.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) {
	ttl, renew, retry := orDefault(e.TTL, DefaultTTL), orDefault(e.Renew, DefaultRenew), orDefault(e.Retry, DefaultRetry)
	logger := e.Logger
	if logger == nil {
		logger = slog.Default()
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// The lease is measured from before the request: by the time
		// the answer arrives, less than ttl of it may be left.
		asked := time.Now()
		l, err := e.Store.AcquireLease(ctx, e.Name, e.Holder, ttl)
		if err != nil {
			if wharf.ErrorCode(err) != wharf.ECONFLICT && ctx.Err() == nil {
				logger.Warn("taking the lease failed", "lease", e.Name, "err", err)
			}
			t.Reset(retry)
			continue
		}
		logger.Info("took the lease: this server now runs it", "lease", e.Name, "token", l.Token)
		e.hold(ctx, l, asked, ttl, renew, lead, logger)
		t.Reset(retry)
	}
}

// hold runs lead while it renews the lease, and stops it once the lease is
// lost, or once it can no longer be sure of keeping it: renew before the
// lease would lapse, counted from when the last renewal that succeeded was
// asked for. That leaves lead a renewal interval to stop (its processes
// killed) before another server can take over.
func (e *Elector) hold(ctx context.Context, l *wharf.Lease, asked time.Time, ttl, renew time.Duration, lead func(context.Context), logger *slog.Logger) {
	roleCtx, stop := context.WithCancel(wharf.WithFence(ctx, l))
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(roleCtx)
	}()
	defer func() {
		stop()
		<-done
		// Hand over at once rather than after ttl: the release is a
		// no-op on a lease already passed on.
		rctx, cancel := context.WithTimeout(context.Background(), renew)
		defer cancel()
		if err := e.Store.ReleaseLease(rctx, l); err != nil {
			logger.Warn("releasing the lease failed; another server takes over when it lapses", "lease", e.Name, "err", err)
		}
	}()
	margin := ttl - renew
	deadline := time.NewTimer(time.Until(asked.Add(margin)))
	defer deadline.Stop()
	t := time.NewTicker(renew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-deadline.C:
			logger.Error("could not renew the lease in time; stepping down", "lease", e.Name, "token", l.Token)
			return
		case <-t.C:
		}
		at := time.Now()
		rctx, cancel := context.WithDeadline(ctx, asked.Add(margin))
		next, err := e.Store.RenewLease(rctx, l, ttl)
		cancel()
		switch {
		case errors.Is(err, wharf.ErrFenced):
			logger.Error("the lease passed to another server; stepping down", "lease", e.Name, "token", l.Token)
			return
		case err != nil:
			if ctx.Err() == nil {
				logger.Warn("renewing the lease failed", "lease", e.Name, "err", err)
			}
		default:
			l.Expires, asked = next.Expires, at
			deadline.Reset(time.Until(asked.Add(margin)))
		}
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
