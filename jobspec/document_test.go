package jobspec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfml/wharf/yamlfile"
)

// recordingUploader stands in for the CLI's upload over HTTP (which the
// command-line tests exercise end to end): it names each path by a fixed
// digest and remembers what it was asked for.
type recordingUploader struct{ paths []string }

func (u *recordingUploader) Upload(path, what string) (string, error) {
	u.paths = append(u.paths, path)
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	uri := "azureml://datastores/workspaceblobstore/paths/LocalUpload/" + strings.Repeat("ab", 32) + "/" + filepath.Base(path)
	if st.IsDir() {
		uri += "/"
	}
	return uri, nil
}

func (u *recordingUploader) UploadCode(path string, includes []string) (string, error) {
	u.paths = append(u.paths, append([]string{path}, includes...)...)
	return "azureml://datastores/workspaceblobstore/paths/LocalUpload/" + strings.Repeat("cd", 32) + "/" + filepath.Base(path) + "/", nil
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestJobDocumentInlinesFilesAndUploadsLocalPaths builds the document of
// a pipeline whose component, conda file, code and data are local: the
// document must hold none of their paths, keep step order, and parse on
// the server side (no local paths) to the same plan.
func TestJobDocumentInlinesFilesAndUploadsLocalPaths(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"src/train.py": "print(1)\n",
		"data/in.csv":  "a,b\n1,2\n",
		"conda.yml":    "name: env\ndependencies:\n  - python=3.11\n  - pip:\n    - numpy\n",
		"components/train.yml": `$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
name: train
type: command
code: ../src
environment:
  image: python:3.11
  conda_file: ../conda.yml
inputs:
  data: {type: uri_file}
  alpha: {type: number, default: 0.5}
outputs:
  model: {type: uri_folder}
command: python train.py ${{inputs.data}} ${{inputs.alpha}} ${{outputs.model}}
`,
		"project/pipeline.yml": `$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
type: pipeline
settings:
  default_compute: azureml:cpu
inputs:
  raw:
    type: uri_file
    path: ../data/in.csv
jobs:
  zeta:
    component: file:../components/train.yml
    inputs:
      data: ${{parent.inputs.raw}}
      alpha: .25
  alpha:
    type: command
    code: ../src
    environment:
      image: python:3.11
    command: echo ${{inputs.m}}
    inputs:
      m: ${{parent.jobs.zeta.outputs.model}}
`,
	})
	up := &recordingUploader{}
	doc, err := JobDocument(filepath.Join(dir, "project", "pipeline.yml"), []string{"settings.force_rerun=true"}, up)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc.JSON)
	if strings.Contains(text, dir) || strings.Contains(text, "../") || strings.Contains(text, "$schema\":\"https://azuremlschemas.azureedge.net/latest/commandComponent") {
		t.Errorf("the document still names local files or the component's schema:\n%s", text)
	}
	// Steps keep the file's order, since it breaks ties in run order.
	if strings.Index(text, `"zeta"`) > strings.Index(text, `"alpha":{"type":"command"`) {
		t.Errorf("steps reordered:\n%s", text)
	}
	for _, want := range []string{`"force_rerun":true`, `"experiment_name":"project"`, `"alpha":.25`, `"numpy"`} {
		if !strings.Contains(text, want) && !(want == `"alpha":.25` && strings.Contains(text, `"alpha":0.25`)) {
			t.Errorf("document lacks %s:\n%s", want, text)
		}
	}
	if len(up.paths) != 3 {
		t.Errorf("uploads %v, want code (twice named, uploaded per name), data", up.paths)
	}
	if !json.Valid(doc.JSON) {
		t.Fatalf("not JSON: %s", text)
	}
	r := &MapResolver{}
	plan, err := ParseJobDocument(doc.JSON, r)
	if err != nil {
		t.Fatalf("the server cannot read the document: %v\n%s", err, text)
	}
	if len(plan.Steps) != 2 || plan.Steps[0].Name != "zeta" || plan.ExperimentName != "project" {
		t.Fatalf("plan: %d steps, first %s, experiment %q", len(plan.Steps), plan.Steps[0].Name, plan.ExperimentName)
	}
	train := plan.Step("zeta").Component
	if train.CodeURI == nil || !strings.HasSuffix(train.CodeURI.Path, "/src/") || train.Environment.Inline.Conda == nil {
		t.Errorf("component code %+v, conda %+v", train.CodeURI, train.Environment.Inline)
	}
	if got, _ := plan.Step("zeta").Inputs["alpha"].Text(); got != "0.25" && got != ".25" {
		t.Errorf("alpha = %q", got)
	}

	// A problem the server names by field path points into the file
	// that holds it: the component's code line, in the component file.
	file, line, _ := doc.Locate("jobs.zeta.component.code")
	if filepath.Base(file) != "train.yml" || line != 4 {
		t.Errorf("jobs.zeta.component.code located at %s:%d, want train.yml:4", file, line)
	}
	file, line, _ = doc.Locate("inputs.raw.path")
	if filepath.Base(file) != "pipeline.yml" || line != 8 {
		t.Errorf("inputs.raw.path located at %s:%d, want pipeline.yml:8", file, line)
	}
}

// TestJobDocumentRefusesLocalPaths: a document sent to the server cannot
// name a local path anywhere one could be written, and says which field.
func TestJobDocumentRefusesLocalPaths(t *testing.T) {
	for field, doc := range map[string]string{
		"code":                   `{"command":"true","code":"./src","environment":{"image":"x"},"compute":"c"}`,
		"inputs.d.path":          `{"command":"true","environment":{"image":"x"},"compute":"c","inputs":{"d":{"type":"uri_file","path":"data.csv"}}}`,
		"environment.conda_file": `{"command":"true","environment":{"image":"x","conda_file":"conda.yml"},"compute":"c"}`,
		"jobs.a.component":       `{"type":"pipeline","jobs":{"a":{"component":"file:a.yml"}}}`,
	} {
		_, err := ParseJobDocument([]byte(doc), &MapResolver{})
		var list *yamlfile.ErrorList
		if err == nil || !errors.As(err, &list) {
			t.Errorf("%s: %v", field, err)
			continue
		}
		found := false
		for _, e := range list.Errors {
			if e.Field == field && strings.Contains(e.Msg, "local path") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no local-path problem for the field in %v", field, err)
		}
	}
}

// TestShownJobFieldsAreIgnored: a file saved from job show holds the
// server's fields; reading it ignores them, and building its document
// leaves out its name, which belongs to the job it was shown from.
func TestShownJobFieldsAreIgnored(t *testing.T) {
	dir := writeFiles(t, map[string]string{"job.yml": `name: happy_fox
status: Completed
creation_context: {created_at: "2026-01-01T00:00:00Z"}
services: {Studio: {endpoint: x}}
resolution: {inputs: {}}
command: echo hi
environment: {image: python:3.11}
compute: azureml:cpu
`})
	if _, err := LoadJob(filepath.Join(dir, "job.yml"), nil, nil); err != nil {
		t.Fatalf("a shown job does not load: %v", err)
	}
	doc, err := JobDocument(filepath.Join(dir, "job.yml"), nil, &recordingUploader{})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Name != "" || doc.ShownName != "happy_fox" || len(doc.Shown) != 4 || strings.Contains(string(doc.JSON), "Completed") {
		t.Errorf("name %q shown %q %v: %s", doc.Name, doc.ShownName, doc.Shown, doc.JSON)
	}
}

// TestScheduleCreateJobWithOverrides reads the schedule form
// create_job: {job: ./x.yml, inputs: ..., settings: ...}: the job file
// with the schedule's values put over it, in the plan and in the document.
func TestScheduleCreateJobWithOverrides(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"job.yml": `type: pipeline
settings: {default_compute: azureml:cpu}
inputs:
  greeting: hello
  target: world
jobs:
  say:
    type: command
    command: echo ${{inputs.g}} ${{inputs.t}}
    environment: {image: python:3.11}
    inputs:
      g: ${{parent.inputs.greeting}}
      t: ${{parent.inputs.target}}
`,
		"schedule.yml": `name: nightly
trigger: {type: cron, expression: "0 2 * * *"}
create_job:
  job: ./job.yml
  inputs:
    target: everyone
  settings:
    force_rerun: true
`,
	})
	sc, err := LoadSchedule(filepath.Join(dir, "schedule.yml"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := LiteralText(*sc.Job.Inputs["target"].Literal); v != "everyone" || LiteralText(*sc.Job.Inputs["greeting"].Literal) != "hello" || !sc.Job.Settings.ForceRerun {
		t.Errorf("overrides not applied: target %q, force_rerun %v", v, sc.Job.Settings.ForceRerun)
	}
	doc, err := ScheduleJobDocument(filepath.Join(dir, "schedule.yml"), nil, &recordingUploader{})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(doc.JSON); !strings.Contains(s, `"target":"everyone"`) || !strings.Contains(s, `"force_rerun":true`) || !strings.Contains(s, `"default_compute"`) {
		t.Errorf("document: %s", s)
	}
}

// TestFileBoundToFolderInput: Azure passes a uri_file bound to a
// uri_folder component input as the folder that holds it; the reverse
// stays an error.
func TestFileBoundToFolderInput(t *testing.T) {
	pipeline := func(parentType string, compType string) string {
		return `{"type":"pipeline","settings":{"default_compute":"azureml:cpu"},
"inputs":{"raw":{"type":"` + parentType + `","path":"azureml:d:1"}},
"jobs":{"a":{"component":{"command":"ls ${{inputs.data}}","environment":{"image":"x"},
"inputs":{"data":{"type":"` + compType + `"}}},"inputs":{"data":"${{parent.inputs.raw}}"}}}}`
	}
	r := &MapResolver{}
	r.AddAsset(AssetData, "d", "1")
	plan, err := ParseJobDocument([]byte(pipeline(TypeURIFile, TypeURIFolder)), r)
	if err != nil {
		t.Fatal(err)
	}
	if b := plan.Step("a").Inputs["data"]; b.Type != TypeURIFolder {
		t.Errorf("binding type %q, want uri_folder", b.Type)
	}
	if _, err := ParseJobDocument([]byte(pipeline(TypeURIFolder, TypeURIFile)), r); err == nil || !strings.Contains(err.Error(), "type mismatch") {
		t.Errorf("a folder bound to a file input: %v", err)
	}
}
