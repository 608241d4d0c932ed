package sqlstore

import (
	"context"
	"errors"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/internal/pyrepr"
	"github.com/wharfml/wharf/mlflowsearch"
)

// regSearchSpec describes one searchable table to the translation of parsed
// MLflow filters and order-by clauses into SQL. Every value a client sends
// becomes a bound argument; only column names chosen here reach the SQL
// text.
type regSearchSpec struct {
	entity mlflowsearch.Entity
	// attrs maps canonical attribute keys to columns of the main table.
	attrs map[string]regSearchColumn
	// tagExists and paramExists start a correlated subquery selecting the
	// row's tag (param) with key = ?, in alias t; empty when the entity has
	// none.
	tagExists   string
	paramExists string
	// normalize rewrites a string attribute's value in equality and IN
	// comparisons, for columns whose stored spelling differs from what
	// clients send; patterns are left alone.
	normalize func(key, value string) string
	// metric translates a metric comparison; nil when the entity's
	// search has no metrics.
	metric func(cmp mlflowsearch.Comparison) (string, []any, error)
}

type regSearchColumn struct {
	expr    string
	numeric bool
}

// regSearchError turns the parser's errors into EINVALID with its message,
// which is written for clients; anything else passes through.
func regSearchError(err error) error {
	var se *mlflowsearch.Error
	if errors.As(err, &se) {
		return wharf.Errorf(wharf.EINVALID, "%s", se.Msg)
	}
	return err
}

// regFilterSQL parses filter and returns its clauses as SQL conditions to be
// AND-ed, with their arguments in order.
func (db *DB) regFilterSQL(spec *regSearchSpec, filter string) ([]string, []any, error) {
	cmps, err := mlflowsearch.ParseFilter(spec.entity, filter)
	if err != nil {
		return nil, nil, regSearchError(err)
	}
	var conds []string
	var args []any
	for _, cmp := range cmps {
		cond, a, err := db.regComparisonSQL(spec, cmp)
		if err != nil {
			return nil, nil, err
		}
		conds = append(conds, cond)
		args = append(args, a...)
	}
	return conds, args, nil
}

func (db *DB) regComparisonSQL(spec *regSearchSpec, cmp mlflowsearch.Comparison) (string, []any, error) {
	switch cmp.KeyType {
	case mlflowsearch.KeyAttribute:
		col, ok := spec.attrs[cmp.Key]
		if !ok {
			return "", nil, wharf.Errorf(wharf.EINVALID, "Invalid attribute key '%s' specified.", cmp.Key)
		}
		if col.numeric {
			return intCondition(col.expr, cmp)
		}
		if spec.normalize != nil && cmp.Op != mlflowsearch.OpLike && cmp.Op != mlflowsearch.OpILike {
			switch v := cmp.Value.(type) {
			case string:
				cmp.Value = spec.normalize(cmp.Key, v)
			case []string:
				vals := make([]string, len(v))
				for i, s := range v {
					vals[i] = spec.normalize(cmp.Key, s)
				}
				cmp.Value = vals
			}
		}
		return db.regTextComparison(col.expr, cmp)
	case mlflowsearch.KeyTag:
		return db.regKeyValueExists(spec.tagExists, "tag", cmp)
	case mlflowsearch.KeyParam:
		return db.regKeyValueExists(spec.paramExists, "param", cmp)
	case mlflowsearch.KeyMetric:
		if spec.metric != nil {
			return spec.metric(cmp)
		}
		return "", nil, wharf.Errorf(wharf.EINVALID,
			"Filtering %s by metrics is not supported by this server yet.", spec.entity)
	}
	return "", nil, wharf.Errorf(wharf.EINVALID, "Filtering %s by %s is not supported.", spec.entity, cmp.KeyType)
}

// regKeyValueExists matches rows having a tag (or param) called cmp.Key whose
// value satisfies the comparison; IS NULL matches the rows without the key.
// != is the negation of =, so a row without the key matches it: the 3.x
// client hides prompts with tag.`mlflow.prompt.is_prompt` != 'true' on every
// model search, and models that never had that tag must still be found.
func (db *DB) regKeyValueExists(exists, what string, cmp mlflowsearch.Comparison) (string, []any, error) {
	if exists == "" {
		return "", nil, wharf.Errorf(wharf.EINVALID, "Filtering by %s is not supported here.", what)
	}
	switch cmp.Op {
	case mlflowsearch.OpIsNull:
		return `NOT EXISTS (` + exists + `)`, []any{cmp.Key}, nil
	case mlflowsearch.OpIsNotNull:
		return `EXISTS (` + exists + `)`, []any{cmp.Key}, nil
	case mlflowsearch.OpNe:
		if _, ok := cmp.Value.(string); ok {
			cmp.Op = mlflowsearch.OpEq
			cond, args, err := db.regTextComparison("t.value", cmp)
			if err != nil {
				return "", nil, err
			}
			return `NOT EXISTS (` + exists + ` AND ` + cond + `)`, append([]any{cmp.Key}, args...), nil
		}
	}
	cond, args, err := db.regTextComparison("t.value", cmp)
	if err != nil {
		return "", nil, err
	}
	return `EXISTS (` + exists + ` AND ` + cond + `)`, append([]any{cmp.Key}, args...), nil
}

// regTextComparison compares a text column. LIKE is case-sensitive and ILIKE
// case-insensitive on both engines, and neither has an escape character,
// the semantics of mlflowsearch.MatchLike and MLflow's file store.
func (db *DB) regTextComparison(expr string, cmp mlflowsearch.Comparison) (string, []any, error) {
	if list, ok := cmp.Value.([]string); ok {
		if len(list) == 0 {
			return "", nil, wharf.Errorf(wharf.EINVALID, "the value list of %s cannot be empty", cmp.Op)
		}
		args := make([]any, len(list))
		for i, s := range list {
			args[i] = s
		}
		switch cmp.Op {
		case mlflowsearch.OpIn:
			return expr + ` IN (` + regPlaceholders(len(list)) + `)`, args, nil
		case mlflowsearch.OpNotIn:
			return expr + ` NOT IN (` + regPlaceholders(len(list)) + `)`, args, nil
		}
		return "", nil, wharf.Errorf(wharf.EINVALID, "Invalid comparator '%s' for a value list", cmp.Op)
	}
	s, ok := cmp.Value.(string)
	if !ok {
		return "", nil, wharf.Errorf(wharf.EINVALID, "Expected a quoted string value for '%s'", cmp.Key)
	}
	switch cmp.Op {
	case mlflowsearch.OpEq:
		return expr + ` = ?`, []any{s}, nil
	case mlflowsearch.OpNe:
		return expr + ` <> ?`, []any{s}, nil
	case mlflowsearch.OpLike:
		if db.dialect.regLikeIgnoresCase() {
			// GLOB is SQLite's case-sensitive matcher, and, like LIKE
			// with a literal prefix, it can use the column's index.
			return expr + ` GLOB ?`, []any{likeToGlob(s)}, nil
		}
		return expr + ` LIKE ? ESCAPE ''`, []any{s}, nil
	case mlflowsearch.OpILike:
		if db.dialect.regLikeIgnoresCase() {
			return expr + ` LIKE ?`, []any{s}, nil
		}
		return expr + ` ILIKE ? ESCAPE ''`, []any{s}, nil
	}
	return "", nil, wharf.Errorf(wharf.EINVALID, "Invalid comparator '%s' for '%s'", cmp.Op, cmp.Key)
}

// regLikeIgnoresCase reports whether the engine's LIKE ignores ASCII case, as
// SQLite's does; there, case-sensitive LIKE is translated to GLOB.
func (d *Dialect) regLikeIgnoresCase() bool { return d.Name == "sqlite" }

// regOrderSQL parses order-by clauses into an ORDER BY list over cols, then
// appends the tie-breakers not already used, so that pages are stable.
// Unknown keys are EINVALID, and so are two clauses on one column, with
// MLflow's message (MLflow answers INTERNAL_ERROR, which its client
// retries for minutes; a refusal of the request is EINVALID here).
func regOrderSQL(e mlflowsearch.Entity, clauses []string, cols map[string]string, tieBreakers []string) (string, error) {
	obs, err := mlflowsearch.ParseOrderBy(e, clauses)
	if err != nil {
		return "", regSearchError(err)
	}
	var terms []string
	used := map[string]bool{}
	for _, ob := range obs {
		if ob.KeyType != mlflowsearch.KeyAttribute {
			return "", wharf.Errorf(wharf.EINVALID, "Ordering %s by %s is not supported by this server yet.", e, ob.KeyType)
		}
		col, ok := cols[ob.Key]
		if !ok {
			return "", wharf.Errorf(wharf.EINVALID, "Invalid order by key '%s' specified.", ob.Key)
		}
		if used[col] {
			return "", wharf.Errorf(wharf.EINVALID, "`order_by` contains duplicate fields: %s", pyrepr.StrList(clauses))
		}
		used[col] = true
		dir := " ASC"
		if !ob.Ascending {
			dir = " DESC"
		}
		terms = append(terms, col+dir)
	}
	for _, tb := range tieBreakers {
		col, _, _ := strings.Cut(tb, " ")
		if !used[col] {
			used[col] = true
			terms = append(terms, tb)
		}
	}
	return strings.Join(terms, ", "), nil
}

// regPageLimits checks q.MaxResults against an endpoint's default and maximum
// and decodes the page token into an offset.
func regPageLimits(q wharf.SearchQuery, def, maxResults int) (limit, offset int, err error) {
	limit = q.MaxResults
	switch {
	case limit == 0:
		limit = def
	case limit < 0:
		return 0, 0, wharf.Errorf(wharf.EINVALID,
			"Invalid value for request parameter max_results. It must be a positive integer, but got value %d", limit).WithField("max_results")
	case limit > maxResults:
		return 0, 0, wharf.Errorf(wharf.EINVALID,
			"Invalid value for request parameter max_results. It must be at most %d, but got value %d", maxResults, limit).WithField("max_results")
	}
	offset, err = mlflowsearch.DecodeToken(q.PageToken)
	if err != nil {
		err = regSearchError(err)
		var we *wharf.Error
		if errors.As(err, &we) {
			we.WithField("page_token")
		}
		return 0, 0, err
	}
	return limit, offset, nil
}

// regNextToken returns the token of the page after one that fetched limit+1
// rows at offset and got n, or "" when that was the last page.
func regNextToken(n, limit, offset int) string {
	if n <= limit {
		return ""
	}
	return mlflowsearch.EncodeToken(offset + limit)
}

// Search page sizes, MLflow's defaults and maxima.
const (
	registeredModelsDefault = 100
	registeredModelsMax     = 1000
	modelVersionsDefault    = 10000
	modelVersionsMax        = 200000
)

var registeredModelSearch = &regSearchSpec{
	entity:    mlflowsearch.RegisteredModelsEntity,
	attrs:     map[string]regSearchColumn{"name": {expr: "m.name"}},
	tagExists: `SELECT 1 FROM registered_model_tags t WHERE t.workspace = m.workspace AND t.name = m.name AND t.key = ?`,
}

var registeredModelOrder = map[string]string{
	"name":                   "m.name",
	"last_updated_timestamp": "m.last_updated_time",
}

// regSearchPlan is a search translated to SQL: the query and its
// arguments, which fetch limit+1 rows from offset so that a next page can
// be told from the last one.
type regSearchPlan struct {
	query         string
	args          []any
	limit, offset int
}

// regSearchQuery assembles a search over table (aliased alias) of one
// workspace.
func regSearchQuery(table, alias, cols, workspace string, conds []string, args []any, order string, limit, offset int) *regSearchPlan {
	where := append([]string{alias + ".workspace = ?"}, conds...)
	return &regSearchPlan{
		query: `SELECT ` + regPrefixColumns(alias, cols) + ` FROM ` + table + ` ` + alias +
			` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + order + ` LIMIT ? OFFSET ?`,
		args:  append(append([]any{workspace}, args...), limit+1, offset),
		limit: limit, offset: offset,
	}
}

func (db *DB) registeredModelSearchSQL(workspace string, q wharf.SearchQuery) (*regSearchPlan, error) {
	limit, offset, err := regPageLimits(q, registeredModelsDefault, registeredModelsMax)
	if err != nil {
		return nil, err
	}
	conds, args, err := db.regFilterSQL(registeredModelSearch, q.Filter)
	if err != nil {
		return nil, err
	}
	order, err := regOrderSQL(mlflowsearch.RegisteredModelsEntity, q.OrderBy, registeredModelOrder, []string{"m.name ASC"})
	if err != nil {
		return nil, err
	}
	return regSearchQuery("registered_models", "m", registeredModelColumns, workspace, conds, args, order, limit, offset), nil
}

func (db *DB) modelVersionSearchSQL(workspace string, q wharf.SearchQuery) (*regSearchPlan, error) {
	limit, offset, err := regPageLimits(q, modelVersionsDefault, modelVersionsMax)
	if err != nil {
		return nil, err
	}
	conds, args, err := db.regFilterSQL(modelVersionSearch, q.Filter)
	if err != nil {
		return nil, err
	}
	order, err := regOrderSQL(mlflowsearch.ModelVersionsEntity, q.OrderBy, modelVersionOrder, modelVersionTieBreakers(q.OrderBy))
	if err != nil {
		return nil, err
	}
	return regSearchQuery("model_versions", "v", modelVersionColumns, workspace, conds, args, order, limit, offset), nil
}

// SearchRegisteredModels filters the workspace's models with MLflow's
// filter syntax (name and tags), ordered by name unless q.OrderBy says
// otherwise, name breaking ties.
func (db *DB) SearchRegisteredModels(ctx context.Context, workspace string, q wharf.SearchQuery) ([]*wharf.RegisteredModel, string, error) {
	plan, err := db.registeredModelSearchSQL(workspace, q)
	if err != nil {
		return nil, "", err
	}
	limit, offset := plan.limit, plan.offset
	c := db.reader()
	out := []*wharf.RegisteredModel{}
	err = eachRow(ctx, c, plan.query, plan.args, func(s interface{ Scan(...any) error }) error {
		m, err := scanRegisteredModel(s)
		if err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, "", wrapErr("search registered models", err)
	}
	token := regNextToken(len(out), limit, offset)
	out = out[:min(len(out), limit)]
	if err := fillRegisteredModels(ctx, c, workspace, out); err != nil {
		return nil, "", wrapErr("search registered models", err)
	}
	if len(out) == 0 {
		if err := mustWorkspace(ctx, c, workspace); err != nil {
			return nil, "", wrapErr("search registered models", err)
		}
	}
	return out, token, nil
}

var modelVersionSearch = &regSearchSpec{
	entity: mlflowsearch.ModelVersionsEntity,
	attrs: map[string]regSearchColumn{
		"name":           {expr: "v.name"},
		"run_id":         {expr: "v.run_id"},
		"source_path":    {expr: "v.source"},
		"version_number": {expr: "v.version", numeric: true},
	},
	tagExists: `SELECT 1 FROM model_version_tags t WHERE t.workspace = v.workspace AND t.name = v.name
		AND t.version = v.version AND t.key = ?`,
}

var modelVersionOrder = map[string]string{
	"name":                   "v.name",
	"version_number":         "v.version",
	"creation_timestamp":     "v.creation_time",
	"last_updated_timestamp": "v.last_updated_time",
}

// modelVersionTieBreakers is what follows a model-version search's own
// order, as in MLflow's store: without one, the last updated first, then
// name ascending and version number descending; the latter two also break
// the ties of any order given.
func modelVersionTieBreakers(orderBy []string) []string {
	if len(orderBy) == 0 {
		return []string{"v.last_updated_time DESC", "v.name ASC", "v.version DESC"}
	}
	return []string{"v.name ASC", "v.version DESC"}
}

// SearchModelVersions filters the workspace's model versions with MLflow's
// filter syntax (name, run_id, source_path, version_number and tags). The
// default order is MLflow's: last updated first, then name ascending and
// version number descending; the latter two also break ties of any
// q.OrderBy. Wharf's own callers that want the newest version order by
// version_number DESC.
func (db *DB) SearchModelVersions(ctx context.Context, workspace string, q wharf.SearchQuery) ([]*wharf.ModelVersion, string, error) {
	plan, err := db.modelVersionSearchSQL(workspace, q)
	if err != nil {
		return nil, "", err
	}
	limit, offset := plan.limit, plan.offset
	c := db.reader()
	out := []*wharf.ModelVersion{}
	err = eachRow(ctx, c, plan.query, plan.args, func(s interface{ Scan(...any) error }) error {
		v, err := scanModelVersion(s)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, "", wrapErr("search model versions", err)
	}
	token := regNextToken(len(out), limit, offset)
	out = out[:min(len(out), limit)]
	if err := fillModelVersions(ctx, c, workspace, out); err != nil {
		return nil, "", wrapErr("search model versions", err)
	}
	if len(out) == 0 {
		if err := mustWorkspace(ctx, c, workspace); err != nil {
			return nil, "", wrapErr("search model versions", err)
		}
	}
	return out, token, nil
}

// regPrefixColumns qualifies each column of a column list with alias.
func regPrefixColumns(alias, cols string) string {
	fields := strings.Split(cols, ",")
	for i, f := range fields {
		fields[i] = alias + "." + strings.TrimSpace(f)
	}
	return strings.Join(fields, ", ")
}
