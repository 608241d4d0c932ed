package pyenv

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func reader(files fstest.MapFS) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) { return fs.ReadFile(files, name) }
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

// An MLflow 2 model names both files; python_env.yaml wins, with its
// Python version and the requirements it reads in.
func TestMLflowModelSpecPrefersPythonEnv(t *testing.T) {
	files := fstest.MapFS{
		"MLmodel": file(`flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
  sklearn: {}
`),
		"python_env.yaml":  file("python: 3.10.12\nbuild_dependencies:\n- pip==23.3.1\n- setuptools\ndependencies:\n- -r requirements.txt\n- extra==1.0\n"),
		"requirements.txt": file("# written by mlflow\nmlflow==2.9.2\n-c constraints.txt\n\nscikit-learn==1.3.0\n"),
		"conda.yaml":       file("dependencies:\n- python=3.8\n- pip:\n  - not-this==1\n"),
	}
	s, ok, err := MLflowModelSpec(reader(files))
	if err != nil || !ok {
		t.Fatalf("ok %v, err %v", ok, err)
	}
	want := Spec{PythonVersion: "3.10.12", Pip: []string{"mlflow==2.9.2", "scikit-learn==1.3.0", "extra==1.0"}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	if py, _ := s.python(); py != "3.10" {
		t.Errorf("python %q, want 3.10", py)
	}
}

// MLflow 1 names only a conda file; its conda pins are installed as a
// job's are, its python entry picks the interpreter.
func TestMLflowModelSpecCondaFile(t *testing.T) {
	files := fstest.MapFS{
		"MLmodel":          file("flavors:\n  python_function:\n    env: my-conda.yaml\n"),
		"my-conda.yaml":    file("name: mlflow-env\nchannels: [conda-forge]\ndependencies:\n- python=3.8.10\n- pip<=21.0\n- numpy=1.21\n- pip:\n  - mlflow\n  - cloudpickle==1.6.0\n"),
		"requirements.txt": file("not-this\n"),
	}
	s, ok, err := MLflowModelSpec(reader(files))
	if err != nil || !ok {
		t.Fatalf("ok %v, err %v", ok, err)
	}
	pip, unmapped := s.Requirements()
	if want := []string{"cloudpickle==1.6.0", "mlflow", "numpy==1.21.*"}; !reflect.DeepEqual(pip, want) || len(unmapped) != 0 {
		t.Errorf("requirements %q (unmapped %q), want %q", pip, unmapped, want)
	}
	if py, _ := s.python(); py != "3.8" {
		t.Errorf("python %q, want 3.8", py)
	}
}

func TestMLflowModelSpecRequirementsAloneOrNothing(t *testing.T) {
	s, ok, err := MLflowModelSpec(reader(fstest.MapFS{"requirements.txt": file("pandas\n-r more.txt\n"), "more.txt": file("pyarrow\n")}))
	if err != nil || !ok || !reflect.DeepEqual(s.Pip, []string{"pandas", "pyarrow"}) {
		t.Errorf("requirements.txt alone: %+v %v %v", s, ok, err)
	}
	if _, ok, err := MLflowModelSpec(reader(fstest.MapFS{"model.pkl": file("x")})); ok || err != nil {
		t.Errorf("a folder naming no environment: ok %v, err %v", ok, err)
	}
}

// A model's files may not make the server read its other files into a
// build log the model's owner reads.
func TestMLflowModelSpecStaysInTheModelFolder(t *testing.T) {
	for name, files := range map[string]fstest.MapFS{
		"-r outside": {"requirements.txt": file("-r ../../master.key\n")},
		"absolute":   {"MLmodel": file("flavors:\n  python_function:\n    env: {virtualenv: /etc/passwd}\n")},
		"loop":       {"requirements.txt": file("-r requirements.txt\n")},
	} {
		if _, _, err := MLflowModelSpec(reader(files)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseCondaFile(t *testing.T) {
	s, err := ParseCondaFile([]byte("name: x\ndependencies:\n  - python=3.10\n  - numpy=1.26\n  - scikit-learn=1.3\n  - pip\n  - pip:\n    - inflection==0.5.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	pip, _ := s.Requirements()
	if want := "inflection==0.5.1 numpy==1.26.* scikit-learn==1.3.*"; strings.Join(pip, " ") != want {
		t.Errorf("requirements %q, want %q", pip, want)
	}
	if _, err := ParseCondaFile([]byte("dependencies:\n  - [a, b]\n")); err == nil {
		t.Error("a list among the dependencies was accepted")
	}
}
