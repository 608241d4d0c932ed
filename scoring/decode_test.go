package scoring

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
)

// taxiColumns are the feature names of the taxi sample, in its CSV order.
var taxiColumns = []string{
	"distance", "dropoff_latitude", "dropoff_longitude", "passengers",
	"pickup_latitude", "pickup_longitude", "store_forward", "vendor",
	"pickup_weekday", "pickup_month", "pickup_monthday", "pickup_hour",
	"pickup_minute", "pickup_second", "dropoff_weekday", "dropoff_month",
	"dropoff_monthday", "dropoff_hour", "dropoff_minute", "dropoff_second",
}

// taxiSignature is an MLmodel signature.inputs string for the taxi features.
func taxiSignature() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, c := range taxiColumns {
		if i > 0 {
			b.WriteString(", ")
		}
		typ := "double"
		switch c {
		case "passengers", "store_forward", "vendor":
			typ = "long"
		}
		fmt.Fprintf(&b, `{"type": %q, "name": %q, "required": true}`, typ, c)
	}
	b.WriteByte(']')
	return b.String()
}

func TestDecodeFormats(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		format  Format
		columns []string
		rows    int
		data    string // fmt.Sprint of Frame.Data
		params  string // fmt.Sprint of Frame.Params
		id      string
		types   []string
	}{
		{
			name:   "azure list of rows",
			body:   `{"input_data": [[1.0, 2.5, 3], [4.1, 0.0, 7]]}`,
			format: FormatAzure, rows: 2,
			data: "[[1.0 4.1] [2.5 0.0] [3 7]]",
		},
		{
			name:   "azure split",
			body:   `{"input_data": {"columns": ["a", "b"], "index": [0, 1], "data": [[1, 2], [3, 4]]}}`,
			format: FormatAzure, columns: []string{"a", "b"}, rows: 2,
			data: "[[1 3] [2 4]]",
		},
		{
			name:   "azure split without index",
			body:   `{"input_data": {"data": [[1, "x"]], "columns": ["a", "b"]}}`,
			format: FormatAzure, columns: []string{"a", "b"}, rows: 1,
			data: "[[1] [x]]",
		},
		{
			name:   "azure named arrays keep request order",
			body:   `{"input_data": {"zeta": [1, 2], "alpha": [[3, 4], [5, 6]]}}`,
			format: FormatAzure, columns: []string{"zeta", "alpha"}, rows: 2,
			data: "[[1 2] [[3 4] [5 6]]]",
		},
		{
			name:   "azure records with differing keys",
			body:   `{"input_data": [{"a": 1, "b": "x"}, {"b": "y", "c": true}]}`,
			format: FormatAzure, columns: []string{"a", "b", "c"}, rows: 2,
			data: "[[1 <nil>] [x y] [<nil> true]]",
		},
		{
			name:   "azure params",
			body:   `{"params": {"k": 2}, "input_data": [[1]]}`,
			format: FormatAzure, rows: 1, data: "[[1]]", params: "map[k:2]",
		},
		{
			name:   "unknown top-level keys are ignored",
			body:   `{"input_data": [[1]], "extra": {"x": [1, 2]}, "parameters": 5}`,
			format: FormatAzure, rows: 1, data: "[[1]]",
		},
		{
			name:   "dataframe_split",
			body:   `{"dataframe_split": {"columns": ["x1", "x2"], "data": [[1, 2], [3, 4], [5, 6]]}, "params": {"p": "v"}}`,
			format: FormatDataframeSplit, columns: []string{"x1", "x2"}, rows: 3,
			data: "[[1 3 5] [2 4 6]]", params: "map[p:v]",
		},
		{
			name:   "dataframe_split without columns",
			body:   `{"dataframe_split": {"data": [[1, 2]], "index": [7]}}`,
			format: FormatDataframeSplit, rows: 1, data: "[[1] [2]]",
		},
		{
			name:   "dataframe_records",
			body:   `{"dataframe_records": [{"x1": 1, "x2": 2}, {"x2": 4, "x1": 3}]}`,
			format: FormatDataframeRecords, columns: []string{"x1", "x2"}, rows: 2,
			data: "[[1 3] [2 4]]",
		},
		{
			name:   "dataframe_records repeated key: last wins",
			body:   `{"dataframe_records": [{"x1": 1, "x1": 2}]}`,
			format: FormatDataframeRecords, columns: []string{"x1"}, rows: 1,
			data: "[[2]]",
		},
		{
			name:   "instances rows",
			body:   `{"instances": [[1, 2], [3, 4]]}`,
			format: FormatInstances, rows: 2, data: "[[1 3] [2 4]]",
		},
		{
			name:   "instances records",
			body:   `{"instances": [{"a": "s", "b": 1.5}]}`,
			format: FormatInstances, columns: []string{"a", "b"}, rows: 1, data: "[[s] [1.5]]",
		},
		{
			name:   "instances scalars",
			body:   `{"instances": [1, 2, 3]}`,
			format: FormatInstances, rows: 3, data: "[[1 2 3]]",
		},
		{
			name:   "inputs rows",
			body:   `{"inputs": [[1, 2, 3]], "params": {}}`,
			format: FormatInputs, rows: 1, data: "[[1] [2] [3]]", params: "map[]",
		},
		{
			name:   "inputs named arrays",
			body:   `{"inputs": {"b": [1, 2], "a": ["x", "y"]}}`,
			format: FormatInputs, columns: []string{"b", "a"}, rows: 2, data: "[[1 2] [x y]]",
		},
		{
			name:   "inputs 1-D tensor",
			body:   `{"inputs": [0.5, 1.5]}`,
			format: FormatInputs, rows: 2, data: "[[0.5 1.5]]",
		},
		{
			name:   "inputs 3-D tensor keeps cells as lists",
			body:   `{"inputs": [[[1, 2], [3, 4]]]}`,
			format: FormatInputs, rows: 1, data: "[[[1 2]] [[3 4]]]",
		},
		{
			name:   "v2 single [N,K] input, flat data",
			body:   `{"inputs": [{"name": "input-0", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}]}`,
			format: FormatV2, rows: 2, data: "[[1 4] [2 5] [3 6]]",
			types: []string{"float", "float", "float"},
		},
		{
			name:   "v2 single [N,K] input, nested data",
			body:   `{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT64", "data": [[1, 2], [3, 4]]}]}`,
			format: FormatV2, rows: 2, data: "[[1 3] [2 4]]",
			types: []string{"long", "long"},
		},
		{
			name: "v2 named columns, id and parameters",
			body: `{"id": "req-1", "parameters": {"content_type": "pd"}, "inputs": [
				{"name": "a", "shape": [2], "datatype": "FP64", "data": [1.5, 2.5]},
				{"name": "b", "shape": [2, 1], "datatype": "BYTES", "data": [["x"], ["y"]]},
				{"name": "c", "shape": [2, 1], "datatype": "BOOL", "data": [true, false]}],
				"outputs": [{"name": "predict"}]}`,
			format: FormatV2, columns: []string{"a", "b", "c"}, rows: 2,
			data: "[[1.5 2.5] [x y] [true false]]", params: "map[content_type:pd]", id: "req-1",
			types: []string{"double", "string", "boolean"},
		},
		{
			name:   "v2 UINT64 beyond int64",
			body:   `{"inputs": [{"name": "u", "shape": [1], "datatype": "UINT64", "data": [18446744073709551615]}]}`,
			format: FormatV2, columns: []string{"u"}, rows: 1, data: "[[18446744073709551615]]",
			types: []string{"long"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Decode([]byte(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if f.Format != tt.format {
				t.Errorf("Format = %q, want %q", f.Format, tt.format)
			}
			if !reflect.DeepEqual(f.Columns, tt.columns) {
				t.Errorf("Columns = %q, want %q", f.Columns, tt.columns)
			}
			if f.Rows != tt.rows {
				t.Errorf("Rows = %d, want %d", f.Rows, tt.rows)
			}
			if got := fmt.Sprint(f.Data); got != tt.data {
				t.Errorf("Data = %s, want %s", got, tt.data)
			}
			for c, col := range f.Data {
				if len(col) != f.Rows {
					t.Errorf("column %d has %d values, want %d", c, len(col), f.Rows)
				}
			}
			if tt.params != "" || f.Params != nil {
				if got := fmt.Sprint(f.Params); got != tt.params {
					t.Errorf("Params = %s, want %s", got, tt.params)
				}
			}
			if f.ID != tt.id {
				t.Errorf("ID = %q, want %q", f.ID, tt.id)
			}
			if !reflect.DeepEqual(f.Types, tt.types) {
				t.Errorf("Types = %q, want %q", f.Types, tt.types)
			}
		})
	}
}

// wantErr checks that err is a *wharf.Error with the code and field, whose
// message starts with the field and contains msg.
func wantErr(t *testing.T, err error, code, field, msg string) {
	t.Helper()
	var we *wharf.Error
	if !errors.As(err, &we) {
		t.Fatalf("error = %v (%T), want *wharf.Error", err, err)
	}
	if we.Code != code {
		t.Errorf("code = %q, want %q (%v)", we.Code, code, err)
	}
	if we.Field != field {
		t.Errorf("field = %q, want %q (%v)", we.Field, field, err)
	}
	if field != "" && !strings.HasPrefix(we.Message, field+": ") {
		t.Errorf("message %q does not start with the field %q", we.Message, field)
	}
	if !strings.Contains(we.Message, msg) {
		t.Errorf("message %q does not contain %q", we.Message, msg)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, body, field, msg string
	}{
		{"empty body", ``, "", `"input_data", "dataframe_split"`},
		{"not an object", `[[1, 2]]`, "", "must be a JSON object"},
		{"null", `null`, "", "must be a JSON object"},
		{"no format key", `{}`, "", `"input_data", "dataframe_split", "dataframe_records", "instances" or "inputs"`},
		{"misspelt key", `{"inputdata": [[1]]}`, "", `"input_data"`},
		{"two format keys", `{"input_data": [[1]], "instances": [[1]]}`, "instances", `both "input_data" and "instances"`},
		{"trailing data", `{"input_data": [[1]]} {}`, "", "unexpected data"},
		{"trailing junk", `{"input_data": [[1]]} x`, "", "unexpected data"},
		{"syntax error in row", `{"input_data": [[1, 2], [3,]]}`, "input_data", "invalid JSON"},
		{"NaN literal", `{"input_data": [[NaN]]}`, "input_data", "invalid JSON"},
		{"Infinity literal", `{"dataframe_split": {"columns": ["a"], "data": [[Infinity]]}}`, "dataframe_split.data", "invalid JSON"},
		{"truncated", `{"input_data": [[1, 2]`, "input_data", "ends"},
		{"ragged rows", `{"input_data": [[1, 2], [3]]}`, "input_data[1]", "has 1 values; row 0 has 2"},
		{"row not a list", `{"input_data": [[1], 2]}`, "input_data[1]", "must be a list"},
		{"empty row", `{"instances": [[]]}`, "instances[0]", "no values"},
		{"no rows", `{"input_data": []}`, "input_data", "no rows"},
		{"input_data scalar", `{"input_data": 5}`, "input_data", "must be a list"},
		{"scalars mixed with lists", `{"instances": [1, [2]]}`, "instances[1]", "mixes"},
		{"split ragged", `{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3]]}}`, "dataframe_split.data[1]", "has 1 values; dataframe_split.columns names 2"},
		{"split duplicate column", `{"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}`, "dataframe_split.columns", `"a" twice`},
		{"split non-string column", `{"dataframe_split": {"columns": ["a", 1], "data": [[1, 2]]}}`, "dataframe_split.columns[1]", "must be a string"},
		{"split index length", `{"dataframe_split": {"columns": ["a"], "data": [[1]], "index": [0, 1]}}`, "dataframe_split.index", "has 2 entries"},
		{"split unknown key", `{"dataframe_split": {"columns": ["a"], "data": [[1]], "dtype": {}}}`, "dataframe_split.dtype", "not part of the split form"},
		{"split without data", `{"dataframe_split": {"columns": ["a"]}}`, "dataframe_split.data", "is required"},
		{"split data not rows", `{"dataframe_split": {"columns": ["a"], "data": [1]}}`, "dataframe_split.data[0]", "must be a list"},
		{"split no rows", `{"dataframe_split": {"columns": ["a"], "data": []}}`, "dataframe_split.data", "no rows"},
		{"split not object", `{"dataframe_split": [[1]]}`, "dataframe_split", `"columns" and "data"`},
		{"records element", `{"dataframe_records": [{"a": 1}, 2]}`, "dataframe_records[1]", "must be an object"},
		{"records of scalars", `{"dataframe_records": [1]}`, "dataframe_records[0]", "must be an object"},
		{"records of empty objects", `{"dataframe_records": [{}]}`, "dataframe_records", "no columns"},
		{"records not list", `{"dataframe_records": {"a": [1]}}`, "dataframe_records", "list of records"},
		{"named arrays ragged", `{"input_data": {"a": [1, 2], "b": [1]}}`, "input_data.b", "has 1 values; input_data.a has 2"},
		{"named scalar", `{"input_data": {"a": 1}}`, "input_data.a", "must be a list"},
		{"named duplicate", `{"inputs": {"a": [1], "a": [2]}}`, "inputs.a", "twice"},
		{"named no rows", `{"inputs": {"a": []}}`, "inputs", "no rows"},
		{"mlflow inputs records", `{"inputs": [{"a": 1}]}`, "inputs[0]", "dataframe_records"},
		{"params not object", `{"input_data": [[1]], "params": [1]}`, "params", "must be an object"},
		{"v2 parameters not object", `{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}], "parameters": "x"}`, "parameters", "must be an object"},
		{"v2 id not string", `{"id": 7, "inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}]}`, "id", "must be a string"},
		{"v2 missing datatype", `{"inputs": [{"name": "a", "shape": [1], "data": [1]}]}`, "inputs[0].datatype", "is required"},
		{"v2 missing data", `{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64"}]}`, "inputs[0].data", "is required"},
		{"v2 empty name", `{"inputs": [{"name": "", "shape": [1], "datatype": "FP64", "data": [1]}]}`, "inputs[0].name", "non-empty"},
		{"v2 unknown datatype", `{"inputs": [{"name": "a", "shape": [1], "datatype": "FLOAT", "data": [1]}]}`, "inputs[0].datatype", "must be one of BOOL"},
		{"v2 data length", `{"inputs": [{"name": "a", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3]}]}`, "inputs[0].data", "has 3 values; shape [2,2] needs 4"},
		{"v2 non-integer INT64", `{"inputs": [{"name": "a", "shape": [2], "datatype": "INT64", "data": [1, 1.5]}]}`, "inputs[0].data[1]", "not a whole number"},
		{"v2 INT8 range", `{"inputs": [{"name": "a", "shape": [1], "datatype": "INT8", "data": [300]}]}`, "inputs[0].data[0]", "out of range for INT8"},
		{"v2 UINT8 negative", `{"inputs": [{"name": "a", "shape": [1], "datatype": "UINT8", "data": [-1]}]}`, "inputs[0].data[0]", "out of range"},
		{"v2 FP32 overflow", `{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1e39]}]}`, "inputs[0].data[0]", "overflows FP32"},
		{"v2 FP64 overflow", `{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1e400]}]}`, "inputs[0].data[0]", "overflows FP64"},
		{"v2 BOOL as number", `{"inputs": [{"name": "a", "shape": [1], "datatype": "BOOL", "data": [1]}]}`, "inputs[0].data[0]", "true or false"},
		{"v2 BYTES as number", `{"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": [1]}]}`, "inputs[0].data[0]", "strings"},
		{"v2 FP64 null", `{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [null]}]}`, "inputs[0].data[0]", "numbers"},
		{"v2 nested bad value", `{"inputs": [{"name": "a", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], [3, "x"]]}]}`, "inputs[0].data[1][1]", "numbers"},
		{"v2 nested ragged", `{"inputs": [{"name": "a", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], [3]]}]}`, "inputs[0].data[1]", "list of 2 values"},
		{"v2 nested wrong rows", `{"inputs": [{"name": "a", "shape": [3, 1], "datatype": "FP64", "data": [[1], [2]]}]}`, "inputs[0].data", "one list per row"},
		{"v2 rank 3", `{"inputs": [{"name": "a", "shape": [1, 2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}]}`, "inputs[0].shape", "[N] or [N, K]"},
		{"v2 negative dim", `{"inputs": [{"name": "a", "shape": [-1], "datatype": "FP64", "data": []}]}`, "inputs[0].shape", "non-negative"},
		{"v2 fractional dim", `{"inputs": [{"name": "a", "shape": [1.5], "datatype": "FP64", "data": [1]}]}`, "inputs[0].shape", "non-negative integer"},
		{"v2 no rows", `{"inputs": [{"name": "a", "shape": [0, 3], "datatype": "FP64", "data": []}]}`, "inputs[0].shape", "no values"},
		{"v2 several inputs, one wide", `{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}, {"name": "b", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}`, "inputs[1].shape", "one column"},
		{"v2 row counts differ", `{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}, {"name": "b", "shape": [2], "datatype": "FP64", "data": [1, 2]}]}`, "inputs[1].shape", "has 2 rows; inputs[0] has 1"},
		{"v2 duplicate names", `{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}, {"name": "a", "shape": [1], "datatype": "FP64", "data": [2]}]}`, "inputs[1].name", "two inputs"},
		{"v2 element not object", `{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}, 3]}`, "inputs[1]", "must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Decode([]byte(tt.body))
			if err == nil {
				t.Fatalf("Decode succeeded: %+v", f)
			}
			wantErr(t, err, wharf.EINVALID, tt.field, tt.msg)
		})
	}
}

func TestDecodeLimits(t *testing.T) {
	tests := []struct {
		name  string
		lim   Limits
		body  string
		field string
		msg   string
	}{
		{"bytes", Limits{MaxBytes: 10}, `{"input_data": [[1]]}`, "", "the limit is 10"},
		{"rows", Limits{MaxRows: 2}, `{"input_data": [[1], [2], [3]]}`, "input_data", "has 3 rows; the limit is 2"},
		{"split rows", Limits{MaxRows: 2}, `{"dataframe_split": {"data": [[1], [2], [3]]}}`, "dataframe_split.data", "3 rows"},
		{"columns", Limits{MaxColumns: 2}, `{"instances": [[1, 2, 3]]}`, "instances", "3 columns"},
		{"split columns", Limits{MaxColumns: 2}, `{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3]]}}`, "dataframe_split.columns", "3 columns"},
		{"record columns", Limits{MaxColumns: 2}, `{"dataframe_records": [{"a": 1}, {"b": 2}, {"c": 3}]}`, "dataframe_records", "more than 2 distinct columns"},
		{"sparse records cells", Limits{MaxCells: 4}, `{"dataframe_records": [{"a": 1}, {"b": 2}, {"c": 3}]}`, "dataframe_records", "the limit is 4 values"},
		{"named arrays cells", Limits{MaxCells: 3}, `{"inputs": {"a": [1, 2], "b": [3, 4]}}`, "inputs", "the limit is 3 values"},
		{"v2 shape", Limits{}, `{"inputs": [{"name": "a", "shape": [1000000000, 1000000000], "datatype": "FP64", "data": []}]}`, "inputs[0].shape", "more than"},
		{"v2 inputs", Limits{MaxColumns: 1}, `{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}, {"name": "b", "shape": [1], "datatype": "FP64", "data": [1]}]}`, "inputs", "has 2 inputs; the limit is 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeWithLimits([]byte(tt.body), tt.lim)
			wantErr(t, err, wharf.ETOOLARGE, tt.field, tt.msg)
		})
	}
}

func TestDecodeTaxiFixture(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "taxi-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Decode(body)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if f.Format != FormatAzure || f.Rows != 2 || len(f.Data) != 20 || f.Columns != nil {
		t.Fatalf("got format %q, %d rows, %d columns, names %q", f.Format, f.Rows, len(f.Data), f.Columns)
	}
	sig, err := ParseMLflowSignature(taxiSignature())
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(f, sig); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if !reflect.DeepEqual(f.Columns, taxiColumns) {
		t.Errorf("Columns = %q", f.Columns)
	}
	m, err := f.Float64Matrix(nil)
	if err != nil {
		t.Fatalf("Float64Matrix: %v", err)
	}
	if m[0][0] != 1.73 || m[1][19] != 2 || m[0][1] != 40.71242905 {
		t.Errorf("matrix = %v", m)
	}
}

// TestDecodeSharedTaxiRequest decodes the real sample request when the shared
// data folder is present next to the repository.
func TestDecodeSharedTaxiRequest(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "..", "shared", "data", "taxi", "taxi-request.json"))
	if err != nil {
		t.Skipf("shared taxi request not available: %v", err)
	}
	f, err := Decode(body)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if f.Format != FormatAzure || f.Rows < 1 || len(f.Data) != 20 {
		t.Fatalf("got format %q, %d rows, %d columns", f.Format, f.Rows, len(f.Data))
	}
	sig, err := ParseMLflowSignature(taxiSignature())
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(f, sig); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if _, err := f.Float64Matrix(nil); err != nil {
		t.Fatalf("Float64Matrix: %v", err)
	}
}
