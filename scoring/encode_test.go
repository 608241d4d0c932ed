package scoring

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/wharfml/wharf"
)

func TestEncode(t *testing.T) {
	model := ModelInfo{Name: "taxi", Version: "3", RequestID: "r1"}
	tests := []struct {
		name   string
		format Format
		p      Predictions
		m      ModelInfo
		want   string
	}{
		{"azure 1-D", FormatAzure, Predictions{Float: []float64{12.7, 31.9}}, model, `[12.7,31.9]`},
		{"azure 2-D", FormatAzure, Predictions{Float: []float64{0.25, 0.75, 1, 0}, Width: 2}, model, `[[0.25,0.75],[1,0]]`},
		{"azure records", FormatAzure, Predictions{Int: []int64{1, 2, 3, 4}, Width: 2, Columns: []string{"a", "b"}}, model, `[{"a":1,"b":2},{"a":3,"b":4}]`},
		{"azure empty", FormatAzure, Predictions{}, model, `[]`},
		{"azure non-finite as null", FormatAzure, Predictions{Float: []float64{math.NaN(), math.Inf(1), 1e-7, 1e21, -0.5}}, model, `[null,null,1e-7,1e+21,-0.5]`},
		{"mlflow split", FormatDataframeSplit, Predictions{Float: []float64{1.5}}, model, `{"predictions":[1.5]}`},
		{"mlflow records strings", FormatDataframeRecords, Predictions{String: []string{"cat", "d\"o\ng\x01", "\xff"}}, model, `{"predictions":["cat","d\"o\ng\u0001","\ufffd"]}`},
		{"mlflow instances 2-D", FormatInstances, Predictions{Int: []int64{1, 2}, Width: 1}, model, `{"predictions":[[1],[2]]}`},
		{"mlflow inputs", FormatInputs, Predictions{Float: []float64{3}}, model, `{"predictions":[3]}`},
		{
			"v2 1-D", FormatV2, Predictions{Float: []float64{12.7, 31.9}}, model,
			`{"model_name":"taxi","model_version":"3","id":"r1","outputs":[{"name":"predict","shape":[2],"datatype":"FP64","data":[12.7,31.9]}]}`,
		},
		{
			"v2 2-D, no version or id", FormatV2, Predictions{Float: []float64{0.1, 0.9, 0.8, 0.2}, Width: 2, Name: "predict_proba"}, ModelInfo{Name: "m"},
			`{"model_name":"m","outputs":[{"name":"predict_proba","shape":[2,2],"datatype":"FP64","data":[0.1,0.9,0.8,0.2]}]}`,
		},
		{
			"v2 ints", FormatV2, Predictions{Int: []int64{0, 1}}, ModelInfo{Name: "m"},
			`{"model_name":"m","outputs":[{"name":"predict","shape":[2],"datatype":"INT64","data":[0,1]}]}`,
		},
		{
			"v2 strings", FormatV2, Predictions{String: []string{"a"}}, ModelInfo{Name: "m"},
			`{"model_name":"m","outputs":[{"name":"predict","shape":[1],"datatype":"BYTES","data":["a"]}]}`,
		},
		{
			"v2 named columns", FormatV2, Predictions{Float: []float64{1, 2, 3, 4}, Width: 2, Columns: []string{"lo", "hi"}}, ModelInfo{Name: "m"},
			`{"model_name":"m","outputs":[{"name":"lo","shape":[2],"datatype":"FP64","data":[1,3]},{"name":"hi","shape":[2],"datatype":"FP64","data":[2,4]}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Encode(tt.format, tt.p, tt.m)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
			if !json.Valid(b) {
				t.Errorf("invalid JSON: %s", b)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		p      Predictions
		m      ModelInfo
	}{
		{"two kinds", FormatAzure, Predictions{Float: []float64{1}, Int: []int64{1}}, ModelInfo{}},
		{"ragged", FormatAzure, Predictions{Float: []float64{1, 2, 3}, Width: 2}, ModelInfo{}},
		{"negative width", FormatAzure, Predictions{Float: []float64{1}, Width: -1}, ModelInfo{}},
		{"column names", FormatAzure, Predictions{Float: []float64{1, 2}, Width: 2, Columns: []string{"a"}}, ModelInfo{}},
		{"v2 without model name", FormatV2, Predictions{Float: []float64{1}}, ModelInfo{}},
		{"unknown format", Format("csv"), Predictions{Float: []float64{1}}, ModelInfo{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Encode(tt.format, tt.p, tt.m)
			if wharf.ErrorCode(err) != wharf.EINTERNAL {
				t.Errorf("err = %v, want an EINTERNAL error", err)
			}
		})
	}
}

// TestRoundTrip decodes each format, scores it, and checks the answer shape.
func TestRoundTrip(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"input_data": [[1, 2], [3, 4]]}`, `[3,7]`},
		{`{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}`, `{"predictions":[3]}`},
		{`{"id": "q", "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}`,
			`{"model_name":"sum","id":"q","outputs":[{"name":"predict","shape":[1],"datatype":"FP64","data":[3]}]}`},
	}
	for _, tt := range tests {
		f := mustDecode(t, tt.body)
		m, err := f.Float64Matrix(nil)
		if err != nil {
			t.Fatal(err)
		}
		preds := Predictions{Float: make([]float64, len(m))}
		for r, row := range m {
			for _, x := range row {
				preds.Float[r] += x
			}
		}
		b, err := Encode(f.Format, preds, ModelInfo{Name: "sum", RequestID: f.ID})
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("%s: got %s, want %s", tt.body, b, tt.want)
		}
	}
}
