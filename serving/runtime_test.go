package serving

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestModelEnvSpecReadsTheModelsRequirements(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte("mlflow==2.9.2\n# comment\n-r extra.txt\nscikit-learn==1.3.2\n\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "python_env.yaml"), []byte("python: 3.11.7\nbuild_dependencies:\n- pip\n"), 0o600)
	spec, ok := modelEnvSpec(dir)
	if !ok || spec.PythonVersion != "3.11" || !slices.Equal(spec.Pip, []string{"mlflow==2.9.2", "scikit-learn==1.3.2"}) {
		t.Errorf("spec %+v, %v", spec, ok)
	}
	if _, ok := modelEnvSpec(t.TempDir()); ok {
		t.Error("a folder without requirements.txt has an environment")
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
	b, err := tablePayload(f)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"columns":["a","b"],"data":[[3.0,"x"]]}` {
		t.Errorf("payload %s", b)
	}
}
