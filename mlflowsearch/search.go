// Package mlflowsearch parses the search filters and order-by clauses that
// the mlflow Python client sends (e.g. "metrics.acc > 0.9 AND tags.team =
// 'nlp'") into a small AST, and encodes the opaque page tokens used to page
// through search results.
//
// The AST deliberately carries values as data, never as SQL text: stores
// translate each Comparison into a parameterised predicate, so nothing a
// client types can reach the database as code. Stores that filter in Go (the
// in-memory and file-backed ones) can use MatchLike for LIKE and ILIKE.
//
// All user-facing failures are returned as *Error, whose messages follow the
// wording of MLflow's own server so that client-side scripts and users see
// familiar text. Callers map *Error to MLflow's INVALID_PARAMETER_VALUE.
package mlflowsearch

import (
	"fmt"
	"sort"
	"strings"
)

// Entity selects which MLflow search endpoint a filter or order-by belongs to;
// each endpoint has its own attributes and its own set of usable key types.
type Entity int

// The searchable MLflow entities.
const (
	RunsEntity Entity = iota
	ExperimentsEntity
	RegisteredModelsEntity
	ModelVersionsEntity
	LoggedModelsEntity
	TracesEntity
)

// String names the entity the way error messages and logs refer to it.
func (e Entity) String() string {
	switch e {
	case RunsEntity:
		return "runs"
	case ExperimentsEntity:
		return "experiments"
	case RegisteredModelsEntity:
		return "registered models"
	case ModelVersionsEntity:
		return "model versions"
	case LoggedModelsEntity:
		return "logged models"
	case TracesEntity:
		return "traces"
	}
	return fmt.Sprintf("Entity(%d)", int(e))
}

// KeyType is the namespace a search key lives in; stores use it to pick the
// table or column family a Comparison or OrderBy applies to.
type KeyType string

// The key types of MLflow's search grammar, in their canonical (singular)
// spelling whatever prefix the client used.
const (
	KeyMetric    KeyType = "metric"
	KeyParam     KeyType = "param"
	KeyTag       KeyType = "tag"
	KeyAttribute KeyType = "attribute"
	KeyDataset   KeyType = "dataset"
	// KeyMetadata is a trace's request metadata.
	KeyMetadata KeyType = "request_metadata"
)

// Comparators as they appear in Comparison.Op. Keyword comparators are
// upper-cased whatever case the client used, so stores can switch on them.
const (
	OpEq        = "="
	OpNe        = "!="
	OpLt        = "<"
	OpLe        = "<="
	OpGt        = ">"
	OpGe        = ">="
	OpLike      = "LIKE"
	OpILike     = "ILIKE"
	OpIn        = "IN"
	OpNotIn     = "NOT IN"
	OpIsNull    = "IS NULL"
	OpIsNotNull = "IS NOT NULL"
)

// Comparison is one AND-ed clause of a filter.
type Comparison struct {
	// KeyType is the namespace of Key.
	KeyType KeyType
	// Key is the metric, param or tag name as written (quotes removed), or
	// the canonical attribute / dataset field name (aliases resolved).
	Key string
	// Op is one of the Op* constants.
	Op string
	// Value is a string, a float64 for numeric comparisons, a []string for
	// IN / NOT IN, or nil for IS NULL / IS NOT NULL.
	Value any
}

// OrderBy is one parsed order-by clause.
type OrderBy struct {
	// KeyType is the namespace of Key.
	KeyType KeyType
	// Key is the metric, param or tag name, or the canonical attribute name.
	Key string
	// Ascending is true unless the clause said DESC.
	Ascending bool
}

// Error is the single error type returned for invalid client input. Msg is
// safe to show to the client verbatim.
type Error struct {
	Msg string
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Msg }

func errorf(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// pyList renders names the way MLflow's Python messages print a list, so
// error text stays recognisable to mlflow users.
func pyList(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "'" + n + "'"
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
