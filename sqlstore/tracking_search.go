package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/mlflowsearch"
)

// Page sizes, MLflow's.
const (
	defaultSearchResults  = 1000
	maxSearchResults      = 50000
	defaultHistoryResults = 25000
)

// valuePrefixLength is how much of a param or tag value the PostgreSQL
// key/value indexes hold (see the migration); equality narrows on it first.
const valuePrefixLength = 256

// searchError turns the search parser's errors into EINVALID with their
// message, which is written for the client.
func searchError(err error) error {
	var se *mlflowsearch.Error
	if errors.As(err, &se) {
		return wharf.Errorf(wharf.EINVALID, "%s", se.Msg)
	}
	return err
}

// pageOf validates the paging of a search and returns its limit and
// offset; maxResults 0 means def.
func pageOf(maxResults int, token string, def, most int) (limit, offset int, err error) {
	switch {
	case maxResults == 0:
		limit = def
	case maxResults < 0:
		return 0, 0, wharf.Errorf(wharf.EINVALID,
			"Invalid value for request parameter max_results. It must be a positive integer, but got value %d", maxResults)
	case most > 0 && maxResults > most:
		return 0, 0, wharf.Errorf(wharf.EINVALID,
			"Invalid value for request parameter max_results. It must be at most %d, but got value %d", most, maxResults)
	default:
		limit = maxResults
	}
	offset, err = mlflowsearch.DecodeToken(token)
	if err != nil {
		return 0, 0, searchError(err)
	}
	return limit, offset, nil
}

// nextToken returns the token of the page after one that fetched n rows,
// asking for limit+1 so that a last full page gets no token.
func nextToken(n, limit, offset int) string {
	if n > limit {
		return mlflowsearch.EncodeToken(offset + limit)
	}
	return ""
}

// viewStages returns the lifecycle stages a view type shows; 0 is
// ACTIVE_ONLY, the default.
func viewStages(viewType int) ([]any, error) {
	switch viewType {
	case 0, wharf.ViewActiveOnly:
		return []any{wharf.LifecycleActive}, nil
	case wharf.ViewDeletedOnly:
		return []any{wharf.LifecycleDeleted}, nil
	case wharf.ViewAll:
		return []any{wharf.LifecycleActive, wharf.LifecycleDeleted}, nil
	}
	return nil, wharf.Errorf(wharf.EINVALID, "Invalid view type %d", viewType)
}

// MetricHistory returns every logged value of a metric of the run, ordered
// by step, then timestamp, paged by offset tokens.
func (db *DB) MetricHistory(ctx context.Context, workspace, runID, key string, maxResults int, pageToken string) ([]*wharf.Metric, string, error) {
	limit, offset, err := pageOf(maxResults, pageToken, defaultHistoryResults, 0)
	if err != nil {
		return nil, "", err
	}
	c := db.reader()
	out := []*wharf.Metric{}
	err = eachRow(ctx, c, `SELECT m.key, m.value, m.is_nan, m.timestamp, m.step, m.model_id,
			m.dataset_name, m.dataset_digest
		FROM metrics m JOIN runs r ON r.run_id = m.run_id
		WHERE m.run_id = ? AND m.key = ? AND r.workspace = ?
		ORDER BY m.step, m.timestamp, m.value, m.is_nan LIMIT ? OFFSET ?`,
		[]any{runID, key, workspace, limit + 1, offset},
		func(s interface{ Scan(...any) error }) error {
			m := &wharf.Metric{RunID: runID}
			var isNaN bool
			if err := s.Scan(&m.Key, &m.Value, &isNaN, &m.Timestamp, &m.Step, &m.ModelID,
				&m.DatasetName, &m.DatasetDigest); err != nil {
				return err
			}
			if isNaN {
				m.Value = math.NaN()
			}
			out = append(out, m)
			return nil
		})
	if err != nil {
		return nil, "", wrapErr("metric history", err)
	}
	if len(out) == 0 {
		// Nothing logged, or no such run: only the latter is an error.
		var one int
		if err := c.queryRow(ctx, `SELECT 1 FROM runs WHERE run_id = ? AND workspace = ?`,
			runID, workspace).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil, "", runNotFound(runID)
			}
			return nil, "", wrapErr("metric history", err)
		}
	}
	token := nextToken(len(out), limit, offset)
	return out[:min(len(out), limit)], token, nil
}

// runePrefix returns the first n characters of s, as SQL's substr counts.
func runePrefix(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// textCondition compares a text column. LIKE is case-sensitive and ILIKE
// is not, on both engines, and neither has an escape character, as in
// MLflow's grammar. SQLite's LIKE ignores ASCII case, so there LIKE becomes
// the equivalent GLOB and ILIKE is LIKE itself. Case folding is ASCII-only
// on SQLite and, for the "C" collation, on PostgreSQL alike.
func (db *DB) textCondition(col string, cmp mlflowsearch.Comparison) (string, []any, error) {
	switch cmp.Op {
	case mlflowsearch.OpIn, mlflowsearch.OpNotIn:
		vals, ok := cmp.Value.([]string)
		if !ok {
			return "", nil, invalidComparator(cmp)
		}
		args := make([]any, len(vals))
		for i, v := range vals {
			args[i] = v
		}
		return col + " " + cmp.Op + " (" + sqlMarks(len(vals)) + ")", args, nil
	}
	v, ok := cmp.Value.(string)
	if !ok {
		return "", nil, wharf.Errorf(wharf.EINVALID, "Expected a quoted string value for %s '%s'", cmp.KeyType, cmp.Key)
	}
	switch cmp.Op {
	case mlflowsearch.OpEq:
		return col + " = ?", []any{v}, nil
	case mlflowsearch.OpNe:
		return col + " <> ?", []any{v}, nil
	case mlflowsearch.OpLike:
		if db.isSQLite() {
			return col + " GLOB ?", []any{likeToGlob(v)}, nil
		}
		return col + " LIKE ? ESCAPE ''", []any{v}, nil
	case mlflowsearch.OpILike:
		if db.isSQLite() {
			return col + " LIKE ?", []any{v}, nil
		}
		return col + " ILIKE ? ESCAPE ''", []any{v}, nil
	}
	return "", nil, invalidComparator(cmp)
}

// likeToGlob rewrites a LIKE pattern (no escape character) as the GLOB
// pattern matching the same strings, case-sensitively: the wildcards map
// to * and ?, and GLOB's own special characters are bracketed to stand
// for themselves.
func likeToGlob(p string) string {
	var b strings.Builder
	b.Grow(len(p) + 8)
	for _, r := range p {
		switch r {
		case '%':
			b.WriteByte('*')
		case '_':
			b.WriteByte('?')
		case '*', '?', '[':
			b.WriteByte('[')
			b.WriteRune(r)
			b.WriteByte(']')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// intCondition compares an integer column with a number from the filter.
// A fractional bound is turned into the equivalent integer one, so the
// argument has the column's type on both engines.
func intCondition(col string, cmp mlflowsearch.Comparison) (string, []any, error) {
	v, ok := cmp.Value.(float64)
	if !ok || math.IsNaN(v) {
		return "", nil, wharf.Errorf(wharf.EINVALID, "Expected numeric value type for attribute '%s'", cmp.Key)
	}
	whole := v == math.Trunc(v)
	switch cmp.Op {
	case mlflowsearch.OpEq:
		if !whole {
			return "1 = 0", nil, nil
		}
		return col + " = ?", []any{clampInt(v)}, nil
	case mlflowsearch.OpNe:
		if !whole {
			return col + " IS NOT NULL", nil, nil
		}
		return col + " <> ?", []any{clampInt(v)}, nil
	case mlflowsearch.OpGt, mlflowsearch.OpLe:
		return col + " " + cmp.Op + " ?", []any{clampInt(math.Floor(v))}, nil
	case mlflowsearch.OpGe, mlflowsearch.OpLt:
		return col + " " + cmp.Op + " ?", []any{clampInt(math.Ceil(v))}, nil
	}
	return "", nil, invalidComparator(cmp)
}

// clampInt converts a whole float to int64, saturating where it does not
// fit (a float beyond the range makes the conversion undefined).
func clampInt(f float64) int64 {
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

func invalidComparator(cmp mlflowsearch.Comparison) error {
	return wharf.Errorf(wharf.EINVALID, "Invalid comparator '%s' for %s '%s'", cmp.Op, cmp.KeyType, cmp.Key)
}

// experimentAttributeColumns maps the search grammar's experiment
// attributes to columns.
var experimentAttributeColumns = map[string]string{
	"name":             "e.name",
	"experiment_id":    "e.experiment_id",
	"creation_time":    "e.creation_time",
	"last_update_time": "e.last_update_time",
}

// SearchExperiments returns a page of the workspace's experiments matching
// the filter, by default newest first (creation_time DESC, experiment_id
// ASC), MLflow's order.
func (db *DB) SearchExperiments(ctx context.Context, workspace string, q wharf.SearchQuery) ([]*wharf.Experiment, string, error) {
	stages, err := viewStages(q.ViewType)
	if err != nil {
		return nil, "", err
	}
	limit, offset, err := pageOf(q.MaxResults, q.PageToken, defaultSearchResults, maxSearchResults)
	if err != nil {
		return nil, "", err
	}
	cmps, err := mlflowsearch.ParseFilter(mlflowsearch.ExperimentsEntity, q.Filter)
	if err != nil {
		return nil, "", searchError(err)
	}
	orderBy := q.OrderBy
	if len(orderBy) == 0 {
		orderBy = []string{"creation_time DESC", "experiment_id ASC"}
	}
	obs, err := mlflowsearch.ParseOrderBy(mlflowsearch.ExperimentsEntity, orderBy)
	if err != nil {
		return nil, "", searchError(err)
	}
	if _, err := db.ensureDefaultExperiment(ctx, workspace); err != nil {
		return nil, "", err
	}

	var where sqlBuilder
	where.add(`e.workspace = ? AND e.lifecycle_stage IN (`+sqlMarks(len(stages))+`)`,
		append([]any{workspace}, stages...)...)
	for _, cmp := range cmps {
		var cond string
		var args []any
		switch cmp.KeyType {
		case mlflowsearch.KeyAttribute:
			col, ok := experimentAttributeColumns[cmp.Key]
			if !ok {
				return nil, "", wharf.Errorf(wharf.EINVALID, "Invalid attribute key '%s' specified.", cmp.Key)
			}
			if cmp.Key == "name" {
				cond, args, err = db.textCondition(col, cmp)
			} else {
				cond, args, err = intCondition(col, cmp)
			}
		case mlflowsearch.KeyTag:
			switch cmp.Op {
			case mlflowsearch.OpIsNull, mlflowsearch.OpIsNotNull:
				not := ""
				if cmp.Op == mlflowsearch.OpIsNull {
					not = "NOT "
				}
				cond = `e.experiment_id ` + not + `IN (SELECT experiment_id FROM experiment_tags
					WHERE workspace = ? AND key = ?)`
				args = []any{workspace, cmp.Key}
			default:
				var kv string
				kv, args, err = db.textCondition("value", cmp)
				cond = `e.experiment_id IN (SELECT experiment_id FROM experiment_tags
					WHERE workspace = ? AND key = ? AND ` + kv + `)`
				args = append([]any{workspace, cmp.Key}, args...)
			}
		default:
			err = wharf.Errorf(wharf.EINVALID, "Invalid token type: %s", cmp.KeyType)
		}
		if err != nil {
			return nil, "", err
		}
		where.add(" AND "+cond, args...)
	}

	var order []string
	hasID := false
	for _, ob := range obs {
		col, ok := experimentAttributeColumns[ob.Key]
		if ob.KeyType != mlflowsearch.KeyAttribute || !ok {
			return nil, "", wharf.Errorf(wharf.EINVALID, "Invalid order_by entity: %s", ob.KeyType)
		}
		dir := " ASC"
		if !ob.Ascending {
			dir = " DESC"
		}
		order = append(order, col+dir)
		hasID = hasID || ob.Key == "experiment_id"
	}
	if !hasID {
		// MLflow's tie-breaker when the caller orders by other columns.
		order = append(order, "e.experiment_id DESC")
	}

	c := db.reader()
	exps := []*wharf.Experiment{}
	err = eachRow(ctx, c, `SELECT `+qualifiedColumns("e", experimentColumns)+` FROM experiments e WHERE `+where.sql.String()+
		` ORDER BY `+strings.Join(order, ", ")+` LIMIT ? OFFSET ?`, append(where.args, limit+1, offset),
		func(s interface{ Scan(...any) error }) error {
			e, err := scanExperiment(s)
			if err != nil {
				return err
			}
			exps = append(exps, e)
			return nil
		})
	if err != nil {
		return nil, "", wrapErr("search experiments", err)
	}
	token := nextToken(len(exps), limit, offset)
	exps = exps[:min(len(exps), limit)]
	if err := loadExperimentTags(ctx, c, workspace, exps); err != nil {
		return nil, "", err
	}
	return exps, token, nil
}
