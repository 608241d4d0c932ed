package jobspec

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCuratedEnvironmentForms: a curated environment may be named alone
// (its latest version); a registry reference into azureml is asked of the
// workspace under its own name; an unknown curated name is refused with
// how to register a stand-in, while any other unknown name keeps the plain
// message.
func TestCuratedEnvironmentForms(t *testing.T) {
	r := &MapResolver{}
	r.AddAsset(AssetEnvironment, "AzureML-minimal-ubuntu20.04-py38-cpu-inference", "1")
	job := func(env string) (*Plan, error) {
		return ParseJob(filepath.Join("testdata", "jobs", "curated.yml"), []byte("command: echo hi\nenvironment: "+env+"\n"), nil, r)
	}
	plan, err := job("AzureML-minimal-ubuntu20.04-py38-cpu-inference")
	if err != nil {
		t.Fatal(err)
	}
	if ref := plan.Steps[0].Component.Environment.Ref; ref == nil || !ref.IsLatest() || ref.Name != "AzureML-minimal-ubuntu20.04-py38-cpu-inference" {
		t.Errorf("bare curated name: %+v", ref)
	}

	_, err = job("azureml:AzureML-nothing-like-it@latest")
	if err == nil || !strings.Contains(err.Error(), "wharf ml environment create --name AzureML-nothing-like-it --version 1") {
		t.Errorf("unknown curated environment: %v", err)
	}
	_, err = job("azureml:team-env:4")
	if err == nil || !strings.Contains(err.Error(), "no such environment is registered") || strings.Contains(err.Error(), "stand-in") {
		t.Errorf("unknown workspace environment: %v", err)
	}
	if _, err := job("team-env"); err == nil || !strings.Contains(err.Error(), "names no version") {
		t.Errorf("a bare name that is not curated: %v", err)
	}

	for _, c := range []struct {
		ref    string
		local  string
		inWork bool
	}{
		{"azureml://registries/azureml/environments/sklearn-1.5/versions/14", "azureml:sklearn-1.5:14", true},
		{"azureml://registries/azureml/environments/sklearn-1.5/labels/latest", "azureml:sklearn-1.5@latest", true},
		{"azureml://registries/contoso/environments/sklearn-1.5/versions/1", "", false},
		{"azureml:team-env:4", "azureml:team-env:4", true},
	} {
		ref, err := ParseAssetRef(c.ref)
		if err != nil {
			t.Fatal(err)
		}
		local, ok := ref.AsWorkspaceRef()
		if ok != c.inWork || (ok && local.String() != c.local) {
			t.Errorf("%s as a workspace reference: %s %v", c.ref, local.String(), ok)
		}
	}
}
