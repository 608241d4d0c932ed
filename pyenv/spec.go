package pyenv

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"unicode"

	"github.com/wharfml/wharf"
)

// specFormat changes whenever the way an environment is built from a Spec
// changes, so environments built the old way are not reused.
const specFormat = 1

// Spec describes a job environment's Python packages, as taken from its
// conda file.
type Spec struct {
	// PythonVersion is the requested interpreter, e.g. "3.8" from
	// conda's python=3.8; only major.minor counts. Empty means the
	// server's python3, unless Conda holds a python entry.
	PythonVersion string `json:"python_version,omitempty"`
	// Pip holds requirement lines from the conda file's pip: list,
	// passed to pip or uv as a requirements file.
	Pip []string `json:"pip,omitempty"`
	// Conda holds the other conda dependencies. Well-known packages
	// whose PyPI name and versioning match conda's (numpy, pandas,
	// scikit-learn, ... see Requirements) are installed with pip;
	// others (compilers, CUDA, MKL, ...) have no pip equivalent and are
	// only reported as skipped in the build log.
	Conda []string `json:"conda,omitempty"`
}

// condaToPip maps conda package names to the PyPI names of the same
// software. Only packages published under the same versions on both are
// listed: installing a different package than the one asked for, or
// guessing a version, would be worse than saying it was skipped.
var condaToPip = map[string]string{
	"numpy": "numpy", "scipy": "scipy", "pandas": "pandas",
	"scikit-learn": "scikit-learn", "scikit-image": "scikit-image",
	"matplotlib": "matplotlib", "seaborn": "seaborn", "statsmodels": "statsmodels",
	"pyarrow": "pyarrow", "h5py": "h5py", "pillow": "pillow", "joblib": "joblib",
	"tqdm": "tqdm", "requests": "requests", "pyyaml": "pyyaml", "click": "click",
	"jinja2": "jinja2", "psutil": "psutil", "six": "six", "protobuf": "protobuf",
	"cloudpickle": "cloudpickle", "numba": "numba", "dask": "dask",
	"networkx": "networkx", "sympy": "sympy", "nltk": "nltk",
	"lightgbm": "lightgbm", "xgboost": "xgboost", "py-xgboost": "xgboost",
	"catboost": "catboost", "mlflow": "mlflow", "onnx": "onnx", "onnxruntime": "onnxruntime",
	"pytorch": "torch", "torchvision": "torchvision", "torchaudio": "torchaudio",
	"tensorflow": "tensorflow", "keras": "keras", "transformers": "transformers",
	"datasets": "datasets", "tokenizers": "tokenizers", "sentencepiece": "sentencepiece",
	"pytorch-lightning": "pytorch-lightning", "lightning": "lightning",
	"opencv": "opencv-python", "py-opencv": "opencv-python",
	"pydantic": "pydantic", "fastapi": "fastapi", "flask": "flask",
	"pytest": "pytest", "ipykernel": "ipykernel",
}

// condaProvidedByVenv names conda packages every virtual environment has
// already, which are neither installed nor reported as skipped.
var condaProvidedByVenv = map[string]bool{"python": true, "pip": true, "setuptools": true, "wheel": true}

var (
	condaSpecRE  = regexp.MustCompile(`^([A-Za-z0-9_.\-]+)\s*(.*)$`)
	majorMinorRE = regexp.MustCompile(`\d+(\.\d+)?`)
)

// parseConda splits a conda dependency such as "conda-forge::numpy=1.21=py38h1"
// into its name (lowercased) and version constraint ("=1.21").
func parseConda(dep string) (name, version string, ok bool) {
	dep = strings.TrimSpace(dep)
	if i := strings.LastIndex(dep, "::"); i >= 0 {
		dep = dep[i+2:]
	}
	m := condaSpecRE.FindStringSubmatch(dep)
	if m == nil {
		return "", "", false
	}
	return strings.ToLower(m[1]), strings.TrimSpace(m[2]), true
}

// condaVersionToPip turns a conda version constraint into a pip one. Conda's
// "=1.21" (and "1.21" after a space) means any 1.21.x, which pip spells
// "==1.21.*"; a build string after a second "=" has no pip meaning.
func condaVersionToPip(v string) string {
	v = strings.ReplaceAll(v, " ", "")
	if v == "" {
		return ""
	}
	if strings.HasPrefix(v, "==") || strings.ContainsAny(v[:1], "<>!~") {
		return v
	}
	v = strings.TrimPrefix(v, "=")
	if i := strings.Index(v, "="); i >= 0 {
		v = v[:i] // drop the build string
	}
	v = strings.TrimSuffix(strings.TrimSuffix(v, "*"), ".")
	if v == "" {
		return ""
	}
	return "==" + v + ".*"
}

// Requirements returns the pip requirement lines the environment installs:
// the Pip lines plus the Conda packages that map to PyPI, sorted and with
// duplicates (lines that differ only in whitespace) removed. unmapped lists
// the Conda entries that are not installed.
func (s Spec) Requirements() (pip []string, unmapped []string) {
	byKey := map[string]string{}
	add := func(line string) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			return
		}
		key := requirementKey(line)
		if _, dup := byKey[key]; !dup {
			byKey[key] = line
		}
	}
	for _, line := range s.Pip {
		add(line)
	}
	for _, dep := range s.Conda {
		name, version, ok := parseConda(dep)
		if ok && condaProvidedByVenv[name] {
			continue
		}
		pipName, known := condaToPip[name]
		if !ok || !known {
			if strings.TrimSpace(dep) != "" {
				unmapped = append(unmapped, strings.TrimSpace(dep))
			}
			continue
		}
		add(pipName + condaVersionToPip(version))
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		pip = append(pip, byKey[k])
	}
	return pip, unmapped
}

// requirementKey is the form of a requirement line used to compare and hash
// it: whitespace carries no meaning in the requirement syntax pip accepts
// from conda files, so it is dropped.
func requirementKey(line string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, line)
}

// python returns the requested major.minor (or major) version, taking it
// from a conda python entry when PythonVersion is empty.
func (s Spec) python() (string, error) {
	v := strings.TrimSpace(s.PythonVersion)
	if v == "" {
		for _, dep := range s.Conda {
			if name, version, ok := parseConda(dep); ok && name == "python" {
				v = version
				break
			}
		}
	}
	if v == "" {
		return "", nil
	}
	mm := majorMinorRE.FindString(v)
	if mm == "" {
		return "", wharf.Errorf(wharf.EINVALID, "python version %q is not understood; use e.g. python=3.10", v).WithField("python")
	}
	return mm, nil
}

// canonicalSpec is what identifies a built environment.
type canonicalSpec struct {
	Format       int      `json:"format"`
	Python       string   `json:"python"`
	Requirements []string `json:"requirements"`
}

func (s Spec) canonical() (canonicalSpec, []string, error) {
	py, err := s.python()
	if err != nil {
		return canonicalSpec{}, nil, err
	}
	reqs, unmapped := s.Requirements()
	keys := make([]string, len(reqs))
	for i, r := range reqs {
		keys[i] = requirementKey(r)
	}
	return canonicalSpec{Format: specFormat, Python: py, Requirements: keys}, unmapped, nil
}

// Key returns the hex digest that names the environment of s in the cache:
// equal for specs that differ only in the order, whitespace or duplication
// of requirements.
func (s Spec) Key() (string, error) {
	c, _, err := s.canonical()
	if err != nil {
		return "", err
	}
	return c.key(), nil
}

func (c canonicalSpec) key() string {
	data, _ := json.Marshal(c) // strings and ints only: cannot fail
	sum := sha256.Sum256(data)
	// 96 bits are plenty to tell environments apart and keep paths,
	// which end up in script shebang lines, short.
	return hex.EncodeToString(sum[:12])
}
