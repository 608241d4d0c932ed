package sqlstore

import (
	"database/sql"
	"os"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/mlflowsearch"
	_ "modernc.org/sqlite" // the plan test reads SQLite's query plans
)

func TestLikeToGlob(t *testing.T) {
	for in, want := range map[string]string{
		"taxi%":      "taxi*",
		"%_x_%":      "*?x?*",
		"a*b?c[d]e":  "a[*]b[?]c[[]d]e",
		`back\slash`: `back\slash`,
		"é_%":        "é?*",
		"":           "",
	} {
		if got := likeToGlob(in); got != want {
			t.Errorf("likeToGlob(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIntCondition(t *testing.T) {
	for _, tc := range []struct {
		op   string
		v    float64
		cond string
		arg  any
	}{
		{"=", 2, "c = ?", int64(2)},
		{"=", 2.5, "1 = 0", nil},
		{"!=", 2.5, "c IS NOT NULL", nil},
		{">", 2.5, "c > ?", int64(2)},
		{">=", 2.5, "c >= ?", int64(3)},
		{"<", 2.5, "c < ?", int64(3)},
		{"<=", 2.5, "c <= ?", int64(2)},
		{"<=", -2.5, "c <= ?", int64(-3)},
		{">", 1e300, "c > ?", int64(1<<63 - 1)},
	} {
		cond, args, err := intCondition("c", mlflowsearch.Comparison{Key: "k", Op: tc.op, Value: tc.v})
		if err != nil {
			t.Fatal(err)
		}
		if cond != tc.cond || (tc.arg == nil) != (len(args) == 0) || (tc.arg != nil && args[0] != tc.arg) {
			t.Errorf("%s %v: %q %v, want %q %v", tc.op, tc.v, cond, args, tc.cond, tc.arg)
		}
	}
}

func TestArtifactBelow(t *testing.T) {
	cond, args := artifactBelow("a_b")
	if strings.Contains(cond, "LIKE") || len(args) != 2 || args[0] != "a_b/" || args[1] != "a_b0" {
		t.Fatalf("%s %v", cond, args)
	}
}

// TestRegistryQueryPlans checks on SQLite that the searches clients run
// most are answered from indexes, not by scanning or sorting the table.
func TestRegistryQueryPlans(t *testing.T) {
	ctx := t.Context()
	h, err := sql.Open("sqlite", t.TempDir()+"/plan.db?_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.SetMaxOpenConns(1)
	d := Dialect{Name: "sqlite", TimeAsText: true}
	if err := Migrate(ctx, h, d, os.DirFS("../sqlite/migrations")); err != nil {
		t.Fatal(err)
	}
	db := New(h, h, d)
	plan := func(q string, args []any) string {
		rows, err := h.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			out = append(out, detail)
		}
		return strings.Join(out, "; ")
	}
	check := func(what, q string, args []any, want string) {
		t.Helper()
		p := plan(q, args)
		if !strings.Contains(p, want) || strings.Contains(p, "SCAN") || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s: plan %q, want %q without a scan or sort", what, p, want)
		}
	}

	mv, err := db.modelVersionSearchSQL("ws", wharf.SearchQuery{Filter: "name='taxi-model'"})
	if err != nil {
		t.Fatal(err)
	}
	check("versions by name", mv.query, mv.args, "(workspace=? AND name=?)")
	mv, err = db.modelVersionSearchSQL("ws", wharf.SearchQuery{Filter: "run_id = 'r1'"})
	if err != nil {
		t.Fatal(err)
	}
	check("versions by run", mv.query, mv.args, "model_versions_run_id (workspace=? AND run_id=?)")
	rm, err := db.registeredModelSearchSQL("ws", wharf.SearchQuery{Filter: "name LIKE 'taxi%'"})
	if err != nil {
		t.Fatal(err)
	}
	check("models by prefix", rm.query, rm.args, "(workspace=? AND name>? AND name<?)")
	q, args := artifactListSQL("ws", "models/m-1")
	check("artifact listing", q, args, "(workspace=? AND path>? AND path<?)")
	if p := plan(q, args); !strings.Contains(p, "(workspace=? AND path=?)") {
		t.Errorf("artifact listing: plan %q", p)
	}
}
