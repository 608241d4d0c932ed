package jobspec

import (
	"fmt"
	"strings"
)

// CuratedRegistry is the registry Azure publishes its curated
// environments in (azureml://registries/azureml/environments/...).
const CuratedRegistry = "azureml"

// curatedPrefix starts the name Azure gives each curated environment in a
// workspace.
const curatedPrefix = "AzureML-"

// LooksCurated reports whether a reference is written the way Azure names
// its curated environments: in the azureml registry, or AzureML-<name>.
func (r AssetRef) LooksCurated() bool {
	if r.Form == RefRegistry {
		return strings.EqualFold(r.Registry, CuratedRegistry)
	}
	return len(r.Name) > len(curatedPrefix) && strings.EqualFold(r.Name[:len(curatedPrefix)], curatedPrefix)
}

// AsWorkspaceRef returns a reference to an environment in Azure's
// curated registry as a reference to the workspace environment of the
// same name, version or label: there a workspace environment registered
// under that name stands in for Azure's, and the server answers from its
// catalog of Azure's definitions when there is none. ok is false for
// other registries, which this server does not hold.
func (r AssetRef) AsWorkspaceRef() (AssetRef, bool) {
	if r.Form != RefRegistry {
		return r, true
	}
	if !r.LooksCurated() {
		return r, false
	}
	out := r
	out.Form, out.Registry, out.Kind = RefShort, "", ""
	return out, true
}

// parseEnvironmentRef reads an environment reference. Besides every form
// ParseAssetRef accepts, a curated environment may be named alone
// (AzureML-minimal-ubuntu20.04-py38-cpu, as Azure's SDK samples write
// it), which means its latest version.
func parseEnvironmentRef(s string) (AssetRef, error) {
	ref, err := ParseAssetRef(s)
	if err == nil {
		return ref, nil
	}
	body := strings.TrimPrefix(strings.TrimSpace(s), "azureml:")
	bare := AssetRef{Raw: s, Form: RefShort, Name: body, Label: "latest"}
	if bare.LooksCurated() && assetNameRe.MatchString(body) {
		return bare, nil
	}
	return ref, err
}

// UnknownEnvironment is the problem with an environment reference that
// names nothing. A curated environment's says how to stand one in: Wharf
// knows Azure's curated environments from a catalog, and one it does not
// hold can be registered under the same name.
func UnknownEnvironment(ref AssetRef) string {
	if !ref.LooksCurated() {
		return fmt.Sprintf("unknown environment reference %s: no such environment is registered", ref.Raw)
	}
	version := ref.Version
	if version == "" {
		version = "1"
	}
	return fmt.Sprintf("unknown environment reference %s: %s is not in this server's catalog of Azure's curated environments "+
		"(wharf ml environment list --registry-name azureml lists them) and no environment of that name is registered here; "+
		"register a stand-in with the packages it should hold: wharf ml environment create --name %s --version %s "+
		"--image mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04 --conda-file conda.yml",
		ref.Raw, ref.Name, ref.Name, version)
}
