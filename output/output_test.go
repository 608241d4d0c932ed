package output

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// spec's fields are deliberately out of alphabetical order so sorted and
// source key order can be told apart.
type spec struct {
	Zone  string `json:"zone"`
	Arch  string `json:"arch"`
	Cores int    `json:"cores"`
}

type job struct {
	Name      string            `json:"name"`
	Status    string            `json:"status"`
	Spec      spec              `json:"spec"`
	Enabled   bool              `json:"enabled"`
	Tags      map[string]string `json:"tags"`
	Score     float64           `json:"score"`
	Inputs    []string          `json:"inputs"`
	ID        int64             `json:"id"`
	Endpoint  *string           `json:"endpoint"`
	DisplayNm string            `json:"displayName"`
}

var jobs = []job{
	{
		Name: "job-1", Status: "Running", Spec: spec{"eu", "x86", 8}, Enabled: true,
		Tags: map[string]string{"team": "ml"}, Score: 0.5, Inputs: []string{"a", "b"},
		ID: 9007199254740993, DisplayNm: "first & <best>",
	},
	{
		Name: "EP", Status: "Completed", Spec: spec{"us", "arm", 16}, Enabled: false,
		Score: 3, ID: 2, DisplayNm: "second",
	},
}

// writeCase is one Write call and its exact output. Expected texts are what
// az prints for the same JSON document, query and format.
type writeCase struct {
	name   string
	v      any
	format string
	query  string
	want   string
}

var writeCases = []writeCase{
	// json: json.dumps(indent=2, sort_keys=True, ensure_ascii=False).
	{
		name:   "json sorts keys at every level and indents by two",
		v:      jobs[1],
		format: "json",
		want: `{
  "displayName": "second",
  "enabled": false,
  "endpoint": null,
  "id": 2,
  "inputs": null,
  "name": "EP",
  "score": 3,
  "spec": {
    "arch": "arm",
    "cores": 16,
    "zone": "us"
  },
  "status": "Completed",
  "tags": null
}
`,
	},
	{
		name:   "default format is json",
		v:      spec{"eu", "x86", 8},
		format: "",
		want:   "{\n  \"arch\": \"x86\",\n  \"cores\": 8,\n  \"zone\": \"eu\"\n}\n",
	},
	{
		name:   "jsonc without a terminal is plain json",
		v:      spec{"eu", "x86", 8},
		format: "jsonc",
		want:   "{\n  \"arch\": \"x86\",\n  \"cores\": 8,\n  \"zone\": \"eu\"\n}\n",
	},
	{
		// sort_keys sorts OrderedDicts too, so the written order is lost.
		name:   "json sorts the keys of a multiselect hash",
		v:      jobs[1],
		format: "json",
		query:  "{z: name, a: status, m: spec}",
		want: `{
  "a": "Completed",
  "m": {
    "arch": "arm",
    "cores": 16,
    "zone": "us"
  },
  "z": "EP"
}
`,
	},
	{
		name:   "json sorts keys by code point",
		v:      json.RawMessage(`{"b": 1, "a": 2, "_": 3, "B": 4, "é": 5}`),
		format: "json",
		want:   "{\n  \"B\": 4,\n  \"_\": 3,\n  \"a\": 2,\n  \"b\": 1,\n  \"é\": 5\n}\n",
	},
	{
		name:   "json leaves html characters alone and keeps big ids exact",
		v:      jobs[0],
		format: "json",
		query:  "{id: id, d: displayName}",
		want:   "{\n  \"d\": \"first & <best>\",\n  \"id\": 9007199254740993\n}\n",
	},
	{
		name:   "json escapes only quotes, backslashes and control characters",
		v:      "q\"b\\\b\f\x01\n\u2028é",
		format: "json",
		want:   `"q\"b\\\b\f\u0001\n` + "\u2028é\"\n",
	},
	{
		name:   "json numbers are spelled as Python spells them",
		v:      json.RawMessage(`[1.50, 1e-7, 1E22, -0.0, 3, 123456789012345678901234567890]`),
		format: "json",
		want:   "[\n  1.5,\n  1e-07,\n  1e+22,\n  -0.0,\n  3,\n  123456789012345678901234567890\n]\n",
	},
	{
		name:   "json empty list and object",
		v:      map[string]any{"a": []int{}, "b": struct{}{}},
		format: "json",
		want:   "{\n  \"a\": [],\n  \"b\": {}\n}\n",
	},

	// yaml: yaml.safe_dump(default_flow_style=False).
	{
		name:   "yaml sorts keys, multiselect hash included",
		v:      jobs[0],
		format: "yaml",
		query:  "{name: name, spec: spec, inputs: inputs, enabled: enabled, endpoint: endpoint}",
		want: `enabled: true
endpoint: null
inputs:
- a
- b
name: job-1
spec:
  arch: x86
  cores: 8
  zone: eu
`,
	},
	{
		name:   "yaml numbers as PyYAML spells them",
		v:      json.RawMessage(`{"f": 1e-7, "g": 1.50, "h": 1E22, "i": 123456789012345678901234567890}`),
		format: "yaml",
		want:   "f: 1.0e-07\ng: 1.5\nh: 1.0e+22\ni: 123456789012345678901234567890\n",
	},
	{
		name:   "yaml ends a plain top-level scalar with a document end marker",
		v:      jobs[0],
		format: "yaml",
		query:  "name",
		want:   "job-1\n...\n",
	},
	{
		name:   "yaml top-level number",
		v:      jobs,
		format: "yaml",
		query:  "length(@)",
		want:   "2\n...\n",
	},
	{
		name:   "yaml empty list",
		v:      []int{},
		format: "yaml",
		want:   "[]\n",
	},

	// tsv: knack's _TsvOutput.
	{
		name:   "tsv object row sorts keys; nested object empty, nested list its length, null None",
		v:      jobs[0],
		format: "tsv",
		want:   "first & <best>\tTrue\tNone\t9007199254740993\t2\tjob-1\t0.5\t\tRunning\t\n",
	},
	{
		name:   "tsv list of objects gives one sorted line each",
		v:      []spec{{"eu", "x86", 8}, {"us", "arm", 16}},
		format: "tsv",
		want:   "x86\t8\teu\narm\t16\tus\n",
	},
	{
		name:   "tsv queried source object is sorted",
		v:      jobs,
		format: "tsv",
		query:  "[].spec",
		want:   "x86\t8\teu\narm\t16\tus\n",
	},
	{
		name:   "tsv source key order does not matter",
		v:      json.RawMessage(`[{"b": 1, "a": 2}, {"a": 3, "b": 4}]`),
		format: "tsv",
		want:   "2\t1\n3\t4\n",
	},
	{
		name:   "tsv multiselect hash keeps the written key order",
		v:      jobs,
		format: "tsv",
		query:  "[].{s: status, n: name, c: spec.cores}",
		want:   "Running\tjob-1\t8\nCompleted\tEP\t16\n",
	},
	{
		name:   "tsv hash order wins over a source object with the same keys",
		v:      json.RawMessage(`[{"name": "x", "status": "y"}]`),
		format: "tsv",
		query:  "[].{status: status, name: name}",
		want:   "y\tx\n",
	},
	{
		name:   "tsv nested values in a hash keep their columns",
		v:      jobs,
		format: "tsv",
		query:  "[].{n: name, t: tags, i: inputs, e: endpoint}",
		want:   "job-1\t\t2\tNone\nEP\tNone\tNone\tNone\n",
	},
	{
		name:   "tsv list of lists: nested list length, nested object empty, null None",
		v:      jobs,
		format: "tsv",
		query:  "[].[name, spec.cores, inputs, spec, enabled, endpoint]",
		want:   "job-1\t8\t2\t\tTrue\tNone\nEP\t16\tNone\t\tFalse\tNone\n",
	},
	{
		name:   "tsv query name prints only the bare name",
		v:      jobs[0],
		format: "tsv",
		query:  "name",
		want:   "job-1\n",
	},
	{
		name:   "tsv format name is case-insensitive",
		v:      jobs[0],
		format: "TSV",
		query:  "name",
		want:   "job-1\n",
	},
	{
		name:   "tsv projection prints one value per line",
		v:      jobs,
		format: "tsv",
		query:  "[].name",
		want:   "job-1\nEP\n",
	},
	{
		name:   "tsv filter to list of lists prints one line per match",
		v:      jobs,
		format: "tsv",
		query:  "[?name=='EP'][name]",
		want:   "EP\n",
	},
	{
		name:   "tsv filter with no match prints nothing",
		v:      jobs,
		format: "tsv",
		query:  "[?name=='nope'][name]",
		want:   "",
	},
	{
		// _dump_row lowercases a row that is a bare boolean.
		name:   "tsv booleans that are whole rows are lowercase",
		v:      jobs,
		format: "tsv",
		query:  "[].enabled",
		want:   "true\nfalse\n",
	},
	{
		name:   "tsv bare boolean is lowercase",
		v:      jobs[1],
		format: "tsv",
		query:  "enabled",
		want:   "false\n",
	},
	{
		name:   "tsv booleans inside a row are Python style",
		v:      jobs,
		format: "tsv",
		query:  "[].[enabled]",
		want:   "True\nFalse\n",
	},
	{
		name:   "tsv null and nested elements of a list result",
		v:      json.RawMessage(`[null, true, [1, 2, 3], {"b": 1, "a": null}, "s"]`),
		format: "tsv",
		want:   "None\ntrue\n1\t2\t3\nNone\t1\ns\n",
	},
	{
		name:   "tsv numbers as Python prints them",
		v:      json.RawMessage(`[0.5, 3, 1.0, 1e-7, 1e16, 0.0001]`),
		format: "tsv",
		want:   "0.5\n3\n1.0\n1e-07\n1e+16\n0.0001\n",
	},
	{
		name:   "tsv strings are unquoted and raw",
		v:      "a\tb",
		format: "tsv",
		want:   "a\tb\n",
	},
	{
		name:   "tsv empty list prints nothing",
		v:      []int{},
		format: "tsv",
		want:   "",
	},
	{
		name:   "tsv functions work",
		v:      jobs,
		format: "tsv",
		query:  "length([?enabled])",
		want:   "1\n",
	},

	// table: knack's _TableOutput laid out by tabulate's "simple" format.
	{
		// Sorted keys; id dropped; null, list and object values dropped;
		// headers capitalised; each column at least two wider than its
		// header.
		name:   "table golden",
		v:      jobs,
		format: "table",
		want: `DisplayName     Enabled    Name    Score    Status
--------------  ---------  ------  -------  ---------
first & <best>  True       job-1   0.5      Running
second          False      EP      3        Completed
`,
	},
	{
		name:   "table single object is one row",
		v:      spec{"eu", "x86", 8},
		format: "table",
		want:   "Arch    Cores    Zone\n------  -------  ------\nx86     8        eu\n",
	},
	{
		name:   "table with a query keeps the hash order",
		v:      jobs,
		format: "table",
		query:  "[].{name: name, Cores: spec.cores}",
		want:   "Name    Cores\n------  -------\njob-1   8\nEP      16\n",
	},
	{
		name:   "table with a query keeps source order",
		v:      jobs,
		format: "table",
		query:  "[].spec",
		want:   "Zone    Arch    Cores\n------  ------  -------\neu      x86     8\nus      arm     16\n",
	},
	{
		name:   "table drops id, type and etag even when queried",
		v:      json.RawMessage(`[{"id": "/x/1", "type": "t", "etag": "e", "name": "n"}]`),
		format: "table",
		query:  "[].{id: id, type: type, etag: etag, name: name}",
		want:   "Name\n------\nn\n",
	},
	{
		name:   "table keeps id renamed by a query",
		v:      json.RawMessage(`[{"id": "/x/1", "name": "n"}]`),
		format: "table",
		query:  "[].{ID: id, Type: name}",
		want:   "ID    Type\n----  ------\n/x/1  n\n",
	},
	{
		name:   "table columns are the union of the rows' in order of first appearance",
		v:      json.RawMessage(`[{"b": 1, "a": null}, {"a": 2, "c": 3}]`),
		format: "table",
		want:   "B    A    C\n---  ---  ---\n1\n     2    3\n",
	},
	{
		name:   "table later key with the same header wins the cell",
		v:      json.RawMessage(`{"Name": "upper", "name": "lower"}`),
		format: "table",
		want:   "Name\n------\nlower\n",
	},
	{
		name:   "table list of scalars uses a Result column",
		v:      jobs,
		format: "table",
		query:  "[].name",
		want:   "Result\n--------\njob-1\nEP\n",
	},
	{
		name:   "table list of lists numbers its columns",
		v:      jobs,
		format: "table",
		query:  "[].[name, status]",
		want:   "Column1    Column2\n---------  ---------\njob-1      Running\nEP         Completed\n",
	},
	{
		name:   "table list row shows nested values as Python repr and null as blank",
		v:      json.RawMessage(`[["a", null, {"x": 1, "y": "it's"}, [true, 1.0]]]`),
		format: "table",
		want: `Column1    Column2    Column3                Column4
---------  ---------  ---------------------  -----------
a                     {'x': 1, 'y': "it's"}  [True, 1.0]
`,
	},
	{
		// Python 3.12's OrderedDict repr, the Python az now ships with.
		name:   "table repr of a multiselect hash is an OrderedDict",
		v:      jobs,
		format: "table",
		query:  "[].[name, {s: status}]",
		want: `Column1    Column2
---------  -------------------------------
job-1      OrderedDict({'s': 'Running'})
EP         OrderedDict({'s': 'Completed'})
`,
	},
	{
		name:   "table mixed rows",
		v:      json.RawMessage(`[{"k": "v"}, ["c"], "s", null]`),
		format: "table",
		want:   "K    Column1    Result\n---  ---------  --------\nv\n     c\n                s\n\n",
	},
	{
		name:   "table strips cells and splits lines; empty rows then take no lines",
		v:      json.RawMessage(`[{"h": " x ", "g": 1}, {"h": "a\nbb"}, {"h": ""}]`),
		format: "table",
		want:   "G    H\n---  ---\n1    x\n     a\n     bb\n",
	},
	{
		// The line break that switches tabulate to line-by-line layout is
		// looked for before cells are stripped.
		name:   "table trailing line break still drops empty rows",
		v:      json.RawMessage(`[{"h": "x\n"}, {"h": ""}, {"h": "y"}]`),
		format: "table",
		want:   "H\n---\nx\ny\n",
	},
	{
		name:   "table with nothing tabular prints an empty line",
		v:      map[string]any{"a": map[string]int{"b": 1}},
		format: "table",
		want:   "\n",
	},
	{
		name:   "table empty list prints an empty line",
		v:      []job{},
		format: "table",
		want:   "\n",
	},

	{name: "null prints nothing in json", v: jobs[0], format: "json", query: "missing", want: ""},
	{name: "null prints nothing in yaml", v: jobs[0], format: "yaml", query: "endpoint", want: ""},
	{name: "null prints nothing in tsv", v: jobs[0], format: "tsv", query: "endpoint", want: ""},
	{name: "null prints nothing in table", v: nil, format: "table", want: ""},
	{name: "none prints nothing", v: jobs, format: "none", want: ""},
	{name: "none with a query prints nothing", v: jobs, format: "NONE", query: "[].name", want: ""},
}

func TestWrite(t *testing.T) {
	for _, tc := range writeCases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, tc.v, tc.format, tc.query); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if got := buf.String(); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s\n(got %q)", got, tc.want, got)
			}
		})
	}
}

// TestYAMLQuotesLookalikes checks that strings which would read back as
// another type are quoted, whatever quote style is used.
func TestYAMLQuotesLookalikes(t *testing.T) {
	in := map[string]string{"a": "true", "b": "3", "c": "", "d": "null", "e": "1e3"}
	var buf bytes.Buffer
	if err := Write(&buf, in, "yaml", ""); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := yaml.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("output %q is not yaml: %v", buf.String(), err)
	}
	for k, want := range in {
		if got, ok := back[k].(string); !ok || got != want {
			t.Errorf("%s read back as %#v, want string %q (output %q)", k, back[k], want, buf.String())
		}
	}
}

func TestPyFloat(t *testing.T) {
	for in, want := range map[float64]string{
		0: "0.0", math.Copysign(0, -1): "-0.0", 1: "1.0", 0.1: "0.1", -2.5: "-2.5",
		1e15: "1000000000000000.0", 1e16: "1e+16", 1234567890123456.7: "1234567890123456.8",
		0.0001: "0.0001", 0.00001: "1e-05", 1.5e-7: "1.5e-07", 1e100: "1e+100",
		5e-324: "5e-324", math.Inf(1): "inf", math.Inf(-1): "-inf", math.NaN(): "nan",
	} {
		if got := pyFloat(in); got != want {
			t.Errorf("pyFloat(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name   string
		v      any
		format string
		query  string
		want   string // exact message, or prefix when it ends in "..."
	}{
		{
			name:   "unknown format",
			v:      jobs,
			format: "xml",
			want:   `unsupported output format "xml" (allowed: json, jsonc, yaml, table, tsv, none)`,
		},
		{
			name:   "unknown format checked before the query",
			v:      jobs,
			format: "csv",
			query:  "[?",
			want:   `unsupported output format "csv" (allowed: json, jsonc, yaml, table, tsv, none)`,
		},
		{
			name:   "syntax error",
			v:      jobs,
			format: "tsv",
			query:  "[?name==",
			want:   "invalid jmespath query: ...",
		},
		{
			name:   "syntax error with unbalanced brace",
			v:      jobs,
			format: "json",
			query:  "[].{n: name",
			want:   "invalid jmespath query: ...",
		},
		{
			name:   "syntax error even when output is none",
			v:      jobs,
			format: "none",
			query:  "name..",
			want:   "invalid jmespath query: ...",
		},
		{
			name:   "unknown function is reported even if never evaluated",
			v:      []job{},
			format: "json",
			query:  "[].nosuch(name)",
			want:   `invalid jmespath query: unknown function nosuch() (in "[].nosuch(name)")`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, tc.v, tc.format, tc.query)
			if err == nil {
				t.Fatalf("Write succeeded, printed %q", buf.String())
			}
			if prefix, ok := strings.CutSuffix(tc.want, "..."); ok {
				if !strings.HasPrefix(err.Error(), prefix) || len(err.Error()) == len(prefix) {
					t.Errorf("error %q, want prefix %q and a reason", err, prefix)
				}
			} else if err.Error() != tc.want {
				t.Errorf("error %q, want %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %q on error", buf.String())
			}
		})
	}
}

func TestSyntaxErrorNamesPosition(t *testing.T) {
	err := Write(&bytes.Buffer{}, jobs, "json", "[?name==")
	if err == nil || !strings.Contains(err.Error(), `position 8 in "[?name=="`) {
		t.Fatalf("error %v should say where the expression broke", err)
	}
}

func TestQuery(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  any
	}{
		{"empty query returns the plain document", "", nil},
		{"scalar", "[0].name", "job-1"},
		{"number", "[1].spec.cores", 16.0},
		{"list", "[].enabled", []any{true, false}},
		{"object", "[1].spec", map[string]any{"zone": "us", "arch": "arm", "cores": 16.0}},
		{"null", "[0].endpoint", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Query(jobs, tc.query)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			if tc.query == "" {
				list, ok := got.([]any)
				if !ok || len(list) != 2 {
					t.Fatalf("got %#v, want the two jobs as []any", got)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
	if _, err := Query(jobs, "[?"); err == nil || !strings.HasPrefix(err.Error(), "invalid jmespath query: ") {
		t.Errorf("Query with bad syntax: error %v", err)
	}
}

func TestFormatsMatchesWrite(t *testing.T) {
	for _, f := range Formats {
		if err := Write(&bytes.Buffer{}, 1, f, ""); err != nil {
			t.Errorf("format %q listed in Formats but rejected: %v", f, err)
		}
	}
	want := []string{"json", "jsonc", "yaml", "table", "tsv", "none"}
	if !reflect.DeepEqual(Formats, want) {
		t.Errorf("Formats = %v, want %v", Formats, want)
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
