package scoring

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadMLmodelChoosesTheRuntime(t *testing.T) {
	write := func(text string) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "MLmodel"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, c := range []struct {
		text                 string
		native, pyfunc, byPy bool
		inputs               string
	}{
		{"flavors:\n  wharf_linear: {data: model.json}\n  python_function: {loader_module: x}\n", true, true, false, ""},
		{"flavors:\n  python_function: {loader_module: mlflow.sklearn}\nsignature:\n  inputs: '[{\"name\": \"a\", \"type\": \"double\"}]'\n", false, true, true, `[{"name": "a", "type": "double"}]`},
		{"flavors:\n  sklearn: {}\n", false, false, false, ""},
	} {
		m, err := ReadMLmodel(write(c.text))
		if err != nil {
			t.Fatal(err)
		}
		if m.Native() != c.native || m.Pyfunc() != c.pyfunc || m.ServedByPython() != c.byPy || m.SignatureInputs() != c.inputs {
			t.Errorf("%q: native %v pyfunc %v python %v inputs %q", c.text, m.Native(), m.Pyfunc(), m.ServedByPython(), m.SignatureInputs())
		}
	}
	if _, err := ReadMLmodel(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no MLmodel: %v, want fs.ErrNotExist", err)
	}
	dir := write("flavors: [unclosed\n")
	if _, err := ReadMLmodel(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "MLmodel")) {
		t.Errorf("bad MLmodel: %v, want an error naming the file", err)
	}
}

// A registered folder sits one level down in a deployment's model folder,
// as in Azure ML; anything else is not an MLflow model.
func TestFindMLmodel(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "model")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := FindMLmodel(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no MLmodel: %v", err)
	}
	if err := os.WriteFile(filepath.Join(sub, "MLmodel"), []byte("flavors:\n  python_function: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if dir, m, err := FindMLmodel(root); err != nil || dir != sub || !m.Pyfunc() {
		t.Errorf("one level down: %q %v %v", dir, m, err)
	}
	if dir, _, err := FindMLmodel(sub); err != nil || dir != sub {
		t.Errorf("the folder itself: %q %v", dir, err)
	}
	// A second entry makes the model folder ambiguous.
	if err := os.WriteFile(filepath.Join(root, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := FindMLmodel(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("two entries: %v", err)
	}
}
