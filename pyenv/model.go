package pyenv

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ParseCondaFile reads a conda environment file (name, channels,
// dependencies with an optional "- pip: [...]" entry) as a Spec: the
// scalar dependencies, python=X.Y included, go to Conda and the pip list
// to Pip, so that Ensure installs them as it does a job's conda file.
func ParseCondaFile(data []byte) (Spec, error) {
	var file struct {
		Dependencies []yaml.Node `yaml:"dependencies"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		return Spec{}, fmt.Errorf("conda file: %w", err)
	}
	var s Spec
	for i, d := range file.Dependencies {
		switch d.Kind {
		case yaml.ScalarNode:
			s.Conda = append(s.Conda, d.Value)
		case yaml.MappingNode:
			var sub struct {
				Pip []string `yaml:"pip"`
			}
			if err := d.Decode(&sub); err != nil {
				return Spec{}, fmt.Errorf("conda file: dependencies[%d]: %w", i, err)
			}
			s.Pip = append(s.Pip, sub.Pip...)
		default:
			return Spec{}, fmt.Errorf("conda file: dependencies[%d] is neither a package nor a pip: list", i)
		}
	}
	return s, nil
}

// MLflowModelSpec returns the environment an MLflow model was logged with,
// chosen as `mlflow models serve` chooses it: the python_env.yaml that the
// python_function flavor of MLmodel names (its Python version and its
// dependencies, "-r requirements.txt" read in), else the conda.yaml it
// names, else requirements.txt. read returns a file of the model folder by
// its slash-separated name, and an error wrapping fs.ErrNotExist for one
// that is not there. ok is false when the model names no environment at
// all.
//
// Only files inside the model folder are read: a "-r" line that leads out
// of it is an error, since the model's files are its uploader's to write
// and the build log is theirs to read.
func MLflowModelSpec(read func(name string) ([]byte, error)) (spec Spec, ok bool, err error) {
	venv, conda := "python_env.yaml", "conda.yaml"
	if b, err := read("MLmodel"); err == nil {
		var mm struct {
			Flavors map[string]struct {
				Env any `yaml:"env"`
			} `yaml:"flavors"`
		}
		if err := yaml.Unmarshal(b, &mm); err != nil {
			return Spec{}, false, fmt.Errorf("MLmodel: %w", err)
		}
		// MLflow 1 names the conda file alone; MLflow 2 and later name
		// both files.
		switch env := mm.Flavors["python_function"].Env.(type) {
		case string:
			conda = env
		case map[string]any:
			if v, ok := env["virtualenv"].(string); ok {
				venv = v
			}
			if c, ok := env["conda"].(string); ok {
				conda = c
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Spec{}, false, err
	}

	b, err := readLocal(read, venv)
	switch {
	case err == nil:
		return pythonEnvSpec(read, b)
	case !errors.Is(err, fs.ErrNotExist):
		return Spec{}, false, err
	}
	b, err = readLocal(read, conda)
	switch {
	case err == nil:
		s, err := ParseCondaFile(b)
		return s, err == nil, err
	case !errors.Is(err, fs.ErrNotExist):
		return Spec{}, false, err
	}
	reqs, err := requirementLines(read, "requirements.txt", 0)
	if errors.Is(err, fs.ErrNotExist) {
		return Spec{}, false, nil
	}
	return Spec{Pip: reqs}, err == nil, err
}

// pythonEnvSpec reads MLflow's python_env.yaml: "python: 3.10.12" and
// its dependencies, requirement lines or "-r FILE". Its
// build_dependencies (pip, setuptools, wheel) come with every virtual
// environment.
func pythonEnvSpec(read func(string) ([]byte, error), data []byte) (Spec, bool, error) {
	var pe struct {
		Python       string   `yaml:"python"`
		Dependencies []string `yaml:"dependencies"`
	}
	if err := yaml.Unmarshal(data, &pe); err != nil {
		return Spec{}, false, fmt.Errorf("python_env.yaml: %w", err)
	}
	s := Spec{PythonVersion: pe.Python}
	for _, d := range pe.Dependencies {
		lines, err := requirementLine(read, d, 0)
		if err != nil {
			return Spec{}, false, err
		}
		s.Pip = append(s.Pip, lines...)
	}
	return s, true, nil
}

// maxIncludes bounds how deep "-r" files may nest, so files that include
// each other end.
const maxIncludes = 8

// requirementLines reads a requirements file of the model folder.
func requirementLines(read func(string) ([]byte, error), name string, depth int) ([]string, error) {
	b, err := readLocal(read, name)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		lines, err := requirementLine(read, line, depth)
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	return out, nil
}

// requirementLine returns the requirements of one line: none for a blank
// line, a comment or a pip option other than -r (a constraints file, say,
// pins without adding packages), the included file's for -r.
func requirementLine(read func(string) ([]byte, error), line string, depth int) ([]string, error) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return nil, nil
	}
	if !strings.HasPrefix(line, "-") {
		return []string{line}, nil
	}
	for _, opt := range []string{"-r", "--requirement"} {
		if rest, ok := strings.CutPrefix(line, opt); ok && (rest == "" || strings.ContainsAny(rest[:1], " =\t")) {
			if depth >= maxIncludes {
				return nil, fmt.Errorf("requirements files nest more than %d deep", maxIncludes)
			}
			return requirementLines(read, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), "=")), depth+1)
		}
	}
	return nil, nil
}

// readLocal reads name, which must stay inside the model folder.
func readLocal(read func(string) ([]byte, error), name string) ([]byte, error) {
	clean := path.Clean(strings.TrimPrefix(name, "./"))
	if name == "" || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return nil, fmt.Errorf("the model's environment names %q, which is not a file of the model", name)
	}
	return read(clean)
}
