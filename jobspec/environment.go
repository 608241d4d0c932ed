package jobspec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf/yamlfile"
)

// EnvironmentSpec is an environment definition (environment.schema.json).
type EnvironmentSpec struct {
	Name        string
	Version     string
	Description string
	Tags        map[string]string
	// Image is the base image; with Conda the conda environment is built on
	// top of it.
	Image string
	// CondaFile is the absolute path of the conda file, empty when the conda
	// specification was written inline.
	CondaFile string
	Conda     *CondaSpec
	Build     *BuildContext
	// OSType is "linux" (default) or "windows".
	OSType          string
	InferenceConfig *InferenceConfig
	// Pos is where the definition was written.
	Pos Position
}

// CondaSpec is a parsed conda environment file.
type CondaSpec struct {
	Name     string
	Channels []string
	// Dependencies are the conda packages in file order, without the pip
	// section.
	Dependencies []string
	// Pip is the nested "- pip: [...]" list.
	Pip       []string
	Prefix    string
	Variables map[string]string
}

// BuildContext is a Docker build context.
type BuildContext struct {
	// Path is the absolute context folder.
	Path string
	// DockerfilePath is relative to Path; default "Dockerfile".
	DockerfilePath string
}

// InferenceConfig holds the routes of a custom serving container.
type InferenceConfig struct {
	LivenessRoute  *Route `yaml:"liveness_route"`
	ReadinessRoute *Route `yaml:"readiness_route"`
	ScoringRoute   *Route `yaml:"scoring_route"`
}

// Route is one HTTP route of a serving container.
type Route struct {
	Path string `yaml:"path"`
	Port int    `yaml:"port"`
}

type rawEnvironment struct {
	Name            string            `yaml:"name"`
	Version         string            `yaml:"version"`
	Description     string            `yaml:"description"`
	Tags            map[string]string `yaml:"tags"`
	Image           string            `yaml:"image"`
	CondaFile       *yaml.Node        `yaml:"conda_file"`
	Build           *rawBuild         `yaml:"build"`
	OSType          string            `yaml:"os_type"`
	InferenceConfig *InferenceConfig  `yaml:"inference_config"`
}

type rawBuild struct {
	Path           string `yaml:"path"`
	DockerfilePath string `yaml:"dockerfile_path"`
}

// LoadEnvironment reads an environment YAML file, applying --set
// overrides; with no path, the environment is the overrides alone.
func LoadEnvironment(path string, sets []string) (*EnvironmentSpec, error) {
	errs := &problems{}
	doc := loadOrFlags(path, sets, errs)
	if doc == nil {
		return nil, errs.err()
	}
	return EnvironmentFromDocument(doc)
}

// EnvironmentFromDocument reads an environment from an already parsed (and
// overridden) document.
func EnvironmentFromDocument(doc *yamlfile.Document) (*EnvironmentSpec, error) {
	errs := &problems{}
	env := scope{doc, errs}.environment(doc.Root, "", true)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return env, nil
}

// InlineEnvironment reads the environment mapping n written at field of
// doc, as a job's inline environment is read: a deployment's
// environment:, whose conda_file is relative to the deployment's file.
func InlineEnvironment(doc *yamlfile.Document, n *yaml.Node, field string) (*EnvironmentSpec, error) {
	errs := &problems{}
	env := scope{doc, errs}.environment(n, field, false)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return env, nil
}

// environment reads an environment mapping. Inline environments (named
// false) must not carry a name or version: they are anonymous.
func (s scope) environment(n *yaml.Node, field string, named bool) *EnvironmentSpec {
	var raw rawEnvironment
	s.decode(n, field, &raw)
	env := &EnvironmentSpec{
		Name: raw.Name, Version: raw.Version, Description: raw.Description, Tags: raw.Tags,
		Image: strings.TrimSpace(raw.Image), OSType: strings.ToLower(raw.OSType),
		InferenceConfig: raw.InferenceConfig, Pos: s.position(n, field),
	}
	node := func(key string) *yaml.Node {
		for _, e := range entries(n) {
			if e.key.Value == key {
				return e.key
			}
		}
		return n
	}
	if named {
		if env.Name == "" {
			s.fail(n, join(field, "name"), "name is required")
		} else if !assetNameRe.MatchString(env.Name) {
			s.fail(node("name"), join(field, "name"), "invalid name %q (letters, digits, '-', '_' and '.', starting with a letter or digit)", env.Name)
		}
	} else if env.Name != "" && !assetNameRe.MatchString(env.Name) {
		// Azure accepts a name and version on an inline environment (it
		// registers it under them); the definition written here is what
		// runs, so they only label it.
		s.fail(node("name"), join(field, "name"), "invalid name %q (letters, digits, '-', '_' and '.', starting with a letter or digit)", env.Name)
	}
	switch env.OSType {
	case "":
		env.OSType = "linux"
	case "linux", "windows":
	default:
		s.fail(node("os_type"), join(field, "os_type"), "os_type must be linux or windows, got %q", raw.OSType)
	}
	if raw.Build != nil {
		b := &BuildContext{DockerfilePath: raw.Build.DockerfilePath}
		if b.DockerfilePath == "" {
			b.DockerfilePath = "Dockerfile"
		}
		bfield := join(field, "build.path")
		switch {
		case raw.Build.Path == "":
			s.fail(node("build"), bfield, "build.path is required")
		case isURL(raw.Build.Path):
			b.Path = raw.Build.Path
		case IsDatastoreURI(raw.Build.Path):
			b.Path = raw.Build.Path
		default:
			abs, ok := s.localPath(node("build"), bfield, raw.Build.Path)
			if !ok {
				break
			}
			b.Path = abs
			if st, err := os.Stat(b.Path); err != nil || !st.IsDir() {
				s.fail(node("build"), bfield, "build context %s is not a folder", b.Path)
			} else if _, err := os.Stat(filepath.Join(b.Path, b.DockerfilePath)); err != nil {
				s.fail(node("build"), join(field, "build.dockerfile_path"), "no %s in build context %s", b.DockerfilePath, b.Path)
			}
		}
		env.Build = b
	}
	if raw.CondaFile != nil && !isNull(raw.CondaFile) {
		cfield := join(field, "conda_file")
		cn := deref(raw.CondaFile)
		switch cn.Kind {
		case yaml.ScalarNode:
			abs, ok := s.localPath(cn, cfield, cn.Value)
			if !ok {
				break
			}
			env.CondaFile = abs
			cdoc := loadDocument(env.CondaFile, nil, s.errs)
			if cdoc != nil {
				env.Conda = scope{cdoc, s.errs}.conda(cdoc.Root, "")
			}
		case yaml.MappingNode:
			env.Conda = s.conda(cn, cfield)
		default:
			s.fail(cn, cfield, "conda_file must be a file path or a mapping")
		}
		if env.Image == "" && env.Build == nil {
			s.fail(cn, cfield, "conda_file needs an image to build on")
		}
	}
	switch {
	case env.Image == "" && env.Build == nil:
		s.fail(n, field, "an environment needs an image or a build context")
	case env.Image != "" && env.Build != nil:
		s.fail(node("build"), join(field, "build"), "set either image or build, not both")
	}
	return env
}

type rawConda struct {
	Name         string            `yaml:"name"`
	Channels     []string          `yaml:"channels"`
	Dependencies []*yaml.Node      `yaml:"dependencies"`
	Prefix       string            `yaml:"prefix"`
	Variables    map[string]string `yaml:"variables"`
}

// conda reads a conda environment specification.
func (s scope) conda(n *yaml.Node, field string) *CondaSpec {
	var raw rawConda
	s.decode(n, field, &raw)
	c := &CondaSpec{Name: raw.Name, Channels: raw.Channels, Prefix: raw.Prefix, Variables: raw.Variables}
	for i, d := range raw.Dependencies {
		d = deref(d)
		dfield := fmt.Sprintf("%s[%d]", join(field, "dependencies"), i)
		switch {
		case d == nil || isNull(d):
			s.fail(d, dfield, "empty dependency")
		case d.Kind == yaml.ScalarNode:
			c.Dependencies = append(c.Dependencies, d.Value)
		case d.Kind == yaml.MappingNode:
			var pip struct {
				Pip []string `yaml:"pip"`
			}
			s.decode(d, dfield, &pip)
			c.Pip = append(c.Pip, pip.Pip...)
		default:
			s.fail(d, dfield, "expected a package spec or a pip: list")
		}
	}
	return c
}

var pythonDepRe = regexp.MustCompile(`^(?:[A-Za-z0-9_.-]+::)?python\s*(==|=|>=|<=|~=|>|<)?\s*([0-9][0-9A-Za-z.*]*)?`)

// PythonVersion returns the version pinned by a python dependency in the
// conda specification ("3.8" for python=3.8), or "" when none is pinned.
func (e *EnvironmentSpec) PythonVersion() string {
	if e == nil || e.Conda == nil {
		return ""
	}
	for _, d := range e.Conda.Dependencies {
		m := pythonDepRe.FindStringSubmatch(strings.TrimSpace(d))
		if m == nil {
			continue
		}
		rest := strings.TrimSpace(d)[len(m[0]):]
		if rest != "" && !strings.ContainsAny(rest[:1], " ,=<>") {
			continue // e.g. python-dateutil
		}
		return m[2]
	}
	return ""
}

// PipRequirements returns the pip packages of the conda specification, in
// file order.
func (e *EnvironmentSpec) PipRequirements() []string {
	if e == nil || e.Conda == nil {
		return nil
	}
	return append([]string(nil), e.Conda.Pip...)
}

// canonicalEnvironment is the part of an environment that determines the
// image it builds; name, version, description and tags do not.
type canonicalEnvironment struct {
	Image           string           `json:"image,omitempty"`
	Conda           *CondaSpec       `json:"conda,omitempty"`
	BuildDigest     string           `json:"build_digest,omitempty"`
	Dockerfile      string           `json:"dockerfile,omitempty"`
	OSType          string           `json:"os_type"`
	InferenceConfig *InferenceConfig `json:"inference_config,omitempty"`
}

// CanonicalJSON returns a stable JSON form of everything that determines the
// built image, so two definitions that build the same thing compare equal.
// A local build context is represented by a digest of its files' names and
// contents.
func (e *EnvironmentSpec) CanonicalJSON() ([]byte, error) {
	c := canonicalEnvironment{Image: e.Image, Conda: e.Conda, OSType: e.OSType, InferenceConfig: e.InferenceConfig}
	if e.Build != nil {
		c.Dockerfile = filepath.ToSlash(e.Build.DockerfilePath)
		if isURL(e.Build.Path) || IsDatastoreURI(e.Build.Path) {
			// An uploaded context is named by its content's digest.
			c.BuildDigest = e.Build.Path
		} else {
			d, err := DirDigest(e.Build.Path)
			if err != nil {
				return nil, err
			}
			c.BuildDigest = d
		}
	}
	return json.Marshal(c)
}

// Hash returns the hex SHA-256 of CanonicalJSON, a cache key for built images.
func (e *EnvironmentSpec) Hash() (string, error) {
	b, err := e.CanonicalJSON()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// DirDigest returns "sha256:<hex>" over the relative names, modes and
// contents of every regular file under dir, in sorted order, so equal trees
// give equal digests wherever they live.
func DirDigest(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, p := range files {
		rel, _ := filepath.Rel(dir, p)
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", filepath.ToSlash(rel), st.Mode().Perm()&0o111, st.Size())
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
