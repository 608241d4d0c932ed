package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/wharfml/wharf"
)

var _ wharf.TraceService = (*DB)(nil)

// Trace page sizes: MLflow's default, and the most its server returns.
const (
	defaultTraceResults = 100
	maxTraceResults     = 500
)

// Trace keys the search grammar reaches through attributes.
const (
	traceNameTag      = "mlflow.traceName"
	traceSourceRunKey = "mlflow.sourceRun"
)

// traceIDRE is what a trace id may be: the 3.x client's "tr-<32 hex>",
// the v2 API's 32 hex, and other ids of the same alphabet. The id is a
// segment of the trace's artifact path, so nothing else is accepted.
var traceIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

const traceColumns = `workspace, trace_id, experiment_id, client_request_id, request_time,
	execution_time, state, request_preview, response_preview`

var traceStates = map[string]bool{
	wharf.TraceStateUnspecified: true, wharf.TraceStateOK: true,
	wharf.TraceStateError: true, wharf.TraceStateInProgress: true,
}

func errTraceNotFound(id string) error {
	return wharf.Errorf(wharf.ENOTFOUND, "Trace with ID '%s' not found.", id)
}

func validateTraceID(id string) error {
	if !traceIDRE.MatchString(id) {
		return wharf.Errorf(wharf.EINVALID, "Invalid trace ID %q: expected letters, digits, '.', '_' or '-', at most 128", id).WithField("trace_id")
	}
	return nil
}

// validateTraceKV checks trace tags and metadata, with MLflow's bound on
// keys and the tracking store's on values.
func validateTraceKV(what string, m map[string]string) error {
	for k, v := range m {
		if err := validateEntityKey(what+" key", k); err != nil {
			return err
		}
		if err := validateEntityLength(what+" value", v, maxTagValueLength); err != nil {
			return err
		}
	}
	return nil
}

// traceArtifactLocation is where a trace's spans and attachments go: a
// folder of its own below the experiment's artifacts, MLflow's layout.
func traceArtifactLocation(experimentLocation, id string) string {
	return strings.TrimRight(experimentLocation, "/") + "/traces/" + id + "/artifacts"
}

// CreateTrace records t, or updates it when the workspace has it already
// in the same experiment, merging tags, metadata and assessments.
func (db *DB) CreateTrace(ctx context.Context, t *wharf.Trace) error {
	if err := validateTraceID(t.ID); err != nil {
		return err
	}
	if t.State == "" {
		t.State = wharf.TraceStateUnspecified
	}
	if !traceStates[t.State] {
		return wharf.Errorf(wharf.EINVALID, "Invalid trace state %q", t.State).WithField("state")
	}
	if err := validateTraceKV("Trace tag", t.Tags); err != nil {
		return err
	}
	if err := validateTraceKV("Trace metadata", t.Metadata); err != nil {
		return err
	}
	for _, a := range t.Assessments {
		a.Workspace, a.TraceID = t.Workspace, t.ID
	}
	expID, ok := parseExperimentID(t.ExperimentID)
	if !ok {
		return experimentNotFound(t.ExperimentID)
	}
	if err := db.ensureDefaultIf(ctx, t.Workspace, expID); err != nil {
		return err
	}
	err := db.inTx(ctx, func(c conn) error {
		var stage, location string
		err := c.queryRow(ctx, `SELECT lifecycle_stage, artifact_location FROM experiments
			WHERE workspace = ? AND experiment_id = ?`, t.Workspace, expID).Scan(&stage, &location)
		if errors.Is(err, sql.ErrNoRows) {
			return experimentNotFound(t.ExperimentID)
		}
		if err != nil {
			return err
		}
		if stage != wharf.LifecycleActive {
			return experimentNotActive(t.ExperimentID, stage)
		}
		if t.Tags == nil {
			t.Tags = map[string]string{}
		}
		t.Tags[wharf.TraceArtifactLocationTag] = traceArtifactLocation(location, t.ID)
		err = mustChange(ctx, c, wharf.Errorf(wharf.ECONFLICT, "Trace with ID '%s' already exists in another experiment", t.ID),
			`INSERT INTO traces (`+traceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (workspace, trace_id) DO UPDATE SET client_request_id = excluded.client_request_id,
				request_time = excluded.request_time, execution_time = excluded.execution_time,
				state = excluded.state, request_preview = excluded.request_preview,
				response_preview = excluded.response_preview
			WHERE traces.experiment_id = excluded.experiment_id`,
			t.Workspace, t.ID, expID, t.ClientRequestID, t.RequestTime, executionTimeArg(t.ExecutionTime),
			t.State, t.RequestPreview, t.ResponsePreview)
		if err != nil {
			return err
		}
		if err := upsertTraceKV(ctx, c, "trace_tags", t.Workspace, t.ID, t.Tags); err != nil {
			return err
		}
		if err := upsertTraceKV(ctx, c, "trace_metadata", t.Workspace, t.ID, t.Metadata); err != nil {
			return err
		}
		for _, a := range t.Assessments {
			if err := putAssessment(ctx, c, a); err != nil {
				return err
			}
		}
		return nil
	})
	return wrapErr("create trace", err)
}

// executionTimeArg stores an unknown duration as NULL.
func executionTimeArg(ms int64) any {
	if ms < 0 {
		return nil
	}
	return ms
}

// upsertTraceKV writes tags or metadata (table names one of the two) of a
// trace, each key's value replacing what it had.
func upsertTraceKV(ctx context.Context, c conn, table, workspace, id string, m map[string]string) error {
	if len(m) == 0 {
		return nil
	}
	keys := sortedMapKeys(m)
	for chunk := range sqlChunks(keys, loadChunk) {
		args := make([]any, 0, 4*len(chunk))
		for _, k := range chunk {
			args = append(args, workspace, id, k, m[k])
		}
		if _, err := c.exec(ctx, `INSERT INTO `+table+` (workspace, trace_id, key, value) VALUES `+sqlRows(len(chunk), 4)+`
			ON CONFLICT (workspace, trace_id, key) DO UPDATE SET value = excluded.value`, args...); err != nil {
			return err
		}
	}
	return nil
}

// FindTrace returns the trace with its tags, metadata and assessments.
func (db *DB) FindTrace(ctx context.Context, workspace, id string) (*wharf.Trace, error) {
	return findTrace(ctx, db.reader(), workspace, id)
}

func findTrace(ctx context.Context, c conn, workspace, id string) (*wharf.Trace, error) {
	t, err := scanTrace(c.queryRow(ctx, `SELECT `+traceColumns+` FROM traces
		WHERE workspace = ? AND trace_id = ?`, workspace, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errTraceNotFound(id)
	}
	if err != nil {
		return nil, wrapErr("find trace", err)
	}
	if err := loadTraceDetails(ctx, c, workspace, []*wharf.Trace{t}); err != nil {
		return nil, err
	}
	return t, nil
}

func scanTrace(s interface{ Scan(...any) error }) (*wharf.Trace, error) {
	var t wharf.Trace
	var expID int64
	var exec sql.NullInt64
	if err := s.Scan(&t.Workspace, &t.ID, &expID, &t.ClientRequestID, &t.RequestTime, &exec,
		&t.State, &t.RequestPreview, &t.ResponsePreview); err != nil {
		return nil, err
	}
	t.ExperimentID = strconv.FormatInt(expID, 10)
	t.ExecutionTime = -1
	if exec.Valid {
		t.ExecutionTime = exec.Int64
	}
	t.Tags = map[string]string{}
	t.Metadata = map[string]string{}
	t.Assessments = []*wharf.Assessment{}
	return &t, nil
}

// loadTraceDetails fills the tags, metadata and assessments of traces, all
// of workspace, in batched queries.
func loadTraceDetails(ctx context.Context, c conn, workspace string, traces []*wharf.Trace) error {
	byID := make(map[string]*wharf.Trace, len(traces))
	ids := make([]any, 0, len(traces))
	for _, t := range traces {
		byID[t.ID] = t
		ids = append(ids, t.ID)
	}
	for chunk := range sqlChunks(ids, loadChunk) {
		in := `WHERE workspace = ? AND trace_id IN (` + sqlMarks(len(chunk)) + `)`
		args := append([]any{workspace}, chunk...)
		for _, kv := range []struct {
			table string
			get   func(*wharf.Trace) map[string]string
		}{
			{"trace_tags", func(t *wharf.Trace) map[string]string { return t.Tags }},
			{"trace_metadata", func(t *wharf.Trace) map[string]string { return t.Metadata }},
		} {
			err := eachRow(ctx, c, `SELECT trace_id, key, value FROM `+kv.table+` `+in, args,
				func(s interface{ Scan(...any) error }) error {
					var id, k, v string
					if err := s.Scan(&id, &k, &v); err != nil {
						return err
					}
					if t := byID[id]; t != nil {
						kv.get(t)[k] = v
					}
					return nil
				})
			if err != nil {
				return wrapErr("load trace "+kv.table, err)
			}
		}
		err := eachRow(ctx, c, `SELECT `+assessmentColumns+` FROM trace_assessments `+in+`
			ORDER BY create_time, assessment_id`, args,
			func(s interface{ Scan(...any) error }) error {
				a, err := scanAssessment(s)
				if err != nil {
					return err
				}
				if t := byID[a.TraceID]; t != nil {
					t.Assessments = append(t.Assessments, a)
				}
				return nil
			})
		if err != nil {
			return wrapErr("load trace assessments", err)
		}
	}
	return nil
}

// EndTrace completes a trace started with the v2 API.
func (db *DB) EndTrace(ctx context.Context, workspace, id string, endTime int64, state string, metadata, tags map[string]string) (*wharf.Trace, error) {
	if !traceStates[state] {
		return nil, wharf.Errorf(wharf.EINVALID, "Invalid trace status %q", state).WithField("status")
	}
	if err := validateTraceKV("Trace tag", tags); err != nil {
		return nil, err
	}
	if err := validateTraceKV("Trace metadata", metadata); err != nil {
		return nil, err
	}
	var out *wharf.Trace
	err := db.inTx(ctx, func(c conn) error {
		err := mustChange(ctx, c, errTraceNotFound(id),
			`UPDATE traces SET execution_time = ? - request_time, state = ?
			WHERE workspace = ? AND trace_id = ?`, endTime, state, workspace, id)
		if err != nil {
			return err
		}
		if err := upsertTraceKV(ctx, c, "trace_tags", workspace, id, tags); err != nil {
			return err
		}
		if err := upsertTraceKV(ctx, c, "trace_metadata", workspace, id, metadata); err != nil {
			return err
		}
		out, err = findTrace(ctx, c, workspace, id)
		return err
	})
	return out, wrapErr("end trace", err)
}

// mustTrace fails with ENOTFOUND unless the workspace has the trace.
func mustTrace(ctx context.Context, c conn, workspace, id string) error {
	var one int
	err := c.queryRow(ctx, `SELECT 1 FROM traces WHERE workspace = ? AND trace_id = ?`, workspace, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return errTraceNotFound(id)
	}
	return err
}

// SetTraceTag sets one tag of a trace.
func (db *DB) SetTraceTag(ctx context.Context, workspace, id, key, value string) error {
	if err := validateTraceKV("Trace tag", map[string]string{key: value}); err != nil {
		return err
	}
	err := db.inTx(ctx, func(c conn) error {
		if err := mustTrace(ctx, c, workspace, id); err != nil {
			return err
		}
		return upsertTraceKV(ctx, c, "trace_tags", workspace, id, map[string]string{key: value})
	})
	return wrapErr("set trace tag", err)
}

// DeleteTraceTag deletes one tag of a trace; a tag it does not have is
// ENOTFOUND, as in MLflow.
func (db *DB) DeleteTraceTag(ctx context.Context, workspace, id, key string) error {
	err := db.inTx(ctx, func(c conn) error {
		if err := mustTrace(ctx, c, workspace, id); err != nil {
			return err
		}
		return mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "No trace tag with key '%s' for trace with ID '%s'", key, id),
			`DELETE FROM trace_tags WHERE workspace = ? AND trace_id = ? AND key = ?`,
			workspace, id, key)
	})
	return wrapErr("delete trace tag", err)
}

// DeleteTraces deletes the traces d selects in one transaction and
// returns them as they were.
func (db *DB) DeleteTraces(ctx context.Context, workspace string, d wharf.TraceDeletion) ([]*wharf.Trace, error) {
	expID, ok := parseExperimentID(d.ExperimentID)
	if !ok {
		return nil, experimentNotFound(d.ExperimentID)
	}
	if d.MaxTraces < 0 {
		return nil, wharf.Errorf(wharf.EINVALID, "max_traces must be a positive integer, got %d", d.MaxTraces).WithField("max_traces")
	}
	var deleted []*wharf.Trace
	err := db.inTx(ctx, func(c conn) error {
		if _, err := experimentStage(ctx, c, workspace, expID); err != nil {
			return err
		}
		scan := func(s interface{ Scan(...any) error }) error {
			t, err := scanTrace(s)
			if err == nil {
				deleted = append(deleted, t)
			}
			return err
		}
		if len(d.IDs) > 0 {
			for chunk := range sqlChunks(d.IDs, loadChunk) {
				args := []any{workspace, expID}
				for _, id := range chunk {
					args = append(args, id)
				}
				if err := eachRow(ctx, c, `SELECT `+traceColumns+` FROM traces
					WHERE workspace = ? AND experiment_id = ? AND trace_id IN (`+sqlMarks(len(chunk))+`)`,
					args, scan); err != nil {
					return err
				}
			}
		} else {
			q := `SELECT ` + traceColumns + ` FROM traces
				WHERE workspace = ? AND experiment_id = ? AND request_time <= ?
				ORDER BY request_time, trace_id`
			args := []any{workspace, expID, d.MaxTimestamp}
			if d.MaxTraces > 0 {
				q += ` LIMIT ?`
				args = append(args, d.MaxTraces)
			}
			if err := eachRow(ctx, c, q, args, scan); err != nil {
				return err
			}
		}
		if len(deleted) == 0 {
			return nil
		}
		if err := loadTraceDetails(ctx, c, workspace, deleted); err != nil {
			return err
		}
		for chunk := range sqlChunks(deleted, loadChunk) {
			args := []any{workspace}
			for _, t := range chunk {
				args = append(args, t.ID)
			}
			if _, err := c.exec(ctx, `DELETE FROM traces WHERE workspace = ? AND trace_id IN (`+sqlMarks(len(chunk))+`)`,
				args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrapErr("delete traces", err)
	}
	if deleted == nil {
		deleted = []*wharf.Trace{}
	}
	return deleted, nil
}

const assessmentColumns = `workspace, trace_id, assessment_id, name, create_time, last_update_time, document`

func scanAssessment(s interface{ Scan(...any) error }) (*wharf.Assessment, error) {
	var a wharf.Assessment
	var doc string
	if err := s.Scan(&a.Workspace, &a.TraceID, &a.ID, &a.Name, &a.CreateTime, &a.LastUpdateTime, &doc); err != nil {
		return nil, err
	}
	a.Document = []byte(doc)
	return &a, nil
}

func putAssessment(ctx context.Context, c conn, a *wharf.Assessment) error {
	if err := validateTraceID(a.ID); err != nil {
		return wharf.Errorf(wharf.EINVALID, "Invalid assessment ID %q", a.ID).WithField("assessment_id")
	}
	if err := validateEntityKey("Assessment name", a.Name); err != nil {
		return err
	}
	_, err := c.exec(ctx, `INSERT INTO trace_assessments (`+assessmentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (workspace, trace_id, assessment_id) DO UPDATE SET name = excluded.name,
			last_update_time = excluded.last_update_time, document = excluded.document`,
		a.Workspace, a.TraceID, a.ID, a.Name, a.CreateTime, a.LastUpdateTime, string(a.Document))
	return err
}

// PutAssessment creates or replaces an assessment of an existing trace;
// its creation time stays the first one given.
func (db *DB) PutAssessment(ctx context.Context, a *wharf.Assessment) error {
	err := db.inTx(ctx, func(c conn) error {
		if err := mustTrace(ctx, c, a.Workspace, a.TraceID); err != nil {
			return err
		}
		return putAssessment(ctx, c, a)
	})
	return wrapErr("put assessment", err)
}

// FindAssessment returns one assessment of a trace.
func (db *DB) FindAssessment(ctx context.Context, workspace, traceID, id string) (*wharf.Assessment, error) {
	c := db.reader()
	a, err := scanAssessment(c.queryRow(ctx, `SELECT `+assessmentColumns+` FROM trace_assessments
		WHERE workspace = ? AND trace_id = ? AND assessment_id = ?`, workspace, traceID, id))
	if errors.Is(err, sql.ErrNoRows) {
		if err := mustTrace(ctx, c, workspace, traceID); err != nil {
			return nil, wrapErr("find assessment", err)
		}
		return nil, errAssessmentNotFound(traceID, id)
	}
	return a, wrapErr("find assessment", err)
}

func errAssessmentNotFound(traceID, id string) error {
	return wharf.Errorf(wharf.ENOTFOUND, "Assessment with ID '%s' not found for trace '%s'", id, traceID)
}

// DeleteAssessment deletes one assessment of a trace.
func (db *DB) DeleteAssessment(ctx context.Context, workspace, traceID, id string) error {
	err := db.inTx(ctx, func(c conn) error {
		if err := mustTrace(ctx, c, workspace, traceID); err != nil {
			return err
		}
		return mustChange(ctx, c, errAssessmentNotFound(traceID, id),
			`DELETE FROM trace_assessments WHERE workspace = ? AND trace_id = ? AND assessment_id = ?`,
			workspace, traceID, id)
	})
	return wrapErr("delete assessment", err)
}
