package resolve

import (
	"encoding/json"

	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/scheduler"
)

// The stored definitions of assets, in Asset.Spec. The CLI writes them
// when it registers an asset; the resolver reads them at every submission.

// DataAsset is a data asset's stored definition.
type DataAsset struct {
	Type string `json:"type"`
	Path string `json:"path"`
	// Kind, FileName, Size and Files describe uploaded content.
	Kind     string `json:"kind,omitempty"`
	FileName string `json:"file_name,omitempty"`
	Size     int64  `json:"size,omitempty"`
	Files    int    `json:"files,omitempty"`
}

// Environment is an environment's stored definition: what the local
// executor builds (Python version and pip requirements) and what a
// container executor would (image, conda spec).
type Environment struct {
	Image         string             `json:"image,omitempty"`
	PythonVersion string             `json:"python_version,omitempty"`
	Pip           []string           `json:"pip,omitempty"`
	Conda         *jobspec.CondaSpec `json:"conda,omitempty"`
	OSType        string             `json:"os_type,omitempty"`
	Hash          string             `json:"hash"`
	// Note is said in the log of every step that runs in the
	// environment; set for Azure's curated environments (see Curated).
	Note string `json:"note,omitempty"`
}

// EnvironmentOf is the stored form of an environment definition.
func EnvironmentOf(e *jobspec.EnvironmentSpec) (Environment, error) {
	h, err := e.Hash()
	if err != nil {
		return Environment{}, err
	}
	return Environment{Image: e.Image, PythonVersion: e.PythonVersion(), Pip: e.PipRequirements(), Conda: e.Conda,
		OSType: e.OSType, Hash: h}, nil
}

// Component is a component's stored definition; its code folder is the
// component asset's digest.
type Component struct {
	Component *jobspec.ComponentSpec `json:"component"`
	// Environment is the inline environment's built form, when inline.
	Environment *Environment `json:"environment,omitempty"`
	// Document is the component as the Azure ML SDK sent it (its
	// componentSpec), which the SDK reads back; empty for one created
	// otherwise.
	Document json.RawMessage `json:"document,omitempty"`
	// CodePath is where the code folder is in the upload datastore, as a
	// job names its code (UploadURI): in an azure_blob or s3 one its
	// files are written there. Empty for a component without code, or
	// one registered before.
	CodePath string `json:"code_path,omitempty"`
}

// DeploymentEnvironment pins an online or batch deployment's environment
// as a job's is pinned, so that it is built the same way: ref names the
// registered environment ("name:version"), "" for an inline one.
func DeploymentEnvironment(ref string, e Environment) *scheduler.EnvSpec {
	var conda []string
	if e.Conda != nil {
		conda = e.Conda.Dependencies
	}
	return &scheduler.EnvSpec{Ref: ref, Image: e.Image, PythonVersion: e.PythonVersion, Pip: e.Pip, Conda: conda}
}
