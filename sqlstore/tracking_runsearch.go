package sqlstore

import (
	"context"
	"database/sql/driver"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/mlflowsearch"
)

// Thresholds of the run search planner, in rows a comparison matches:
// below driveThreshold a search starts from those rows rather than from
// the experiment's runs in order; below listThreshold the matching run
// ids are gathered once into an in-memory list (or hash) that each run is
// looked up in, rather than probing the index run by run.
const (
	driveThreshold = 5000
	listThreshold  = 20000
)

// traceRunSearch, when set (by tests), is called with each run search's
// page query, in the engine's placeholder syntax, and its arguments, so
// that its plan can be checked.
var traceRunSearch func(query string, args []any)

// runIDSlot stands for the run id in a filter's condition until the plan
// says which table supplies it: probing with the id of the table a plan
// starts from skips reading the runs a filter rejects. fenceSlot marks
// where a subquery may be fenced off (see runPlan).
const (
	runIDSlot = "{run}"
	fenceSlot = "{fence}"
)

// runPlan is how a run search reads the database.
type runPlan int

const (
	// planSort reads every run in scope that matches and sorts them:
	// the engine's own plan, for small experiments and orders no index
	// gives.
	planSort runPlan = iota
	// planWalk walks the experiment's runs in start_time order, the
	// default order, testing each, and stops at the page's end.
	planWalk
	// planDrive starts from the runs one selective filter matches.
	planDrive
	// planLead walks the metric the results are first ordered by, in
	// value order through its index, and stops at the page's end.
	planLead
)

// sqlBuilder accumulates SQL text and its arguments in step, so that the
// placeholders, numbered by position on PostgreSQL, line up.
type sqlBuilder struct {
	sql  strings.Builder
	args []any
}

func (b *sqlBuilder) add(text string, args ...any) {
	b.sql.WriteString(text)
	b.args = append(b.args, args...)
}

// runScope is what every run search is confined to: a workspace's
// experiments.
type runScope struct {
	workspace string
	expIDs    []any
}

// cond restricts table alias a, which has workspace and experiment_id
// columns, to the scope; the key/value indexes lead with them.
func (s runScope) cond(a string) (string, []any) {
	return a + ".workspace = ? AND " + a + ".experiment_id IN (" + sqlMarks(len(s.expIDs)) + ")",
		append([]any{s.workspace}, s.expIDs...)
}

// runFilter is one comparison of a run search, in the forms the plans
// choose between.
type runFilter struct {
	// cond is a condition on runs r: a plain comparison for attributes and
	// a correlated EXISTS, answered by a primary-key probe, for what runs
	// logged; runIDSlot stands for the run id.
	cond string
	args []any
	// list is set for a plan to test membership in the drive's run ids
	// (a list, or on PostgreSQL a hash, built once) instead of cond.
	list bool
	// drive, when set, selects from an index the ids of the runs in scope
	// that match, for a plan that starts from them.
	drive     string
	driveArgs []any
	// present is the metric, param or tag (as "type.key") a run must have
	// logged to match, and number whether it must be a metric other than
	// NaN; an order-by on it needs no outer join then.
	present string
	number  bool
	// metricCond applies a metric comparison to a latest_metrics row
	// aliased a, so that ordering by the metric can filter the row it
	// joins; merged is set once it does, and cond is then dropped.
	metricCond func(a string) string
	metricArgs []any
	merged     bool
}

// runFilterOf translates one comparison of a run search.
func (db *DB) runFilterOf(scope runScope, cmp mlflowsearch.Comparison) (*runFilter, error) {
	f := &runFilter{present: string(cmp.KeyType) + "." + cmp.Key}
	switch cmp.KeyType {
	case mlflowsearch.KeyAttribute:
		f.present = ""
		col, ok := runAttributeColumns[cmp.Key]
		if !ok {
			return nil, wharf.Errorf(wharf.EINVALID, "Invalid attribute key '%s' specified.", cmp.Key)
		}
		var err error
		if cmp.Key == "start_time" || cmp.Key == "end_time" || cmp.Key == "experiment_id" {
			f.cond, f.args, err = intCondition(col, cmp)
		} else {
			f.cond, f.args, err = db.textCondition(col, cmp)
		}
		if err != nil {
			return nil, err
		}
		if cmp.Key == "run_id" && (cmp.Op == mlflowsearch.OpEq || cmp.Op == mlflowsearch.OpIn) {
			cond, args, _ := db.textCondition("run_id", cmp)
			f.drive, f.driveArgs = `SELECT run_id FROM runs WHERE `+cond, args
		}
		return f, nil

	case mlflowsearch.KeyMetric:
		v, ok := cmp.Value.(float64)
		if !ok {
			return nil, wharf.Errorf(wharf.EINVALID, "Expected numeric value type for metric. Found %v", cmp.Value)
		}
		op := cmp.Op
		switch op {
		case mlflowsearch.OpNe:
			f.metricCond = func(a string) string { return "(" + a + ".is_nan OR " + a + ".value <> ?)" }
		case mlflowsearch.OpEq, mlflowsearch.OpLt, mlflowsearch.OpLe, mlflowsearch.OpGt, mlflowsearch.OpGe:
			f.metricCond = func(a string) string { return "NOT " + a + ".is_nan AND " + a + ".value " + op + " ?" }
			f.number = true
		default:
			return nil, invalidComparator(cmp)
		}
		f.metricArgs = []any{v}
		sc, sargs := scope.cond("m")
		sel := ` FROM latest_metrics m WHERE ` + sc + ` AND m.key = ? AND ` + f.metricCond("m")
		selArgs := append(sargs, cmp.Key, v)
		f.cond, f.args = `EXISTS (SELECT 1`+sel+` AND m.run_id = `+runIDSlot+fenceSlot+`)`, selArgs
		if f.number {
			f.drive, f.driveArgs = `SELECT m.run_id`+sel, selArgs
		}
		return f, nil

	case mlflowsearch.KeyParam, mlflowsearch.KeyTag:
		table := "params"
		if cmp.KeyType == mlflowsearch.KeyTag {
			table = "tags"
		}
		// The scope is implied by the run, and stated for PostgreSQL's
		// planner, whose key/value indexes lead with it.
		sc, sargs := scope.cond("p")
		var kv string
		var kvArgs []any
		indexed := true
		switch cmp.Op {
		case mlflowsearch.OpIsNull:
			f.present = ""
			f.cond = `NOT EXISTS (SELECT 1 FROM ` + table + ` p WHERE ` + sc + ` AND p.key = ? AND p.run_id = ` +
				runIDSlot + fenceSlot + `)`
			f.args = append(sargs, cmp.Key)
			return f, nil
		case mlflowsearch.OpIsNotNull:
			kv, kvArgs = "p.key = ?", []any{cmp.Key}
		case mlflowsearch.OpEq:
			v, ok := cmp.Value.(string)
			if !ok {
				return nil, invalidComparator(cmp)
			}
			kv, kvArgs = db.valueEquals("p", cmp.Key, v)
		default:
			cond, args, err := db.textCondition("p.value", cmp)
			if err != nil {
				return nil, err
			}
			kv, kvArgs = "p.key = ? AND "+cond, append([]any{cmp.Key}, args...)
			indexed = false
		}
		sel := ` FROM ` + table + ` p WHERE ` + sc + ` AND ` + kv
		selArgs := append(sargs, kvArgs...)
		f.cond, f.args = `EXISTS (SELECT 1`+sel+` AND p.run_id = `+runIDSlot+fenceSlot+`)`, selArgs
		if indexed {
			f.drive, f.driveArgs = `SELECT p.run_id`+sel, selArgs
		}
		return f, nil

	case mlflowsearch.KeyDataset:
		f.present = ""
		col := map[string]string{"name": "name", "digest": "digest", "context": "context"}[cmp.Key]
		if col == "" {
			return nil, wharf.Errorf(wharf.EINVALID, "Invalid dataset key '%s' specified.", cmp.Key)
		}
		cond, args, err := db.textCondition("i."+col, cmp)
		if err != nil {
			return nil, err
		}
		f.cond = `EXISTS (SELECT 1 FROM run_inputs i WHERE i.run_id = ` + runIDSlot + ` AND ` + cond + fenceSlot + `)`
		f.args = args
		if col == "name" && (cmp.Op == mlflowsearch.OpEq || cmp.Op == mlflowsearch.OpIn) {
			// A run may have logged several digests of one name.
			f.drive, f.driveArgs = `SELECT DISTINCT i.run_id FROM run_inputs i WHERE `+cond, args
		}
		return f, nil
	}
	return nil, wharf.Errorf(wharf.EINVALID, "Invalid search expression type '%s'", cmp.KeyType)
}

// valueEquals matches the param or tag row aliased a with key and value,
// through the key/value index. On PostgreSQL the index holds a prefix of the
// value (see the migration): the condition compares it, and then the whole
// value unless it is shorter than the prefix, since a value shorter than
// the prefix equals whatever it is the prefix of.
func (db *DB) valueEquals(a, key, value string) (string, []any) {
	if db.isSQLite() {
		return a + ".key = ? AND " + a + ".value = ?", []any{key, value}
	}
	cond := a + ".key = ? AND substr(" + a + ".value, 1, " + strconv.Itoa(valuePrefixLength) + ") = ?"
	args := []any{key, runePrefix(value, valuePrefixLength)}
	if utf8.RuneCountInString(value) >= valuePrefixLength {
		cond += " AND " + a + ".value = ?"
		args = append(args, value)
	}
	return cond, args
}

// runAttributeColumns maps the search grammar's run attributes to columns.
var runAttributeColumns = map[string]string{
	"run_id":          "r.run_id",
	"run_name":        "r.name",
	"status":          "r.status",
	"user_id":         "r.user_id",
	"artifact_uri":    "r.artifact_uri",
	"lifecycle_stage": "r.lifecycle_stage",
	"start_time":      "r.start_time",
	"end_time":        "r.end_time",
	"experiment_id":   "r.experiment_id",
}

// orderJoin joins the metric, param or tag an order-by clause sorts on.
type orderJoin struct {
	table, alias, key string
	// inner is set when every run the filter lets through has the key, so
	// no outer join is needed; number, when it is a metric known to be a
	// number.
	inner, number bool
	// cond and args are metric comparisons applied to the joined row.
	cond []string
	args []any
}

// runOrdering is the ORDER BY of a run search and the joins it needs.
type runOrdering struct {
	joins []*orderJoin
	order []string
	// numberLead is set when the first clause sorts on a metric every
	// matching run has as a number: joins[0], whose index can then give
	// the order.
	numberLead bool
	// startLead is set when the order is the runs index's: by start_time
	// first.
	startLead bool
}

// runOrderOf builds the ordering for the parsed order-by, followed by
// MLflow's tie-breakers (start_time DESC, run_id ASC). Runs without the
// metric, param or tag sorted on come last whichever the direction, and a
// NaN metric after every number, as in MLflow. Metric comparisons on a key
// sorted by move onto the joined row.
func runOrderOf(obs []mlflowsearch.OrderBy, filters []*runFilter) (*runOrdering, error) {
	o := &runOrdering{}
	present := map[string]bool{}
	number := map[string]bool{}
	for _, f := range filters {
		if f.present != "" {
			present[f.present] = true
			number[f.present] = number[f.present] || f.number
		}
	}
	seen := map[string]bool{}
	hasStart, hasID := false, false
	o.startLead = len(obs) == 0 || (obs[0].KeyType == mlflowsearch.KeyAttribute && obs[0].Key == "start_time")
	for i, ob := range obs {
		field := string(ob.KeyType) + "." + ob.Key
		if seen[field] {
			return nil, wharf.Errorf(wharf.EINVALID, "`order_by` contains duplicate fields: %s", field)
		}
		seen[field] = true
		dir := " ASC"
		if !ob.Ascending {
			dir = " DESC"
		}
		switch ob.KeyType {
		case mlflowsearch.KeyAttribute:
			col, ok := runAttributeColumns[ob.Key]
			if !ok {
				return nil, wharf.Errorf(wharf.EINVALID, "Invalid order_by key '%s'", ob.Key)
			}
			if ob.Key == "end_time" {
				o.order = append(o.order, "CASE WHEN r.end_time IS NULL THEN 1 ELSE 0 END")
			}
			o.order = append(o.order, col+dir)
			hasStart = hasStart || ob.Key == "start_time"
			hasID = hasID || ob.Key == "run_id"
			continue
		case mlflowsearch.KeyMetric, mlflowsearch.KeyParam, mlflowsearch.KeyTag:
		default:
			return nil, wharf.Errorf(wharf.EINVALID, "Invalid order_by entity '%s'", ob.KeyType)
		}
		j := &orderJoin{table: "latest_metrics", alias: "o" + strconv.Itoa(i), key: ob.Key,
			inner: present[field], number: number[field]}
		switch ob.KeyType {
		case mlflowsearch.KeyParam:
			j.table = "params"
		case mlflowsearch.KeyTag:
			j.table = "tags"
		}
		a := j.alias
		switch {
		case j.number:
			for _, f := range filters {
				if f.present == field && f.metricCond != nil {
					j.cond = append(j.cond, f.metricCond(a))
					j.args = append(j.args, f.metricArgs...)
					f.merged = true
				}
			}
		case j.inner && j.table == "latest_metrics":
			o.order = append(o.order, "CASE WHEN "+a+".is_nan THEN 1 ELSE 0 END")
		case j.table == "latest_metrics":
			o.order = append(o.order, "CASE WHEN "+a+".run_id IS NULL THEN 2 WHEN "+a+".is_nan THEN 1 ELSE 0 END")
		case !j.inner:
			o.order = append(o.order, "CASE WHEN "+a+".run_id IS NULL THEN 1 ELSE 0 END")
		}
		o.order = append(o.order, a+".value"+dir)
		o.joins = append(o.joins, j)
		o.numberLead = o.numberLead || (i == 0 && j.number)
	}
	if !hasStart {
		o.order = append(o.order, "r.start_time DESC")
	}
	if !hasID {
		o.order = append(o.order, "r.run_id ASC")
	}
	return o, nil
}

// SearchRuns returns a page of the runs of the given experiments that
// match the filter, in the requested order with MLflow's tie-breakers,
// with their params, tags, latest metrics, inputs and outputs.
//
// The store picks the plan (see runPlan) from bounded counts of the rows
// each indexable comparison matches, since the engines' planners cannot
// know how far a LIMIT lets a walk in index order stop early (and SQLite
// keeps no statistics at all): start from the rows of the most selective
// comparison when one matches few; else walk a metric the results are
// ordered by through its index; else, in the default order, walk the
// runs. The common searches then read a bounded number of rows, whatever
// the experiment's size. SQLite is held to the plan with CROSS JOIN, which
// fixes its join order, PostgreSQL with subqueries it cannot flatten.
func (db *DB) SearchRuns(ctx context.Context, workspace string, q wharf.SearchQuery) ([]*wharf.Run, string, error) {
	if len(q.ExperimentIDs) == 0 {
		return nil, "", wharf.Errorf(wharf.EINVALID, "experiment_ids must contain at least one experiment id")
	}
	stages, err := viewStages(q.ViewType)
	if err != nil {
		return nil, "", err
	}
	limit, offset, err := pageOf(q.MaxResults, q.PageToken, defaultSearchResults, maxSearchResults)
	if err != nil {
		return nil, "", err
	}
	cmps, err := mlflowsearch.ParseFilter(mlflowsearch.RunsEntity, q.Filter)
	if err != nil {
		return nil, "", searchError(err)
	}
	obs, err := mlflowsearch.ParseOrderBy(mlflowsearch.RunsEntity, q.OrderBy)
	if err != nil {
		return nil, "", searchError(err)
	}
	scope := runScope{workspace: workspace}
	for _, id := range q.ExperimentIDs {
		if n, ok := parseExperimentID(id); ok {
			scope.expIDs = append(scope.expIDs, n)
		}
	}
	if len(scope.expIDs) == 0 {
		// Ids that cannot exist match no runs.
		return []*wharf.Run{}, "", nil
	}
	filters := make([]*runFilter, 0, len(cmps))
	for _, cmp := range cmps {
		f, err := db.runFilterOf(scope, cmp)
		if err != nil {
			return nil, "", err
		}
		filters = append(filters, f)
	}
	ordering, err := runOrderOf(obs, filters)
	if err != nil {
		return nil, "", err
	}

	c := db.reader()
	if !db.isSQLite() {
		if err := db.freshenStatistics(ctx); err != nil {
			return nil, "", wrapErr("search runs", err)
		}
		pc, end, err := db.beginSearchTx(ctx)
		if err != nil {
			return nil, "", wrapErr("search runs", err)
		}
		defer end()
		c = pc
	}
	plan, driver, err := db.planRunSearch(ctx, c, scope, filters, ordering, offset+limit+1)
	if err != nil {
		return nil, "", wrapErr("search runs", err)
	}
	// OFFSET 0 keeps PostgreSQL from turning a subquery into a join, so
	// that it is evaluated run by run in the plan's order.
	fence := ""
	if plan != planSort && !db.isSQLite() {
		fence = " OFFSET 0"
	}

	// Inner joins are written CROSS JOIN on SQLite, which then keeps
	// them in the order written; PostgreSQL reorders joins as it sees fit.
	join := " JOIN "
	if db.isSQLite() {
		join = " CROSS JOIN "
	}
	var b sqlBuilder
	b.add(`SELECT ` + qualifiedColumns("r", runColumns) + ` FROM `)
	joins := ordering.joins
	var lead *orderJoin
	runID := "r.run_id"
	switch plan {
	case planDrive:
		b.add(`(`+driver.drive+`) d`+join+`runs r ON r.run_id = d.run_id`, driver.driveArgs...)
		runID = "d.run_id"
	case planLead:
		lead, joins = joins[0], joins[1:]
		b.add(lead.table + ` ` + lead.alias + join + `runs r ON r.run_id = ` + lead.alias + `.run_id`)
		runID = lead.alias + ".run_id"
	default:
		b.add(`runs r`)
	}
	for _, j := range joins {
		kw := join
		if !j.inner {
			kw = " LEFT JOIN "
		}
		// The scope, implied by the run, lets PostgreSQL read the
		// key/value index in order.
		sc, sargs := scope.cond(j.alias)
		b.add(kw+j.table+` `+j.alias+` ON `+j.alias+`.run_id = r.run_id AND `+sc, sargs...)
		b.add(` AND `+j.alias+`.key = ?`, j.key)
		for _, cond := range j.cond {
			b.add(" AND " + cond)
		}
		b.args = append(b.args, j.args...)
	}
	b.add(` WHERE r.workspace = ? AND r.experiment_id IN (`+sqlMarks(len(scope.expIDs))+`)`, workspace)
	b.args = append(b.args, scope.expIDs...)
	b.add(` AND r.lifecycle_stage IN (`+sqlMarks(len(stages))+`)`, stages...)
	if lead != nil {
		sc, sargs := scope.cond(lead.alias)
		b.add(` AND `+sc, sargs...)
		b.add(` AND `+lead.alias+`.key = ?`, lead.key)
		for _, cond := range lead.cond {
			b.add(" AND " + cond)
		}
		b.args = append(b.args, lead.args...)
	}
	for _, f := range filters {
		switch {
		case f.merged || f == driver:
		case f.list && fence != "":
			// A membership test PostgreSQL cannot turn into a join,
			// which it answers from a hash of the list.
			b.add(` AND (`+runID+` IN (`+f.drive+fence+`)) IS TRUE`, f.driveArgs...)
		case f.list:
			b.add(` AND `+runID+` IN (`+f.drive+`)`, f.driveArgs...)
		default:
			cond := strings.ReplaceAll(f.cond, runIDSlot, runID)
			b.add(` AND `+strings.ReplaceAll(cond, fenceSlot, fence), f.args...)
		}
	}
	b.add(` ORDER BY `+strings.Join(ordering.order, ", ")+` LIMIT ? OFFSET ?`, limit+1, offset)

	if traceRunSearch != nil {
		traceRunSearch(db.rebind(b.sql.String()), b.args)
	}
	runs := []*wharf.Run{}
	err = eachRow(ctx, c, b.sql.String(), b.args, func(s interface{ Scan(...any) error }) error {
		r, err := scanRun(s)
		if err != nil {
			return err
		}
		runs = append(runs, r)
		return nil
	})
	if err != nil {
		return nil, "", wrapErr("search runs", err)
	}
	token := nextToken(len(runs), limit, offset)
	runs = runs[:min(len(runs), limit)]
	if err := loadRunData(ctx, c, runs); err != nil {
		return nil, "", wrapErr("search runs", err)
	}
	return runs, token, nil
}

// beginSearchTx starts, on a connection of its own, the read-only
// PostgreSQL transaction a run search reads in, with its settings, all in
// one round trip (database/sql's BeginTx and a separate statement would
// take two). The best plan depends on the values searched for, and a
// prepared statement reused often enough gets a generic plan that ignores
// them; custom plans cost a little planning each time and never a scan of
// every run. Parallel workers take longer to start than a search that
// stops at its page's end takes to run. end rolls the transaction back
// and returns the connection to the pool, or closes it if the rollback
// failed, so that no connection goes back inside a transaction.
func (db *DB) beginSearchTx(ctx context.Context) (c conn, end func(), err error) {
	sc, err := db.read.Conn(ctx)
	if err != nil {
		return conn{}, nil, err
	}
	// Without arguments the statements go in one simple-protocol
	// message.
	if _, err := sc.ExecContext(ctx, `BEGIN READ ONLY;
		SET LOCAL plan_cache_mode = force_custom_plan;
		SET LOCAL max_parallel_workers_per_gather = 0`); err != nil {
		sc.Raw(func(any) error { return driver.ErrBadConn })
		sc.Close()
		return conn{}, nil, err
	}
	end = func() {
		if _, err := sc.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`); err != nil {
			sc.Raw(func(any) error { return driver.ErrBadConn })
		}
		sc.Close()
	}
	return conn{q: sc, db: db}, end, nil
}

// planRunSearch picks the plan of a search (see SearchRuns) and, for
// planDrive, the filter to start from; need is how many rows the page's
// query must produce.
func (db *DB) planRunSearch(ctx context.Context, c conn, scope runScope, filters []*runFilter, ordering *runOrdering, need int) (runPlan, *runFilter, error) {
	threshold := max(driveThreshold, need)
	// One statement counts the runs in scope and the rows of each
	// indexable comparison: one round trip rather than one each.
	sc, sargs := scope.cond("runs")
	queries, queryArgs := []string{`SELECT 1 FROM runs WHERE ` + sc}, [][]any{sargs}
	var drives []*runFilter
	for _, f := range filters {
		if f.drive != "" {
			drives = append(drives, f)
			queries, queryArgs = append(queries, f.drive), append(queryArgs, f.driveArgs)
		}
	}
	counts, err := boundedCounts(ctx, c, queries, queryArgs, threshold)
	if err != nil || counts[0] < threshold {
		// A small experiment: any plan reads little.
		return planSort, nil, err
	}
	var best *runFilter
	bestN := threshold
	for i, f := range drives {
		if n := counts[i+1]; n < bestN {
			best, bestN = f, n
		}
	}
	switch {
	case best != nil:
		return planDrive, best, nil
	case ordering.numberLead && len(scope.expIDs) == 1:
		// A metric index holds one experiment's values in order;
		// several experiments' would need merging.
		return planLead, nil, nil
	case ordering.startLead:
		// A filter that matches a moderate number of rows is cheaper
		// as a list than as a probe per run walked.
		if len(drives) > 0 && threshold < listThreshold {
			counts, err := boundedCounts(ctx, c, queries[1:], queryArgs[1:], listThreshold)
			if err != nil {
				return planSort, nil, err
			}
			for i, f := range drives {
				f.list = counts[i] < listThreshold
			}
		}
		return planWalk, nil, nil
	}
	// Every run is read and sorted: a list costs at most one read of each
	// filter's rows, a probe one per run.
	for _, f := range filters {
		f.list = f.drive != ""
	}
	return planSort, nil, nil
}

// boundedCounts counts, in one statement, the rows each of queries returns
// (with the arguments of the same index), each count stopping at most.
func boundedCounts(ctx context.Context, c conn, queries []string, args [][]any, most int) ([]int, error) {
	var b sqlBuilder
	b.add(`SELECT `)
	for i, q := range queries {
		if i > 0 {
			b.add(`, `)
		}
		b.add(`(SELECT COUNT(*) FROM (`+q+` LIMIT ?) AS q`+strconv.Itoa(i)+`)`, args[i]...)
		b.args = append(b.args, most)
	}
	counts := make([]int, len(queries))
	dest := make([]any, len(counts))
	for i := range counts {
		dest[i] = &counts[i]
	}
	return counts, c.queryRow(ctx, b.sql.String(), b.args...).Scan(dest...)
}
