package scoring

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/wharfml/wharf"
)

func TestParseMLflowSignature(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []ColumnSpec
	}{
		{"empty", "", nil},
		{"null", "null", nil},
		{
			"named columns, required defaults to true",
			`[{"type": "double", "name": "distance", "required": true}, {"type": "long", "name": "vendor"}, {"type": "string", "name": "note", "required": false}]`,
			[]ColumnSpec{{"distance", "double", true}, {"vendor", "long", true}, {"note", "string", false}},
		},
		{
			"unnamed columns",
			`[{"type": "double"}, {"type": "float"}]`,
			[]ColumnSpec{{"", "double", true}, {"", "float", true}},
		},
		{
			"array type kept unchecked",
			`[{"type": "array", "items": {"type": "double"}, "name": "v", "required": true}]`,
			[]ColumnSpec{{"v", "array", true}},
		},
		{
			"unnamed [-1, K] tensor",
			`[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]`,
			[]ColumnSpec{{"", "double", true}, {"", "double", true}, {"", "double", true}},
		},
		{
			"unnamed [-1] tensor",
			`[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]`,
			[]ColumnSpec{{"", "long", true}},
		},
		{
			"named [-1, 1] tensors",
			`[{"name": "a", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}, {"name": "b", "type": "tensor", "tensor-spec": {"dtype": "bool", "shape": [-1]}}]`,
			[]ColumnSpec{{"a", "float", true}, {"b", "boolean", true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseMLflowSignature(tt.in)
			if err != nil {
				t.Fatalf("ParseMLflowSignature: %v", err)
			}
			if !reflect.DeepEqual(s.Inputs, tt.want) {
				t.Errorf("Inputs = %+v, want %+v", s.Inputs, tt.want)
			}
		})
	}
}

func TestParseMLflowSignatureErrors(t *testing.T) {
	tests := []struct{ name, in, field, msg string }{
		{"not JSON", `[{"type": `, "signature.inputs", "not an MLflow schema"},
		{"not a list", `{"type": "double"}`, "signature.inputs", "not an MLflow schema"},
		{"missing type", `[{"name": "a"}]`, "signature.inputs[0].type", "is required"},
		{"mixed names", `[{"type": "double", "name": "a"}, {"type": "double"}]`, "signature.inputs", "mixes named and unnamed"},
		{"mixed tensor and column", `[{"type": "double", "name": "a"}, {"type": "tensor", "name": "b", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]`, "signature.inputs", "mixes tensor and column"},
		{"image tensor", `[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28]}}]`, "signature.inputs[0].tensor-spec.shape", "not tabular"},
		{"variable width tensor", `[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, -1]}}]`, "signature.inputs[0].tensor-spec.shape", "not tabular"},
		{"named wide tensor", `[{"name": "x", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]`, "signature.inputs[0].tensor-spec.shape", "not tabular"},
		{"tensor without spec", `[{"type": "tensor"}]`, "signature.inputs[0]", "tensor-spec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMLflowSignature(tt.in)
			wantErr(t, err, wharf.EINVALID, tt.field, tt.msg)
		})
	}
}

// mustDecode decodes body or fails the test.
func mustDecode(t *testing.T, body string) *Frame {
	t.Helper()
	f, err := Decode([]byte(body))
	if err != nil {
		t.Fatalf("Decode(%s): %v", body, err)
	}
	return f
}

// mustSig parses an MLflow signature.inputs string or fails the test.
func mustSig(t *testing.T, s string) *Signature {
	t.Helper()
	sig, err := ParseMLflowSignature(s)
	if err != nil {
		t.Fatalf("ParseMLflowSignature: %v", err)
	}
	return sig
}

const abSig = `[{"type": "double", "name": "a"}, {"type": "long", "name": "b"}]`

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		sig     string
		columns []string
		data    string
		dropped []string
	}{
		{
			name:    "split reordered to signature order",
			body:    `{"dataframe_split": {"columns": ["b", "a"], "data": [[1, 2.5], [2, 3.5]]}}`,
			sig:     abSig,
			columns: []string{"a", "b"}, data: "[[2.5 3.5] [1 2]]",
		},
		{
			name:    "unnamed rows get signature names",
			body:    `{"input_data": [[1.5, 2], [2, 3]]}`,
			sig:     abSig,
			columns: []string{"a", "b"}, data: "[[1.5 2] [2 3]]",
		},
		{
			name:    "extra columns dropped",
			body:    `{"dataframe_records": [{"x": "junk", "b": 1, "a": 2, "y": 0}]}`,
			sig:     abSig,
			columns: []string{"a", "b"}, data: "[[2] [1]]", dropped: []string{"x", "y"},
		},
		{
			name:    "optional missing column added as nulls",
			body:    `{"inputs": {"a": [1, 2]}}`,
			sig:     `[{"type": "double", "name": "a"}, {"type": "long", "name": "b", "required": false}]`,
			columns: []string{"a", "b"}, data: "[[1 2] [<nil> <nil>]]",
		},
		{
			name:    "unnamed signature matches named request by position",
			body:    `{"dataframe_split": {"columns": ["p", "q"], "data": [[1, 2]]}}`,
			sig:     `[{"type": "double"}, {"type": "double"}]`,
			columns: []string{"p", "q"}, data: "[[1] [2]]",
		},
		{
			name:    "whole numbers in exponent form are longs; nulls in double",
			body:    `{"input_data": [[null, 3.0], [1, 1e3], [2, -9223372036854775808]]}`,
			sig:     abSig,
			columns: []string{"a", "b"}, data: "[[<nil> 1 2] [3.0 1e3 -9223372036854775808]]",
		},
		{
			name:    "v2 inputs by name",
			body:    `{"inputs": [{"name": "b", "shape": [1], "datatype": "INT64", "data": [4]}, {"name": "a", "shape": [1], "datatype": "FP32", "data": [0.5]}]}`,
			sig:     abSig,
			columns: []string{"a", "b"}, data: "[[0.5] [4]]",
		},
		{
			name:    "empty signature accepts anything",
			body:    `{"instances": [["x", true]]}`,
			sig:     "",
			columns: nil, data: "[[x] [true]]",
		},
		{
			name:    "strings, binary and datetime",
			body:    `{"dataframe_records": [{"s": "x", "bin": "AAE=", "t": "2024-01-01T00:00:00", "b": true, "o": [1, {"k": 2}]}]}`,
			sig:     `[{"type": "string", "name": "s"}, {"type": "binary", "name": "bin"}, {"type": "datetime", "name": "t"}, {"type": "boolean", "name": "b"}, {"type": "array", "name": "o", "items": {"type": "double"}}]`,
			columns: []string{"s", "bin", "t", "b", "o"}, data: "[[x] [AAE=] [2024-01-01T00:00:00] [true] [[1 map[k:2]]]]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustDecode(t, tt.body)
			sig := mustSig(t, tt.sig)
			if err := Check(f, sig); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if !reflect.DeepEqual(f.Columns, tt.columns) {
				t.Errorf("Columns = %q, want %q", f.Columns, tt.columns)
			}
			if got := fmt.Sprint(f.Data); got != tt.data {
				t.Errorf("Data = %s, want %s", got, tt.data)
			}
			if !reflect.DeepEqual(f.Dropped, tt.dropped) {
				t.Errorf("Dropped = %q, want %q", f.Dropped, tt.dropped)
			}
			if len(sig.Inputs) > 0 && len(f.Types) != len(sig.Inputs) {
				t.Errorf("Types = %q", f.Types)
			}
		})
	}
}

func TestCheckErrors(t *testing.T) {
	tests := []struct {
		name, body, sig, field, msg string
	}{
		{
			"unnamed column count",
			`{"input_data": [[1, 2, 3]]}`, abSig,
			"input_data", "the request has 3 columns; the model expects 2 (a double, b long)",
		},
		{
			"missing required columns named",
			`{"dataframe_split": {"columns": ["c"], "data": [[1]]}}`, abSig,
			"dataframe_split.columns", `missing required columns "a", "b"`,
		},
		{
			"missing required column in records",
			`{"dataframe_records": [{"a": 1}]}`, abSig,
			"dataframe_records", `missing required column "b"`,
		},
		{
			"missing required v2 input",
			`{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}]}`, abSig,
			"inputs", `missing required column "b"`,
		},
		{
			"string where double expected, split",
			`{"dataframe_split": {"columns": ["b", "a"], "data": [[1, 1], [2, 2], [3, 3], [4, "4.5"]]}}`, abSig,
			"dataframe_split.data[3][1]", `row 3, column "a": expected double, got string "4.5"`,
		},
		{
			"non-integral long, rows",
			`{"input_data": [[1, 2], [1, 2.5]]}`, abSig,
			"input_data[1][1]", `row 1, column "b": expected long, got 2.5, which is not a whole number`,
		},
		{
			"long out of range",
			`{"input_data": [[1, 9223372036854775808]]}`, abSig,
			"input_data[0][1]", "out of range",
		},
		{
			"integer out of 32-bit range, records",
			`{"dataframe_records": [{"n": 1}, {"n": 3000000000}]}`, `[{"type": "integer", "name": "n"}]`,
			"dataframe_records[1].n", "out of range for integer",
		},
		{
			"null in long, named arrays",
			`{"inputs": {"a": [1, 2], "b": [1, null]}}`, abSig,
			"inputs.b[1]", "expected long, got null",
		},
		{
			"boolean where double expected, instances",
			`{"instances": [[true, 1]]}`, abSig,
			"instances[0][0]", "expected double, got true",
		},
		{
			"number where boolean expected",
			`{"instances": [[1]]}`, `[{"type": "boolean", "name": "flag"}]`,
			"instances[0][0]", "expected boolean, got number 1",
		},
		{
			"number where string expected",
			`{"instances": [[1]]}`, `[{"type": "string", "name": "s"}]`,
			"instances[0][0]", "expected string, got number 1",
		},
		{
			"float overflow",
			`{"instances": [[1e39]]}`, `[{"type": "float", "name": "x"}]`,
			"instances[0][0]", "overflows float",
		},
		{
			"double overflow",
			`{"instances": [1e400]}`, `[{"type": "double", "name": "x"}]`,
			"instances[0]", "overflows double",
		},
		{
			"v2 flat [N,K] value",
			`{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4.5]}]}`, abSig,
			"inputs[0].data[3]", `row 1, column "b"`,
		},
		{
			"v2 nested [N,K] value",
			`{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], [3, 4.5]]}]}`, abSig,
			"inputs[0].data[1][1]", `row 1, column "b"`,
		},
		{
			"v2 named [N,1] nested value",
			`{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}, {"name": "b", "shape": [1, 1], "datatype": "FP64", "data": [[0.5]]}]}`, abSig,
			"inputs[1].data[0][0]", `row 0, column "b"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustDecode(t, tt.body)
			err := Check(f, mustSig(t, tt.sig))
			wantErr(t, err, wharf.EINVALID, tt.field, tt.msg)
		})
	}
}

func TestFloat64Matrix(t *testing.T) {
	f := mustDecode(t, `{"dataframe_records": [{"a": 1, "b": true, "c": 2.5, "d": null}, {"a": -3, "b": false, "c": 1e-3, "d": 4}]}`)
	sig := mustSig(t, `[{"type": "long", "name": "a"}, {"type": "boolean", "name": "b"}, {"type": "double", "name": "c"}, {"type": "double", "name": "d"}]`)
	if err := Check(f, sig); err != nil {
		t.Fatal(err)
	}
	m, err := f.Float64Matrix(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]float64{{1, 1, 2.5, math.NaN()}, {-3, 0, 0.001, 4}}
	for r := range want {
		for c := range want[r] {
			g, w := m[r][c], want[r][c]
			if g != w && !(math.IsNaN(g) && math.IsNaN(w)) {
				t.Errorf("m[%d][%d] = %v, want %v", r, c, g, w)
			}
		}
	}
	sub, err := f.Float64Matrix([]string{"c", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sub, [][]float64{{2.5, 1}, {0.001, -3}}) {
		t.Errorf("sub = %v", sub)
	}
	if _, err := f.Float64Matrix([]string{"zz"}); err == nil {
		t.Error("unknown column accepted")
	} else {
		wantErr(t, err, wharf.EINVALID, "dataframe_records", `no column "zz"`)
	}

	// v2 datatypes type the columns without a signature.
	f = mustDecode(t, `{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "BOOL", "data": [true, false]}]}`)
	if m, err := f.Float64Matrix(nil); err != nil || !reflect.DeepEqual(m, [][]float64{{1, 0}}) {
		t.Errorf("v2 BOOL matrix = %v, %v", m, err)
	}
}

func TestFloat64MatrixErrors(t *testing.T) {
	tests := []struct{ name, body, field, msg string }{
		{"bool without boolean type", `{"input_data": [[1, true]]}`, "input_data[0][1]", "where a number is needed"},
		{"numeric string", `{"input_data": [[1, "2"]]}`, "input_data[0][1]", `string "2" where a number is needed`},
		{"null without numeric type", `{"input_data": {"a": [null]}}`, "input_data.a[0]", "null"},
		{"overflow", `{"input_data": [[1e400]]}`, "input_data[0][0]", "overflows"},
		{"nested list", `{"inputs": [[[1, 2]]]}`, "inputs[0][0]", "a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mustDecode(t, tt.body).Float64Matrix(nil)
			wantErr(t, err, wharf.EINVALID, tt.field, tt.msg)
		})
	}
}

func TestFloat64MatrixHandBuilt(t *testing.T) {
	f := &Frame{Rows: 2, Data: [][]any{{1.5, int64(2)}, {json.Number("3"), float32(0.5)}}}
	m, err := f.Float64Matrix(nil)
	if err != nil || !reflect.DeepEqual(m, [][]float64{{1.5, 3}, {2, 0.5}}) {
		t.Errorf("m = %v, %v", m, err)
	}
	f.Data[1] = f.Data[1][:1]
	if _, err := f.Float64Matrix(nil); wharf.ErrorCode(err) != wharf.EINTERNAL {
		t.Errorf("short column: %v", err)
	}
}
