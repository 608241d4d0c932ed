package mlflowsearch

import (
	"strings"
	"testing"
)

// TestBounds: a filter or ordering at the bound parses, one past it is an
// *Error naming the parameter.
func TestBounds(t *testing.T) {
	clauses := func(n int) string {
		return strings.TrimSuffix(strings.Repeat("metrics.m > 0 AND ", n), " AND ")
	}
	if cmps, err := ParseFilter(RunsEntity, clauses(MaxFilterClauses)); err != nil || len(cmps) != MaxFilterClauses {
		t.Fatalf("%d clauses: %d parsed, %v", MaxFilterClauses, len(cmps), err)
	}
	// AND inside an IN list's parentheses does not count.
	if _, err := ParseFilter(RunsEntity, clauses(MaxFilterClauses-1)+" AND run_id IN ('a AND b', 'AND')"); err != nil {
		t.Fatalf("AND in quoted values counted as clauses: %v", err)
	}
	long := "tags.t = '" + strings.Repeat("x", MaxFilterLength-len("tags.t = ''")) + "'"
	if _, err := ParseFilter(RunsEntity, long); err != nil {
		t.Fatalf("a filter of %d bytes: %v", len(long), err)
	}
	orderBy := strings.Split(strings.Repeat("metrics.m DESC,", MaxOrderByClauses+1), ",")[:MaxOrderByClauses+1]
	if _, err := ParseOrderBy(RunsEntity, orderBy[:MaxOrderByClauses]); err != nil {
		t.Fatalf("%d order-by clauses: %v", MaxOrderByClauses, err)
	}

	for name, err := range map[string]error{
		"clauses": second(ParseFilter(RunsEntity, clauses(MaxFilterClauses+1))),
		"2000":    second(ParseFilter(RunsEntity, clauses(2000))),
		"length":  second(ParseFilter(RunsEntity, long+" ")),
	} {
		if e, ok := err.(*Error); !ok || !strings.Contains(e.Msg, "'filter'") {
			t.Errorf("%s: got %v, want an *Error naming 'filter'", name, err)
		}
	}
	if _, err := ParseOrderBy(RunsEntity, orderBy); err == nil || !strings.Contains(err.Error(), "'order_by'") {
		t.Errorf("%d order-by clauses: got %v, want an error naming 'order_by'", len(orderBy), err)
	}
}

func second[T any](_ T, err error) error { return err }
