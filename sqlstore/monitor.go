package sqlstore

import (
	"context"
	"database/sql"
	"math"
	"time"

	"github.com/wharfml/wharf"
)

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func msOrNil(ms int64) *time.Time {
	if ms == 0 {
		return nil
	}
	t := msTime(ms)
	return &t
}

func msOf(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.UnixMilli()
}

// RecordMonitorRun stores a run's results and alerts in one transaction.
func (db *DB) RecordMonitorRun(ctx context.Context, run *wharf.MonitorRun, alerts []*wharf.MonitorAlert) error {
	if run.Time.IsZero() {
		run.Time = db.now()
	}
	err := db.inTx(ctx, func(c conn) error {
		var n int
		if err := c.queryRow(ctx, `SELECT COUNT(*) FROM monitor_alerts WHERE workspace = ? AND job = ?`, run.Workspace, run.Job).Scan(&n); err != nil {
			return err
		}
		var m int
		if err := c.queryRow(ctx, `SELECT COUNT(*) FROM monitor_results WHERE workspace = ? AND job = ?`, run.Workspace, run.Job).Scan(&m); err != nil {
			return err
		}
		if n+m > 0 {
			return wharf.Errorf(wharf.ECONFLICT, "monitor job %s has already recorded its results", run.Job)
		}
		for _, r := range run.Results {
			var value any = r.Value
			if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
				value = nil
			}
			if _, err := c.exec(ctx, `INSERT INTO monitor_results (workspace, schedule, job, time, signal, signal_type, feature,
				data_type, metric, value, threshold, direction, passed, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				run.Workspace, run.Schedule, run.Job, run.Time.UnixMilli(), r.Signal, r.SignalType, r.Feature, r.DataType,
				r.Metric, value, r.Threshold, r.Direction, r.Passed, r.Detail); err != nil {
				if db.isUnique(err) {
					return wharf.Errorf(wharf.EINVALID, "signal %s lists metric %s of feature %q twice", r.Signal, r.Metric, r.Feature)
				}
				return err
			}
		}
		now := db.now()
		for _, a := range alerts {
			a.Workspace, a.Job, a.Schedule = run.Workspace, run.Job, run.Schedule
			a.CreatedAt = now
			if a.NextAttempt.IsZero() {
				a.NextAttempt = now
			}
			if err := c.queryRow(ctx, `INSERT INTO monitor_alerts (workspace, schedule, job, signal, channel, target, secret,
				subject, body, attempts, next_attempt, delivered_at, failed_at, last_error, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0, 0, '', ?) RETURNING id`,
				a.Workspace, a.Schedule, a.Job, a.Signal, a.Channel, a.Target, a.Secret, a.Subject, a.Body,
				a.NextAttempt.UnixMilli(), now.UnixMilli()).Scan(&a.ID); err != nil {
				if db.isUnique(err) {
					return wharf.Errorf(wharf.ECONFLICT, "alert of signal %s to %s is already recorded for job %s", a.Signal, a.Target, a.Job)
				}
				return err
			}
		}
		return nil
	})
	return wrapErr("record monitor run", err)
}

const monitorResultColumns = `job, time, signal, signal_type, feature, data_type, metric, value, threshold, direction, passed, detail`

func scanMonitorResult(s rowScanner) (job string, t int64, r wharf.MonitorResult, err error) {
	var value sql.NullFloat64
	err = s.Scan(&job, &t, &r.Signal, &r.SignalType, &r.Feature, &r.DataType, &r.Metric, &value, &r.Threshold,
		&r.Direction, &r.Passed, &r.Detail)
	r.Value = math.NaN()
	if value.Valid {
		r.Value = value.Float64
	}
	return
}

// JobMonitorResults returns one monitor job's results by signal, feature
// and metric.
func (db *DB) JobMonitorResults(ctx context.Context, workspace, job string) ([]wharf.MonitorResult, error) {
	out, err := queryList(ctx, db.reader(), func(s rowScanner) (wharf.MonitorResult, error) {
		_, _, r, err := scanMonitorResult(s)
		return r, err
	}, `SELECT `+monitorResultColumns+` FROM monitor_results
		WHERE workspace = ? AND job = ? ORDER BY signal, feature, metric`, workspace, job)
	return out, wrapErr("job monitor results", err)
}

// MonitorHistory returns a monitor's runs, newest first.
func (db *DB) MonitorHistory(ctx context.Context, workspace, schedule, signal string, limit int) ([]*wharf.MonitorRun, error) {
	if limit <= 0 {
		limit = 100
	}
	// The newest runs first, then their results.
	out, err := queryList(ctx, db.reader(), func(s rowScanner) (*wharf.MonitorRun, error) {
		run := &wharf.MonitorRun{Workspace: workspace, Schedule: schedule, Results: []wharf.MonitorResult{}}
		var t int64
		err := s.Scan(&run.Job, &t)
		run.Time = msTime(t)
		return run, err
	}, `SELECT job, MAX(time) FROM monitor_results WHERE workspace = ? AND schedule = ?
		GROUP BY job ORDER BY MAX(time) DESC, job DESC LIMIT ?`, workspace, schedule, limit)
	if err != nil {
		return nil, wrapErr("monitor history", err)
	}
	byJob := make(map[string]*wharf.MonitorRun, len(out))
	for _, run := range out {
		byJob[run.Job] = run
	}
	if len(out) == 0 {
		return out, nil
	}
	oldest := out[len(out)-1].Time.UnixMilli()
	q := `SELECT ` + monitorResultColumns + ` FROM monitor_results WHERE workspace = ? AND schedule = ? AND time >= ?`
	args := []any{workspace, schedule, oldest}
	if signal != "" {
		q += ` AND signal = ?`
		args = append(args, signal)
	}
	err = eachRow(ctx, db.reader(), q+` ORDER BY signal, feature, metric`, args, func(s rowScanner) error {
		job, _, r, err := scanMonitorResult(s)
		if err != nil {
			return err
		}
		if run := byJob[job]; run != nil {
			run.Results = append(run.Results, r)
		}
		return nil
	})
	if err != nil {
		return nil, wrapErr("monitor history", err)
	}
	return out, nil
}

const alertColumns = `id, workspace, schedule, job, signal, channel, target, secret, subject, body, attempts, next_attempt,
	delivered_at, failed_at, last_error, created_at`

func scanAlert(s rowScanner) (*wharf.MonitorAlert, error) {
	var a wharf.MonitorAlert
	var next, delivered, failed, created int64
	err := s.Scan(&a.ID, &a.Workspace, &a.Schedule, &a.Job, &a.Signal, &a.Channel, &a.Target, &a.Secret, &a.Subject,
		&a.Body, &a.Attempts, &next, &delivered, &failed, &a.LastError, &created)
	a.NextAttempt, a.DeliveredAt, a.FailedAt, a.CreatedAt = msTime(next), msOrNil(delivered), msOrNil(failed), msTime(created)
	return &a, err
}

// DueAlerts returns the alerts to try now.
func (db *DB) DueAlerts(ctx context.Context, now time.Time, limit int) ([]*wharf.MonitorAlert, error) {
	out, err := queryList(ctx, db.reader(), scanAlert, `SELECT `+alertColumns+` FROM monitor_alerts
		WHERE delivered_at = 0 AND failed_at = 0 AND next_attempt <= ? ORDER BY next_attempt, id LIMIT ?`, now.UnixMilli(), limit)
	return out, wrapErr("due alerts", err)
}

// RecordAlertDelivery records one attempt and the alert's state after it.
func (db *DB) RecordAlertDelivery(ctx context.Context, a *wharf.MonitorAlert, d *wharf.AlertDelivery) error {
	err := db.inTx(ctx, func(c conn) error {
		err := mustChange(ctx, c, wharf.Errorf(wharf.ECONFLICT, "alert %d is already delivered or gone", a.ID),
			`UPDATE monitor_alerts SET attempts = ?, next_attempt = ?, delivered_at = ?, failed_at = ?, last_error = ?
			WHERE id = ? AND delivered_at = 0`, a.Attempts, a.NextAttempt.UnixMilli(), msOf(a.DeliveredAt), msOf(a.FailedAt), a.LastError, a.ID)
		if err != nil {
			return err
		}
		_, err = c.exec(ctx, `INSERT INTO monitor_alert_deliveries (alert_id, attempt, time, status, error) VALUES (?, ?, ?, ?, ?)`,
			d.AlertID, d.Attempt, d.Time.UnixMilli(), d.Status, d.Error)
		return err
	})
	return wrapErr("record alert delivery", err)
}

// ListAlerts returns a monitor's alerts, newest first, and their
// deliveries.
func (db *DB) ListAlerts(ctx context.Context, workspace, schedule string) ([]*wharf.MonitorAlert, []*wharf.AlertDelivery, error) {
	c := db.reader()
	alerts, err := queryList(ctx, c, scanAlert, `SELECT `+alertColumns+` FROM monitor_alerts WHERE workspace = ? AND schedule = ?
		ORDER BY created_at DESC, id DESC`, workspace, schedule)
	if err != nil {
		return nil, nil, wrapErr("list alerts", err)
	}
	deliveries, err := queryList(ctx, c, func(s rowScanner) (*wharf.AlertDelivery, error) {
		var d wharf.AlertDelivery
		var t int64
		err := s.Scan(&d.AlertID, &d.Attempt, &t, &d.Status, &d.Error)
		d.Time = msTime(t)
		return &d, err
	}, `SELECT d.alert_id, d.attempt, d.time, d.status, d.error FROM monitor_alert_deliveries d
		JOIN monitor_alerts a ON a.id = d.alert_id WHERE a.workspace = ? AND a.schedule = ? ORDER BY d.alert_id, d.attempt`, workspace, schedule)
	if err != nil {
		return nil, nil, wrapErr("list alerts", err)
	}
	return alerts, deliveries, nil
}
