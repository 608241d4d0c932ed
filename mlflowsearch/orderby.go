package mlflowsearch

import "errors"

// MaxOrderByClauses is the most order-by clauses a search may give: each
// may join another table to the search, and SQLite joins at most 64 (with
// the filter's own, see MaxFilterClauses), while a person sorts by one or
// two columns.
const MaxOrderByClauses = 10

// ParseOrderBy parses MLflow order-by clauses ("metrics.acc DESC",
// "start_time", "name ASC") for entity e, in order. The direction keyword is
// case-insensitive and defaults to ascending. Keys the endpoint cannot sort
// on yield an *Error rather than being ignored, so a client never gets
// silently unsorted results; so do more than MaxOrderByClauses clauses.
func ParseOrderBy(e Entity, clauses []string) ([]OrderBy, error) {
	spec, err := specFor(e)
	if err != nil {
		return nil, err
	}
	if len(clauses) == 0 {
		return nil, nil
	}
	if len(clauses) > MaxOrderByClauses {
		return nil, errorf("Invalid value for parameter 'order_by': %d clauses, more than the %d allowed", len(clauses), MaxOrderByClauses)
	}
	out := make([]OrderBy, 0, len(clauses))
	for _, c := range clauses {
		bad := errorf("Invalid order_by clause '%s'. Could not be parsed.", c)
		toks, unterminated := lex(c)
		if unterminated >= 0 || len(toks) == 0 {
			return nil, bad
		}
		kt, key, p, err := parseIdentifier(c, toks, spec.prefixTable(), spec.orderTypes, spec.orderAttrs)
		if errors.Is(err, errNotIdentifier) {
			return nil, bad
		}
		if err != nil {
			return nil, err
		}
		ob := OrderBy{KeyType: kt, Key: key, Ascending: true}
		if p < len(toks) {
			switch {
			case toks[p].isKeyword("ASC"):
				p++
			case toks[p].isKeyword("DESC"):
				ob.Ascending = false
				p++
			}
		}
		if p != len(toks) {
			return nil, bad
		}
		out = append(out, ob)
	}
	return out, nil
}
