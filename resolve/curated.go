package resolve

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/curated"
	"github.com/wharfml/wharf/jobspec"
)

// Curated returns one of Azure's curated environments from Wharf's
// catalog as a stored environment asset, the form every registered
// environment has: name as the catalog spells it, version as asked
// (wharf.LatestVersion or "" for the catalog's newest), and a spec whose
// packages are those the local executor builds, a CUDA definition's CPU
// ones. found is false for a name the catalog does not hold or a version
// Azure never published.
func Curated(name, version string) (*wharf.Asset, bool) {
	env, spelled, ok := curated.Find(name)
	if !ok {
		return nil, false
	}
	label := ""
	if version == "" || version == wharf.LatestVersion {
		version, label = "", wharf.LatestVersion
	}
	v, ok := env.ResolveVersion(version, label)
	if !ok {
		return nil, false
	}
	conda, pip, _ := env.CPU()
	stored := Environment{Image: env.Image, PythonVersion: env.Python, Pip: pip, OSType: "linux",
		Conda: &jobspec.CondaSpec{Name: env.Name, Dependencies: conda, Pip: pip},
		Note:  env.Note(spelled + ":" + v)}
	canonical, err := json.Marshal([]any{stored.Image, stored.PythonVersion, conda, pip})
	if err != nil {
		return nil, false
	}
	sum := sha256.Sum256(canonical)
	stored.Hash = hex.EncodeToString(sum[:])
	spec, err := json.Marshal(stored)
	if err != nil {
		return nil, false
	}
	tags := map[string]string{"azureml.registry": curated.Registry, "azureml.name": env.Name}
	for k, val := range env.Tags {
		tags[k] = val
	}
	if env.GPU {
		tags["wharf.cpu_packages"] = "true"
	}
	return &wharf.Asset{Kind: wharf.AssetEnvironment, Name: spelled, Version: v, Spec: spec,
		Description: env.Description, Tags: tags, CreatedBy: curated.Registry}, true
}

// environmentAsset finds the environment a reference names: the
// workspace's own first, so that one registered under a curated name
// stands in for Azure's, then Azure's curated environment of that name
// from the catalog. A reference into the azureml registry is looked up
// the same way; other registries are not held here.
func (run *resolution) environmentAsset(ref jobspec.AssetRef) (*wharf.Asset, bool, error) {
	local, ok := ref.AsWorkspaceRef()
	if !ok {
		return nil, false, nil
	}
	a, found, err := run.fetch(wharf.AssetEnvironment, local)
	if err != nil || found {
		return a, found, err
	}
	if local.Workspace != "" && local.Workspace != run.ws {
		return nil, false, nil
	}
	version := local.Version
	if local.IsLatest() {
		version = wharf.LatestVersion
	} else if local.Label != "" {
		return nil, false, nil
	}
	a, found = Curated(local.Name, version)
	return a, found, nil
}
