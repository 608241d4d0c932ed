package drift

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mdcRecord is one data collector record of a batch of rows.
func mdcRecord(id, at, rows string) string {
	return `{"specversion":"1.0","id":"` + id + `","source":"/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w/onlineEndpoints/ep/deployments/blue",` +
		`"type":"azureml.inference.model_inputs","datacontenttype":"application/json","time":"` + at + `","data":` + rows +
		`,"contentrange":"bytes 0-59/60","correlationid":"` + id + `","xrequestid":"` + id + `","modelversion":"default","collectdatatype":"pandas.core.frame.DataFrame","agent":"azureml-ai-monitoring/0.1.0b4"}`
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// column reads a whole column of a small dataset as text ("-" for null).
func column(t *testing.T, d Dataset, name string) string {
	t.Helper()
	var out []string
	err := d.ScanString(context.Background(), name, func(b Strings) error {
		for i, v := range b.Values {
			if b.Null != nil && b.Null[i] {
				v = "-"
			}
			out = append(out, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

func TestOpenCollectedReadsTheWindow(t *testing.T) {
	dep := filepath.Join(t.TempDir(), "modelDataCollector", "ep", "blue")
	in := filepath.Join(dep, "model_inputs")
	writeFile(t, filepath.Join(in, "2024", "03", "05", "17", "a.jsonl"),
		mdcRecord("early", "2024-03-05T17:59:59Z", `[{"x":1,"c":"a"}]`)+"\n")
	writeFile(t, filepath.Join(in, "2024", "03", "05", "18", "a.jsonl"),
		mdcRecord("r1", "2024-03-05T18:16:25Z", `[{"x":2.5,"c":"b"},{"x":3,"c":null}]`)+"\n\n"+
			mdcRecord("r2", "2024-03-05T18:40:00Z", `[{"c":"a","x":4,"extra":true}]`)+"\n")
	writeFile(t, filepath.Join(in, "2024", "03", "05", "19", "a.jsonl"),
		mdcRecord("late", "2024-03-05T19:00:00Z", `[{"x":9,"c":"z"}]`)+"\n")
	writeFile(t, filepath.Join(dep, "model_outputs", "2024", "03", "05", "18", "a.jsonl"),
		mdcRecord("r1", "2024-03-05T18:16:25Z", `[{"y":1}]`)+"\n")
	from := time.Date(2024, 3, 5, 18, 0, 0, 0, time.UTC)
	d, err := OpenCollected(dep, from, from.Add(time.Hour), "model_inputs")
	if err != nil {
		t.Fatal(err)
	}
	defer Close(d)
	if d.Rows() != 3 {
		t.Fatalf("%d rows, want 3", d.Rows())
	}
	var names []string
	for _, c := range d.Columns() {
		names = append(names, c.Name+":"+c.Type)
	}
	if got := strings.Join(names, " "); got != "x:double c:string correlationid:string extra:boolean" {
		t.Errorf("columns %s", got)
	}
	for name, want := range map[string]string{"x": "2.5 3 4", "c": "b - a", "correlationid": "r1 r1 r2", "extra": "- - true"} {
		if got := column(t, d, name); got != want {
			t.Errorf("column %s: %q, want %q", name, got, want)
		}
	}
	// The collection's own folder works too; an hour with no data is an
	// empty window.
	empty, err := OpenCollected(in, from.Add(5*time.Hour), from.Add(6*time.Hour), "model_inputs")
	if err != nil {
		t.Fatal(err)
	}
	defer Close(empty)
	if empty.Rows() != 0 {
		t.Errorf("%d rows in an empty window", empty.Rows())
	}
	if _, err := Evaluate(context.Background(), Signal{Type: DataDrift}, d, empty); err == nil || !strings.Contains(err.Error(), ErrEmptyWindow.Error()) {
		t.Errorf("empty window: %v", err)
	}
}

func TestBadInputNamesFileAndLine(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ text, want string }{
		"rows.jsonl": {`{"a":1}` + "\n" + `{"a":` + "\n", "rows.jsonl: line 2: not a JSON object"},
		"mdc.jsonl":  {mdcRecord("r", "2024-03-05T18:00:00Z", `{"a":1}`) + "\n", "mdc.jsonl: line 1: field data: not an array"},
		"wide.csv":   {"a,b\n1,2\n3,4,5\n", "wide.csv: line 3: 3 fields, the header has 2"},
		"head.csv":   {"a,,c\n1,2,3\n", `head.csv: line 1, column 2: header ""`},
	} {
		p := filepath.Join(dir, name)
		writeFile(t, p, tc.text)
		if _, err := OpenFiles([]string{p}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
