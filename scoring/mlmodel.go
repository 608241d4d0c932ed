package scoring

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf/linear"
)

// MLmodel is the part of an MLflow model's MLmodel file that decides how
// Wharf scores the model: its flavors and its signature.
type MLmodel struct {
	Flavors   map[string]map[string]any `yaml:"flavors"`
	Signature *struct {
		Inputs  string `yaml:"inputs"`
		Outputs string `yaml:"outputs"`
	} `yaml:"signature"`
}

// ReadMLmodel reads dir/MLmodel. A folder without one gives an error that
// wraps fs.ErrNotExist.
func ReadMLmodel(dir string) (*MLmodel, error) {
	path := filepath.Join(dir, "MLmodel")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := ParseMLmodel(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseMLmodel reads the content of an MLmodel file.
func ParseMLmodel(data []byte) (*MLmodel, error) {
	var m MLmodel
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// FindMLmodel finds an MLflow model in dir, a deployment's model folder
// (AZUREML_MODEL_DIR): MLmodel in dir itself, or in its one sub-folder,
// where Azure ML's layout puts a model registered from a folder
// (AZUREML_MODEL_DIR/<folder>/MLmodel). It returns the folder holding
// MLmodel with the file read; a dir without one gives an error that wraps
// fs.ErrNotExist.
func FindMLmodel(dir string) (string, *MLmodel, error) {
	m, err := ReadMLmodel(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return dir, m, err
	}
	entries, rerr := os.ReadDir(dir)
	if rerr != nil {
		return "", nil, err
	}
	if len(entries) == 1 && entries[0].IsDir() {
		sub := filepath.Join(dir, entries[0].Name())
		if m, serr := ReadMLmodel(sub); !errors.Is(serr, fs.ErrNotExist) {
			return sub, m, serr
		}
	}
	return "", nil, err
}

// Native reports whether the model is a Wharf linear model, which Wharf
// scores in Go whatever other flavors it has.
func (m *MLmodel) Native() bool {
	_, ok := m.Flavors[linear.Flavor]
	return ok
}

// Pyfunc reports whether the model can be loaded by mlflow.pyfunc.
func (m *MLmodel) Pyfunc() bool {
	_, ok := m.Flavors["python_function"]
	return ok
}

// ServedByPython reports whether Wharf scores the model with Python
// workers: an MLflow pyfunc model that is not a native one.
func (m *MLmodel) ServedByPython() bool { return m.Pyfunc() && !m.Native() }

// SignatureInputs returns the signature's inputs as JSON, or "".
func (m *MLmodel) SignatureInputs() string {
	if m.Signature == nil {
		return ""
	}
	return m.Signature.Inputs
}
