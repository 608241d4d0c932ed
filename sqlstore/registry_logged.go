package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/mlflowsearch"
)

// Logged model statuses, as MLflow's protocol spells them.
const (
	loggedModelPending = "LOGGED_MODEL_PENDING"
	loggedModelReady   = "LOGGED_MODEL_READY"
	loggedModelFailed  = "LOGGED_MODEL_UPLOAD_FAILED"
)

const loggedModelColumns = `workspace, model_id, experiment_id, name, artifact_uri, status,
	status_message, creator_id, model_type, source_run_id, creation_time, last_updated_time`

// Search page sizes of logged models.
const (
	loggedModelsDefault = 100
	loggedModelsMax     = 1000
)

func errLoggedModelNotFound(id string) error {
	return wharf.Errorf(wharf.ENOTFOUND, "Logged model with ID '%s' not found.", id)
}

// loggedModelExperiment converts an experiment id into the stored integer,
// by the tracking store's rule: a canonical non-negative decimal.
func loggedModelExperiment(id string) (int64, bool) {
	if id == "" || (len(id) > 1 && id[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil && n >= 0
}

// newLoggedModelID returns "m-" and 32 random lowercase hex digits, the
// form of MLflow's model ids.
func newLoggedModelID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("sqlstore: logged model id: %w", err)
	}
	return "m-" + hex.EncodeToString(b[:]), nil
}

// CreateLoggedModel assigns the model's id, times and defaults: status
// LOGGED_MODEL_PENDING, the artifact URI under the experiment's artifact
// root (mlflow-artifacts:/<experiment>/models/<id>/artifacts) and, when
// none is given, a name derived from the id. Tags and params given are
// stored with it.
func (db *DB) CreateLoggedModel(ctx context.Context, m *wharf.LoggedModel) error {
	if m.ExperimentID == "" {
		return wharf.Errorf(wharf.EINVALID, "Missing value for required parameter 'experiment_id'.").WithField("experiment_id")
	}
	exp, ok := loggedModelExperiment(m.ExperimentID)
	if !ok {
		return wharf.Errorf(wharf.ENOTFOUND, "No Experiment with id=%s exists", m.ExperimentID)
	}
	status := m.Status
	if status == "" {
		status = loggedModelPending
	}
	if status != loggedModelPending && status != loggedModelReady && status != loggedModelFailed {
		return wharf.Errorf(wharf.EINVALID, "Invalid logged model status '%s'.", status).WithField("status")
	}
	for _, kv := range []map[string]string{m.Tags, m.Params} {
		for k := range kv {
			if err := validateRegistryTagKey(k); err != nil {
				return err
			}
		}
	}
	id, err := newLoggedModelID()
	if err != nil {
		return err
	}
	name := m.Name
	if name == "" {
		name = "model-" + id[2:10]
	}
	uri := m.ArtifactURI
	if uri == "" {
		uri = "mlflow-artifacts:/" + m.ExperimentID + "/models/" + id + "/artifacts"
	}
	now := db.registryMillis()
	err = db.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `INSERT INTO logged_models (`+loggedModelColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.Workspace, id, exp, name, uri, status, m.StatusMessage, m.CreatorID, m.ModelType,
			m.SourceRunID, now, now); err != nil {
			return err
		}
		for table, kv := range map[string]map[string]string{"logged_model_tags": m.Tags, "logged_model_params": m.Params} {
			for k, v := range kv {
				if _, err := c.exec(ctx, `INSERT INTO `+table+` (workspace, model_id, key, value)
					VALUES (?, ?, ?, ?)`, m.Workspace, id, k, v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if db.isForeignKey(err) {
		return errRegistryWorkspace(m.Workspace)
	}
	if err != nil {
		return wrapErr("create logged model", err)
	}
	m.ID, m.Name, m.ArtifactURI, m.Status = id, name, uri, status
	m.CreationTime, m.LastUpdatedTime = now, now
	if m.Tags == nil {
		m.Tags = map[string]string{}
	}
	if m.Params == nil {
		m.Params = map[string]string{}
	}
	return nil
}

// FindLoggedModel returns the model with its tags and params.
func (db *DB) FindLoggedModel(ctx context.Context, workspace, id string) (*wharf.LoggedModel, error) {
	m, err := loadLoggedModel(ctx, db.reader(), workspace, id)
	return m, wrapErr("find logged model", err)
}

func loadLoggedModel(ctx context.Context, c conn, workspace, id string) (*wharf.LoggedModel, error) {
	m, err := scanLoggedModel(c.queryRow(ctx, `SELECT `+loggedModelColumns+` FROM logged_models
		WHERE workspace = ? AND model_id = ?`, workspace, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errLoggedModelNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	if err := fillLoggedModels(ctx, c, workspace, []*wharf.LoggedModel{m}); err != nil {
		return nil, err
	}
	return m, nil
}

// FinalizeLoggedModel records the outcome of the model's upload: status
// must be LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED.
func (db *DB) FinalizeLoggedModel(ctx context.Context, workspace, id, status, message string) (*wharf.LoggedModel, error) {
	if status != loggedModelReady && status != loggedModelFailed {
		return nil, wharf.Errorf(wharf.EINVALID,
			"Invalid model status '%s': a logged model is finalized as %s or %s.",
			status, loggedModelReady, loggedModelFailed).WithField("status")
	}
	now := db.registryMillis()
	var m *wharf.LoggedModel
	err := db.inTx(ctx, func(c conn) error {
		err := mustChange(ctx, c, errLoggedModelNotFound(id),
			`UPDATE logged_models SET status = ?, status_message = ?, last_updated_time = ?
			WHERE workspace = ? AND model_id = ?`, status, message, now, workspace, id)
		if err != nil {
			return err
		}
		m, err = loadLoggedModel(ctx, c, workspace, id)
		return err
	})
	if err != nil {
		return nil, wrapErr("finalize logged model", err)
	}
	return m, nil
}

// SetLoggedModelTags sets (or replaces) tags and returns the model.
func (db *DB) SetLoggedModelTags(ctx context.Context, workspace, id string, tags map[string]string) (*wharf.LoggedModel, error) {
	for k := range tags {
		if err := validateRegistryTagKey(k); err != nil {
			return nil, err
		}
	}
	var m *wharf.LoggedModel
	err := db.inTx(ctx, func(c conn) error {
		if err := mustLoggedModel(ctx, c, workspace, id); err != nil {
			return err
		}
		for _, k := range regSortedKeys(tags) {
			if _, err := c.exec(ctx, `INSERT INTO logged_model_tags (workspace, model_id, key, value)
				VALUES (?, ?, ?, ?) ON CONFLICT (workspace, model_id, key) DO UPDATE SET value = excluded.value`,
				workspace, id, k, tags[k]); err != nil {
				return err
			}
		}
		var err error
		m, err = loadLoggedModel(ctx, c, workspace, id)
		return err
	})
	if db.isForeignKey(err) {
		return nil, errLoggedModelNotFound(id)
	}
	if err != nil {
		return nil, wrapErr("set logged model tags", err)
	}
	return m, nil
}

// DeleteLoggedModelTag removes one tag; unlike the registry's tags, a tag
// that is not set is ENOTFOUND, as MLflow answers for logged models.
func (db *DB) DeleteLoggedModelTag(ctx context.Context, workspace, id, key string) error {
	err := db.inTx(ctx, func(c conn) error {
		if err := mustLoggedModel(ctx, c, workspace, id); err != nil {
			return err
		}
		return mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "No tag with key '%s' found for model with ID '%s'.", key, id),
			`DELETE FROM logged_model_tags WHERE workspace = ? AND model_id = ? AND key = ?`,
			workspace, id, key)
	})
	return wrapErr("delete logged model tag", err)
}

// LogLoggedModelParams records params. As with run params, a param is
// written once: logging the same value again is a no-op, a different
// value is EINVALID and nothing of the call is written.
func (db *DB) LogLoggedModelParams(ctx context.Context, workspace, id string, params map[string]string) error {
	for k := range params {
		if err := validateRegistryTagKey(k); err != nil {
			return err
		}
	}
	err := db.inTx(ctx, func(c conn) error {
		if err := mustLoggedModel(ctx, c, workspace, id); err != nil {
			return err
		}
		for _, k := range regSortedKeys(params) {
			created, err := inserted(ctx, c, `INSERT INTO logged_model_params (workspace, model_id, key, value)
				VALUES (?, ?, ?, ?) ON CONFLICT (workspace, model_id, key) DO NOTHING`,
				workspace, id, k, params[k])
			if err != nil {
				return err
			}
			if created {
				continue
			}
			var old string
			if err := c.queryRow(ctx, `SELECT value FROM logged_model_params
				WHERE workspace = ? AND model_id = ? AND key = ?`, workspace, id, k).Scan(&old); err != nil {
				return err
			}
			if old != params[k] {
				return wharf.Errorf(wharf.EINVALID,
					"Changing param values is not allowed. Param with key='%s' was already logged with value='%s' for logged model ID='%s'. Attempted logging new value '%s'.",
					k, old, id, params[k]).WithField("params")
			}
		}
		return nil
	})
	if db.isForeignKey(err) {
		return errLoggedModelNotFound(id)
	}
	return wrapErr("log logged model params", err)
}

// DeleteLoggedModel deletes the model with its tags and params.
func (db *DB) DeleteLoggedModel(ctx context.Context, workspace, id string) error {
	err := db.inTx(ctx, func(c conn) error {
		for _, table := range []string{"logged_model_tags", "logged_model_params", "logged_model_metrics"} {
			if _, err := c.exec(ctx, `DELETE FROM `+table+` WHERE workspace = ? AND model_id = ?`,
				workspace, id); err != nil {
				return err
			}
		}
		return mustChange(ctx, c, errLoggedModelNotFound(id),
			`DELETE FROM logged_models WHERE workspace = ? AND model_id = ?`, workspace, id)
	})
	return wrapErr("delete logged model", err)
}

func mustLoggedModel(ctx context.Context, c conn, workspace, id string) error {
	var one int
	err := c.queryRow(ctx, `SELECT 1 FROM logged_models WHERE workspace = ? AND model_id = ?`,
		workspace, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return errLoggedModelNotFound(id)
	}
	return err
}

// loggedModelStatus maps the status names clients filter on (MLflow's
// Python enum says READY, FAILED, ...) to the stored protocol names.
func loggedModelStatus(key, value string) string {
	if key != "status" {
		return value
	}
	switch v := strings.ToUpper(value); v {
	case "PENDING", "READY", "UPLOAD_FAILED":
		return "LOGGED_MODEL_" + v
	case "FAILED":
		return loggedModelFailed
	case loggedModelPending, loggedModelReady, loggedModelFailed:
		return v
	}
	return value
}

var loggedModelSearch = &regSearchSpec{
	entity: mlflowsearch.LoggedModelsEntity,
	attrs: map[string]regSearchColumn{
		"name":                   {expr: "l.name"},
		"model_id":               {expr: "l.model_id"},
		"status":                 {expr: "l.status"},
		"source_run_id":          {expr: "l.source_run_id"},
		"model_type":             {expr: "l.model_type"},
		"creation_timestamp":     {expr: "l.creation_time", numeric: true},
		"last_updated_timestamp": {expr: "l.last_updated_time", numeric: true},
	},
	tagExists:   `SELECT 1 FROM logged_model_tags t WHERE t.workspace = l.workspace AND t.model_id = l.model_id AND t.key = ?`,
	paramExists: `SELECT 1 FROM logged_model_params t WHERE t.workspace = l.workspace AND t.model_id = l.model_id AND t.key = ?`,
	normalize:   loggedModelStatus,
}

// loggedModelOrder maps the attributes a logged-model search may order by,
// MLflow's aliases included, to columns.
var loggedModelOrder = map[string]string{
	"name":                      "l.name",
	"model_id":                  "l.model_id",
	"status":                    "l.status",
	"status_message":            "l.status_message",
	"source_run_id":             "l.source_run_id",
	"model_type":                "l.model_type",
	"creation_time":             "l.creation_time",
	"creation_timestamp":        "l.creation_time",
	"creation_timestamp_ms":     "l.creation_time",
	"last_updated_timestamp":    "l.last_updated_time",
	"last_updated_timestamp_ms": "l.last_updated_time",
	"experiment_id":             "l.experiment_id",
	"artifact_location":         "l.artifact_uri",
}

// loggedMetricOnDatasets is the condition on a logged_model_metrics row t
// that it was logged on one of datasets (any dataset when there are none).
// As in MLflow's store, a dataset named without a digest matches metrics
// logged without one.
func loggedMetricOnDatasets(datasets []wharf.DatasetRef) (string, []any) {
	if len(datasets) == 0 {
		return "", nil
	}
	var ors []string
	var args []any
	for _, d := range datasets {
		ors = append(ors, "(t.dataset_name = ? AND t.dataset_digest = ?)")
		args = append(args, d.Name, d.Digest)
	}
	return " AND (" + strings.Join(ors, " OR ") + ")", args
}

const loggedMetricRows = `SELECT 1 FROM logged_model_metrics t WHERE t.workspace = l.workspace AND t.model_id = l.model_id`

// loggedModelMetricSQL matches models with a metric value, on q's
// datasets, satisfying cmp: any value of the model's history, as MLflow
// compares.
func loggedModelMetricSQL(q wharf.SearchQuery, cmp mlflowsearch.Comparison) (string, []any, error) {
	v, ok := cmp.Value.(float64)
	if !ok {
		return "", nil, wharf.Errorf(wharf.EINVALID, "Expected numeric value type for metric '%s'", cmp.Key)
	}
	switch cmp.Op {
	case mlflowsearch.OpEq, mlflowsearch.OpNe, mlflowsearch.OpGt, mlflowsearch.OpGe, mlflowsearch.OpLt, mlflowsearch.OpLe:
	default:
		return "", nil, invalidComparator(cmp)
	}
	op := cmp.Op
	if op == mlflowsearch.OpNe {
		op = "<>"
	}
	ds, dsArgs := loggedMetricOnDatasets(q.Datasets)
	return `EXISTS (` + loggedMetricRows + ` AND t.key = ? AND t.value ` + op + ` ?` + ds + `)`,
		append([]any{cmp.Key, v}, dsArgs...), nil
}

// loggedModelOrderSQL turns a logged-model search's order into ORDER BY
// terms and their arguments, as MLflow's store orders: attributes, or a
// metric's latest value (latest timestamp, then step, then run id) on the
// field's dataset, models without it last; then newest first and model id,
// unless ordered by already.
func loggedModelOrderSQL(q wharf.SearchQuery) (string, []any, error) {
	fields := q.OrderFields
	if len(fields) == 0 && len(q.OrderBy) > 0 {
		obs, err := mlflowsearch.ParseOrderBy(mlflowsearch.LoggedModelsEntity, q.OrderBy)
		if err != nil {
			return "", nil, regSearchError(err)
		}
		for _, ob := range obs {
			f := ob.Key
			if ob.KeyType == mlflowsearch.KeyMetric {
				f = "metrics." + ob.Key
			}
			fields = append(fields, wharf.OrderField{Field: f, Ascending: ob.Ascending})
		}
	}
	var terms []string
	var args []any
	hasCreation, hasID := false, false
	for _, f := range fields {
		dir := " ASC"
		if !f.Ascending {
			dir = " DESC"
		}
		entity, key, dotted := strings.Cut(f.Field, ".")
		if !dotted {
			col, ok := loggedModelOrder[f.Field]
			if !ok {
				return "", nil, wharf.Errorf(wharf.EINVALID, "Invalid order by field name: %s", f.Field)
			}
			hasCreation = hasCreation || col == "l.creation_time"
			hasID = hasID || col == "l.model_id"
			terms = append(terms, col+dir)
			continue
		}
		if entity != "metrics" {
			return "", nil, wharf.Errorf(wharf.EINVALID, "Invalid order by field name: %s. Only metrics are supported.", f.Field)
		}
		ds, dsArgs := "", []any{}
		if f.Dataset.Name != "" {
			ds, dsArgs = " AND t.dataset_name = ?", append(dsArgs, f.Dataset.Name)
		}
		if f.Dataset.Digest != "" {
			ds, dsArgs = ds+" AND t.dataset_digest = ?", append(dsArgs, f.Dataset.Digest)
		}
		latest := `(SELECT t.value FROM logged_model_metrics t WHERE t.workspace = l.workspace AND t.model_id = l.model_id
			AND t.key = ?` + ds + ` ORDER BY t.timestamp DESC, t.step DESC, t.run_id ASC LIMIT 1)`
		terms = append(terms, `CASE WHEN `+latest+` IS NULL THEN 1 ELSE 0 END ASC`, latest+dir)
		for range 2 {
			args = append(append(args, key), dsArgs...)
		}
	}
	if !hasCreation {
		terms = append(terms, "l.creation_time DESC")
	}
	if !hasID {
		terms = append(terms, "l.model_id ASC")
	}
	return strings.Join(terms, ", "), args, nil
}

// SearchLoggedModels searches the logged models of q.ExperimentIDs
// (required) with MLflow's filter syntax: name, model_id, status,
// source_run_id, model_type, the timestamps, tags, params and metrics.
// q.Datasets keeps the models with metrics on those datasets and scopes
// the metric filters to them; q.OrderFields (or q.OrderBy) orders by
// attributes and metrics. The default order is newest first, model id
// breaking ties.
func (db *DB) SearchLoggedModels(ctx context.Context, workspace string, q wharf.SearchQuery) ([]*wharf.LoggedModel, string, error) {
	if len(q.ExperimentIDs) == 0 {
		return nil, "", wharf.Errorf(wharf.EINVALID,
			"Missing value for required parameter 'experiment_ids'.").WithField("experiment_ids")
	}
	for _, d := range q.Datasets {
		if d.Name == "" {
			return nil, "", wharf.Errorf(wharf.EINVALID, "`dataset_name` in the `datasets` clause must be specified.").WithField("datasets")
		}
	}
	limit, offset, err := regPageLimits(q, loggedModelsDefault, loggedModelsMax)
	if err != nil {
		return nil, "", err
	}
	spec := *loggedModelSearch
	spec.metric = func(cmp mlflowsearch.Comparison) (string, []any, error) { return loggedModelMetricSQL(q, cmp) }
	conds, args, err := db.regFilterSQL(&spec, q.Filter)
	if err != nil {
		return nil, "", err
	}
	if len(q.Datasets) > 0 && !hasMetricFilter(q.Filter) {
		ds, dsArgs := loggedMetricOnDatasets(q.Datasets)
		conds = append(conds, `EXISTS (`+loggedMetricRows+ds+`)`)
		args = append(args, dsArgs...)
	}
	order, orderArgs, err := loggedModelOrderSQL(q)
	if err != nil {
		return nil, "", err
	}
	var exps []any
	for _, id := range q.ExperimentIDs {
		// An id that cannot be one names no experiment, so it adds
		// nothing to the set searched.
		if n, ok := loggedModelExperiment(id); ok {
			exps = append(exps, n)
		}
	}
	out := []*wharf.LoggedModel{}
	c := db.reader()
	token := ""
	if len(exps) > 0 {
		conds = append([]string{"l.workspace = ?", "l.experiment_id IN (" + regPlaceholders(len(exps)) + ")"}, conds...)
		query := `SELECT ` + regPrefixColumns("l", loggedModelColumns) + ` FROM logged_models l WHERE ` +
			strings.Join(conds, " AND ") + ` ORDER BY ` + order + ` LIMIT ? OFFSET ?`
		all := append(append(append(append([]any{workspace}, exps...), args...), orderArgs...), limit+1, offset)
		err = eachRow(ctx, c, query, all, func(s interface{ Scan(...any) error }) error {
			m, err := scanLoggedModel(s)
			if err != nil {
				return err
			}
			out = append(out, m)
			return nil
		})
		if err != nil {
			return nil, "", wrapErr("search logged models", err)
		}
		token = regNextToken(len(out), limit, offset)
		out = out[:min(len(out), limit)]
		if err := fillLoggedModels(ctx, c, workspace, out); err != nil {
			return nil, "", wrapErr("search logged models", err)
		}
	}
	if len(out) == 0 {
		if err := mustWorkspace(ctx, c, workspace); err != nil {
			return nil, "", wrapErr("search logged models", err)
		}
	}
	return out, token, nil
}

// hasMetricFilter reports whether a logged-model filter compares a metric;
// one that does not parse has none (its error is reported elsewhere).
func hasMetricFilter(filter string) bool {
	cmps, _ := mlflowsearch.ParseFilter(mlflowsearch.LoggedModelsEntity, filter)
	for _, c := range cmps {
		if c.KeyType == mlflowsearch.KeyMetric {
			return true
		}
	}
	return false
}

func scanLoggedModel(s interface{ Scan(...any) error }) (*wharf.LoggedModel, error) {
	m := wharf.LoggedModel{Tags: map[string]string{}, Params: map[string]string{}}
	var exp int64
	err := s.Scan(&m.Workspace, &m.ID, &exp, &m.Name, &m.ArtifactURI, &m.Status, &m.StatusMessage,
		&m.CreatorID, &m.ModelType, &m.SourceRunID, &m.CreationTime, &m.LastUpdatedTime)
	m.ExperimentID = strconv.FormatInt(exp, 10)
	return &m, err
}

// fillLoggedModels loads the tags, params and metrics of models, all in one
// workspace, in batched queries.
func fillLoggedModels(ctx context.Context, c conn, workspace string, models []*wharf.LoggedModel) error {
	byID := map[string]*wharf.LoggedModel{}
	for _, m := range models {
		byID[m.ID] = m
	}
	for chunk := range slices.Chunk(models, regBatchArgs) {
		args := []any{workspace}
		for _, m := range chunk {
			args = append(args, m.ID)
		}
		where := ` WHERE workspace = ? AND model_id IN (` + regPlaceholders(len(chunk)) + `)`
		for table, field := range map[string]func(*wharf.LoggedModel) map[string]string{
			"logged_model_tags":   func(m *wharf.LoggedModel) map[string]string { return m.Tags },
			"logged_model_params": func(m *wharf.LoggedModel) map[string]string { return m.Params },
		} {
			err := eachRow(ctx, c, `SELECT model_id, key, value FROM `+table+where, args,
				func(s interface{ Scan(...any) error }) error {
					var id, k, v string
					if err := s.Scan(&id, &k, &v); err != nil {
						return err
					}
					field(byID[id])[k] = v
					return nil
				})
			if err != nil {
				return err
			}
		}
		err := eachRow(ctx, c, `SELECT model_id, key, value, timestamp, step, run_id, dataset_name, dataset_digest
			FROM logged_model_metrics`+where+` ORDER BY model_id, key, timestamp, step, run_id`, args,
			func(s interface{ Scan(...any) error }) error {
				mt := &wharf.Metric{}
				if err := s.Scan(&mt.ModelID, &mt.Key, &mt.Value, &mt.Timestamp, &mt.Step, &mt.RunID,
					&mt.DatasetName, &mt.DatasetDigest); err != nil {
					return err
				}
				m := byID[mt.ModelID]
				m.Metrics = append(m.Metrics, mt)
				return nil
			})
		if err != nil {
			return err
		}
	}
	return nil
}

// regSortedKeys returns m's keys in order, so that a transaction writes rows
// in the same order whatever the map's iteration, which keeps concurrent
// writers from deadlocking on each other's rows.
func regSortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
