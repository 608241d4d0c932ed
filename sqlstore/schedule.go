package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wharfml/wharf"
)

func scheduleNextRun(s *wharf.Schedule) int64 {
	if s.NextRun == nil {
		return 0
	}
	return s.NextRun.UnixMilli()
}

// PutSchedule creates or replaces a schedule.
func (db *DB) PutSchedule(ctx context.Context, s *wharf.Schedule) (bool, error) {
	if err := wharf.ValidateName("name", s.Name); err != nil {
		return false, err
	}
	if s.Tags == nil {
		s.Tags = map[string]string{}
	}
	var created bool
	err := db.inTx(ctx, func(c conn) error {
		if err := mustWorkspace(ctx, c, s.Workspace); err != nil {
			return err
		}
		var old string
		err := c.queryRow(ctx, `SELECT doc FROM schedules WHERE workspace = ? AND name = ?`, s.Workspace, s.Name).Scan(&old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			if s.CreatedAt.IsZero() {
				s.CreatedAt = db.now()
			}
		case err != nil:
			return err
		default:
			var prev wharf.Schedule
			if err := json.Unmarshal([]byte(old), &prev); err == nil {
				s.CreatedAt, s.CreatedBy = prev.CreatedAt, prev.CreatedBy
				s.LastRun, s.LastJob = prev.LastRun, prev.LastJob
			}
		}
		doc, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if created {
			_, err = c.exec(ctx, `INSERT INTO schedules (workspace, name, enabled, next_run, doc) VALUES (?, ?, ?, ?, ?)`,
				s.Workspace, s.Name, s.Enabled, scheduleNextRun(s), string(doc))
		} else {
			_, err = c.exec(ctx, `UPDATE schedules SET enabled = ?, next_run = ?, doc = ? WHERE workspace = ? AND name = ?`,
				s.Enabled, scheduleNextRun(s), string(doc), s.Workspace, s.Name)
		}
		return err
	})
	return created, wrapErr("put schedule", err)
}

// FindSchedule returns one schedule.
func (db *DB) FindSchedule(ctx context.Context, workspace, name string) (*wharf.Schedule, error) {
	s, err := scanSchedule(db.reader().queryRow(ctx, `SELECT workspace, doc FROM schedules WHERE workspace = ? AND name = ?`, workspace, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "schedule %q not found in workspace %q", name, workspace)
	}
	return s, wrapErr("find schedule", err)
}

// ListSchedules returns a workspace's schedules by name.
func (db *DB) ListSchedules(ctx context.Context, workspace string) ([]*wharf.Schedule, error) {
	c := db.reader()
	out, err := querySchedules(ctx, c, `SELECT workspace, doc FROM schedules WHERE workspace = ? ORDER BY name`, workspace)
	if err == nil && len(out) == 0 {
		err = mustWorkspace(ctx, c, workspace)
	}
	return out, wrapErr("list schedules", err)
}

// DeleteSchedule removes a schedule.
func (db *DB) DeleteSchedule(ctx context.Context, workspace, name string) error {
	return wrapErr("delete schedule", mustChange(ctx, db.writer(), wharf.Errorf(wharf.ENOTFOUND, "schedule %q not found in workspace %q", name, workspace),
		`DELETE FROM schedules WHERE workspace = ? AND name = ?`, workspace, name))
}

// DueSchedules returns the enabled schedules due at now.
func (db *DB) DueSchedules(ctx context.Context, now time.Time) ([]*wharf.Schedule, error) {
	out, err := querySchedules(ctx, db.reader(), `SELECT workspace, doc FROM schedules
		WHERE enabled = ? AND next_run > 0 AND next_run <= ? ORDER BY next_run`, true, now.UnixMilli())
	return out, wrapErr("due schedules", err)
}

// UpdateSchedule is a read-modify-write of one schedule.
func (db *DB) UpdateSchedule(ctx context.Context, workspace, name string, fn func(s *wharf.Schedule) error) (*wharf.Schedule, error) {
	var out *wharf.Schedule
	err := db.inTx(ctx, func(c conn) error {
		err := mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "schedule %q not found in workspace %q", name, workspace),
			`UPDATE schedules SET next_run = next_run WHERE workspace = ? AND name = ?`, workspace, name)
		if err != nil {
			return err
		}
		s, err := scanSchedule(c.queryRow(ctx, `SELECT workspace, doc FROM schedules WHERE workspace = ? AND name = ?`, workspace, name))
		if err != nil {
			return err
		}
		if err := fn(s); err != nil {
			return err
		}
		if s.Name != name || s.Workspace != workspace {
			return fmt.Errorf("sqlstore: UpdateSchedule may not rename schedule %s", name)
		}
		doc, err := json.Marshal(s)
		if err != nil {
			return err
		}
		_, err = c.exec(ctx, `UPDATE schedules SET enabled = ?, next_run = ?, doc = ? WHERE workspace = ? AND name = ?`,
			s.Enabled, scheduleNextRun(s), string(doc), workspace, name)
		out = s
		return err
	})
	if err != nil {
		return nil, wrapErr("update schedule", err)
	}
	return out, nil
}

func querySchedules(ctx context.Context, c conn, q string, args ...any) ([]*wharf.Schedule, error) {
	return queryList(ctx, c, scanSchedule, q, args...)
}

func scanSchedule(row interface{ Scan(...any) error }) (*wharf.Schedule, error) {
	var ws, doc string
	if err := row.Scan(&ws, &doc); err != nil {
		return nil, err
	}
	var s wharf.Schedule
	if err := json.Unmarshal([]byte(doc), &s); err != nil {
		return nil, fmt.Errorf("decode schedule: %w", err)
	}
	s.Workspace = ws
	return &s, nil
}
