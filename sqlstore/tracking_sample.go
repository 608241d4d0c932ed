package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/wharfml/wharf"
)

// MetricHistorySample reads a key's history for a chart at a cost that
// does not grow with its length. A history of at most exact values is read
// whole. A longer one is sampled through the metrics key's order (run,
// key, step, timestamp): its first and last values, and between them the
// first value at or after each of n-2 evenly spaced steps (or, when every
// value has the same step, evenly spaced timestamps), each found by an
// index seek.
func (db *DB) MetricHistorySample(ctx context.Context, workspace, runID, key string, n, exact int) (*wharf.MetricSample, error) {
	c := db.reader()
	var one int
	err := c.queryRow(ctx, `SELECT 1 FROM runs WHERE run_id = ? AND workspace = ?`, runID, workspace).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "run %q not found", runID)
	} else if err != nil {
		return nil, wrapErr("metric history sample", err)
	}
	n, exact = max(n, 2), max(exact, n)
	out := &wharf.MetricSample{Points: []*wharf.Metric{}}
	var count int
	if err := c.queryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM metrics WHERE run_id = ? AND key = ? LIMIT ?) h`,
		runID, key, exact+1).Scan(&count); err != nil {
		return nil, wrapErr("metric history sample", err)
	}
	if count <= exact {
		err := eachRow(ctx, c, `SELECT value, is_nan, timestamp, step FROM metrics WHERE run_id = ? AND key = ?
			ORDER BY step, timestamp, value, is_nan`, []any{runID, key}, func(s interface{ Scan(...any) error }) error {
			m := &wharf.Metric{Key: key, RunID: runID}
			if err := historyRow(s, m); err != nil {
				return err
			}
			out.Points = append(out.Points, m)
			return nil
		})
		out.Exact = true
		return out, wrapErr("metric history sample", err)
	}
	seek := func(q string, args ...any) (*wharf.Metric, error) {
		m := &wharf.Metric{Key: key, RunID: runID}
		err := historyRow(c.queryRow(ctx, `SELECT value, is_nan, timestamp, step FROM metrics WHERE run_id = ? AND key = ? `+q+` LIMIT 1`,
			append([]any{runID, key}, args...)...), m)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		return m, err
	}
	first, err := seek(`ORDER BY step, timestamp, value, is_nan`)
	if err != nil || first == nil {
		return out, wrapErr("metric history sample", err)
	}
	last, err := seek(`ORDER BY step DESC, timestamp DESC, value DESC, is_nan DESC`)
	if err != nil {
		return nil, wrapErr("metric history sample", err)
	}
	// One statement seeks every position, so that the cost is the
	// engine's index seeks and not a round trip each; CROSS JOIN keeps
	// SQLite from reading the history to probe the positions instead.
	var q string
	var args []any
	if first.Step < last.Step {
		q = `WITH RECURSIVE pos(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM pos WHERE i < CAST(? AS BIGINT)),
			at(s) AS (SELECT DISTINCT (SELECT step FROM metrics WHERE run_id = ? AND key = ?
				AND step >= CAST(? AS BIGINT) + CAST(? AS BIGINT) * i / CAST(? AS BIGINT) ORDER BY step LIMIT 1) FROM pos)
			SELECT m.value, m.is_nan, m.timestamp, m.step FROM at CROSS JOIN metrics m WHERE m.run_id = ? AND m.key = ? AND m.step = at.s
				AND m.timestamp = (SELECT MIN(timestamp) FROM metrics WHERE run_id = ? AND key = ? AND step = at.s)
			ORDER BY m.step, m.timestamp, m.value, m.is_nan`
		args = []any{n - 2, runID, key, first.Step, last.Step - first.Step, n - 1, runID, key, runID, key}
	} else {
		q = `WITH RECURSIVE pos(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM pos WHERE i < CAST(? AS BIGINT)),
			at(t) AS (SELECT DISTINCT (SELECT timestamp FROM metrics WHERE run_id = ? AND key = ? AND step = ?
				AND timestamp >= CAST(? AS BIGINT) + CAST(? AS BIGINT) * i / CAST(? AS BIGINT) ORDER BY timestamp LIMIT 1) FROM pos)
			SELECT m.value, m.is_nan, m.timestamp, m.step FROM at CROSS JOIN metrics m WHERE m.run_id = ? AND m.key = ? AND m.step = ? AND m.timestamp = at.t
			ORDER BY m.step, m.timestamp, m.value, m.is_nan`
		args = []any{n - 2, runID, key, first.Step, first.Timestamp, last.Timestamp - first.Timestamp, n - 1, runID, key, first.Step}
	}
	out.Points = append(out.Points, first)
	prev := first
	err = eachRow(ctx, c, q, args, func(s interface{ Scan(...any) error }) error {
		m := &wharf.Metric{Key: key, RunID: runID}
		if err := historyRow(s, m); err != nil {
			return err
		}
		// One value per position: the first of those logged at once.
		if (m.Step == prev.Step && m.Timestamp == prev.Timestamp) || (m.Step == last.Step && m.Timestamp == last.Timestamp) {
			return nil
		}
		out.Points = append(out.Points, m)
		prev = m
		return nil
	})
	if err != nil {
		return nil, wrapErr("metric history sample", err)
	}
	out.Points = append(out.Points, last)
	return out, nil
}
