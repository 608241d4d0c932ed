package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/wharfml/wharf"
)

var (
	_ wharf.RegistryService = (*DB)(nil)
	_ wharf.ArtifactService = (*DB)(nil)
)

const registeredModelColumns = `workspace, name, description, user_id, creation_time, last_updated_time`

const modelVersionColumns = `workspace, name, version, source, run_id, run_link, model_id,
	description, user_id, status, status_message, current_stage, creation_time,
	last_updated_time, type, asset_version, content_digest`

// Messages follow MLflow's server word for word: the mlflow client shows
// them as they are, and scripts match on them.

func errModelNotFound(name string) error {
	return wharf.Errorf(wharf.ENOTFOUND, "Registered Model with name=%s not found", name)
}

func errModelExists(name string) error {
	return wharf.Errorf(wharf.ECONFLICT, "Registered Model (name=%s) already exists.", name)
}

func errVersionNotFound(name string, version int64) error {
	return wharf.Errorf(wharf.ENOTFOUND, "Model Version (name=%s, version=%d) not found", name, version)
}

func errRegistryWorkspace(workspace string) error {
	return wharf.Errorf(wharf.ENOTFOUND, "workspace %q not found", workspace)
}

// registryMillis is the store's clock in MLflow's unit.
func (db *DB) registryMillis() int64 { return db.now().UnixMilli() }

// modelStages are MLflow's model version stages in the order latest_versions
// lists them.
var modelStages = []string{wharf.StageNone, wharf.StageStaging, wharf.StageProduction, wharf.StageArchived}

// canonicalModelStage returns the stage spelled as MLflow stores it; clients may
// send any capitalisation.
func canonicalModelStage(stage string) (string, error) {
	for _, s := range modelStages {
		if strings.EqualFold(s, stage) {
			return s, nil
		}
	}
	return "", wharf.Errorf(wharf.EINVALID,
		"Invalid Model Version stage: %s. Value must be one of None, Staging, Production, Archived.", stage).WithField("stage")
}

func modelStageRank(stage string) int {
	if i := slices.Index(modelStages, stage); i >= 0 {
		return i
	}
	return len(modelStages)
}

var (
	modelAliasRE        = regexp.MustCompile(`^[\w\-]*$`)
	modelVersionAliasRE = regexp.MustCompile(`^[vV]\d+$`)
)

// validateModelAlias applies MLflow's alias rules. "latest" and "v<number>" are
// reserved because model URIs resolve them (models:/m@latest, models:/m/v3
// style references), so an alias spelled that way would be ambiguous.
func validateModelAlias(alias string) error {
	switch {
	case alias == "":
		return wharf.Errorf(wharf.EINVALID, "Registered model alias name cannot be empty.").WithField("alias")
	case !modelAliasRE.MatchString(alias):
		return wharf.Errorf(wharf.EINVALID,
			"Invalid alias name: '%s'. Names may only contain alphanumerics, underscores (_) and dashes (-).", alias).WithField("alias")
	case len(alias) > 255:
		return wharf.Errorf(wharf.EINVALID,
			"Registered model alias name exceeds the maximum length of 255").WithField("alias")
	case strings.EqualFold(alias, "latest"):
		return wharf.Errorf(wharf.EINVALID, "'latest' alias name (case insensitive) is reserved.").WithField("alias")
	case modelVersionAliasRE.MatchString(alias):
		return wharf.Errorf(wharf.EINVALID, "Version alias name '%s' is reserved.", alias).WithField("alias")
	}
	return nil
}

func validateModelName(name string) error {
	if name == "" {
		return wharf.Errorf(wharf.EINVALID, "Registered model name cannot be empty.").WithField("name")
	}
	return nil
}

func validateRegistryTagKey(key string) error {
	if key == "" {
		return wharf.Errorf(wharf.EINVALID, "Tag key cannot be empty.").WithField("key")
	}
	return nil
}

// CreateRegisteredModel creates m with its tags and sets its times.
func (db *DB) CreateRegisteredModel(ctx context.Context, m *wharf.RegisteredModel) error {
	if err := validateModelName(m.Name); err != nil {
		return err
	}
	for k := range m.Tags {
		if err := validateRegistryTagKey(k); err != nil {
			return err
		}
	}
	now := db.registryMillis()
	err := db.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `INSERT INTO registered_models (`+registeredModelColumns+`, last_version)
			VALUES (?, ?, ?, ?, ?, ?, 0)`,
			m.Workspace, m.Name, m.Description, m.UserID, now, now); err != nil {
			return err
		}
		for k, v := range m.Tags {
			if _, err := c.exec(ctx, `INSERT INTO registered_model_tags (workspace, name, key, value)
				VALUES (?, ?, ?, ?)`, m.Workspace, m.Name, k, v); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case err == nil:
	case db.isUnique(err):
		return errModelExists(m.Name)
	case db.isForeignKey(err):
		return errRegistryWorkspace(m.Workspace)
	default:
		return wrapErr("create registered model", err)
	}
	m.CreationTime, m.LastUpdatedTime = now, now
	if m.Tags == nil {
		m.Tags = map[string]string{}
	}
	m.Aliases = map[string]int64{}
	m.LatestVersions = []*wharf.ModelVersion{}
	return nil
}

// FindRegisteredModel returns the model with its tags, aliases and newest
// version per stage.
func (db *DB) FindRegisteredModel(ctx context.Context, workspace, name string) (*wharf.RegisteredModel, error) {
	m, err := loadRegisteredModel(ctx, db.reader(), workspace, name)
	return m, wrapErr("find registered model", err)
}

func loadRegisteredModel(ctx context.Context, c conn, workspace, name string) (*wharf.RegisteredModel, error) {
	m, err := scanRegisteredModel(c.queryRow(ctx, `SELECT `+registeredModelColumns+`
		FROM registered_models WHERE workspace = ? AND name = ?`, workspace, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errModelNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	if err := fillRegisteredModels(ctx, c, workspace, []*wharf.RegisteredModel{m}); err != nil {
		return nil, err
	}
	return m, nil
}

// RenameRegisteredModel renames the model and moves its versions, tags and
// aliases with it, in one transaction. The new row is inserted before the
// children move and the old one deleted after, so the foreign keys hold at
// every statement.
func (db *DB) RenameRegisteredModel(ctx context.Context, workspace, name, newName string) (*wharf.RegisteredModel, error) {
	if err := validateModelName(newName); err != nil {
		return nil, err
	}
	now := db.registryMillis()
	var m *wharf.RegisteredModel
	err := db.inTx(ctx, func(c conn) error {
		if err := touchRegisteredModel(ctx, c, workspace, name, now); err != nil {
			return err
		}
		if newName != name {
			if _, err := c.exec(ctx, `INSERT INTO registered_models (`+registeredModelColumns+`, last_version)
				SELECT workspace, ?, description, user_id, creation_time, last_updated_time, last_version
				FROM registered_models WHERE workspace = ? AND name = ?`,
				newName, workspace, name); err != nil {
				if db.isUnique(err) {
					return errModelExists(newName)
				}
				return err
			}
			// Versions first: with foreign keys on, their tags and
			// aliases follow by cascade and the next two updates find
			// nothing left to move; without, those updates move them.
			for _, table := range []string{"model_versions", "model_version_tags",
				"registered_model_aliases", "registered_model_tags"} {
				if _, err := c.exec(ctx, `UPDATE `+table+` SET name = ? WHERE workspace = ? AND name = ?`,
					newName, workspace, name); err != nil {
					return err
				}
			}
			if _, err := c.exec(ctx, `DELETE FROM registered_models WHERE workspace = ? AND name = ?`,
				workspace, name); err != nil {
				return err
			}
		}
		var err error
		m, err = loadRegisteredModel(ctx, c, workspace, newName)
		return err
	})
	if err != nil {
		return nil, wrapErr("rename registered model", err)
	}
	return m, nil
}

// touchRegisteredModel sets the model's last update time, or returns
// ENOTFOUND. It doubles as the model's row lock: on PostgreSQL the update
// holds the row until commit, so version-numbering, archiving and deleting
// transactions on one model run one after the other; SQLite's write
// transaction already excludes every other writer. (SQLite has no SELECT
// ... FOR UPDATE, hence an update.)
func touchRegisteredModel(ctx context.Context, c conn, workspace, name string, now int64) error {
	return mustChange(ctx, c, errModelNotFound(name),
		`UPDATE registered_models SET last_updated_time = ?
		WHERE workspace = ? AND name = ?`, now, workspace, name)
}

// UpdateRegisteredModel sets the model's description.
func (db *DB) UpdateRegisteredModel(ctx context.Context, workspace, name, description string) (*wharf.RegisteredModel, error) {
	now := db.registryMillis()
	var m *wharf.RegisteredModel
	err := db.inTx(ctx, func(c conn) error {
		err := mustChange(ctx, c, errModelNotFound(name),
			`UPDATE registered_models SET description = ?, last_updated_time = ?
			WHERE workspace = ? AND name = ?`, description, now, workspace, name)
		if err != nil {
			return err
		}
		m, err = loadRegisteredModel(ctx, c, workspace, name)
		return err
	})
	if err != nil {
		return nil, wrapErr("update registered model", err)
	}
	return m, nil
}

// DeleteRegisteredModel deletes the model with its versions, tags and
// aliases. Children are deleted explicitly, as DeleteWorkspace does, so the
// result does not hinge on the foreign keys' cascade.
func (db *DB) DeleteRegisteredModel(ctx context.Context, workspace, name string) error {
	err := db.inTx(ctx, func(c conn) error {
		if err := touchRegisteredModel(ctx, c, workspace, name, db.registryMillis()); err != nil {
			return err
		}
		for _, table := range []string{"registered_model_aliases", "model_version_tags",
			"model_versions", "registered_model_tags", "registered_models"} {
			if _, err := c.exec(ctx, `DELETE FROM `+table+` WHERE workspace = ? AND name = ?`,
				workspace, name); err != nil {
				return err
			}
		}
		return nil
	})
	return wrapErr("delete registered model", err)
}

// SetRegisteredModelTag sets (or replaces) one tag.
func (db *DB) SetRegisteredModelTag(ctx context.Context, workspace, name, key, value string) error {
	if err := validateRegistryTagKey(key); err != nil {
		return err
	}
	// The foreign key doubles as the existence check, race-free.
	_, err := db.writer().exec(ctx, `INSERT INTO registered_model_tags (workspace, name, key, value)
		VALUES (?, ?, ?, ?) ON CONFLICT (workspace, name, key) DO UPDATE SET value = excluded.value`,
		workspace, name, key, value)
	if db.isForeignKey(err) {
		return errModelNotFound(name)
	}
	return wrapErr("set registered model tag", err)
}

// DeleteRegisteredModelTag removes one tag; a tag that is not set is no
// error, as in MLflow, but the model must exist.
func (db *DB) DeleteRegisteredModelTag(ctx context.Context, workspace, name, key string) error {
	err := db.inTx(ctx, func(c conn) error {
		if err := mustRegisteredModel(ctx, c, workspace, name); err != nil {
			return err
		}
		_, err := c.exec(ctx, `DELETE FROM registered_model_tags WHERE workspace = ? AND name = ? AND key = ?`,
			workspace, name, key)
		return err
	})
	return wrapErr("delete registered model tag", err)
}

func mustRegisteredModel(ctx context.Context, c conn, workspace, name string) error {
	var one int
	err := c.queryRow(ctx, `SELECT 1 FROM registered_models WHERE workspace = ? AND name = ?`,
		workspace, name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return errModelNotFound(name)
	}
	return err
}

func mustModelVersion(ctx context.Context, c conn, workspace, name string, version int64) error {
	var one int
	err := c.queryRow(ctx, `SELECT 1 FROM model_versions WHERE workspace = ? AND name = ? AND version = ?`,
		workspace, name, version).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return errVersionNotFound(name, version)
	}
	return err
}

// CreateModelVersion registers v under the next version number. The
// number comes from the model's last_version counter, incremented in the
// same transaction: the increment locks the model's row, so concurrent
// registrations are numbered one after the other without gaps or
// duplicates, and a deleted version's number is never reused (MLflow keeps
// deleted versions' numbers too). Status is READY at once: the content is
// already in the artifact store, and the mlflow client polls until READY.
func (db *DB) CreateModelVersion(ctx context.Context, v *wharf.ModelVersion) error {
	if err := validateModelName(v.Name); err != nil {
		return err
	}
	typ := v.Type
	if typ == "" {
		typ = wharf.ModelTypeMLflow
	}
	if typ != wharf.ModelTypeMLflow && typ != wharf.ModelTypeCustom {
		return wharf.Errorf(wharf.EINVALID, "model type %q is not one of %s, %s",
			typ, wharf.ModelTypeMLflow, wharf.ModelTypeCustom).WithField("type")
	}
	for k := range v.Tags {
		if err := validateRegistryTagKey(k); err != nil {
			return err
		}
	}
	number, assetVersion, err := splitAssetVersion(v.AssetVersion)
	if err != nil {
		return err
	}
	now := db.registryMillis()
	var version int64
	err = db.inTx(ctx, func(c conn) error {
		var err error
		if number > 0 {
			version, err = claimModelVersion(ctx, c, v.Workspace, v.Name, number, now)
		} else {
			err = c.queryRow(ctx, `UPDATE registered_models
				SET last_version = last_version + 1, last_updated_time = ?
				WHERE workspace = ? AND name = ? RETURNING last_version`,
				now, v.Workspace, v.Name).Scan(&version)
		}
		if errors.Is(err, sql.ErrNoRows) {
			return errModelNotFound(v.Name)
		}
		if err != nil {
			return err
		}
		if assetVersion != "" {
			var one int
			err := c.queryRow(ctx, `SELECT 1 FROM model_versions WHERE workspace = ? AND name = ? AND asset_version = ?`,
				v.Workspace, v.Name, assetVersion).Scan(&one)
			if err == nil {
				return wharf.Errorf(wharf.ECONFLICT, "model %s version %s already exists", v.Name, assetVersion).WithField("version")
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if v.RunID == "" && v.ModelID != "" {
			// The 3.x client registers a logged model by its id alone; the
			// version's lineage is the run that logged it.
			err := c.queryRow(ctx, `SELECT source_run_id FROM logged_models
				WHERE workspace = ? AND model_id = ?`, v.Workspace, v.ModelID).Scan(&v.RunID)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if _, err := c.exec(ctx, `INSERT INTO model_versions (`+modelVersionColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.Workspace, v.Name, version, v.Source, v.RunID, v.RunLink, v.ModelID,
			v.Description, v.UserID, wharf.VersionReady, v.StatusMessage, wharf.StageNone,
			now, now, typ, assetVersion, v.ContentDigest); err != nil {
			return err
		}
		for k, val := range v.Tags {
			if _, err := c.exec(ctx, `INSERT INTO model_version_tags (workspace, name, version, key, value)
				VALUES (?, ?, ?, ?, ?)`, v.Workspace, v.Name, version, k, val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrapErr("create model version", err)
	}
	v.Version = version
	v.AssetVersion = assetVersion
	v.Status = wharf.VersionReady
	v.CurrentStage = wharf.StageNone
	v.CreationTime, v.LastUpdatedTime = now, now
	v.Type = typ
	if v.Tags == nil {
		v.Tags = map[string]string{}
	}
	v.Aliases = []string{}
	return nil
}

// splitAssetVersion reads the version a version is to be registered
// under: a whole number (written as numbers are, "7" not "07") is its
// number, any other valid string its az ml name, with the number still to
// be taken.
func splitAssetVersion(s string) (number int64, asset string, err error) {
	if s == "" {
		return 0, "", nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && strconv.FormatInt(n, 10) == s {
		return n, "", nil
	}
	if err := wharf.ValidateAssetVersion("version", s); err != nil {
		return 0, "", err
	}
	return 0, s, nil
}

// claimModelVersion takes version number n of a model, which must be
// free, and moves the model's counter past it, so later versions number on
// from the highest. The counter's update locks the model's row first, as
// CreateModelVersion's increment does.
func claimModelVersion(ctx context.Context, c conn, workspace, name string, n, now int64) (int64, error) {
	var last int64
	err := c.queryRow(ctx, `UPDATE registered_models
		SET last_version = CASE WHEN last_version < ? THEN ? ELSE last_version END, last_updated_time = ?
		WHERE workspace = ? AND name = ? RETURNING last_version`,
		n, n, now, workspace, name).Scan(&last)
	if err != nil {
		return 0, err
	}
	var one int
	err = c.queryRow(ctx, `SELECT 1 FROM model_versions WHERE workspace = ? AND name = ? AND version = ?`,
		workspace, name, n).Scan(&one)
	if err == nil {
		return 0, wharf.Errorf(wharf.ECONFLICT, "model %s version %d already exists", name, n).WithField("version")
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	return n, nil
}

// FindModelAssetVersion implements wharf.RegistryService.
func (db *DB) FindModelAssetVersion(ctx context.Context, workspace, name, version string) (*wharf.ModelVersion, error) {
	if n, err := strconv.ParseInt(version, 10, 64); err == nil && n > 0 {
		return db.FindModelVersion(ctx, workspace, name, n)
	}
	c := db.reader()
	v, err := scanModelVersion(c.queryRow(ctx, `SELECT `+modelVersionColumns+` FROM model_versions
		WHERE workspace = ? AND name = ? AND asset_version = ?`, workspace, name, version))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "Model Version (name=%s, version=%s) not found", name, version)
	}
	if err != nil {
		return nil, wrapErr("find model version", err)
	}
	return db.FindModelVersion(ctx, workspace, name, v.Version)
}

// FindModelVersion returns one version with its tags and aliases.
func (db *DB) FindModelVersion(ctx context.Context, workspace, name string, version int64) (*wharf.ModelVersion, error) {
	v, err := loadModelVersion(ctx, db.reader(), workspace, name, version)
	return v, wrapErr("find model version", err)
}

func loadModelVersion(ctx context.Context, c conn, workspace, name string, version int64) (*wharf.ModelVersion, error) {
	v, err := scanModelVersion(c.queryRow(ctx, `SELECT `+modelVersionColumns+` FROM model_versions
		WHERE workspace = ? AND name = ? AND version = ?`, workspace, name, version))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errVersionNotFound(name, version)
	}
	if err != nil {
		return nil, err
	}
	if err := fillModelVersions(ctx, c, workspace, []*wharf.ModelVersion{v}); err != nil {
		return nil, err
	}
	return v, nil
}

// UpdateModelVersion sets a version's description.
func (db *DB) UpdateModelVersion(ctx context.Context, workspace, name string, version int64, description string) (*wharf.ModelVersion, error) {
	now := db.registryMillis()
	var v *wharf.ModelVersion
	err := db.inTx(ctx, func(c conn) error {
		err := mustChange(ctx, c, errVersionNotFound(name, version),
			`UPDATE model_versions SET description = ?, last_updated_time = ?
			WHERE workspace = ? AND name = ? AND version = ?`, description, now, workspace, name, version)
		if err != nil {
			return err
		}
		v, err = loadModelVersion(ctx, c, workspace, name, version)
		return err
	})
	if err != nil {
		return nil, wrapErr("update model version", err)
	}
	return v, nil
}

// DeleteModelVersion deletes a version with its tags and the aliases that
// point at it.
func (db *DB) DeleteModelVersion(ctx context.Context, workspace, name string, version int64) error {
	err := db.inTx(ctx, func(c conn) error {
		if err := touchRegisteredModel(ctx, c, workspace, name, db.registryMillis()); err != nil {
			if wharf.IsNotFound(err) {
				return errVersionNotFound(name, version)
			}
			return err
		}
		for _, table := range []string{"registered_model_aliases", "model_version_tags"} {
			if _, err := c.exec(ctx, `DELETE FROM `+table+` WHERE workspace = ? AND name = ? AND version = ?`,
				workspace, name, version); err != nil {
				return err
			}
		}
		return mustChange(ctx, c, errVersionNotFound(name, version),
			`DELETE FROM model_versions WHERE workspace = ? AND name = ? AND version = ?`,
			workspace, name, version)
	})
	return wrapErr("delete model version", err)
}

// TransitionModelVersionStage moves a version to stage. With
// archiveExisting, the model's other versions in that stage move to
// Archived in the same transaction; as in MLflow, that is only allowed for
// the active stages, Staging and Production.
func (db *DB) TransitionModelVersionStage(ctx context.Context, workspace, name string, version int64, stage string, archiveExisting bool) (*wharf.ModelVersion, error) {
	stage, err := canonicalModelStage(stage)
	if err != nil {
		return nil, err
	}
	if archiveExisting && stage != wharf.StageStaging && stage != wharf.StageProduction {
		return nil, wharf.Errorf(wharf.EINVALID,
			"Model version transition cannot archive existing model versions because '%s' is not an Active stage. Valid stages are ['Staging', 'Production']",
			stage).WithField("archive_existing_versions")
	}
	now := db.registryMillis()
	var v *wharf.ModelVersion
	err = db.inTx(ctx, func(c conn) error {
		// The model's row lock makes two concurrent transitions into one
		// stage see each other, so archiving cannot leave both in it.
		if err := touchRegisteredModel(ctx, c, workspace, name, now); err != nil {
			if wharf.IsNotFound(err) {
				return errVersionNotFound(name, version)
			}
			return err
		}
		err := mustChange(ctx, c, errVersionNotFound(name, version),
			`UPDATE model_versions SET current_stage = ?, last_updated_time = ?
			WHERE workspace = ? AND name = ? AND version = ?`, stage, now, workspace, name, version)
		if err != nil {
			return err
		}
		if archiveExisting {
			if _, err := c.exec(ctx, `UPDATE model_versions SET current_stage = ?, last_updated_time = ?
				WHERE workspace = ? AND name = ? AND current_stage = ? AND version <> ?`,
				wharf.StageArchived, now, workspace, name, stage, version); err != nil {
				return err
			}
		}
		v, err = loadModelVersion(ctx, c, workspace, name, version)
		return err
	})
	if err != nil {
		return nil, wrapErr("transition model version stage", err)
	}
	return v, nil
}

// LatestModelVersions returns the newest version in each stage of stageFilter
// (every stage when it is empty), in the order None, Staging, Production,
// Archived; stages without versions are left out.
func (db *DB) LatestModelVersions(ctx context.Context, workspace, name string, stageFilter []string) ([]*wharf.ModelVersion, error) {
	want := map[string]bool{}
	for _, s := range stageFilter {
		cs, err := canonicalModelStage(s)
		if err != nil {
			return nil, err
		}
		want[cs] = true
	}
	m, err := loadRegisteredModel(ctx, db.reader(), workspace, name)
	if err != nil {
		return nil, wrapErr("latest model versions", err)
	}
	out := []*wharf.ModelVersion{}
	for _, v := range m.LatestVersions {
		if len(want) == 0 || want[v.CurrentStage] {
			out = append(out, v)
		}
	}
	return out, nil
}

// SetModelVersionTag sets (or replaces) one tag of a version.
func (db *DB) SetModelVersionTag(ctx context.Context, workspace, name string, version int64, key, value string) error {
	if err := validateRegistryTagKey(key); err != nil {
		return err
	}
	_, err := db.writer().exec(ctx, `INSERT INTO model_version_tags (workspace, name, version, key, value)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace, name, version, key) DO UPDATE SET value = excluded.value`,
		workspace, name, version, key, value)
	if db.isForeignKey(err) {
		return errVersionNotFound(name, version)
	}
	return wrapErr("set model version tag", err)
}

// DeleteModelVersionTag removes one tag of a version; the version must
// exist, the tag need not.
func (db *DB) DeleteModelVersionTag(ctx context.Context, workspace, name string, version int64, key string) error {
	err := db.inTx(ctx, func(c conn) error {
		if err := mustModelVersion(ctx, c, workspace, name, version); err != nil {
			return err
		}
		_, err := c.exec(ctx, `DELETE FROM model_version_tags
			WHERE workspace = ? AND name = ? AND version = ? AND key = ?`, workspace, name, version, key)
		return err
	})
	return wrapErr("delete model version tag", err)
}

// SetModelAlias points alias at version, moving it if it pointed
// elsewhere.
func (db *DB) SetModelAlias(ctx context.Context, workspace, name, alias string, version int64) error {
	if err := validateModelAlias(alias); err != nil {
		return err
	}
	err := db.inTx(ctx, func(c conn) error {
		if err := mustRegisteredModel(ctx, c, workspace, name); err != nil {
			return err
		}
		if err := mustModelVersion(ctx, c, workspace, name, version); err != nil {
			return err
		}
		_, err := c.exec(ctx, `INSERT INTO registered_model_aliases (workspace, name, alias, version)
			VALUES (?, ?, ?, ?) ON CONFLICT (workspace, name, alias) DO UPDATE SET version = excluded.version`,
			workspace, name, alias, version)
		if db.isForeignKey(err) {
			// The version was deleted after the check above.
			return errVersionNotFound(name, version)
		}
		return err
	})
	return wrapErr("set model alias", err)
}

// DeleteModelAlias removes an alias; one that is not set is no error.
func (db *DB) DeleteModelAlias(ctx context.Context, workspace, name, alias string) error {
	err := db.inTx(ctx, func(c conn) error {
		if err := mustRegisteredModel(ctx, c, workspace, name); err != nil {
			return err
		}
		_, err := c.exec(ctx, `DELETE FROM registered_model_aliases WHERE workspace = ? AND name = ? AND alias = ?`,
			workspace, name, alias)
		return err
	})
	return wrapErr("delete model alias", err)
}

// FindModelVersionByAlias returns the version alias points at.
func (db *DB) FindModelVersionByAlias(ctx context.Context, workspace, name, alias string) (*wharf.ModelVersion, error) {
	c := db.reader()
	var version int64
	err := c.queryRow(ctx, `SELECT version FROM registered_model_aliases
		WHERE workspace = ? AND name = ? AND alias = ?`, workspace, name, alias).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		if err := mustRegisteredModel(ctx, c, workspace, name); err != nil {
			return nil, wrapErr("find model version by alias", err)
		}
		return nil, wharf.Errorf(wharf.ENOTFOUND, "Registered model alias %s not found.", alias)
	}
	if err != nil {
		return nil, wrapErr("find model version by alias", err)
	}
	v, err := loadModelVersion(ctx, c, workspace, name, version)
	return v, wrapErr("find model version by alias", err)
}

func scanRegisteredModel(s interface{ Scan(...any) error }) (*wharf.RegisteredModel, error) {
	m := wharf.RegisteredModel{
		Tags:           map[string]string{},
		Aliases:        map[string]int64{},
		LatestVersions: []*wharf.ModelVersion{},
	}
	err := s.Scan(&m.Workspace, &m.Name, &m.Description, &m.UserID, &m.CreationTime, &m.LastUpdatedTime)
	return &m, err
}

func scanModelVersion(s interface{ Scan(...any) error }) (*wharf.ModelVersion, error) {
	v := wharf.ModelVersion{Tags: map[string]string{}, Aliases: []string{}}
	err := s.Scan(&v.Workspace, &v.Name, &v.Version, &v.Source, &v.RunID, &v.RunLink, &v.ModelID,
		&v.Description, &v.UserID, &v.Status, &v.StatusMessage, &v.CurrentStage,
		&v.CreationTime, &v.LastUpdatedTime, &v.Type, &v.AssetVersion, &v.ContentDigest)
	return &v, err
}

// regBatchArgs bounds the arguments of one batched lookup, well inside both
// engines' limits on bound parameters.
const regBatchArgs = 500

// regPlaceholders returns "?, ?, ..." for n arguments.
func regPlaceholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// fillRegisteredModels loads the tags, aliases and newest version per stage
// of models, all in one workspace, in batched queries rather than one per
// model.
func fillRegisteredModels(ctx context.Context, c conn, workspace string, models []*wharf.RegisteredModel) error {
	byName := map[string]*wharf.RegisteredModel{}
	for _, m := range models {
		byName[m.Name] = m
	}
	var latest []*wharf.ModelVersion
	for chunk := range slices.Chunk(models, regBatchArgs) {
		args := []any{workspace}
		for _, m := range chunk {
			args = append(args, m.Name)
		}
		in := `workspace = ? AND name IN (` + regPlaceholders(len(chunk)) + `)`
		err := eachRow(ctx, c, `SELECT name, key, value FROM registered_model_tags WHERE `+in, args,
			func(s interface{ Scan(...any) error }) error {
				var name, k, v string
				if err := s.Scan(&name, &k, &v); err != nil {
					return err
				}
				byName[name].Tags[k] = v
				return nil
			})
		if err != nil {
			return err
		}
		err = eachRow(ctx, c, `SELECT name, alias, version FROM registered_model_aliases WHERE `+in, args,
			func(s interface{ Scan(...any) error }) error {
				var name, alias string
				var version int64
				if err := s.Scan(&name, &alias, &version); err != nil {
					return err
				}
				byName[name].Aliases[alias] = version
				return nil
			})
		if err != nil {
			return err
		}
		// The newest version of each stage: one probe of
		// model_versions_stage per (model, stage).
		err = eachRow(ctx, c, `SELECT `+modelVersionColumns+` FROM model_versions v
			WHERE v.`+in+` AND v.version = (SELECT MAX(x.version) FROM model_versions x
				WHERE x.workspace = v.workspace AND x.name = v.name AND x.current_stage = v.current_stage)`,
			args, func(s interface{ Scan(...any) error }) error {
				v, err := scanModelVersion(s)
				if err != nil {
					return err
				}
				latest = append(latest, v)
				return nil
			})
		if err != nil {
			return err
		}
	}
	if err := fillModelVersions(ctx, c, workspace, latest); err != nil {
		return err
	}
	sort.Slice(latest, func(i, j int) bool {
		return modelStageRank(latest[i].CurrentStage) < modelStageRank(latest[j].CurrentStage)
	})
	for _, v := range latest {
		m := byName[v.Name]
		m.LatestVersions = append(m.LatestVersions, v)
	}
	return nil
}

// fillModelVersions loads the tags and aliases of versions, all in one
// workspace. Lookups are batched as (name = ? AND version IN (...)) groups,
// which both engines answer from the primary key or the alias index.
func fillModelVersions(ctx context.Context, c conn, workspace string, versions []*wharf.ModelVersion) error {
	type key struct {
		name    string
		version int64
	}
	byKey := map[key]*wharf.ModelVersion{}
	var names []string
	byName := map[string][]int64{}
	for _, v := range versions {
		byKey[key{v.Name, v.Version}] = v
		if _, ok := byName[v.Name]; !ok {
			names = append(names, v.Name)
		}
		byName[v.Name] = append(byName[v.Name], v.Version)
	}
	var groups []string
	var args []any
	flush := func() error {
		if len(groups) == 0 {
			return nil
		}
		where := ` WHERE workspace = ? AND (` + strings.Join(groups, " OR ") + `)`
		all := append([]any{workspace}, args...)
		groups, args = nil, nil
		err := eachRow(ctx, c, `SELECT name, version, key, value FROM model_version_tags`+where, all,
			func(s interface{ Scan(...any) error }) error {
				var k key
				var tk, tv string
				if err := s.Scan(&k.name, &k.version, &tk, &tv); err != nil {
					return err
				}
				byKey[k].Tags[tk] = tv
				return nil
			})
		if err != nil {
			return err
		}
		return eachRow(ctx, c, `SELECT name, version, alias FROM registered_model_aliases`+where+` ORDER BY alias`, all,
			func(s interface{ Scan(...any) error }) error {
				var k key
				var alias string
				if err := s.Scan(&k.name, &k.version, &alias); err != nil {
					return err
				}
				v := byKey[k]
				v.Aliases = append(v.Aliases, alias)
				return nil
			})
	}
	for _, name := range names {
		for chunk := range slices.Chunk(byName[name], regBatchArgs-1) {
			if len(args)+1+len(chunk) > regBatchArgs {
				if err := flush(); err != nil {
					return err
				}
			}
			groups = append(groups, `(name = ? AND version IN (`+regPlaceholders(len(chunk))+`))`)
			args = append(args, name)
			for _, v := range chunk {
				args = append(args, v)
			}
		}
	}
	return flush()
}
