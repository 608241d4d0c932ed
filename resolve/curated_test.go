package resolve_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/scheduler"
)

// curatedResolver is a Resolver over a store with one workspace, ws.
func curatedResolver(t *testing.T) (*resolve.Resolver, wharf.Store) {
	t.Helper()
	db := openSQLite(t)
	if _, err := db.PutWorkspace(t.Context(), &wharf.Workspace{Name: "ws"}); err != nil {
		t.Fatal(err)
	}
	return &resolve.Resolver{Store: db}, db
}

// jobEnvironment resolves a command job in the environment written env
// and returns what its step builds.
func jobEnvironment(t *testing.T, r *resolve.Resolver, env string) (scheduler.EnvSpec, error) {
	t.Helper()
	doc, _ := json.Marshal(map[string]any{"command": "python -c 'import sklearn'", "environment": env})
	sub, err := r.Job(t.Context(), "ws", doc)
	if err != nil {
		return scheduler.EnvSpec{}, err
	}
	return sub.Steps[0].Spec.Environment, nil
}

// TestCuratedEnvironmentReferences: every way Azure's YAML names a curated
// environment resolves to the Python and packages of Azure's definition.
func TestCuratedEnvironmentReferences(t *testing.T) {
	r, _ := curatedResolver(t)
	for _, c := range []struct {
		env, ref, python, pip string
	}{
		{"azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest", "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33", "3.9", "scikit-learn~=1.0.0"},
		{"azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:1", "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:1", "3.9", "scikit-learn~=1.0.0"},
		{"AzureML-sklearn-1.0-ubuntu20.04-py38-cpu", "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33", "3.9", "scikit-learn~=1.0.0"},
		{"azureml:AzureML-sklearn-0.24-ubuntu18.04-py37-cpu:5", "AzureML-sklearn-0.24-ubuntu18.04-py37-cpu:5", "3.7", "scikit-learn==0.24.1"},
		{"azureml://registries/azureml/environments/sklearn-1.5/labels/latest", "sklearn-1.5:54", "3.10", "scikit-learn~=1.5.0"},
		{"azureml://registries/azureml/environments/sklearn-1.5/versions/14", "sklearn-1.5:14", "3.10", "scikit-learn~=1.5.0"},
		{"azureml:AzureML-lightgbm-3.3-ubuntu20.04-py38-cpu@latest", "AzureML-lightgbm-3.3-ubuntu20.04-py38-cpu:1", "3.10", "lightgbm>=4.6.0"},
		{"azureml:AzureML-minimal-ubuntu20.04-py38-cpu-inference@latest", "AzureML-minimal-ubuntu20.04-py38-cpu-inference:1", "3.8", "azureml-inference-server-http"},
		{"AzureML-tensorflow-2.12-cuda11@latest", "AzureML-tensorflow-2.12-cuda11:1", "3.8", "onnxruntime~=1.9.0"},
	} {
		env, err := jobEnvironment(t, r, c.env)
		if err != nil {
			t.Errorf("%s: %v", c.env, err)
			continue
		}
		if env.Ref != c.ref || env.PythonVersion != c.python || !slices.Contains(env.Pip, c.pip) {
			t.Errorf("%s: ref %s, python %s, pip %v; want %s, %s, %s", c.env, env.Ref, env.PythonVersion, env.Pip, c.ref, c.python, c.pip)
		}
		if !strings.Contains(env.Note, "Azure's curated environment") || env.Image == "" {
			t.Errorf("%s: note %q, image %q", c.env, env.Note, env.Image)
		}
	}

	sk, _ := jobEnvironment(t, r, "azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest")
	for _, want := range []string{"pandas~=1.3.0", "numpy~=1.22.0"} {
		if !slices.Contains(sk.Conda, want) {
			t.Errorf("sklearn-1.0 conda %v lacks %s", sk.Conda, want)
		}
	}
	tf, _ := jobEnvironment(t, r, "AzureML-tensorflow-2.12-cuda11@latest")
	if !strings.Contains(tf.Note, "CUDA image") || slices.ContainsFunc(tf.Pip, func(p string) bool { return strings.Contains(p, "-gpu") }) {
		t.Errorf("tensorflow on a CPU: note %q, pip %v", tf.Note, tf.Pip)
	}
}

// TestCuratedNameNotInTheCatalog: a curated-looking name the catalog does
// not hold is refused, with how to register a stand-in; once registered,
// the stand-in is what the name means, in the registry form too.
func TestCuratedNameNotInTheCatalog(t *testing.T) {
	r, db := curatedResolver(t)
	const name = "AzureML-sklearn-9.9-ubuntu30.04-py312-cpu"
	_, err := jobEnvironment(t, r, "azureml:"+name+"@latest")
	if wharf.ErrorCode(err) != wharf.EINVALID {
		t.Fatalf("unknown curated environment: %v", err)
	}
	msg := wharf.ErrorMessage(err)
	for _, want := range []string{"azureml:" + name + "@latest", "wharf ml environment create --name " + name + " --version 1 --image",
		"--conda-file", "--registry-name azureml"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
	if _, err := jobEnvironment(t, r, "azureml://registries/azureml/environments/sklearn-9.9/versions/3"); !strings.Contains(wharf.ErrorMessage(err), "--name sklearn-9.9 --version 3") {
		t.Errorf("unknown registry environment: %v", err)
	}
	if _, err := jobEnvironment(t, r, "azureml://registries/contoso/environments/sklearn-1.5/versions/1"); wharf.ErrorCode(err) != wharf.EINVALID {
		t.Errorf("another registry: %v", err)
	}
	if _, err := jobEnvironment(t, r, "azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:v2"); wharf.ErrorCode(err) != wharf.EINVALID {
		t.Errorf("a version Azure never published: %v", err)
	}

	// A stand-in for it, and one for a name the catalog holds: the
	// workspace's own comes first.
	for _, n := range []string{name, "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu"} {
		spec, _ := json.Marshal(resolve.Environment{Image: "python:3.11", PythonVersion: "3.11", Pip: []string{"scikit-learn==1.4.2"},
			Conda: &jobspec.CondaSpec{Dependencies: []string{"python=3.11"}, Pip: []string{"scikit-learn==1.4.2"}}})
		if err := db.CreateAsset(t.Context(), &wharf.Asset{Workspace: "ws", Kind: wharf.AssetEnvironment, Name: n, Version: "1", Spec: spec}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range []string{"azureml:" + name + "@latest", "azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:1",
		"azureml://registries/azureml/environments/AzureML-sklearn-1.0-ubuntu20.04-py38-cpu/versions/1"} {
		env, err := jobEnvironment(t, r, ref)
		if err != nil || !slices.Equal(env.Pip, []string{"scikit-learn==1.4.2"}) || env.Note != "" {
			t.Errorf("%s with a stand-in: %+v %v", ref, env, err)
		}
	}
	// Versions the workspace does not hold still come from the catalog.
	if env, err := jobEnvironment(t, r, "azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33"); err != nil || !slices.Contains(env.Pip, "scikit-learn~=1.0.0") {
		t.Errorf("catalog version beside a stand-in: %+v %v", env, err)
	}
}
