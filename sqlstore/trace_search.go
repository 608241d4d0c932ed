package sqlstore

import (
	"context"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/mlflowsearch"
)

// traceAttributeColumns maps the trace search grammar's attributes to
// columns of traces t. name and run_id are a tag and a metadata key
// instead (see traceKeyOf).
var traceAttributeColumns = map[string]string{
	"request_id":        "t.trace_id",
	"client_request_id": "t.client_request_id",
	"status":            "t.state",
	"experiment_id":     "t.experiment_id",
	"timestamp_ms":      "t.request_time",
	"execution_time_ms": "t.execution_time",
	"end_time_ms":       "(t.request_time + t.execution_time)",
}

// traceKeyOf resolves the attributes that MLflow keeps as a tag or as
// request metadata to that key.
func traceKeyOf(kt mlflowsearch.KeyType, key string) (mlflowsearch.KeyType, string) {
	if kt == mlflowsearch.KeyAttribute {
		switch key {
		case "name":
			return mlflowsearch.KeyTag, traceNameTag
		case "run_id":
			return mlflowsearch.KeyMetadata, traceSourceRunKey
		}
	}
	return kt, key
}

// traceKVTable is the table of a tag or metadata key.
func traceKVTable(kt mlflowsearch.KeyType) string {
	if kt == mlflowsearch.KeyMetadata {
		return "trace_metadata"
	}
	return "trace_tags"
}

// traceCondition turns one comparison of a trace filter into SQL over
// traces t.
func (db *DB) traceCondition(workspace string, cmp mlflowsearch.Comparison) (string, []any, error) {
	kt, key := traceKeyOf(cmp.KeyType, cmp.Key)
	switch kt {
	case mlflowsearch.KeyAttribute:
		col, ok := traceAttributeColumns[key]
		if !ok {
			return "", nil, wharf.Errorf(wharf.EINVALID, "Invalid attribute key '%s' specified.", key)
		}
		if strings.HasSuffix(key, "_ms") {
			return intCondition(col, cmp)
		}
		return db.textCondition(col, cmp)
	case mlflowsearch.KeyTag, mlflowsearch.KeyMetadata:
		table := traceKVTable(kt)
		switch cmp.Op {
		case mlflowsearch.OpIsNull, mlflowsearch.OpIsNotNull:
			not := ""
			if cmp.Op == mlflowsearch.OpIsNull {
				not = "NOT "
			}
			return `t.trace_id ` + not + `IN (SELECT trace_id FROM ` + table + ` WHERE workspace = ? AND key = ?)`,
				[]any{workspace, key}, nil
		}
		kv, args, err := db.textCondition("value", cmp)
		if err != nil {
			return "", nil, err
		}
		return `t.trace_id IN (SELECT trace_id FROM ` + table + ` WHERE workspace = ? AND key = ? AND ` + kv + `)`,
			append([]any{workspace, key}, args...), nil
	}
	return "", nil, wharf.Errorf(wharf.EINVALID, "Invalid token type: %s", cmp.KeyType)
}

// traceOrder turns the order-by clauses into SQL, with MLflow's default
// and tie-breakers (newest first, then by id) after them. Traces without
// the value sort last either way, on both engines.
func traceOrder(workspace string, obs []mlflowsearch.OrderBy) (string, []any, error) {
	var order []string
	var args []any
	hasID := false
	for _, ob := range obs {
		kt, key := traceKeyOf(ob.KeyType, ob.Key)
		var expr string
		switch kt {
		case mlflowsearch.KeyAttribute:
			col, ok := traceAttributeColumns[key]
			if !ok {
				return "", nil, wharf.Errorf(wharf.EINVALID, "Invalid order_by entity: %s", ob.Key)
			}
			expr = col
			hasID = hasID || key == "request_id"
		case mlflowsearch.KeyTag, mlflowsearch.KeyMetadata:
			expr = `(SELECT value FROM ` + traceKVTable(kt) + ` o WHERE o.workspace = ? AND o.trace_id = t.trace_id AND o.key = ?)`
			// The expression appears twice: once for its nulls, once for its values.
			args = append(args, workspace, key, workspace, key)
		default:
			return "", nil, wharf.Errorf(wharf.EINVALID, "Invalid order_by entity: %s", ob.KeyType)
		}
		dir := " ASC"
		if !ob.Ascending {
			dir = " DESC"
		}
		order = append(order, `CASE WHEN `+expr+` IS NULL THEN 1 ELSE 0 END`, expr+dir)
	}
	if !hasID {
		order = append(order, "t.request_time DESC", "t.trace_id ASC")
	}
	return strings.Join(order, ", "), args, nil
}

// SearchTraces returns a page of the traces of q.ExperimentIDs matching
// the filter. Ids that name no experiment of the workspace match nothing.
func (db *DB) SearchTraces(ctx context.Context, workspace string, q wharf.SearchQuery) ([]*wharf.Trace, string, error) {
	limit, offset, err := pageOf(q.MaxResults, q.PageToken, defaultTraceResults, maxTraceResults)
	if err != nil {
		return nil, "", err
	}
	cmps, err := mlflowsearch.ParseFilter(mlflowsearch.TracesEntity, q.Filter)
	if err != nil {
		return nil, "", searchError(err)
	}
	obs, err := mlflowsearch.ParseOrderBy(mlflowsearch.TracesEntity, q.OrderBy)
	if err != nil {
		return nil, "", searchError(err)
	}
	var expIDs []any
	for _, id := range q.ExperimentIDs {
		if n, ok := parseExperimentID(id); ok {
			expIDs = append(expIDs, n)
		}
	}
	if len(expIDs) == 0 {
		return []*wharf.Trace{}, "", nil
	}

	var where sqlBuilder
	where.add(`t.workspace = ? AND t.experiment_id IN (`+sqlMarks(len(expIDs))+`)`,
		append([]any{workspace}, expIDs...)...)
	for _, cmp := range cmps {
		cond, args, err := db.traceCondition(workspace, cmp)
		if err != nil {
			return nil, "", err
		}
		where.add(" AND "+cond, args...)
	}
	order, orderArgs, err := traceOrder(workspace, obs)
	if err != nil {
		return nil, "", err
	}

	c := db.reader()
	traces := []*wharf.Trace{}
	args := append(append(where.args, orderArgs...), limit+1, offset)
	err = eachRow(ctx, c, `SELECT `+qualifiedColumns("t", traceColumns)+` FROM traces t WHERE `+where.sql.String()+
		` ORDER BY `+order+` LIMIT ? OFFSET ?`, args,
		func(s interface{ Scan(...any) error }) error {
			t, err := scanTrace(s)
			if err != nil {
				return err
			}
			traces = append(traces, t)
			return nil
		})
	if err != nil {
		return nil, "", wrapErr("search traces", err)
	}
	token := nextToken(len(traces), limit, offset)
	traces = traces[:min(len(traces), limit)]
	if err := loadTraceDetails(ctx, c, workspace, traces); err != nil {
		return nil, "", err
	}
	return traces, token, nil
}
