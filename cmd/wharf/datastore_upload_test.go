package main

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/internal/storagetest"
)

// containerWorkspace makes the workspace ws whose default datastore,
// workspaceblobstore, is the container or bucket called name in the
// emulators (typ azure_blob: Azurite, s3: moto), defined by Azure's YAML.
func containerWorkspace(t *testing.T, e *cliEnv, es emulators, dir, ws, typ, name string) {
	t.Helper()
	e.ok("ml", "workspace", "create", "-n", ws)
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", ws)
	yml := "name: workspaceblobstore\ntype: azure_blob\naccount_name: " + storagetest.AzuriteAccount + "\ncontainer_name: " + name + "\nendpoint: " +
		es.azurite + "\ncredentials:\n  account_key: " + storagetest.AzuriteKey + "\n"
	if typ == wharf.DatastoreS3 {
		yml = "name: workspaceblobstore\ntype: s3\nbucket: " + name + "\nendpoint_url: " + es.moto + "\nregion: " + storagetest.MotoRegion +
			"\npath_style: true\ncredentials:\n  access_key_id: " + storagetest.MotoAccessKey + "\n  secret_access_key: " + storagetest.MotoSecretKey + "\n"
	}
	e.ok("ml", "datastore", "create", "--file", writeFile(t, dir, ws+"-ds.yml", yml), "-w", ws)
	if got := e.ok("ml", "datastore", "show", "-n", "workspaceblobstore", "-w", ws, "--query", "[type, is_default]", "-o", "tsv"); strings.Join(strings.Fields(got), " ") != typ+" true" {
		t.Fatalf("%s: workspaceblobstore after datastore create: %q, want %s and still the default", typ, got, typ)
	}
}

// TestJobUploadsLandInTheContainer: with the workspace's default datastore
// an Azure Blob container (Azurite) and, separately, an S3 bucket (moto),
// a job's local code folder and local input file are written into it
// under LocalUpload/<hash>/<name>, where the job document says they are,
// byte for byte; the job reads them; submitting the same files again
// writes nothing new. A model created from a local folder lands there too,
// under LocalUpload/<hash>/<folder>, which its datastore_path names, and a
// component's and a batch deployment's code folders at the code_path each
// keeps.
func TestLocalUploadsLandInTheContainer(t *testing.T) {
	es := startObjectStorage(t, "uploads")
	tools := toolsFor(t, es, "uploads")
	e := newCLIEnv(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, src, "hello.txt", "hello from the code\n")
	writeFile(t, filepath.Join(src, "lib"), "util.sh", "echo util\n")
	writeFile(t, dir, "rows.csv", "a,1\nb,2\n")
	job := writeFile(t, dir, "job.yml", `command: cat hello.txt ${{inputs.rows}} > ${{outputs.out}}/both.txt
code: src
environment: {image: python:3.11}
compute: azureml:cpu-cluster
inputs:
  rows: {type: uri_file, path: rows.csv}
outputs:
  out: {type: uri_folder}
`)
	greet := filepath.Join(dir, "greet")
	if err := os.MkdirAll(greet, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, greet, "greet.sh", "echo greetings\n")
	score := filepath.Join(dir, "score")
	if err := os.MkdirAll(score, 0o755); err != nil {
		t.Fatal(err)
	}
	const scoreCode = "def init():\n    pass\n\ndef run(mini_batch):\n    return list(mini_batch)\n"
	writeFile(t, score, "score.py", scoreCode)
	comp := writeFile(t, dir, "component.yml", `name: greet
version: "1"
type: command
code: greet
command: sh greet.sh
environment: {image: python:3.11}
`)
	for _, typ := range []string{wharf.DatastoreAzureBlob, wharf.DatastoreS3} {
		tool := tools[typ]
		ws := "up" + strings.ReplaceAll(typ, "_", "")
		containerWorkspace(t, e, es, dir, ws, typ, "uploads")
		name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", ws, "--query", "name", "-o", "tsv"))
		if got := e.waitJob(ws, name); got != "Completed" {
			t.Fatalf("%s: job %s: %s", typ, name, got)
		}
		listed := tool.list("LocalUpload/")
		byName := map[string]string{}
		hash := regexp.MustCompile(`^LocalUpload/[0-9a-f]{64}/`)
		for key, body := range listed {
			if !hash.MatchString(key) {
				t.Errorf("%s: %s is not below LocalUpload/<sha256 hex>/", typ, key)
				continue
			}
			byName[hash.ReplaceAllString(key, "")] = body
		}
		want := map[string]string{"src/hello.txt": "hello from the code\n", "src/lib/util.sh": "echo util\n", "rows.csv": "a,1\nb,2\n"}
		if len(byName) != len(want) {
			t.Errorf("%s: the container holds %v under LocalUpload/, want %v", typ, byName, want)
		}
		for k, v := range want {
			if byName[k] != v {
				t.Errorf("%s: LocalUpload/<hash>/%s holds %q, want %q", typ, k, byName[k], v)
			}
		}
		// The job document names the paths the container holds.
		doc := e.ok("ml", "job", "show", "-n", name, "-w", ws, "-o", "json")
		for key := range listed {
			if strings.HasSuffix(key, "/rows.csv") && !strings.Contains(doc, "azureml://datastores/workspaceblobstore/paths/"+key) {
				t.Errorf("%s: job show does not name %s:\n%s", typ, key, doc)
			}
		}
		dl := filepath.Join(dir, ws+"-out")
		e.ok("ml", "job", "download", "-n", name, "--output-name", "out", "--download-path", dl, "-w", ws)
		if b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "both.txt")); err != nil || string(b) != "hello from the code\na,1\nb,2\n" {
			t.Errorf("%s: the job wrote %q (%v)", typ, b, err)
		}

		// The same files again: the objects written are not written anew.
		before := tool.versions("LocalUpload/")
		e.ok("ml", "job", "create", "--file", job, "-w", ws, "--query", "name", "-o", "tsv")
		if after := tool.versions("LocalUpload/"); !maps.Equal(before, after) {
			t.Errorf("%s: submitting the same files again rewrote them: versions %v, then %v", typ, before, after)
		}

		// A model from a local folder lands there too, and its
		// datastore_path says where.
		e.ok("ml", "model", "create", "--name", "fare", "--path", src, "-w", ws)
		at := strings.TrimSpace(e.ok("ml", "model", "show", "-n", "fare", "--version", "1", "-w", ws, "--query", "datastore_path", "-o", "tsv"))
		p, ok := strings.CutPrefix(at, "azureml://datastores/workspaceblobstore/paths/LocalUpload/")
		if !ok || !strings.HasSuffix(p, "/src") {
			t.Fatalf("%s: the model's datastore_path is %q, want azureml://datastores/workspaceblobstore/paths/LocalUpload/<hash>/src", typ, at)
		}
		model := tool.list("LocalUpload/" + p + "/")
		if len(model) != 2 || model["LocalUpload/"+p+"/hello.txt"] != "hello from the code\n" || model["LocalUpload/"+p+"/lib/util.sh"] != "echo util\n" {
			t.Errorf("%s: the container holds %v at the model's path", typ, model)
		}

		// So does a component's code, at the code_path it keeps.
		e.ok("ml", "component", "create", "--file", comp, "-w", ws)
		shown := e.ok("ml", "component", "show", "-n", "greet", "--version", "1", "-w", ws, "-o", "json")
		codePath := regexp.MustCompile(`azureml://datastores/workspaceblobstore/paths/(LocalUpload/[0-9a-f]{64}/greet)/`).FindStringSubmatch(shown)
		if codePath == nil {
			t.Fatalf("%s: component show names no code path in the container:\n%s", typ, shown)
		}
		if got := tool.list(codePath[1] + "/"); len(got) != 1 || got[codePath[1]+"/greet.sh"] != "echo greetings\n" {
			t.Errorf("%s: the container holds %v at the component's code path", typ, got)
		}

		// And a batch deployment's scoring code.
		e.ok("ml", "batch-endpoint", "create", "-f", writeFile(t, dir, "ep.yml", "name: score-"+ws+"\n"), "-w", ws)
		e.ok("ml", "batch-deployment", "create", "-f", writeFile(t, dir, "dep.yml", `name: dep
endpoint_name: score-`+ws+`
model: azureml:fare:1
code_configuration: {code: score, scoring_script: score.py}
compute: azureml:cpu-cluster
`), "-w", ws)
		shown = e.ok("ml", "batch-deployment", "show", "-n", "dep", "-e", "score-"+ws, "-w", ws, "-o", "json")
		codePath = regexp.MustCompile(`azureml://datastores/workspaceblobstore/paths/(LocalUpload/[0-9a-f]{64}/score)/`).FindStringSubmatch(shown)
		if codePath == nil {
			t.Fatalf("%s: batch-deployment show names no code path in the container:\n%s", typ, shown)
		}
		if got := tool.list(codePath[1] + "/"); len(got) != 1 || got[codePath[1]+"/score.py"] != scoreCode {
			t.Errorf("%s: the container holds %v at the deployment's code path", typ, got)
		}
	}
}

// TestLocalUploadErrorsNameTheDatastore: when the default datastore's
// container is gone, a job with local code and a model from a local
// folder are refused naming the datastore and what is missing (the job
// its file and field too), and neither a job nor a model version is
// made.
func TestLocalUploadErrorsNameTheDatastore(t *testing.T) {
	es := startObjectStorage(t, "gone")
	e := newCLIEnv(t)
	dir := t.TempDir()
	containerWorkspace(t, e, es, dir, "dev", wharf.DatastoreAzureBlob, "gone")
	if _, err := es.az.DeleteContainer(t.Context(), "gone", nil); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, src, "main.sh", "echo hi\n")
	job := writeFile(t, dir, "job.yml", `command: sh main.sh
code: src
environment: {image: python:3.11}
compute: azureml:cpu-cluster
`)
	const says = `datastore dev/workspaceblobstore: `
	_, stderr, code := e.wharf("ml", "job", "create", "--file", job, "-w", "dev")
	if code == 0 || !strings.Contains(stderr, says) || !strings.Contains(stderr, `container "gone" does not exist`) || !strings.Contains(stderr, job+":") {
		t.Errorf("job create exited %d: %s; want it refused naming %s, the datastore and the missing container", code, stderr, job)
	}
	if got := strings.TrimSpace(e.ok("ml", "job", "list", "-w", "dev", "--query", "length(@)", "-o", "tsv")); got != "0" {
		t.Errorf("after the refused submission the workspace has %s jobs", got)
	}
	_, stderr, code = e.wharf("ml", "model", "create", "--name", "m", "--path", src, "-w", "dev")
	if code == 0 || !strings.Contains(stderr, says) || !strings.Contains(stderr, `container "gone" does not exist`) || strings.Contains(stderr, "NotFound") {
		t.Errorf("model create exited %d: %s; want it refused naming the datastore and the missing container, not as a model not found", code, stderr)
	}
	if _, stderr, code := e.wharf("ml", "model", "show", "-n", "m", "--version", "1", "-w", "dev"); code == 0 {
		t.Errorf("the refused model was registered: %s", stderr)
	}
}
