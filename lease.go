package wharf

import (
	"context"
	"time"
)

// SchedulerLease names the lease whose holder runs the scheduler and the
// schedule clock when several servers share one PostgreSQL database.
const SchedulerLease = "scheduler"

// Lease is a server's hold on a named role for a while. Token grows by one
// each time the lease passes to a holder, so a write made under an older
// token is known to come from a holder that has since lost it (a fencing
// token).
type Lease struct {
	Name   string
	Holder string
	Token  int64
	// Expires is when the lease lapses unless renewed, by the database's
	// clock.
	Expires time.Time
}

// ErrFenced refuses a write made under a lease that has since passed to
// another holder: the writer must stop acting as the holder.
var ErrFenced = &Error{Code: ECONFLICT, Message: "this server no longer holds the lease it wrote under; another server has taken over"}

// LeaseService hands out leases. Only a store shared by several servers
// (PostgreSQL) needs one; its clock is the database's, so the servers'
// clocks need not agree.
type LeaseService interface {
	// AcquireLease takes the lease for holder when it is free or has
	// lapsed, with a new token, for ttl. A lease another holder still
	// holds is refused with ECONFLICT.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (*Lease, error)
	// RenewLease extends a held lease by ttl from now; ErrFenced when it
	// has passed to another holder.
	RenewLease(ctx context.Context, l *Lease, ttl time.Duration) (*Lease, error)
	// ReleaseLease lets the lease lapse now, so that another server need
	// not wait out its ttl; a lease already passed on is left alone.
	ReleaseLease(ctx context.Context, l *Lease) error
	// FindLease returns the lease's holder now; nil when no one holds it
	// (never taken, released, or lapsed).
	FindLease(ctx context.Context, name string) (*Lease, error)
}

type fenceKey struct{}

// WithFence returns ctx whose store writes are refused with ErrFenced once
// the lease has passed to another holder: the store checks the lease's
// token in the same transaction as each write, so a holder that lost its
// lease (paused, partitioned) cannot change what the new holder owns.
func WithFence(ctx context.Context, l *Lease) context.Context {
	return context.WithValue(ctx, fenceKey{}, l)
}

// FenceFromContext returns the lease ctx's writes are fenced by, or nil.
func FenceFromContext(ctx context.Context) *Lease {
	l, _ := ctx.Value(fenceKey{}).(*Lease)
	return l
}
