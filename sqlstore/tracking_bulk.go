package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"strconv"

	"github.com/wharfml/wharf"
)

// maxDatasetSummaries bounds SearchDatasets, as MLflow's store does.
const maxDatasetSummaries = 1000

// historyRow scans one metrics row selected as value, is_nan, timestamp,
// step, restoring a NaN.
func historyRow(s interface{ Scan(...any) error }, m *wharf.Metric) error {
	var isNaN bool
	if err := s.Scan(&m.Value, &isNaN, &m.Timestamp, &m.Step); err != nil {
		return err
	}
	if isNaN {
		m.Value = math.NaN()
	}
	return nil
}

// MetricHistoryBulk returns the history of key in those of runIDs that are
// runs of the workspace, ordered by run id, timestamp, step and value, at
// most maxResults values in all, as MLflow's store does for its UI.
func (db *DB) MetricHistoryBulk(ctx context.Context, workspace string, runIDs []string, key string, maxResults int) ([]*wharf.Metric, error) {
	out := []*wharf.Metric{}
	if len(runIDs) == 0 || maxResults <= 0 {
		return out, nil
	}
	args := []any{workspace, key}
	for _, id := range runIDs {
		args = append(args, id)
	}
	args = append(args, maxResults)
	err := eachRow(ctx, db.reader(), `SELECT m.run_id, m.key, m.value, m.is_nan, m.timestamp, m.step
		FROM metrics m JOIN runs r ON r.run_id = m.run_id
		WHERE r.workspace = ? AND m.key = ? AND m.run_id IN (`+sqlMarks(len(runIDs))+`)
		ORDER BY m.run_id, m.timestamp, m.step, m.value, m.is_nan LIMIT ?`, args,
		func(s interface{ Scan(...any) error }) error {
			m, err := scanRunMetric(s)
			if err == nil {
				out = append(out, m)
			}
			return err
		})
	return out, wrapErr("metric history bulk", err)
}

// MetricHistoryBulkInterval samples each run's history of key as MLflow's
// store does: the rows, ordered by step, timestamp and value, are cut into
// maxResults buckets of near-equal size (SQL's NTILE) and the first row of
// each is kept; the last row is then added, or replaces the last kept one
// when maxResults are kept already. Ids that name no run of the workspace add
// nothing, as in MLflow.
func (db *DB) MetricHistoryBulkInterval(ctx context.Context, workspace string, runIDs []string, key string, maxResults int, steps *[2]int64) ([]*wharf.Metric, error) {
	maxResults = max(1, maxResults)
	c := db.reader()
	out := []*wharf.Metric{}
	for _, id := range runIDs {
		var one int
		err := c.queryRow(ctx, `SELECT 1 FROM runs WHERE run_id = ? AND workspace = ?`, id, workspace).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, wrapErr("metric history bulk interval", err)
		}
		where := `m.run_id = ? AND m.key = ?`
		args := []any{id, key}
		if steps != nil {
			where += ` AND m.step >= ? AND m.step <= ?`
			args = append(args, steps[0], steps[1])
		}
		var n int
		if err := c.queryRow(ctx, `SELECT COUNT(*) FROM metrics m WHERE `+where, args...).Scan(&n); err != nil {
			return nil, wrapErr("metric history bulk interval", err)
		}
		if n == 0 {
			continue
		}
		// NTILE(k) over n rows makes the first n mod k buckets one row
		// longer than the others; bucket i starts at row i*q + min(i, r).
		// The rows are read in order once, keeping those that start a
		// bucket and the last.
		k := min(maxResults, n)
		q, r := n/k, n%k
		starts := make(map[int]bool, k)
		for i := range k {
			starts[i*q+min(i, r)] = true
		}
		var rows []*wharf.Metric
		var last *wharf.Metric
		i := 0
		err = eachRow(ctx, c, `SELECT m.value, m.is_nan, m.timestamp, m.step FROM metrics m WHERE `+where+`
			ORDER BY m.step, m.timestamp, m.value, m.is_nan`, args,
			func(s interface{ Scan(...any) error }) error {
				m := &wharf.Metric{Key: key, RunID: id}
				if err := historyRow(s, m); err != nil {
					return err
				}
				if starts[i] {
					rows = append(rows, m)
				}
				last = m
				i++
				return nil
			})
		if err != nil {
			return nil, wrapErr("metric history bulk interval", err)
		}
		if last != nil && (len(rows) == 0 || rows[len(rows)-1] != last) {
			if len(rows) >= maxResults {
				rows[len(rows)-1] = last
			} else {
				rows = append(rows, last)
			}
		}
		out = append(out, rows...)
	}
	return out, nil
}

// SearchDatasets lists the distinct datasets, with the context each was
// used in, of the runs of the workspace's experiments among
// experimentIDs; ids that name no experiment add nothing.
func (db *DB) SearchDatasets(ctx context.Context, workspace string, experimentIDs []string) ([]*wharf.DatasetSummary, error) {
	var exps []any
	for _, id := range experimentIDs {
		if n, ok := loggedModelExperiment(id); ok {
			exps = append(exps, n)
		}
	}
	out := []*wharf.DatasetSummary{}
	if len(exps) == 0 {
		return out, nil
	}
	err := eachRow(ctx, db.reader(), `SELECT DISTINCT r.experiment_id, i.name, i.digest, i.context
		FROM run_inputs i JOIN runs r ON r.run_id = i.run_id
		WHERE r.workspace = ? AND r.experiment_id IN (`+sqlMarks(len(exps))+`)
		ORDER BY r.experiment_id, i.name, i.digest, i.context LIMIT ?`,
		append(append([]any{workspace}, exps...), maxDatasetSummaries),
		func(s interface{ Scan(...any) error }) error {
			var exp int64
			var dataContext sql.NullString
			d := &wharf.DatasetSummary{}
			if err := s.Scan(&exp, &d.Name, &d.Digest, &dataContext); err != nil {
				return err
			}
			d.ExperimentID = strconv.FormatInt(exp, 10)
			d.Context, d.HasContext = dataContext.String, dataContext.Valid
			out = append(out, d)
			return nil
		})
	return out, wrapErr("search datasets", err)
}
