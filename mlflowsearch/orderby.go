package mlflowsearch

import "errors"

// ParseOrderBy parses MLflow order-by clauses ("metrics.acc DESC",
// "start_time", "name ASC") for entity e, in order. The direction keyword is
// case-insensitive and defaults to ascending. Keys the endpoint cannot sort
// on yield an *Error rather than being ignored, so a client never gets
// silently unsorted results.
func ParseOrderBy(e Entity, clauses []string) ([]OrderBy, error) {
	spec, err := specFor(e)
	if err != nil {
		return nil, err
	}
	if len(clauses) == 0 {
		return nil, nil
	}
	out := make([]OrderBy, 0, len(clauses))
	for _, c := range clauses {
		bad := errorf("Invalid order_by clause '%s'. Could not be parsed.", c)
		toks, unterminated := lex(c)
		if unterminated >= 0 || len(toks) == 0 {
			return nil, bad
		}
		kt, key, p, err := parseIdentifier(c, toks, spec.orderTypes, spec.orderAttrs)
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
