package curated

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCatalogIsComplete: every entry says where it was read, which
// Python it pins (the same as its conda python= entry, where it has one),
// and what it installs; names are unique.
func TestCatalogIsComplete(t *testing.T) {
	all := All()
	if len(all) < 12 {
		t.Fatalf("catalog has %d environments", len(all))
	}
	pythonPin := regexp.MustCompile(`^python=(\d+\.\d+)`)
	for _, e := range all {
		if e.Name == "" || e.Version == "" || e.Description == "" || e.Image == "" || len(e.Sources) == 0 || len(e.Pip) == 0 {
			t.Errorf("%s: incomplete entry %+v", e.Name, e)
		}
		if !regexp.MustCompile(`^3\.\d+$`).MatchString(e.Python) {
			t.Errorf("%s: python %q", e.Name, e.Python)
		}
		for _, d := range e.Conda {
			if m := pythonPin.FindStringSubmatch(d); m != nil && m[1] != e.Python {
				t.Errorf("%s: python %s, conda pins %s", e.Name, e.Python, d)
			}
		}
		for _, s := range e.Sources {
			if s.Repository == "" && !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(s.Commit) {
				t.Errorf("%s: source %s has no commit", e.Name, s.Path)
			}
		}
		for _, p := range e.Pip {
			if strings.Contains(p, "{{") || strings.HasPrefix(p, "#") {
				t.Errorf("%s: pip line %q is not a requirement", e.Name, p)
			}
		}
	}
}

// TestFindByEveryName: an environment answers to its registry name, its
// aliases, and any of them with or without the AzureML- prefix, in any
// case; the name comes back as the catalog spells it.
func TestFindByEveryName(t *testing.T) {
	for _, c := range []struct{ ask, want, spelled string }{
		{"sklearn-1.5", "sklearn-1.5", "sklearn-1.5"},
		{"AzureML-sklearn-1.5", "sklearn-1.5", "AzureML-sklearn-1.5"},
		{"AzureML-sklearn-1.0-ubuntu20.04-py38-cpu", "sklearn-1.0", "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu"},
		{"sklearn-1.0", "sklearn-1.0", "sklearn-1.0"},
		{"AzureML-acpt-pytorch-2.2-cuda12.1", "acpt-pytorch-2.2-cuda12.1", "AzureML-acpt-pytorch-2.2-cuda12.1"},
		{"azureml-ACPT-pytorch-1.13-py38-cuda11.7-gpu", "acpt-pytorch-1.13-cuda11.7", "AzureML-ACPT-pytorch-1.13-py38-cuda11.7-gpu"},
		{"AzureML-sklearn-0.24-ubuntu18.04-py37-cpu", "AzureML-sklearn-0.24-ubuntu18.04-py37-cpu", "AzureML-sklearn-0.24-ubuntu18.04-py37-cpu"},
		{"AzureML-tensorflow-2.16-cuda11", "tensorflow-2.16-cuda11", "AzureML-tensorflow-2.16-cuda11"},
		{"tensorflow-2.16-cuda11", "tensorflow-2.16-cuda11", "tensorflow-2.16-cuda11"},
		{"AzureML-ACPT-pytorch-1.12-py39-cuda11.6-gpu", "acpt-pytorch-1.12-py39-cuda11.6", "AzureML-ACPT-pytorch-1.12-py39-cuda11.6-gpu"},
		{"acpt-pytorch-1.12-py39-cuda11.6", "acpt-pytorch-1.12-py39-cuda11.6", "acpt-pytorch-1.12-py39-cuda11.6"},
		{"AzureML-pytorch-1.10-ubuntu18.04-py38-cuda11-gpu", "AzureML-pytorch-1.10-ubuntu18.04-py38-cuda11-gpu", "AzureML-pytorch-1.10-ubuntu18.04-py38-cuda11-gpu"},
	} {
		e, spelled, ok := Find(c.ask)
		if !ok || e.Name != c.want || spelled != c.spelled {
			t.Errorf("Find(%q) = %v %q %v, want %s spelled %s", c.ask, e, spelled, ok, c.want, c.spelled)
		}
	}
	for _, missing := range []string{"AzureML-sklearn-9.9", "sklearn", "AzureML-", ""} {
		if e, _, ok := Find(missing); ok {
			t.Errorf("Find(%q) = %s", missing, e.Name)
		}
	}
}

func TestResolveVersion(t *testing.T) {
	e, _, _ := Find("sklearn-1.5")
	for _, c := range []struct {
		version, label, want string
		ok                   bool
	}{
		{"", "", e.Version, true},
		{"", "latest", e.Version, true},
		{"14", "", "14", true},
		{"1", "", "1", true},
		{"0", "", "", false},
		{"v2", "", "", false},
		{"", "stable", "", false},
	} {
		got, ok := e.ResolveVersion(c.version, c.label)
		if got != c.want || ok != c.ok {
			t.Errorf("ResolveVersion(%q, %q) = %q %v, want %q %v", c.version, c.label, got, ok, c.want, c.ok)
		}
	}
}

// TestGPUDefinitionsGetCPUPackages: a CUDA definition installs the CPU
// build of what has one and leaves out what has none, and says so; a CPU
// definition is installed as written.
func TestGPUDefinitionsGetCPUPackages(t *testing.T) {
	tf, _, _ := Find("tensorflow-2.12-cuda11")
	_, pip, changes := tf.CPU()
	if !slices.Contains(pip, "onnxruntime~=1.9.0") || !slices.Contains(pip, "tensorflow~=2.12.0") {
		t.Errorf("tensorflow-2.12-cuda11 pip: %v", pip)
	}
	for _, p := range pip {
		if strings.Contains(p, "-gpu") || strings.HasPrefix(p, "horovod") {
			t.Errorf("tensorflow-2.12-cuda11 keeps %s", p)
		}
	}
	if len(changes) != 2 {
		t.Errorf("changes: %+v", changes)
	}
	note := tf.Note("azureml:AzureML-tensorflow-2.12-cuda11@latest")
	for _, want := range []string{"azureml:AzureML-tensorflow-2.12-cuda11@latest", "CUDA image", tf.Image,
		"onnxruntime-gpu~=1.9.0 -> onnxruntime~=1.9.0", "left out: horovod[tensorflow]"} {
		if !strings.Contains(note, want) {
			t.Errorf("note lacks %q: %s", want, note)
		}
	}

	tf16, _, _ := Find("tensorflow-2.16-cuda12")
	if _, pip, _ := tf16.CPU(); !slices.Contains(pip, "tensorflow==2.16.2") || slices.Contains(pip, "tensorflow[and-cuda]==2.16.2") {
		t.Errorf("tensorflow-2.16-cuda12 pip: %v", pip)
	}
	pt, _, _ := Find("AzureML-pytorch-1.9-ubuntu18.04-py37-cuda11-gpu")
	conda, _, _ := pt.CPU()
	if slices.Contains(conda, "cudatoolkit=11.1.1") || !slices.Contains(conda, "pytorch=1.9.0") {
		t.Errorf("pytorch-1.9 conda: %v", conda)
	}

	sk, _, _ := Find("sklearn-1.0")
	conda, pip, changes = sk.CPU()
	if !slices.Equal(pip, sk.Pip) || !slices.Equal(conda, sk.Conda) || changes != nil {
		t.Errorf("a CPU definition changed: %v %v %v", conda, pip, changes)
	}
	if note := sk.Note("x"); strings.Contains(note, "CUDA") || !strings.Contains(note, "Python 3.9") {
		t.Errorf("sklearn-1.0 note: %s", note)
	}
	for _, e := range All() {
		if !e.GPU {
			continue
		}
		_, pip, _ := e.CPU()
		for _, p := range pip {
			if strings.Contains(p, "-gpu") || strings.Contains(p, "and-cuda") || strings.HasPrefix(p, "horovod") {
				t.Errorf("%s: CPU packages keep %s", e.Name, p)
			}
		}
	}
}

// TestEnvironmentsSamplesName: environments Azure's samples name resolve
// to their own definition, with its Python and the framework that
// identifies it, as Wharf installs it on a CPU.
func TestEnvironmentsSamplesName(t *testing.T) {
	for _, c := range []struct {
		ask, python, condaPkg, pipPkg string
	}{
		{ask: "azureml:AzureML-tensorflow-2.16-cuda11", python: "3.11", pipPkg: "tensorflow==2.16.2"},
		{ask: "AzureML-ACPT-pytorch-1.12-py39-cuda11.6-gpu", python: "3.9", pipPkg: "torch==1.12.1"},
		{ask: "AzureML-pytorch-1.10-ubuntu18.04-py38-cuda11-gpu", python: "3.8", condaPkg: "pytorch=1.10.0", pipPkg: "tensorflow==2.6.0"},
	} {
		e, _, ok := Find(strings.TrimPrefix(c.ask, "azureml:"))
		if !ok {
			t.Errorf("Find(%q): not in the catalog", c.ask)
			continue
		}
		if e.Python != c.python {
			t.Errorf("%s: python %s, want %s", c.ask, e.Python, c.python)
		}
		conda, pip, _ := e.CPU()
		if c.condaPkg != "" && !slices.Contains(conda, c.condaPkg) {
			t.Errorf("%s: conda %v lacks %s", c.ask, conda, c.condaPkg)
		}
		if !slices.Contains(pip, c.pipPkg) {
			t.Errorf("%s: pip %v lacks %s", c.ask, pip, c.pipPkg)
		}
	}

	// tensorflow-2.16-cuda11 is Azure's own definition, not the cuda12 one
	// under another name.
	cuda11, _, _ := Find("tensorflow-2.16-cuda11")
	cuda12, _, _ := Find("tensorflow-2.16-cuda12")
	if cuda11.Name == cuda12.Name || cuda11.Python == cuda12.Python {
		t.Errorf("tensorflow-2.16-cuda11 resolves like tensorflow-2.16-cuda12: %s python %s", cuda11.Name, cuda11.Python)
	}
	_, pip, changes := cuda11.CPU()
	if slices.Contains(pip, "tensorflow[and-cuda]==2.16.2") || len(changes) != 2 {
		t.Errorf("tensorflow-2.16-cuda11 CPU packages: %v, changes %+v", pip, changes)
	}
}
