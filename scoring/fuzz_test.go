package scoring

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/wharfml/wharf"
)

// FuzzDecode feeds arbitrary bytes through decode, check, convert and encode:
// none may panic, every error must be a *wharf.Error, and every frame must be
// consistent.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"input_data": [[1.0, 2.5, 3], [4.1, 0.0, 7]]}`,
		`{"input_data": {"columns": ["a", "b"], "index": [0], "data": [[1, 2]]}}`,
		`{"input_data": {"a": [1, 2], "b": [3, 4]}, "params": {"k": 1}}`,
		`{"input_data": [{"a": 1}, {"b": true}]}`,
		`{"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"]]}}`,
		`{"dataframe_records": [{"a": 1, "b": null}]}`,
		`{"instances": [1, 2]}`,
		`{"instances": [[[1], [2]]]}`,
		`{"inputs": {"a": ["x"]}}`,
		`{"id": "x", "inputs": [{"name": "a", "shape": [2, 2], "datatype": "INT8", "data": [[1, 2], [3, 4]]}]}`,
		`{"inputs": [{"name": "a", "shape": [2], "datatype": "BOOL", "data": [true, false]}, {"name": "b", "shape": [2, 1], "datatype": "BYTES", "data": ["p", "q"]}]}`,
		`{"input_data": [[1e400, -0, 9223372036854775808]]}`,
		`{}`, `[]`, `null`, ``, `{"input_data": [[1]]} {}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "taxi-request.json")); err == nil {
		f.Add(b)
	}
	sigs := []*Signature{
		nil,
		{Inputs: []ColumnSpec{{Name: "a", Type: "double", Required: true}, {Name: "b", Type: "long", Required: false}}},
		{Inputs: []ColumnSpec{{Type: "double", Required: true}, {Type: "boolean", Required: true}}},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fr, err := DecodeWithLimits(body, Limits{MaxRows: 1000, MaxColumns: 100, MaxCells: 10000})
		if err != nil {
			var we *wharf.Error
			if !errors.As(err, &we) {
				t.Fatalf("error %v is %T, not *wharf.Error", err, err)
			}
			return
		}
		if fr.Rows <= 0 || len(fr.Data) == 0 {
			t.Fatalf("empty frame accepted: %+v", fr)
		}
		if fr.Columns != nil && len(fr.Columns) != len(fr.Data) {
			t.Fatalf("%d names for %d columns", len(fr.Columns), len(fr.Data))
		}
		for c, col := range fr.Data {
			if len(col) != fr.Rows {
				t.Fatalf("column %d has %d values for %d rows", c, len(col), fr.Rows)
			}
			for r := range col {
				_ = fr.Field(c, r)
			}
		}
		for _, s := range sigs {
			g := *fr
			if Check(&g, s) != nil {
				continue
			}
			m, err := g.Float64Matrix(nil)
			if err != nil {
				continue
			}
			preds := Predictions{Float: make([]float64, len(m))}
			for r, row := range m {
				for _, x := range row {
					preds.Float[r] += x
				}
			}
			if _, err := Encode(g.Format, preds, ModelInfo{Name: "m", RequestID: g.ID}); err != nil {
				t.Fatalf("Encode: %v", err)
			}
		}
	})
}
