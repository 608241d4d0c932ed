package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// DefaultAuditLimit is how many events ListAuditEvents returns when the
// filter sets no limit.
const DefaultAuditLimit = 100

// RecordAuditEvent appends e and sets its ID. A zero Time is set to now;
// any other is kept at the store's microsecond precision.
func (db *DB) RecordAuditEvent(ctx context.Context, e *wharf.AuditEvent) error {
	t := normTime(e.Time)
	if e.Time.IsZero() {
		t = db.now()
	}
	var id int64
	err := db.writer().queryRow(ctx, `INSERT INTO audit_events
		(time, principal_id, principal_name, action, method, path, scope, status, outcome, request_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		db.timeArg(t), e.PrincipalID, e.PrincipalName, e.Action, e.Method, e.Path, e.Scope,
		e.Status, e.Outcome, e.RequestID).Scan(&id)
	if err != nil {
		return wrapErr("record audit event", err)
	}
	e.ID, e.Time = id, t
	return nil
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
