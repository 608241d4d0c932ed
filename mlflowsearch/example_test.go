package mlflowsearch_test

import (
	"fmt"
	"strings"

	"github.com/wharfml/wharf/mlflowsearch"
)

// A SQL store turns each Comparison into a predicate whose value is always a
// bind parameter, never text spliced into the query.
func ExampleParseFilter() {
	cmps, err := mlflowsearch.ParseFilter(mlflowsearch.RunsEntity,
		`metrics.acc > 0.9 AND tags."mlflow.runName" LIKE 'bert%' AND run_id IN ('a', 'b')`)
	if err != nil {
		fmt.Println(err)
		return
	}
	var where []string
	var args []any
	for _, c := range cmps {
		switch c.Op {
		case mlflowsearch.OpIn, mlflowsearch.OpNotIn:
			vals := c.Value.([]string)
			marks := strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ")
			where = append(where, fmt.Sprintf("%s:%s %s (%s)", c.KeyType, c.Key, c.Op, marks))
			for _, v := range vals {
				args = append(args, v)
			}
		default:
			where = append(where, fmt.Sprintf("%s:%s %s ?", c.KeyType, c.Key, c.Op))
			args = append(args, c.Value)
		}
	}
	fmt.Println(strings.Join(where, " AND "))
	fmt.Println(args...)
	// Output:
	// metric:acc > ? AND tag:mlflow.runName LIKE ? AND attribute:run_id IN (?, ?)
	// 0.9 bert% a b
}

func ExampleParseOrderBy() {
	obs, _ := mlflowsearch.ParseOrderBy(mlflowsearch.RunsEntity, []string{"metrics.`f1 score` DESC", "created"})
	for _, ob := range obs {
		fmt.Println(ob.KeyType, ob.Key, ob.Ascending)
	}
	// Output:
	// metric f1 score false
	// attribute start_time true
}

func ExampleDecodeToken() {
	tok := mlflowsearch.EncodeToken(100)
	off, err := mlflowsearch.DecodeToken(tok)
	fmt.Println(off, err)
	// Output: 100 <nil>
}
