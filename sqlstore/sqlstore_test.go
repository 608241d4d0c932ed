package sqlstore

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 1`:                       `SELECT 1`,
		`a = ? AND b = ?`:                `a = $1 AND b = $2`,
		`x = '?' AND y = ? AND z = "?"`:  `x = '?' AND y = $1 AND z = "?"`,
		`VALUES (?, ?, 'it''s', ?)`:      `VALUES ($1, $2, 'it''s', $3)`,
		`substr(c, 1, ?) = ? OR c = ?`:   `substr(c, 1, $1) = $2 OR c = $3`,
		`? ? ? ? ? ? ? ? ? ? ?`:          `$1 $2 $3 $4 $5 $6 $7 $8 $9 $10 $11`,
		`WHERE a = ? LIMIT ?`:            `WHERE a = $1 LIMIT $2`,
		`INSERT INTO t VALUES (?) -- no`: `INSERT INTO t VALUES ($1) -- no`,
	} {
		if got := rebindNumbered(in); got != want {
			t.Errorf("rebind(%q) = %q, want %q", in, got, want)
		}
	}
	d := Dialect{}
	if got := d.rebind(`a = ?`); got != `a = ?` {
		t.Errorf("rebind without numbered placeholders changed the query: %q", got)
	}
}

func TestTimeText(t *testing.T) {
	d := Dialect{TimeAsText: true}
	in := time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.FixedZone("X", 3600))
	s := d.timeArg(in).(string)
	if s != "2024-02-29T22:59:58.123456Z" {
		t.Fatalf("text form %q", s)
	}
	var out time.Time
	if err := (timeDest{&out}).Scan(s); err != nil {
		t.Fatal(err)
	}
	if !out.Equal(in.Truncate(time.Microsecond)) || out.Location() != time.UTC {
		t.Errorf("round trip %v", out)
	}
	// Fixed width keeps text order chronological, whole seconds included.
	a := d.timeArg(time.Date(2024, 1, 1, 0, 0, 1, 0, time.UTC)).(string)
	b := d.timeArg(time.Date(2024, 1, 1, 0, 0, 0, 999999000, time.UTC)).(string)
	if a <= b {
		t.Errorf("%q sorts before %q", a, b)
	}
}

func TestReadMigrations(t *testing.T) {
	good := fstest.MapFS{
		"0002_b.sql": {Data: []byte("B")},
		"0001_a.sql": {Data: []byte("A")},
		"README.md":  {Data: []byte("ignored")},
	}
	migs, err := readMigrations(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) != 2 || migs[0].version != 1 || migs[1].name != "b" || migs[1].sql != "B" {
		t.Fatalf("migrations %+v", migs)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"bad name":  {"1_a.sql": {}},
		"duplicate": {"0001_a.sql": {}, "0001_b.sql": {}},
		"empty":     {},
	} {
		if _, err := readMigrations(fsys); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestScopeAtOrBelow(t *testing.T) {
	cond, args := scopeAtOrBelow("scope", "/workspaces/w_1")
	if !strings.Contains(cond, "substr(scope, 1, ?)") || len(args) != 3 {
		t.Fatalf("%s %v", cond, args)
	}
	if args[1] != len("/workspaces/w_1/") || args[2] != "/workspaces/w_1/" {
		t.Errorf("args %v", args)
	}
}
