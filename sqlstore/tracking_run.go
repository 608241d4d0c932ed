package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/wharfml/wharf"
)

// MLflow's limits on one LogBatch request.
const (
	maxBatchMetrics = 1000
	maxBatchParams  = 100
	maxBatchTags    = 100
	maxBatchEntries = 1000
)

// Tags MLflow gives meaning to.
const (
	runNameTag     = "mlflow.runName"
	datasetContext = "mlflow.data.context"
)

const runColumns = `run_id, workspace, experiment_id, name, user_id, status, start_time, end_time,
	artifact_uri, lifecycle_stage`

// qualifiedColumns qualifies a column list by a table alias, for queries
// that join other tables.
func qualifiedColumns(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

var runStatuses = []string{wharf.RunRunning, wharf.RunScheduled, wharf.RunFinished, wharf.RunFailed, wharf.RunKilled}

func runNotFound(id string) error {
	return wharf.Errorf(wharf.ENOTFOUND, "Run with id=%s not found", id)
}

func runNotActive(id, stage string) error {
	return wharf.Errorf(wharf.EINVALID, "The run %s must be in the 'active' state. Current state is %s.", id, stage)
}

func validateRunStatus(status string) error {
	if !slices.Contains(runStatuses, status) {
		return wharf.Errorf(wharf.EINVALID, "Invalid run status '%s'. Valid values are %s",
			status, strings.Join(runStatuses, ", "))
	}
	return nil
}

func validateRunTag(key, value string) error {
	if err := validateEntityKey("Tag key", key); err != nil {
		return err
	}
	return validateEntityLength("Tag value", value, maxTagValueLength)
}

// newRunID returns 32 random lowercase hex characters, the form of MLflow
// run ids.
func newRunID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("sqlstore: run id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// CreateRun stores r in its experiment, which must exist and be active. It
// assigns the ID and artifact URI, defaults the status to RUNNING and the
// start time to now, and names the run (generating a name when neither
// Name nor the mlflow.runName tag gives one), mirroring the name into that
// tag.
func (db *DB) CreateRun(ctx context.Context, r *wharf.Run) error {
	expID, ok := parseExperimentID(r.ExperimentID)
	if !ok {
		return experimentNotFound(r.ExperimentID)
	}
	tags := make(map[string]string, len(r.Tags)+1)
	for k, v := range r.Tags {
		if err := validateRunTag(k, v); err != nil {
			return err
		}
		tags[k] = v
	}
	name := r.Name
	if tagged := tags[runNameTag]; tagged != "" {
		if name != "" && name != tagged {
			return wharf.Errorf(wharf.EINVALID, "Both 'run_name' argument and 'mlflow.runName' tag are specified, "+
				"but with different values (run_name='%s', mlflow.runName='%s').", name, tagged)
		}
		name = tagged
	}
	if name == "" {
		name = generateRunName()
	}
	if err := validateEntityLength("Run name", name, maxTagValueLength); err != nil {
		return err
	}
	tags[runNameTag] = name
	status := r.Status
	if status == "" {
		status = wharf.RunRunning
	}
	if err := validateRunStatus(status); err != nil {
		return err
	}
	start := r.StartTime
	if start == 0 {
		start = db.now().UnixMilli()
	}
	id, err := newRunID()
	if err != nil {
		return err
	}
	var artifactURI string
	err = db.inTx(ctx, func(c conn) error {
		if expID == 0 {
			if _, err := db.insertDefaultExperiment(ctx, c, r.Workspace); err != nil {
				return err
			}
		}
		var location, stage string
		err := c.queryRow(ctx, `SELECT artifact_location, lifecycle_stage FROM experiments
			WHERE workspace = ? AND experiment_id = ?`, r.Workspace, expID).Scan(&location, &stage)
		if errors.Is(err, sql.ErrNoRows) {
			return experimentNotFound(r.ExperimentID)
		}
		if err != nil {
			return err
		}
		if stage != wharf.LifecycleActive {
			return experimentNotActive(r.ExperimentID, stage)
		}
		artifactURI = strings.TrimRight(location, "/") + "/" + id + "/artifacts"
		if _, err := c.exec(ctx, `INSERT INTO runs (`+runColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, r.Workspace, expID, name, r.UserID, status, start, nullTime(r.EndTime),
			artifactURI, wharf.LifecycleActive); err != nil {
			return err
		}
		return upsertRunTags(ctx, c, r.Workspace, expID, id, tags)
	})
	if err != nil {
		return wrapErr("create run", err)
	}
	r.ID = id
	r.Name = name
	r.Status = status
	r.StartTime = start
	r.ArtifactURI = artifactURI
	r.LifecycleStage = wharf.LifecycleActive
	r.Tags = tags
	if r.Params == nil {
		r.Params = map[string]string{}
	}
	return nil
}

// nullTime stores an unset (zero) time as NULL.
func nullTime(ms int64) sql.NullInt64 {
	return sql.NullInt64{Int64: ms, Valid: ms != 0}
}

// FindRun returns the run with its params, tags, latest metrics, inputs
// (the logged models it used among them) and outputs. A run of another
// workspace is not found.
func (db *DB) FindRun(ctx context.Context, workspace, runID string) (*wharf.Run, error) {
	c := db.reader()
	r, err := findRun(ctx, c, workspace, runID)
	if err == nil {
		err = eachRow(ctx, c, `SELECT model_id FROM run_model_inputs WHERE run_id = ? ORDER BY model_id`,
			[]any{runID}, func(s interface{ Scan(...any) error }) error {
				in := &wharf.ModelInput{}
				r.ModelInputs = append(r.ModelInputs, in)
				return s.Scan(&in.ModelID)
			})
	}
	if err != nil {
		return nil, wrapErr("find run", err)
	}
	return r, nil
}

func findRun(ctx context.Context, c conn, workspace, runID string) (*wharf.Run, error) {
	r, err := scanRun(c.queryRow(ctx, `SELECT `+runColumns+` FROM runs
		WHERE run_id = ? AND workspace = ?`, runID, workspace))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, runNotFound(runID)
	}
	if err != nil {
		return nil, err
	}
	if err := loadRunData(ctx, c, []*wharf.Run{r}); err != nil {
		return nil, err
	}
	return r, nil
}

// UpdateRun sets the status, end time and name of an active run, each
// only when given, and returns the run. A new name is mirrored into the
// mlflow.runName tag.
func (db *DB) UpdateRun(ctx context.Context, workspace, runID, status string, endTime int64, name string) (*wharf.Run, error) {
	if status != "" {
		if err := validateRunStatus(status); err != nil {
			return nil, err
		}
	}
	if name != "" {
		if err := validateEntityLength("Run name", name, maxTagValueLength); err != nil {
			return nil, err
		}
	}
	var r *wharf.Run
	err := db.inTx(ctx, func(c conn) error {
		expID, err := activeRun(ctx, c, workspace, runID)
		if err != nil {
			return err
		}
		if status != "" {
			if _, err := c.exec(ctx, `UPDATE runs SET status = ? WHERE run_id = ?`, status, runID); err != nil {
				return err
			}
		}
		if endTime != 0 {
			if _, err := c.exec(ctx, `UPDATE runs SET end_time = ? WHERE run_id = ?`, endTime, runID); err != nil {
				return err
			}
		}
		if name != "" {
			if err := renameRun(ctx, c, workspace, expID, runID, name); err != nil {
				return err
			}
		}
		r, err = findRun(ctx, c, workspace, runID)
		return err
	})
	if err != nil {
		return nil, wrapErr("update run", err)
	}
	return r, nil
}

// renameRun sets the run's name and its mlflow.runName tag, which MLflow
// keeps equal.
func renameRun(ctx context.Context, c conn, workspace string, expID int64, runID, name string) error {
	if _, err := c.exec(ctx, `UPDATE runs SET name = ? WHERE run_id = ?`, name, runID); err != nil {
		return err
	}
	return upsertRunTags(ctx, c, workspace, expID, runID, map[string]string{runNameTag: name})
}

// SetRunLifecycle deletes (softly) or restores a run.
func (db *DB) SetRunLifecycle(ctx context.Context, workspace, runID, stage string) error {
	if stage != wharf.LifecycleActive && stage != wharf.LifecycleDeleted {
		return wharf.Errorf(wharf.EINVALID, "Invalid lifecycle stage '%s'", stage)
	}
	return wrapErr("set run lifecycle", mustChange(ctx, db.writer(), runNotFound(runID),
		`UPDATE runs SET lifecycle_stage = ?
		WHERE run_id = ? AND workspace = ?`, stage, runID, workspace))
}

// activeRun fails unless the run exists in the workspace and is active,
// since only active runs take writes, and returns the run's experiment.
func activeRun(ctx context.Context, c conn, workspace, runID string) (int64, error) {
	var stage string
	var expID int64
	err := c.queryRow(ctx, `SELECT lifecycle_stage, experiment_id FROM runs WHERE run_id = ? AND workspace = ?`,
		runID, workspace).Scan(&stage, &expID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, runNotFound(runID)
	}
	if err != nil {
		return 0, err
	}
	if stage != wharf.LifecycleActive {
		return 0, runNotActive(runID, stage)
	}
	return expID, nil
}

// LogBatch writes metrics, params and tags to an active run in one
// transaction, each kind with one multi-row statement: params are written
// once (the same value again is a no-op, another value fails the whole
// batch), tags overwrite, and metrics append to the history and advance
// the run's latest values.
func (db *DB) LogBatch(ctx context.Context, workspace, runID string, metrics []*wharf.Metric, params []*wharf.Param, tags map[string]string) error {
	params, err := validateBatch(metrics, params, tags)
	if err != nil {
		return err
	}
	var writes *metricWrites
	if len(metrics) > 0 {
		if writes, err = db.metricWrites(ctx); err != nil {
			return wrapErr("log batch", err)
		}
	}
	err = db.inTx(ctx, func(c conn) error {
		expID, err := activeRun(ctx, c, workspace, runID)
		if err != nil {
			return err
		}
		if err := logParams(ctx, c, workspace, expID, runID, params); err != nil {
			return err
		}
		if err := logMetrics(ctx, c, writes, workspace, expID, runID, metrics); err != nil {
			return err
		}
		if err := logModelMetrics(ctx, c, workspace, expID, runID, metrics); err != nil {
			return err
		}
		if err := upsertRunTags(ctx, c, workspace, expID, runID, tags); err != nil {
			return err
		}
		if name, ok := tags[runNameTag]; ok {
			_, err := c.exec(ctx, `UPDATE runs SET name = ? WHERE run_id = ?`, name, runID)
			return err
		}
		return nil
	})
	if db.isForeignKey(err) {
		// The run went with its workspace while the batch was written.
		return runNotFound(runID)
	}
	return wrapErr("log batch", err)
}

// validateBatch checks a batch against MLflow's limits and returns its
// params with repeats of the same key and value dropped; repeats with
// different values are EINVALID.
func validateBatch(metrics []*wharf.Metric, params []*wharf.Param, tags map[string]string) ([]*wharf.Param, error) {
	for _, l := range []struct {
		what     string
		n, limit int
	}{
		{"metrics", len(metrics), maxBatchMetrics},
		{"params", len(params), maxBatchParams},
		{"tags", len(tags), maxBatchTags},
	} {
		if l.n > l.limit {
			return nil, wharf.Errorf(wharf.EINVALID, "A batch logging request can contain at most %d %s. "+
				"Got %d %s. Please split up %s across multiple requests and try again.",
				l.limit, l.what, l.n, l.what, l.what)
		}
	}
	if n := len(metrics) + len(params) + len(tags); n > maxBatchEntries {
		return nil, wharf.Errorf(wharf.EINVALID, "A batch logging request can contain at most %d total "+
			"metrics, params, and tags. Got %d metrics, %d params, and %d tags. Please split up data across "+
			"multiple requests and try again.", maxBatchEntries, len(metrics), len(params), len(tags))
	}
	for _, m := range metrics {
		if m == nil {
			return nil, wharf.Errorf(wharf.EINVALID, "Metric must not be null")
		}
		if err := validateEntityKey("Metric name", m.Key); err != nil {
			return nil, err
		}
	}
	seen := make(map[string]string, len(params))
	out := make([]*wharf.Param, 0, len(params))
	var dupes []string
	for _, p := range params {
		if p == nil {
			return nil, wharf.Errorf(wharf.EINVALID, "Param must not be null")
		}
		if err := validateEntityKey("Param key", p.Key); err != nil {
			return nil, err
		}
		if err := validateEntityLength("Param value", p.Value, maxParamValueLength); err != nil {
			return nil, err
		}
		if prev, ok := seen[p.Key]; ok {
			if prev != p.Value && !slices.Contains(dupes, p.Key) {
				dupes = append(dupes, p.Key)
			}
			continue
		}
		seen[p.Key] = p.Value
		out = append(out, p)
	}
	if len(dupes) > 0 {
		return nil, wharf.Errorf(wharf.EINVALID, "Duplicate parameter keys have been submitted with different values: "+
			"['%s']. Please ensure the request contains only one param value per param key.",
			strings.Join(dupes, "', '"))
	}
	for k, v := range tags {
		if err := validateRunTag(k, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// logParams inserts params that are new and checks the others: only when
// the insert skipped some does it read their stored values, so a batch of
// new params costs one statement.
func logParams(ctx context.Context, c conn, workspace string, expID int64, runID string, params []*wharf.Param) error {
	if len(params) == 0 {
		return nil
	}
	sorted := slices.Clone(params)
	slices.SortFunc(sorted, func(a, b *wharf.Param) int { return strings.Compare(a.Key, b.Key) })
	args := make([]any, 0, 5*len(sorted))
	keys := make([]any, 0, len(sorted))
	for _, p := range sorted {
		args = append(args, runID, workspace, expID, p.Key, p.Value)
		keys = append(keys, p.Key)
	}
	res, err := c.exec(ctx, `INSERT INTO params (run_id, workspace, experiment_id, key, value)
		VALUES `+sqlRows(len(sorted), 5)+`
		ON CONFLICT (run_id, key) DO NOTHING`, args...)
	if err != nil {
		return err
	}
	n, err := rowsAffected(res)
	if err != nil || int(n) == len(sorted) {
		return err
	}
	stored := make(map[string]string, len(keys))
	err = eachRow(ctx, c, `SELECT key, value FROM params WHERE run_id = ? AND key IN (`+sqlMarks(len(keys))+`)`,
		append([]any{runID}, keys...), func(s rowScanner) error {
			var k, v string
			if err := s.Scan(&k, &v); err != nil {
				return err
			}
			stored[k] = v
			return nil
		})
	if err != nil {
		return err
	}
	for _, p := range params {
		if old, ok := stored[p.Key]; ok && old != p.Value {
			return wharf.Errorf(wharf.EINVALID, "Changing param values is not allowed. Param with key='%s' was "+
				"already logged with value='%s' for run ID='%s'. Attempted logging new value '%s'.",
				p.Key, old, runID, p.Value)
		}
	}
	return nil
}

// storedMetricValue returns the value and NaN flag a metric is stored as:
// NaN becomes 0 with the flag set, since SQLite cannot store NaN.
func storedMetricValue(v float64) (float64, bool) {
	if math.IsNaN(v) {
		return 0, true
	}
	return v, false
}

// metricNewer reports whether a replaces b as the latest value of a
// metric: higher step, then later timestamp, then larger value, MLflow's
// order, in which any number beats NaN.
func metricNewer(a, b *wharf.Metric) bool {
	if a.Step != b.Step {
		return a.Step > b.Step
	}
	if a.Timestamp != b.Timestamp {
		return a.Timestamp > b.Timestamp
	}
	an, bn := math.IsNaN(a.Value), math.IsNaN(b.Value)
	if an || bn {
		return !an && bn
	}
	return a.Value > b.Value
}

// latestMetricNewer is metricNewer in SQL, for the upsert of latest_metrics:
// excluded is the row being logged.
const latestMetricNewer = `excluded.step > latest_metrics.step
	OR (excluded.step = latest_metrics.step AND (excluded.timestamp > latest_metrics.timestamp
		OR (excluded.timestamp = latest_metrics.timestamp AND NOT excluded.is_nan
			AND (latest_metrics.is_nan OR excluded.value > latest_metrics.value))))`

// insertMetricsSQL and upsertLatestMetricsSQL write rows of metric
// history and of latest values.
func insertMetricsSQL(rows int) string {
	return `INSERT INTO metrics (run_id, key, step, timestamp, value, is_nan,
		model_id, dataset_name, dataset_digest) VALUES ` + sqlRows(rows, 9) + `
		ON CONFLICT DO NOTHING`
}

func upsertLatestMetricsSQL(rows int) string {
	return `INSERT INTO latest_metrics (run_id, workspace, experiment_id, key, value,
		is_nan, timestamp, step) VALUES ` + sqlRows(rows, 8) + `
		ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan,
			timestamp = excluded.timestamp, step = excluded.step
		WHERE ` + latestMetricNewer
}

// metricWrites are logMetrics' statements prepared on SQLite, where the
// driver would otherwise compile every batch's statements anew. On
// PostgreSQL pgx keeps prepared statements per connection itself, and
// metricWrites is nil.
type metricWrites struct {
	history, latest *rowStatements
}

// metricWrites returns the prepared statements of logMetrics, nil on
// PostgreSQL; call it before the transaction that uses them.
func (db *DB) metricWrites(ctx context.Context) (*metricWrites, error) {
	if !db.isSQLite() {
		return nil, nil
	}
	history, err := db.rowStatements(ctx, "metrics", insertMetricsSQL)
	if err != nil {
		return nil, err
	}
	latest, err := db.rowStatements(ctx, "latest_metrics", upsertLatestMetricsSQL)
	if err != nil {
		return nil, err
	}
	return &metricWrites{history: history, latest: latest}, nil
}

// logMetrics appends metrics to the history, dropping exact repeats as
// MLflow does, and moves latest_metrics forward: the batch's best value per
// key is computed here, and the upsert keeps whichever of it and the
// stored value is newer. w is metricWrites' statements, nil on PostgreSQL.
func logMetrics(ctx context.Context, c conn, w *metricWrites, workspace string, expID int64, runID string, metrics []*wharf.Metric) error {
	if len(metrics) == 0 {
		return nil
	}
	latest := make(map[string]*wharf.Metric)
	for _, m := range metrics {
		if cur, ok := latest[m.Key]; !ok || metricNewer(m, cur) {
			latest[m.Key] = m
		}
	}
	sorted := slices.Clone(metrics)
	slices.SortStableFunc(sorted, func(a, b *wharf.Metric) int { return strings.Compare(a.Key, b.Key) })
	if err := insertMetrics(ctx, c, w, runID, sorted); err != nil {
		return err
	}
	keys := sortedMapKeys(latest)
	args := make([]any, 0, 8*len(keys))
	for _, k := range keys {
		m := latest[k]
		v, isNaN := storedMetricValue(m.Value)
		args = append(args, runID, workspace, expID, k, v, isNaN, m.Timestamp, m.Step)
	}
	if w != nil {
		return w.latest.exec(ctx, c, 8, args)
	}
	for chunk := range sqlChunks(args, 8*loadChunk) {
		if _, err := c.exec(ctx, upsertLatestMetricsSQL(len(chunk)/8), chunk...); err != nil {
			return err
		}
	}
	return nil
}

// logModelMetrics adds the metrics logged with a model_id to that logged
// model's metrics, as MLflow does: the first value of a (model, key,
// timestamp, step, run) stays, a NaN is stored as 0, and a model_id that
// names no logged model of the workspace records nothing.
func logModelMetrics(ctx context.Context, c conn, workspace string, expID int64, runID string, metrics []*wharf.Metric) error {
	for _, m := range metrics {
		if m.ModelID == "" {
			continue
		}
		v, _ := storedMetricValue(m.Value)
		if _, err := c.exec(ctx, `INSERT INTO logged_model_metrics (workspace, model_id, key, timestamp, step,
			run_id, value, experiment_id, dataset_name, dataset_digest)
			SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS
				(SELECT 1 FROM logged_models WHERE workspace = ? AND model_id = ?)
			ON CONFLICT DO NOTHING`,
			workspace, m.ModelID, m.Key, m.Timestamp, m.Step, runID, v, expID, m.DatasetName, m.DatasetDigest,
			workspace, m.ModelID); err != nil {
			return err
		}
	}
	return nil
}

// insertMetrics appends metrics to the history: on SQLite by w's prepared
// multi-row inserts; on PostgreSQL with one array per column, one
// statement of nine parameters however many metrics, which it parses,
// plans and binds faster than nine parameters per row.
func insertMetrics(ctx context.Context, c conn, w *metricWrites, runID string, metrics []*wharf.Metric) error {
	if w != nil {
		// The run id and each key are boxed once, not once a row: a
		// string put in an interface is an allocation.
		run, key, lastKey := any(runID), any(nil), ""
		args := make([]any, 0, 9*len(metrics))
		for i, m := range metrics {
			if i == 0 || m.Key != lastKey {
				key, lastKey = m.Key, m.Key
			}
			v, isNaN := storedMetricValue(m.Value)
			args = append(args, run, key, m.Step, m.Timestamp, v, isNaN, m.ModelID, m.DatasetName, m.DatasetDigest)
		}
		return w.history.exec(ctx, c, 9, args)
	}
	n := len(metrics)
	keys, models, names, digests := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	steps, times := make([]int64, n), make([]int64, n)
	values, nans := make([]float64, n), make([]bool, n)
	for i, m := range metrics {
		keys[i], models[i], names[i], digests[i] = m.Key, m.ModelID, m.DatasetName, m.DatasetDigest
		steps[i], times[i] = m.Step, m.Timestamp
		values[i], nans[i] = storedMetricValue(m.Value)
	}
	_, err := c.exec(ctx, `INSERT INTO metrics (run_id, key, step, timestamp, value, is_nan,
			model_id, dataset_name, dataset_digest)
		SELECT ?, u.* FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::float8[], ?::boolean[],
			?::text[], ?::text[], ?::text[]) AS u
		ON CONFLICT DO NOTHING`, runID, keys, steps, times, values, nans, models, names, digests)
	return err
}

// upsertRunTags sets tags, overwriting values already there.
func upsertRunTags(ctx context.Context, c conn, workspace string, expID int64, runID string, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	args := make([]any, 0, 5*len(tags))
	for _, k := range sortedMapKeys(tags) {
		args = append(args, runID, workspace, expID, k, tags[k])
	}
	_, err := c.exec(ctx, `INSERT INTO tags (run_id, workspace, experiment_id, key, value)
		VALUES `+sqlRows(len(tags), 5)+`
		ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value`, args...)
	return err
}

// DeleteRunTag removes a tag of an active run; ENOTFOUND if it has no such
// tag.
func (db *DB) DeleteRunTag(ctx context.Context, workspace, runID, key string) error {
	err := db.inTx(ctx, func(c conn) error {
		if _, err := activeRun(ctx, c, workspace, runID); err != nil {
			return err
		}
		return mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "No tag with name: %s in run with id %s", key, runID),
			`DELETE FROM tags WHERE run_id = ? AND key = ?`, runID, key)
	})
	return wrapErr("delete run tag", err)
}

// LogInputs records datasets an active run used. A dataset is identified
// by name and digest; one already logged to the run keeps its first
// record, context tags included, as in MLflow.
func (db *DB) LogInputs(ctx context.Context, workspace, runID string, inputs []*wharf.DatasetInput, models []*wharf.ModelInput) error {
	for _, m := range models {
		if m == nil || m.ModelID == "" {
			return wharf.Errorf(wharf.EINVALID, "Model input must have a model_id")
		}
	}
	type inputKey struct{ name, digest string }
	seen := map[inputKey]bool{}
	var args []any
	n := 0
	for _, in := range inputs {
		if in == nil {
			return wharf.Errorf(wharf.EINVALID, "Dataset input must have a dataset associated with it.")
		}
		d := in.Dataset
		if d.Name == "" || d.Digest == "" {
			return wharf.Errorf(wharf.EINVALID, "Dataset name and digest must not be empty")
		}
		for k, v := range in.Tags {
			if err := validateRunTag(k, v); err != nil {
				return err
			}
		}
		k := inputKey{d.Name, d.Digest}
		if seen[k] {
			continue
		}
		seen[k] = true
		tags, err := encodeTags(in.Tags)
		if err != nil {
			return err
		}
		var dataContext sql.NullString
		if v, ok := in.Tags[datasetContext]; ok {
			dataContext = sql.NullString{String: v, Valid: true}
		}
		args = append(args, runID, d.Name, d.Digest, d.SourceType, d.Source, d.Schema, d.Profile, dataContext, tags)
		n++
	}
	err := db.inTx(ctx, func(c conn) error {
		if _, err := activeRun(ctx, c, workspace, runID); err != nil {
			return err
		}
		for _, m := range models {
			if _, err := c.exec(ctx, `INSERT INTO run_model_inputs (run_id, model_id) VALUES (?, ?)
				ON CONFLICT DO NOTHING`, runID, m.ModelID); err != nil {
				return err
			}
		}
		if n == 0 {
			return nil
		}
		_, err := c.exec(ctx, `INSERT INTO run_inputs (run_id, name, digest, source_type, source, schema,
			profile, context, tags) VALUES `+sqlRows(n, 9)+` ON CONFLICT DO NOTHING`, args...)
		return err
	})
	return wrapErr("log inputs", err)
}

// LogOutputs records logged models an active run produced.
func (db *DB) LogOutputs(ctx context.Context, workspace, runID string, outputs []*wharf.ModelOutput) error {
	args := make([]any, 0, 3*len(outputs))
	for _, o := range outputs {
		if o == nil || o.ModelID == "" {
			return wharf.Errorf(wharf.EINVALID, "Model output must have a model_id")
		}
		args = append(args, runID, o.ModelID, o.Step)
	}
	err := db.inTx(ctx, func(c conn) error {
		if _, err := activeRun(ctx, c, workspace, runID); err != nil {
			return err
		}
		if len(outputs) == 0 {
			return nil
		}
		_, err := c.exec(ctx, `INSERT INTO run_outputs (run_id, model_id, step)
			VALUES `+sqlRows(len(outputs), 3)+` ON CONFLICT DO NOTHING`, args...)
		return err
	})
	return wrapErr("log outputs", err)
}

func scanRun(s interface{ Scan(...any) error }) (*wharf.Run, error) {
	var r wharf.Run
	var expID int64
	var end sql.NullInt64
	if err := s.Scan(&r.ID, &r.Workspace, &expID, &r.Name, &r.UserID, &r.Status, &r.StartTime, &end,
		&r.ArtifactURI, &r.LifecycleStage); err != nil {
		return nil, err
	}
	r.ExperimentID = strconv.FormatInt(expID, 10)
	r.EndTime = end.Int64
	r.Params = map[string]string{}
	r.Tags = map[string]string{}
	r.Metrics = []*wharf.Metric{}
	r.Inputs = []*wharf.DatasetInput{}
	r.ModelInputs = []*wharf.ModelInput{}
	r.ModelOutputs = []*wharf.ModelOutput{}
	return &r, nil
}

// Kinds of row a runDataQuery returns, in the order it returns them.
const (
	runDataParam = iota
	runDataTag
	runDataMetric
	runDataInput
	runDataOutput
)

// runDataQuery selects, in one statement, the params, tags, latest metrics,
// inputs and outputs of the runs whose run_id the condition in (spliced in
// five times, once per table) admits: one round trip for a page of runs
// rather than one per table, which on PostgreSQL, a server process woken
// for each, is most of a search's time. Each row is tagged with its kind
// and fills that kind's columns, the others NULL; the NULLs are cast so
// that PostgreSQL types each column of the UNION alike. Within a run,
// metrics come in key order, inputs in name and digest order, outputs in
// step and model id order (ord is the output's step).
func runDataQuery(in string) string {
	return `SELECT ` + strconv.Itoa(runDataParam) + ` AS kind, run_id, key, value,
			CAST(NULL AS DOUBLE PRECISION) AS num, CAST(NULL AS BOOLEAN) AS is_nan,
			CAST(NULL AS BIGINT) AS timestamp, CAST(NULL AS BIGINT) AS step, CAST(NULL AS BIGINT) AS ord,
			CAST(NULL AS TEXT) AS digest, CAST(NULL AS TEXT) AS source_type, CAST(NULL AS TEXT) AS source,
			CAST(NULL AS TEXT) AS schema, CAST(NULL AS TEXT) AS profile, CAST(NULL AS TEXT) AS tags
		FROM params WHERE run_id ` + in + `
		UNION ALL SELECT ` + strconv.Itoa(runDataTag) + `, run_id, key, value,
			NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
		FROM tags WHERE run_id ` + in + `
		UNION ALL SELECT ` + strconv.Itoa(runDataMetric) + `, run_id, key, NULL,
			value, is_nan, timestamp, step, NULL, NULL, NULL, NULL, NULL, NULL, NULL
		FROM latest_metrics WHERE run_id ` + in + `
		UNION ALL SELECT ` + strconv.Itoa(runDataInput) + `, run_id, name, NULL,
			NULL, NULL, NULL, NULL, NULL, digest, source_type, source, schema, profile, tags
		FROM run_inputs WHERE run_id ` + in + `
		UNION ALL SELECT ` + strconv.Itoa(runDataOutput) + `, run_id, model_id, NULL,
			NULL, NULL, NULL, step, step, NULL, NULL, NULL, NULL, NULL, NULL
		FROM run_outputs WHERE run_id ` + in + `
		ORDER BY kind, run_id, ord, key, digest`
}

// loadRunData fills in what runs logged, with one query per chunk of runs
// (see runDataQuery). PostgreSQL gets each chunk's ids as one array.
func loadRunData(ctx context.Context, c conn, runs []*wharf.Run) error {
	if len(runs) == 0 {
		return nil
	}
	byID := make(map[string]*wharf.Run, len(runs))
	ids := make([]any, 0, len(runs))
	for _, r := range runs {
		byID[r.ID] = r
		ids = append(ids, r.ID)
	}
	for chunk := range sqlChunks(ids, loadChunk) {
		var in string
		var args []any
		if c.db.isSQLite() {
			in = `IN (` + sqlMarks(len(chunk)) + `)`
			for range 5 {
				args = append(args, chunk...)
			}
		} else {
			array := make([]string, len(chunk))
			for i, id := range chunk {
				array[i] = id.(string)
			}
			in = `= ANY (CAST(? AS TEXT[]))`
			args = []any{array, array, array, array, array}
		}
		err := eachRow(ctx, c, runDataQuery(in), args, func(s interface{ Scan(...any) error }) error {
			var kind int
			var id, key string
			var value, digest, sourceType, source, schema, profile, tags sql.NullString
			var num sql.NullFloat64
			var isNaN sql.NullBool
			var timestamp, step, ord sql.NullInt64
			if err := s.Scan(&kind, &id, &key, &value, &num, &isNaN, &timestamp, &step, &ord,
				&digest, &sourceType, &source, &schema, &profile, &tags); err != nil {
				return err
			}
			r := byID[id]
			switch kind {
			case runDataParam:
				r.Params[key] = value.String
			case runDataTag:
				r.Tags[key] = value.String
			case runDataMetric:
				m := &wharf.Metric{RunID: id, Key: key, Value: num.Float64, Timestamp: timestamp.Int64, Step: step.Int64}
				if isNaN.Bool {
					m.Value = math.NaN()
				}
				r.Metrics = append(r.Metrics, m)
			case runDataInput:
				t, err := decodeTags(tags.String)
				if err != nil {
					return err
				}
				d := wharf.Dataset{Name: key, Digest: digest.String, SourceType: sourceType.String,
					Source: source.String, Schema: schema.String, Profile: profile.String}
				r.Inputs = append(r.Inputs, &wharf.DatasetInput{Dataset: d, Tags: t})
			case runDataOutput:
				r.ModelOutputs = append(r.ModelOutputs, &wharf.ModelOutput{ModelID: key, Step: step.Int64})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// scanRunMetric scans a metric selected as run_id, key, value, is_nan,
// timestamp, step, restoring a NaN.
func scanRunMetric(s interface{ Scan(...any) error }) (*wharf.Metric, error) {
	m := &wharf.Metric{}
	var isNaN bool
	if err := s.Scan(&m.RunID, &m.Key, &m.Value, &isNaN, &m.Timestamp, &m.Step); err != nil {
		return nil, err
	}
	if isNaN {
		m.Value = math.NaN()
	}
	return m, nil
}

// TrackingRows counts the rows that belong to a workspace's experiments and
// to one run, in every tracking table. It exists for tests that check
// deletes leave nothing behind; the server has no use for it.
func (db *DB) TrackingRows(ctx context.Context, workspace, runID string) (int64, error) {
	var n int64
	err := db.reader().queryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM experiments WHERE workspace = ?) +
		(SELECT COUNT(*) FROM experiment_tags WHERE workspace = ?) +
		(SELECT COUNT(*) FROM runs WHERE run_id = ?) +
		(SELECT COUNT(*) FROM params WHERE run_id = ?) +
		(SELECT COUNT(*) FROM tags WHERE run_id = ?) +
		(SELECT COUNT(*) FROM metrics WHERE run_id = ?) +
		(SELECT COUNT(*) FROM latest_metrics WHERE run_id = ?) +
		(SELECT COUNT(*) FROM run_inputs WHERE run_id = ?) +
		(SELECT COUNT(*) FROM run_outputs WHERE run_id = ?) +
		(SELECT COUNT(*) FROM run_model_inputs WHERE run_id = ?) +
		(SELECT COUNT(*) FROM logged_model_metrics WHERE run_id = ?)`,
		workspace, workspace, runID, runID, runID, runID, runID, runID, runID, runID, runID).Scan(&n)
	return n, wrapErr("tracking rows", err)
}
