package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"time"

	"github.com/wharfml/wharf"
)

// DefaultAuditLimit is how many events ListAuditEvents returns when the
// filter sets no limit.
const DefaultAuditLimit = 100

// RecordAuditEvent appends e and sets its ID. A zero Time is set to now;
// any other is kept at the store's microsecond precision.
//
// Records are group-committed: e joins the records of the calls waiting
// with it, one transaction writes them all, and RecordAuditEvent returns
// once the commit that holds e has happened (or failed), so a nil error
// still means e is durable. Concurrent writes thus share one commit for
// their audit records instead of taking one each (see auditQueue).
func (db *DB) RecordAuditEvent(ctx context.Context, e *wharf.AuditEvent) error {
	return db.audit.record(db, e)
}

// auditGroupMax bounds how many records one group commit writes.
const auditGroupMax = 256

// auditGroupTimeout bounds the writing of one group. It is not the
// caller's context: the group holds other callers' records too.
const auditGroupTimeout = 10 * time.Second

// auditQueue group-commits audit records. One caller at a time, the
// leader, writes every record queued so far in one transaction; records
// queued meanwhile wait for the next group, whose leader is the first of
// them. So a record waits at most for the commit before its own, and
// nothing waits on a timer. A record's time is taken as it is inserted,
// as before groups: ids and times still agree.
type auditQueue struct {
	mu      sync.Mutex
	pending []*auditWaiter
	writing bool // a leader is writing a group
}

// auditWaiter is one queued record and the channel that tells its caller
// how the record's group ended, or that it leads the next group.
type auditWaiter struct {
	e    *wharf.AuditEvent
	done chan auditTurn
}

type auditTurn struct {
	err  error
	lead bool
}

func (q *auditQueue) record(db *DB, e *wharf.AuditEvent) error {
	w := &auditWaiter{e: e, done: make(chan auditTurn, 1)}
	q.mu.Lock()
	q.pending = append(q.pending, w)
	lead := !q.writing
	q.writing = true
	q.mu.Unlock()
	if !lead {
		if turn := <-w.done; !turn.lead {
			return turn.err
		}
	}

	// The leader is the first queued record: it writes from the head.
	q.mu.Lock()
	n := min(len(q.pending), auditGroupMax)
	group := q.pending[:n:n]
	q.pending = append([]*auditWaiter(nil), q.pending[n:]...)
	q.mu.Unlock()

	errs := db.writeAuditGroup(group)

	q.mu.Lock()
	if len(q.pending) > 0 {
		q.pending[0].done <- auditTurn{lead: true}
	} else {
		q.writing = false
	}
	q.mu.Unlock()
	var own error
	for i, g := range group {
		if g == w {
			own = errs[i]
			continue
		}
		g.done <- auditTurn{err: errs[i]}
	}
	return own
}

// writeAuditGroup writes the group's records, in one transaction when
// there are several, and sets their IDs and Times. Should the transaction
// fail, each record is tried alone, so that one bad record fails only its
// own caller.
func (db *DB) writeAuditGroup(group []*auditWaiter) []error {
	ctx, cancel := context.WithTimeout(context.Background(), auditGroupTimeout)
	defer cancel()
	errs := make([]error, len(group))
	ids := make([]int64, len(group))
	times := make([]time.Time, len(group))
	insert := func(c conn, i int) error {
		times[i] = normTime(group[i].e.Time)
		if group[i].e.Time.IsZero() {
			times[i] = db.now()
		}
		return insertAudit(ctx, c, group[i].e, times[i]).Scan(&ids[i])
	}
	var err error
	if len(group) > 1 {
		err = db.inTx(ctx, func(c conn) error {
			for i := range group {
				if err := insert(c, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for i, w := range group {
		if len(group) == 1 || err != nil {
			if errs[i] = insert(db.writer(), i); errs[i] != nil {
				errs[i] = wrapErr("record audit event", errs[i])
				continue
			}
		}
		w.e.ID, w.e.Time = ids[i], times[i]
	}
	return errs
}

// insertAudit inserts e with the time at, and returns the row of its id.
func insertAudit(ctx context.Context, c conn, e *wharf.AuditEvent, at time.Time) *sql.Row {
	return c.queryRow(ctx, `INSERT INTO audit_events
		(time, principal_id, principal_name, action, method, path, scope, status, outcome, request_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		c.db.timeArg(at), e.PrincipalID, e.PrincipalName, e.Action, e.Method, e.Path, e.Scope,
		e.Status, e.Outcome, e.RequestID)
}

// writePendingAudit writes, in the transaction c that is about to
// commit, the request's armed audit record (see wharf.PendingAudit), if
// ctx has one; the returned function, called with whether the transaction
// committed, reports the outcome back to it.
func (db *DB) writePendingAudit(ctx context.Context, c conn) (func(committed bool), error) {
	e, done := wharf.ClaimPendingAudit(ctx)
	if e == nil {
		return func(bool) {}, nil
	}
	e.Time = db.now()
	if err := insertAudit(ctx, c, e, e.Time).Scan(&e.ID); err != nil {
		done(false)
		return nil, wrapErr("record audit event", err)
	}
	return done, nil
}

// ListAuditEvents returns the events matching f, newest first. Events with
// the same time come in reverse order of recording.
func (db *DB) ListAuditEvents(ctx context.Context, f wharf.AuditFilter) ([]*wharf.AuditEvent, error) {
	var where []string
	var args []any
	if f.PrincipalID != "" {
		where = append(where, "principal_id = ?")
		args = append(args, f.PrincipalID)
	}
	if f.Scope != "" {
		where = append(where, "scope = ?")
		args = append(args, f.Scope)
	}
	if !f.Since.IsZero() {
		// Round up, so that an event stored at the truncated
		// microsecond but earlier than Since is not included.
		since := f.Since.UTC()
		if t := since.Truncate(time.Microsecond); !t.Equal(since) {
			since = t.Add(time.Microsecond)
		}
		where = append(where, "time >= ?")
		args = append(args, db.timeArg(since))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	q := `SELECT id, time, principal_id, principal_name, action, method, path, scope, status,
		outcome, request_id FROM audit_events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY time DESC, id DESC LIMIT ?"
	args = append(args, limit)
	out, err := queryList(ctx, db.reader(), func(s rowScanner) (*wharf.AuditEvent, error) {
		var e wharf.AuditEvent
		return &e, s.Scan(&e.ID, timeDest{&e.Time}, &e.PrincipalID, &e.PrincipalName, &e.Action,
			&e.Method, &e.Path, &e.Scope, &e.Status, &e.Outcome, &e.RequestID)
	}, q, args...)
	if err != nil {
		return nil, wrapErr("list audit events", err)
	}
	return out, nil
}
