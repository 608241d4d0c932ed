package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wharfml/wharf"
)

var _ wharf.TrackingService = (*DB)(nil)

// MLflow's limits on what is logged, in characters.
const (
	maxEntityKeyLength     = 250
	maxParamValueLength    = 6000
	maxTagValueLength      = 8000
	maxExperimentTagLength = 5000
)

// defaultExperimentName is the name of experiment "0" in every workspace.
const defaultExperimentName = "Default"

const experimentColumns = `workspace, experiment_id, name, artifact_location, lifecycle_stage,
	creation_time, last_update_time`

// parseExperimentID converts an MLflow experiment id into the stored
// integer. ok is false for anything that cannot be one, which therefore
// names no experiment.
func parseExperimentID(id string) (int64, bool) {
	if id == "" || (len(id) > 1 && id[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil && n >= 0
}

func experimentNotFound(id string) error {
	return wharf.Errorf(wharf.ENOTFOUND, "No Experiment with id=%s exists", id)
}

func experimentNotActive(id string, stage string) error {
	return wharf.Errorf(wharf.EINVALID,
		"The experiment %s must be in the 'active' state. Current state is %s.", id, stage)
}

// defaultArtifactLocation is where an experiment's artifacts go when its
// creator names no location: the server's artifact proxy, which serves
// the workspace's artifact tree.
func defaultArtifactLocation(id int64) string {
	return "mlflow-artifacts:/" + strconv.FormatInt(id, 10)
}

// ensureDefaultExperiment creates experiment "0" in the workspace unless it
// exists. A read comes first so that only the first call in a workspace
// writes; insert-or-nothing makes concurrent first calls agree. ENOTFOUND
// when the workspace does not exist.
func (db *DB) ensureDefaultExperiment(ctx context.Context, workspace string) (created bool, err error) {
	var one int
	err = db.reader().queryRow(ctx, `SELECT 1 FROM experiments
		WHERE workspace = ? AND experiment_id = 0`, workspace).Scan(&one)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, wrapErr("default experiment", err)
	}
	err = db.inTx(ctx, func(c conn) error {
		var err error
		created, err = db.insertDefaultExperiment(ctx, c, workspace)
		return err
	})
	return created, err
}

// insertDefaultExperiment creates experiment "0" within c's transaction
// unless it exists, reporting whether it did.
func (db *DB) insertDefaultExperiment(ctx context.Context, c conn, workspace string) (bool, error) {
	now := db.now().UnixMilli()
	created, err := inserted(ctx, c, `INSERT INTO experiments (`+experimentColumns+`)
		VALUES (?, 0, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		workspace, defaultExperimentName, defaultArtifactLocation(0), wharf.LifecycleActive, now, now)
	if db.isForeignKey(err) {
		return false, wharf.Errorf(wharf.ENOTFOUND, "workspace %q not found", workspace)
	}
	return created, wrapErr("default experiment", err)
}

// CreateExperiment stores e with the next free id of its workspace (max + 1,
// allocated inside the transaction) and sets its ID, times, lifecycle and,
// when empty, artifact location.
func (db *DB) CreateExperiment(ctx context.Context, e *wharf.Experiment) error {
	if strings.TrimSpace(e.Name) == "" {
		return wharf.Errorf(wharf.EINVALID, "Invalid experiment name: '%s'", e.Name)
	}
	for k, v := range e.Tags {
		if err := validateExperimentTag(k, v); err != nil {
			return err
		}
	}
	now := db.now().UnixMilli()
	var id int64
	var location string
	err := db.inTx(ctx, func(c conn) error {
		// Experiment "0" first, so that it keeps both its id and its name.
		if _, err := db.insertDefaultExperiment(ctx, c, e.Workspace); err != nil {
			return err
		}
		var one int
		err := c.queryRow(ctx, `SELECT 1 FROM experiments WHERE workspace = ? AND name = ?`,
			e.Workspace, e.Name).Scan(&one)
		if err == nil {
			return experimentExists(e.Name)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// On PostgreSQL a concurrent create may take the same id; the
		// insert then does nothing and the next round reads the new max.
		for range 16 {
			if err := c.queryRow(ctx, `SELECT COALESCE(MAX(experiment_id), 0) + 1 FROM experiments
				WHERE workspace = ?`, e.Workspace).Scan(&id); err != nil {
				return err
			}
			location = e.ArtifactLocation
			if location == "" {
				location = defaultArtifactLocation(id)
			}
			created, err := inserted(ctx, c, `INSERT INTO experiments (`+experimentColumns+`)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace, experiment_id) DO NOTHING`,
				e.Workspace, id, e.Name, location, wharf.LifecycleActive, now, now)
			if err != nil {
				return err
			}
			if created {
				return db.insertExperimentTags(ctx, c, e.Workspace, id, e.Tags)
			}
		}
		return wharf.Errorf(wharf.EUNAVAILABLE, "too many experiments were created at the same time; retry")
	})
	if db.isUnique(err) {
		// Lost a race with a concurrent create of the same name.
		return experimentExists(e.Name)
	}
	if err != nil {
		return wrapErr("create experiment", err)
	}
	e.ID = strconv.FormatInt(id, 10)
	e.ArtifactLocation = location
	e.LifecycleStage = wharf.LifecycleActive
	e.CreationTime, e.LastUpdateTime = now, now
	if e.Tags == nil {
		e.Tags = map[string]string{}
	}
	return nil
}

func experimentExists(name string) error {
	return wharf.Errorf(wharf.ECONFLICT, "Experiment(name=%s) already exists", name)
}

func (db *DB) insertExperimentTags(ctx context.Context, c conn, workspace string, id int64, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	args := make([]any, 0, 4*len(tags))
	for _, k := range sortedMapKeys(tags) {
		args = append(args, workspace, id, k, tags[k])
	}
	_, err := c.exec(ctx, `INSERT INTO experiment_tags (workspace, experiment_id, key, value)
		VALUES `+sqlRows(len(tags), 4)+`
		ON CONFLICT (workspace, experiment_id, key) DO UPDATE SET value = excluded.value`, args...)
	return err
}

// FindExperiment returns the experiment with id, deleted or not.
func (db *DB) FindExperiment(ctx context.Context, workspace, id string) (*wharf.Experiment, error) {
	n, ok := parseExperimentID(id)
	if !ok {
		return nil, experimentNotFound(id)
	}
	e, err := db.findExperiment(ctx, db.reader(), workspace, n)
	if err == nil || n != 0 || !wharf.IsNotFound(err) {
		return e, err
	}
	// Experiment "0" appears on first use.
	if _, err := db.ensureDefaultExperiment(ctx, workspace); err != nil {
		return nil, err
	}
	return db.findExperiment(ctx, db.reader(), workspace, 0)
}

func (db *DB) findExperiment(ctx context.Context, c conn, workspace string, id int64) (*wharf.Experiment, error) {
	row := c.queryRow(ctx, `SELECT `+experimentColumns+` FROM experiments
		WHERE workspace = ? AND experiment_id = ?`, workspace, id)
	e, err := scanExperiment(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, experimentNotFound(strconv.FormatInt(id, 10))
	}
	if err != nil {
		return nil, wrapErr("find experiment", err)
	}
	if err := loadExperimentTags(ctx, c, workspace, []*wharf.Experiment{e}); err != nil {
		return nil, err
	}
	return e, nil
}

// FindExperimentByName returns the experiment called name, deleted or not.
func (db *DB) FindExperimentByName(ctx context.Context, workspace, name string) (*wharf.Experiment, error) {
	for range 2 {
		row := db.reader().queryRow(ctx, `SELECT `+experimentColumns+` FROM experiments
			WHERE workspace = ? AND name = ?`, workspace, name)
		e, err := scanExperiment(row)
		if err == nil {
			if err := loadExperimentTags(ctx, db.reader(), workspace, []*wharf.Experiment{e}); err != nil {
				return nil, err
			}
			return e, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, wrapErr("find experiment", err)
		}
		// The name may be that of experiment "0", not yet created.
		created, err := db.ensureDefaultExperiment(ctx, workspace)
		if err != nil {
			return nil, err
		}
		if !created {
			break
		}
	}
	return nil, wharf.Errorf(wharf.ENOTFOUND, "Could not find experiment with name '%s'", name)
}

// RenameExperiment renames an active experiment; ECONFLICT if another
// experiment, deleted ones included, has the name.
func (db *DB) RenameExperiment(ctx context.Context, workspace, id, newName string) error {
	if strings.TrimSpace(newName) == "" {
		return wharf.Errorf(wharf.EINVALID, "Invalid experiment name: '%s'", newName)
	}
	n, ok := parseExperimentID(id)
	if !ok {
		return experimentNotFound(id)
	}
	if err := db.ensureDefaultIf(ctx, workspace, n); err != nil {
		return err
	}
	err := db.inTx(ctx, func(c conn) error {
		stage, err := experimentStage(ctx, c, workspace, n)
		if err != nil {
			return err
		}
		if stage != wharf.LifecycleActive {
			return wharf.Errorf(wharf.EINVALID, "Cannot rename a non-active experiment.")
		}
		var other int64
		err = c.queryRow(ctx, `SELECT experiment_id FROM experiments WHERE workspace = ? AND name = ?`,
			workspace, newName).Scan(&other)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case other == n:
			return nil
		default:
			return experimentExists(newName)
		}
		_, err = c.exec(ctx, `UPDATE experiments SET name = ?, last_update_time = ?
			WHERE workspace = ? AND experiment_id = ?`, newName, db.now().UnixMilli(), workspace, n)
		return err
	})
	if db.isUnique(err) {
		return experimentExists(newName)
	}
	return wrapErr("rename experiment", err)
}

// SetExperimentLifecycle deletes or restores an experiment together with
// all its runs, as MLflow does. Deleting takes an active experiment and
// restoring a deleted one; anything else is ENOTFOUND, MLflow's answer.
func (db *DB) SetExperimentLifecycle(ctx context.Context, workspace, id, stage string) error {
	if stage != wharf.LifecycleActive && stage != wharf.LifecycleDeleted {
		return wharf.Errorf(wharf.EINVALID, "Invalid lifecycle stage '%s'", stage)
	}
	n, ok := parseExperimentID(id)
	if !ok {
		return experimentNotFound(id)
	}
	if err := db.ensureDefaultIf(ctx, workspace, n); err != nil {
		return err
	}
	err := db.inTx(ctx, func(c conn) error {
		current, err := experimentStage(ctx, c, workspace, n)
		if err != nil {
			return err
		}
		if current == stage {
			return experimentNotFound(id)
		}
		if _, err := c.exec(ctx, `UPDATE experiments SET lifecycle_stage = ?, last_update_time = ?
			WHERE workspace = ? AND experiment_id = ?`, stage, db.now().UnixMilli(), workspace, n); err != nil {
			return err
		}
		_, err = c.exec(ctx, `UPDATE runs SET lifecycle_stage = ?
			WHERE workspace = ? AND experiment_id = ? AND lifecycle_stage <> ?`, stage, workspace, n, stage)
		return err
	})
	return wrapErr("set experiment lifecycle", err)
}

// SetExperimentTag sets a tag of an active experiment.
func (db *DB) SetExperimentTag(ctx context.Context, workspace, id, key, value string) error {
	if err := validateExperimentTag(key, value); err != nil {
		return err
	}
	n, ok := parseExperimentID(id)
	if !ok {
		return experimentNotFound(id)
	}
	if err := db.ensureDefaultIf(ctx, workspace, n); err != nil {
		return err
	}
	err := db.inTx(ctx, func(c conn) error {
		if err := activeExperiment(ctx, c, workspace, n); err != nil {
			return err
		}
		return db.insertExperimentTags(ctx, c, workspace, n, map[string]string{key: value})
	})
	return wrapErr("set experiment tag", err)
}

// DeleteExperimentTag removes a tag of an active experiment; ENOTFOUND if
// it has no such tag.
func (db *DB) DeleteExperimentTag(ctx context.Context, workspace, id, key string) error {
	n, ok := parseExperimentID(id)
	if !ok {
		return experimentNotFound(id)
	}
	if err := db.ensureDefaultIf(ctx, workspace, n); err != nil {
		return err
	}
	err := db.inTx(ctx, func(c conn) error {
		if err := activeExperiment(ctx, c, workspace, n); err != nil {
			return err
		}
		return mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "No tag with name: %s in experiment with id %s", key, id),
			`DELETE FROM experiment_tags
			WHERE workspace = ? AND experiment_id = ? AND key = ?`, workspace, n, key)
	})
	return wrapErr("delete experiment tag", err)
}

// ensureDefaultIf creates experiment "0" on first use when the call is
// about it.
func (db *DB) ensureDefaultIf(ctx context.Context, workspace string, id int64) error {
	if id != 0 {
		return nil
	}
	_, err := db.ensureDefaultExperiment(ctx, workspace)
	return err
}

// experimentStage returns the lifecycle stage of an experiment.
func experimentStage(ctx context.Context, c conn, workspace string, id int64) (string, error) {
	var stage string
	err := c.queryRow(ctx, `SELECT lifecycle_stage FROM experiments
		WHERE workspace = ? AND experiment_id = ?`, workspace, id).Scan(&stage)
	if errors.Is(err, sql.ErrNoRows) {
		return "", experimentNotFound(strconv.FormatInt(id, 10))
	}
	return stage, err
}

// activeExperiment fails unless the experiment exists and is active.
func activeExperiment(ctx context.Context, c conn, workspace string, id int64) error {
	stage, err := experimentStage(ctx, c, workspace, id)
	if err != nil {
		return err
	}
	if stage != wharf.LifecycleActive {
		return experimentNotActive(strconv.FormatInt(id, 10), stage)
	}
	return nil
}

func validateExperimentTag(key, value string) error {
	if err := validateEntityKey("Tag key", key); err != nil {
		return err
	}
	return validateEntityLength("Tag value", value, maxExperimentTagLength)
}

// validateEntityKey checks the name of a param, tag or metric.
func validateEntityKey(what, key string) error {
	if key == "" {
		return wharf.Errorf(wharf.EINVALID, "%s must not be empty", what)
	}
	return validateEntityLength(what, key, maxEntityKeyLength)
}

// validateEntityLength fails when value is longer than limit characters, in
// MLflow's words.
func validateEntityLength(what, value string, limit int) error {
	if len(value) <= limit {
		return nil // fewer bytes than the limit is fewer characters too
	}
	if n := utf8.RuneCountInString(value); n > limit {
		shown := value
		if len(shown) > 250 {
			shown = string([]rune(shown)[:min(250, n)]) + "..."
		}
		return wharf.Errorf(wharf.EINVALID, "%s '%s' had length %d, which exceeded length limit of %d",
			what, shown, n, limit)
	}
	return nil
}

func scanExperiment(s interface{ Scan(...any) error }) (*wharf.Experiment, error) {
	var e wharf.Experiment
	var id int64
	if err := s.Scan(&e.Workspace, &id, &e.Name, &e.ArtifactLocation, &e.LifecycleStage,
		&e.CreationTime, &e.LastUpdateTime); err != nil {
		return nil, err
	}
	e.ID = strconv.FormatInt(id, 10)
	e.Tags = map[string]string{}
	return &e, nil
}

// loadExperimentTags fills the tags of experiments, all of workspace, in
// batched queries.
func loadExperimentTags(ctx context.Context, c conn, workspace string, exps []*wharf.Experiment) error {
	byID := make(map[int64]*wharf.Experiment, len(exps))
	ids := make([]any, 0, len(exps))
	for _, e := range exps {
		n, _ := strconv.ParseInt(e.ID, 10, 64)
		byID[n] = e
		ids = append(ids, n)
	}
	for chunk := range sqlChunks(ids, loadChunk) {
		err := eachRow(ctx, c, `SELECT experiment_id, key, value FROM experiment_tags
			WHERE workspace = ? AND experiment_id IN (`+sqlMarks(len(chunk))+`)`,
			append([]any{workspace}, chunk...),
			func(s interface{ Scan(...any) error }) error {
				var id int64
				var k, v string
				if err := s.Scan(&id, &k, &v); err != nil {
					return err
				}
				if e := byID[id]; e != nil {
					e.Tags[k] = v
				}
				return nil
			})
		if err != nil {
			return wrapErr("load experiment tags", err)
		}
	}
	return nil
}
