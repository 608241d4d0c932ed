package serving

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/wharfml/wharf/pyenv"
)

// A deployment's environment is stored as a job's is; deployments stored
// before that name an asset and keep its definition under spec. Both
// install their conda packages.
func TestStoredEnvironmentForms(t *testing.T) {
	for stored, want := range map[string]pyenv.Spec{
		`{"image": "img", "python_version": "3.10", "pip": ["inflection==0.5.1"], "conda": ["python=3.10", "numpy=1.26"]}`: {
			PythonVersion: "3.10", Pip: []string{"inflection==0.5.1"}, Conda: []string{"python=3.10", "numpy=1.26"}},
		`{"ref": "env:1", "spec": {"image": "img", "python_version": "3.9", "pip": ["x"], "conda": {"dependencies": ["python=3.9", "scikit-learn=1.3"], "pip": ["x"]}}}`: {
			PythonVersion: "3.9", Pip: []string{"x"}, Conda: []string{"python=3.9", "scikit-learn=1.3"}},
	} {
		var e storedEnv
		if err := json.Unmarshal([]byte(stored), &e); err != nil {
			t.Fatal(err)
		}
		if got := e.pyenvSpec(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, want %+v", stored, got, want)
		}
	}
}

func TestTablePayloadKeepsDoublesFloating(t *testing.T) {
	// pandas reads 3 as an integer and MLflow then refuses it for a double
	// column; 3.0 is a float.
	f, err := decodeFor([]byte(`{"input_data": {"columns": ["a", "b"], "index": [0], "data": [[3, "x"]]}}`), ProtocolScore, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Types = []string{"double", "string"}
	tab, err := newTable(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := tab.payload(); string(b) != `{"columns":["a","b"],"data":[[3.0,"x"]]}` {
		t.Errorf("payload %s", b)
	}
}

func TestTablePayloadMarksAllFloatTables(t *testing.T) {
	for body, want := range map[string]string{
		`{"dataframe_split": {"columns": ["a", "b"], "data": [[3, 1.5]]}}`:   `{"columns":["a","b"],"data":[[3.0,1.5]],"dtype":"float64"}`,
		`{"dataframe_split": {"columns": ["a", "b"], "data": [[3, null]]}}`:  `{"columns":["a","b"],"data":[[3.0,null]]}`,
		`{"dataframe_split": {"columns": ["a", "b"], "data": [[3, "x"]]}}`:   `{"columns":["a","b"],"data":[[3.0,"x"]]}`,
		`{"dataframe_split": {"columns": ["a", "b"], "data": [[3.5, 1e3]]}}`: `{"columns":["a","b"],"data":[[3.5,1e3]],"dtype":"float64"}`,
	} {
		f, err := decodeFor([]byte(body), ProtocolScore, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.Types = []string{"double"}
		tab, err := newTable(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(tab.payload()); got != want {
			t.Errorf("%s: payload %s, want %s", body, got, want)
		}
	}
}
