// Package curated is Wharf's catalog of Azure Machine Learning's curated
// environments: what Azure's own definition of each installs (Python
// version, conda and pip packages, base image), kept as data in
// catalog.json, which names the files of Azure's public
// Azure/azureml-assets repository it was read from.
//
// Azure's samples and tutorials name these environments rather than
// define their own (azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest,
// azureml://registries/azureml/environments/sklearn-1.5/labels/latest), so
// a server that accepts Azure's YAML as written must know what they hold.
// Wharf builds the same packages into a virtual environment; a definition
// on a CUDA image gets its CPU packages (see CPU).
package curated

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Registry is the registry Azure publishes its curated environments in,
// as azureml://registries/azureml/environments/<name>/... names them.
const Registry = "azureml"

// WorkspacePrefix starts the name Azure gives a curated environment in
// every workspace: AzureML-<name>.
const WorkspacePrefix = "AzureML-"

//go:embed catalog.json
var catalogJSON []byte

// Environment is one curated environment as its definition installs it.
type Environment struct {
	// Name is its name in the azureml registry.
	Name string `json:"name"`
	// Aliases are the other names Azure has published it under.
	Aliases []string `json:"aliases,omitempty"`
	// Version is the newest version number seen in use; every whole
	// number resolves to this one definition.
	Version     string            `json:"version"`
	Description string            `json:"description"`
	Image       string            `json:"image"`
	Python      string            `json:"python"`
	Conda       []string          `json:"conda"`
	Pip         []string          `json:"pip"`
	GPU         bool              `json:"gpu,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	// Omitted is what the definition installs that Wharf leaves out.
	Omitted []Omission `json:"omitted,omitempty"`
	// Notes explain where a package comes from when the files do not
	// say it plainly.
	Notes   []string `json:"notes,omitempty"`
	Sources []Source `json:"sources"`
}

// Omission is a package, or a group of them, a definition installs and
// Wharf does not.
type Omission struct {
	What string `json:"what"`
	Why  string `json:"why"`
}

// Source is a file an entry was read from: a path in Azure/azureml-assets
// at a commit, or a document of another repository at a revision.
type Source struct {
	Repository string `json:"repository,omitempty"`
	Path       string `json:"path"`
	Commit     string `json:"commit,omitempty"`
	Revision   string `json:"revision,omitempty"`
}

// Equivalent says what stands in for a CUDA-only package on a CPU: CPU
// names the package to install instead, or is empty when the package is
// left out, for the reason Why.
type Equivalent struct {
	GPU string `json:"gpu"`
	CPU string `json:"cpu,omitempty"`
	Why string `json:"why,omitempty"`
}

// catalog is catalog.json.
type catalog struct {
	About          string        `json:"about"`
	Conventions    []string      `json:"conventions"`
	CPUEquivalents []Equivalent  `json:"cpu_equivalents"`
	Environments   []Environment `json:"environments"`
}

var (
	loadOnce sync.Once
	loaded   *catalog
	byName   map[string]int
)

// load parses the embedded catalog once. A catalog that does not parse,
// or that gives two environments one name, is a build mistake the tests
// catch, so it panics rather than serving half a catalog.
func load() *catalog {
	loadOnce.Do(func() {
		var c catalog
		if err := json.Unmarshal(catalogJSON, &c); err != nil {
			panic(fmt.Sprintf("curated: catalog.json: %v", err))
		}
		sort.SliceStable(c.Environments, func(i, j int) bool { return c.Environments[i].Name < c.Environments[j].Name })
		byName = map[string]int{}
		for i, e := range c.Environments {
			for _, n := range e.Names() {
				if j, dup := byName[key(n)]; dup && j != i {
					panic(fmt.Sprintf("curated: catalog.json names %s twice", n))
				}
				byName[key(n)] = i
			}
		}
		loaded = &c
	})
	return loaded
}

// key is the form names are compared in: Azure's own spelling varies
// (AzureML-ACPT-pytorch, AzureML-acpt-pytorch) and the workspace prefix is
// optional, so case and the prefix are dropped.
func key(name string) string {
	return strings.ToLower(withoutPrefix(name))
}

// Names returns every name the environment answers to: its registry
// name and its aliases.
func (e *Environment) Names() []string {
	return append([]string{e.Name}, e.Aliases...)
}

// All returns the catalog's environments, ordered by name.
func All() []Environment {
	return append([]Environment(nil), load().Environments...)
}

// Find returns the environment a name refers to, and the name as the
// catalog spells it: with the AzureML- prefix where the name was written
// with it.
func Find(name string) (*Environment, string, bool) {
	c := load()
	i, ok := byName[key(name)]
	if !ok {
		return nil, "", false
	}
	e := c.Environments[i]
	spelled := withoutPrefix(name)
	for _, n := range e.Names() {
		if key(n) == key(name) {
			spelled = withoutPrefix(n)
			break
		}
	}
	if withoutPrefix(name) != name {
		spelled = WorkspacePrefix + spelled
	}
	return &e, spelled, true
}

// withoutPrefix drops the workspace prefix, in whatever case it was
// written.
func withoutPrefix(name string) string {
	if len(name) >= len(WorkspacePrefix) && strings.EqualFold(name[:len(WorkspacePrefix)], WorkspacePrefix) {
		return name[len(WorkspacePrefix):]
	}
	return name
}

// ResolveVersion says which version a reference to the environment
// names: the catalog's version for latest (label "latest", or neither a
// version nor a label), a whole-number version as written. ok is false
// for any other version or label, which Azure never published.
func (e *Environment) ResolveVersion(version, label string) (string, bool) {
	switch {
	case version == "" && (label == "" || label == "latest"):
		return e.Version, true
	case version != "" && label == "":
		n, err := strconv.Atoi(version)
		if err != nil || n < 1 {
			return "", false
		}
		return strconv.Itoa(n), true
	}
	return "", false
}

// Change is one package of a CUDA definition and what Wharf installs in
// its place: To is empty when it is left out, for the reason Why.
type Change struct {
	From, To, Why string
}

// CPU returns the packages Wharf installs for the environment: its conda
// and pip lists, with each CUDA-only package of a GPU definition replaced
// by its CPU equivalent or left out, and what was changed.
func (e *Environment) CPU() (conda, pip []string, changes []Change) {
	if !e.GPU {
		return append([]string(nil), e.Conda...), append([]string(nil), e.Pip...), nil
	}
	table := load().CPUEquivalents
	swap := func(list []string, name func(string) (string, string)) []string {
		var out []string
		for _, req := range list {
			full, bare := name(req)
			eq, ok := lookupEquivalent(table, full, bare)
			if !ok {
				out = append(out, req)
				continue
			}
			c := Change{From: req, Why: eq.Why}
			if eq.CPU != "" {
				c.To = eq.CPU + strings.TrimSpace(req[len(full):])
				out = append(out, c.To)
			}
			changes = append(changes, c)
		}
		return out
	}
	conda = swap(e.Conda, condaName)
	pip = swap(e.Pip, pipName)
	return conda, pip, changes
}

// lookupEquivalent finds a package's CPU equivalent: by its name with its
// extras (tensorflow[and-cuda]) first, then by its bare name.
func lookupEquivalent(table []Equivalent, full, bare string) (Equivalent, bool) {
	for _, want := range []string{full, bare} {
		for _, eq := range table {
			if strings.EqualFold(eq.GPU, want) {
				return eq, true
			}
		}
	}
	return Equivalent{}, false
}

// pipName splits a requirement into its name as written with any extras
// (horovod[tensorflow]) and the bare name.
func pipName(req string) (full, bare string) {
	req = strings.TrimSpace(req)
	end := strings.IndexAny(req, "<>=!~;@ ")
	if end < 0 {
		end = len(req)
	}
	full = req[:end]
	bare, _, _ = strings.Cut(full, "[")
	return full, bare
}

// condaName is pipName for a conda dependency (name=version=build).
func condaName(dep string) (full, bare string) {
	dep = strings.TrimSpace(dep)
	end := strings.IndexAny(dep, "<>=!~ ")
	if end < 0 {
		end = len(dep)
	}
	return dep[:end], dep[:end]
}

// Note is the line a job's log gets when a step runs in the environment,
// named ref: what it is and where its packages come from, and for a CUDA
// definition which of its packages Wharf replaced or left out.
func (e *Environment) Note(ref string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s is Azure's curated environment %s, built here from its definition (Python %s and its conda and pip packages)",
		ref, e.Name, e.Python)
	if e.GPU {
		_, _, changes := e.CPU()
		fmt.Fprintf(&b, "; its CUDA image %s is replaced by the CPU packages of the same definition", e.Image)
		var swapped, dropped []string
		for _, c := range changes {
			if c.To != "" {
				swapped = append(swapped, c.From+" -> "+c.To)
			} else {
				dropped = append(dropped, c.From+" ("+c.Why+")")
			}
		}
		if len(swapped) > 0 {
			b.WriteString(": " + strings.Join(swapped, ", "))
		}
		if len(dropped) > 0 {
			b.WriteString("; left out: " + strings.Join(dropped, ", "))
		}
	}
	for _, o := range e.Omitted {
		fmt.Fprintf(&b, "; left out: %s (%s)", o.What, o.Why)
	}
	return b.String()
}
