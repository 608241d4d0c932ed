package arm_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/http/servertest"
	"github.com/wharfml/wharf/snapshot"
)

// newSDKPipelineServer is newSDKServer with a second compute, for a step
// that overrides its pipeline's.
func newSDKPipelineServer(t *testing.T) *sdkServer {
	t.Helper()
	s := newSDKServer(t)
	c := &wharf.Compute{Workspace: "ws1", Name: "cpu-small", MaxInstances: 1}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB.PutCompute(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return s
}

// runPipeline runs testdata/sdk_pipeline.py with the given steps.
func (s *sdkServer) runPipeline(t *testing.T, steps ...string) map[string]json.RawMessage {
	t.Helper()
	return s.runScript(t, s.env, "testdata/sdk_pipeline.py", steps...)
}

// apiJob is what the tests read of a job as Wharf's own API shows it.
type apiJob struct {
	Name, Type, Status, Step string
	DisplayName              string                     `json:"display_name"`
	ExperimentName           string                     `json:"experiment_name"`
	Outputs                  map[string]wharf.JobOutput `json:"outputs"`
}

// pipelineJSON is a pipeline job as Wharf's own API shows it, with its
// steps.
type pipelineJSON struct {
	apiJob
	Steps []*apiJob `json:"steps"`
}

// apiPipeline reads a pipeline job and its steps through Wharf's API, as
// `wharf ml job show` does.
func (s *sdkServer) apiPipeline(t *testing.T, name string) pipelineJSON {
	t.Helper()
	token := s.Principal("checker-"+name, [2]string{wharf.RoleReader, "/workspaces/ws1"})
	var p pipelineJSON
	apiGet(t, s.Server, token, "/api/v1/workspaces/ws1/jobs/"+name, &p)
	return p
}

// apiGet reads what Wharf's API answers at path into v.
func apiGet(t *testing.T, ts *servertest.Server, token, path string, v any) {
	t.Helper()
	st, body := bearerGet(t, ts, token, path)
	if err := json.Unmarshal(body, v); err != nil || st != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, st, err)
	}
}

// bearerGet answers a GET of path with token as its bearer.
func bearerGet(t *testing.T, ts *servertest.Server, token, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.HTTP.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// step is the pipeline's step of that name.
func (p pipelineJSON) step(t *testing.T, name string) *apiJob {
	t.Helper()
	for _, s := range p.Steps {
		if s.Step == name {
			return s
		}
	}
	t.Fatalf("pipeline %s has no step %q", p.Name, name)
	return nil
}

// outputFile reads one file of a job's output folder from the server's
// content store.
func (s *sdkServer) outputFile(t *testing.T, j *apiJob, output, file string) string {
	t.Helper()
	o, ok := j.Outputs[output]
	if !ok {
		t.Fatalf("job %s has no output %q: %+v", j.Name, output, j.Outputs)
	}
	dest := filepath.Join(t.TempDir(), "out")
	if err := snapshot.Materialize(t.Context(), o.Digest, s.Blobs, dest); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dest, file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSDKPipelineDSL submits a @dsl.pipeline through the SDK: a step built
// with command(...) on a compute of its own, a step loaded from a
// component file (both registered by the SDK as anonymous components), a
// registered component; a local file (uploaded), a literal and a data
// asset as the pipeline's inputs; the default datastore and
// continue_on_step_failure as settings. jobs.stream returns once it has
// completed, jobs.list(parent_job_name=) lists its steps, and each step's
// output is what the data it was handed makes: the second counts the rows
// the first kept, the third reads the second's count. The same pipeline
// again registers no new component; the anonymous ones are not listed.
func TestSDKPipelineDSL(t *testing.T) {
	s := newSDKPipelineServer(t)
	type child struct{ Name, DisplayName, Status, Compute string }
	got := decode[struct {
		Name, Type, Status, Experiment, Listed, Again string
		CreatedStatus                                 string `json:"created_status"`
		Children                                      []struct {
			Name, Status, Compute string
			DisplayName           string `json:"display_name"`
		}
		Components   []string
		Steps        []string
		StepComputes map[string]string `json:"step_computes"`
		Inputs       []string
	}](t, s.runPipeline(t, "dsl")["dsl"])
	if got.Type != "pipeline" || got.Status != "Completed" || got.Experiment != "sdk-pipelines" || got.Listed != "Completed" ||
		got.Again == "" || got.Again == got.Name {
		t.Errorf("pipeline: %+v", got)
	}
	var children []child
	for _, c := range got.Children {
		children = append(children, child{c.Name, c.DisplayName, c.Status, c.Compute})
	}
	want := []child{
		{got.Name + "_cleaned", "prep trips", "Completed", "cpu-small"},
		{got.Name + "_counted", "counted", "Completed", "cpu-cluster"},
		{got.Name + "_summary", "summary", "Completed", "cpu-cluster"},
	}
	if !slices.Equal(children, want) {
		t.Errorf("steps listed:\n got %+v\nwant %+v", children, want)
	}
	if !slices.Equal(got.Steps, []string{"cleaned", "counted", "summary"}) || got.StepComputes["cleaned"] != "cpu-small" ||
		!slices.Equal(got.Inputs, []string{"label", "reference", "trips"}) {
		t.Errorf("jobs.get: steps %v on %v, inputs %v", got.Steps, got.StepComputes, got.Inputs)
	}
	if !slices.Equal(got.Components, []string{"summarize_rows"}) {
		t.Errorf("components listed: %v, want the registered one only", got.Components)
	}

	p := s.apiPipeline(t, got.Name)
	if p.Type != wharf.JobTypePipeline || p.Status != wharf.JobCompleted || p.ExperimentName != "sdk-pipelines" || p.DisplayName != "trips_pipeline" {
		t.Errorf("pipeline through the API: %+v", p.apiJob)
	}
	if text := s.outputFile(t, p.step(t, "counted"), "counted", "count.txt"); text != "2 kept" {
		t.Errorf("count step wrote %q, want the 2 rows prep kept and the literal", text)
	}
	summary := p.step(t, "summary")
	if text := s.outputFile(t, summary, "summary", "summary.txt"); text != "2 kept of 3" {
		t.Errorf("summary step wrote %q, want the count and the data asset's 3 rows", text)
	}
	stored, err := s.DB.FindJob(context.Background(), "ws1", got.Name)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Settings map[string]any
		Inputs   map[string]json.RawMessage
		Jobs     map[string]struct {
			Component, Compute string
			Env                map[string]string `json:"environment_variables"`
			Limits             struct{ Timeout int }
			Resources          struct {
				InstanceCount int `json:"instance_count"`
			}
		}
	}
	if err := json.Unmarshal(stored.Document, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Settings["default_compute"] != "azureml:cpu-cluster" || doc.Settings["default_datastore"] != "azureml:workspaceblobstore" ||
		doc.Settings["continue_on_step_failure"] != false {
		t.Errorf("settings: %v", doc.Settings)
	}
	if string(doc.Inputs["label"]) != `"kept"` || !strings.Contains(string(doc.Inputs["reference"]), `"azureml:trip-reference:1"`) ||
		!strings.Contains(string(doc.Inputs["trips"]), "azureml://datastores/workspaceblobstore/paths/LocalUpload/") {
		t.Errorf("inputs: %s", doc.Inputs)
	}
	if !strings.HasPrefix(doc.Jobs["cleaned"].Component, "azureml:azureml_anonymous:") || doc.Jobs["cleaned"].Compute != "azureml:cpu-small" ||
		!strings.HasPrefix(doc.Jobs["counted"].Component, "azureml:azureml_anonymous:") || doc.Jobs["summary"].Component != "azureml:summarize_rows:1" {
		t.Errorf("steps: %+v", doc.Jobs)
	}
	if cleaned := doc.Jobs["cleaned"]; cleaned.Env["TRIPS_NOTE"] != "from the SDK" || cleaned.Limits.Timeout != 600 || cleaned.Resources.InstanceCount != 1 {
		t.Errorf("step cleaned: %+v", cleaned)
	}
	// Submitted twice, the two inline steps are two anonymous versions.
	anonymous, err := s.DB.ListAssets(context.Background(), "ws1", wharf.AssetComponent, wharf.AnonymousComponent)
	if err != nil || len(anonymous) != 2 {
		t.Errorf("anonymous components: %d %v", len(anonymous), err)
	}
}

// TestSDKPipelineLoadJob submits a pipeline YAML through load_job: a step
// written inline with its code folder, a step of a component file, a
// local file input and a literal; the second step's output is the
// pipeline's.
func TestSDKPipelineLoadJob(t *testing.T) {
	s := newSDKPipelineServer(t)
	got := decode[struct {
		Name, Status, Experiment string
		DisplayName              string `json:"display_name"`
		Children                 map[string]string
		Steps                    []string
	}](t, s.runPipeline(t, "load_job")["load_job"])
	if got.Status != "Completed" || got.DisplayName != "trips from a pipeline file" || got.Experiment != "sdk-yaml-pipelines" ||
		len(got.Children) != 2 || got.Children["prep"] != "Completed" || got.Children["count"] != "Completed" ||
		!slices.Equal(got.Steps, []string{"count", "prep"}) {
		t.Errorf("pipeline: %+v", got)
	}
	p := s.apiPipeline(t, got.Name)
	if text := s.outputFile(t, p.step(t, "count"), "counted", "count.txt"); text != "2 from-yaml" {
		t.Errorf("the count step's output, the pipeline's, holds %q", text)
	}
}

// TestSDKPipelineCancel cancels a running pipeline through jobs.begin_cancel,
// which returns once it has ended: its running step and the one waiting
// for it are canceled with it.
func TestSDKPipelineCancel(t *testing.T) {
	s := newSDKPipelineServer(t)
	got := decode[struct {
		Name, Status      string
		Running, Children []string
	}](t, s.runPipeline(t, "cancel")["cancel"])
	if len(got.Running) != 1 || got.Status != "Canceled" || !slices.Equal(got.Children, []string{"Canceled", "Canceled"}) {
		t.Errorf("cancel: %+v", got)
	}
	for _, step := range s.apiPipeline(t, got.Name).Steps {
		if step.Status != wharf.JobCanceled {
			t.Errorf("step %s: %s", step.Step, step.Status)
		}
	}
}

// TestSDKPipelineReaderRefused: a Reader of the workspace is refused a
// pipeline with 403 through azure-core's HttpResponseError, at the first
// write it needs: registering an inline step, or, when every step is a
// registered component, the job.
func TestSDKPipelineReaderRefused(t *testing.T) {
	s := newSDKPipelineServer(t)
	type refusal struct {
		Status        int
		Type, Message string
	}
	got := decode[map[string]refusal](t, s.runPipeline(t, "denied_pipeline")["denied_pipeline"])
	for what, action := range map[string]string{"inline": "workspaces/components/write", "registered": "workspaces/jobs/write"} {
		if r := got[what]; r.Status != http.StatusForbidden || r.Type != "HttpResponseError" || !strings.Contains(r.Message, action) {
			t.Errorf("%s: %+v, want 403 for %s", what, r, action)
		}
	}
	list, err := s.DB.ListJobs(context.Background(), "ws1", "", 0)
	if err != nil || len(list) != 0 {
		t.Errorf("jobs stored: %d %v", len(list), err)
	}
}

// TestSDKReadsCLIPipeline reads, through jobs.get and jobs.list, a
// pipeline submitted by the CLI, whose steps are written inline rather
// than registered: its status and inputs show, its steps do not.
func TestSDKReadsCLIPipeline(t *testing.T) {
	s := newSDKServer(t)
	doc := `{"type":"pipeline","inputs":{"input":{"type":"uri_file","path":"azureml:taxi-data@latest"},"target":"cost"},` +
		`"jobs":{"prep":{"type":"command","command":"echo ${{inputs.raw}}","environment":"azureml:sdk-env:1","inputs":{"raw":"${{parent.inputs.input}}"}}}}`
	job := &wharf.Job{Workspace: "ws1", Name: "cli_pipeline_1", Type: wharf.JobTypePipeline, ExperimentName: "taxi",
		Status: wharf.JobRunning, Document: json.RawMessage(doc), SubmittedBy: "app-owner"}
	if err := s.DB.CreateJobs(context.Background(), []*wharf.Job{job}); err != nil {
		t.Fatal(err)
	}
	env := append(append([]string{}, s.env...), "WHARF_SDK_JOB=cli_pipeline_1")
	got := decode[struct {
		Name, Type, Status    string
		Steps, Inputs, Listed []string
	}](t, s.runScript(t, env, "testdata/sdk_pipeline.py", "read_cli_pipeline")["read_cli_pipeline"])
	if got.Type != "pipeline" || got.Status != "Running" || len(got.Steps) != 0 || !slices.Equal(got.Inputs, []string{"input", "target"}) ||
		!slices.Equal(got.Listed, []string{"cli_pipeline_1"}) {
		t.Errorf("pipeline: %+v", got)
	}
}

// TestSDKSweep submits sweep jobs through the SDK, translated onto
// Wharf's sweep: command(...).sweep(...) over a grid of two choices with a
// bandit policy, and a load_job of a sweep YAML sampling a uniform range
// at random. Each trial logs its loss to its tracking run; the sweep
// completes with its best trial, the one of least loss (or most, as the
// YAML's objective says), which jobs.get shows with its search space.
func TestSDKSweep(t *testing.T) {
	s := newSDKServer(t)
	type sweep struct {
		Name, Type, Status, Goal, Experiment string
		Trials                               []string
		SearchSpace                          []string `json:"search_space"`
		MaxTotalTrials                       int      `json:"max_total_trials"`
		Properties                           map[string]string
	}
	got := s.runPipeline(t, "sweep", "sweep_yaml")
	grid := decode[sweep](t, got["sweep"])
	if grid.Type != "sweep" || grid.Status != "Completed" || grid.Goal != "minimize" || grid.MaxTotalTrials != 4 ||
		!slices.Equal(grid.Trials, []string{"Completed", "Completed", "Completed", "Completed"}) ||
		!slices.Equal(grid.SearchSpace, []string{"layers", "lr"}) {
		t.Errorf("grid sweep: %+v", grid)
	}
	// loss = |lr - 0.01| * 10 + layers: least at lr 0.01, one layer.
	if p := grid.Properties; p["best_child_run_metric"] != "1" || p["best_child_run_parameters"] != `{"layers":"1","lr":"0.01"}` ||
		!strings.HasPrefix(p["best_child_run_id"], grid.Name+"_") {
		t.Errorf("grid sweep's best trial: %v", p)
	}
	stored, err := s.DB.FindJob(context.Background(), "ws1", grid.Name)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		EarlyTermination map[string]any `json:"early_termination"`
		Limits           map[string]int
	}
	if err := json.Unmarshal(stored.Document, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.EarlyTermination["type"] != "bandit" || doc.EarlyTermination["slack_factor"] != 10.0 ||
		doc.Limits["max_concurrent_trials"] != 2 || doc.Limits["timeout"] != 600 {
		t.Errorf("stored sweep: %s", stored.Document)
	}
	random := decode[sweep](t, got["sweep_yaml"])
	if random.Status != "Completed" || random.Experiment != "sdk-yaml-sweeps" || !slices.Equal(random.Trials, []string{"Completed", "Completed"}) {
		t.Errorf("sweep YAML: %+v", random)
	}
	var params struct{ Layers, Lr string }
	if err := json.Unmarshal([]byte(random.Properties["best_child_run_parameters"]), &params); err != nil || params.Layers != "3" ||
		params.Lr < "0.01" || params.Lr > "0.02" {
		t.Errorf("sweep YAML's best trial: %v", random.Properties)
	}
}

// armPipelineServer is a server with a Data Scientist's token, an
// environment and an anonymous command component (version "abc") with
// one input x and one output out, for requests sent as the SDK sends
// them.
func armPipelineServer(t *testing.T) (*servertest.Server, string) {
	t.Helper()
	ts := servertest.New(t)
	ts.Workspace("ws1")
	runJobs(t, ts)
	ctx := context.Background()
	if _, err := ts.DB.PutDatastore(ctx, &wharf.Datastore{Workspace: "ws1", Name: wharf.DefaultDatastore, Type: wharf.DatastoreLocal, IsDefault: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.DB.PutCompute(ctx, &wharf.Compute{Workspace: "ws1", Name: "cpu-cluster", MaxInstances: 1}); err != nil {
		t.Fatal(err)
	}
	token := ts.Principal("ds", [2]string{wharf.RoleDataScientist, "/workspaces/ws1"})
	if st, _, body := armCall(t, ts, token, "PUT", ws1+"/environments/env/versions/1?api-version=2023-04-01-preview",
		`{"properties":{"image":"python:3.11-slim"}}`); st != http.StatusOK {
		t.Fatalf("environment: %d %v", st, body)
	}
	if st, _, body := armCall(t, ts, token, "PUT", ws1+"/components/azureml_anonymous/versions/abc?api-version=2024-01-01-preview",
		anonymousStep("step_a")); st != http.StatusOK {
		t.Fatalf("component: %d %v", st, body)
	}
	return ts, token
}

// anonymousStep is the body the SDK sends to register an inline step
// named name.
func anonymousStep(name string) string {
	return `{"properties":{"isAnonymous":true,"isArchived":false,"componentSpec":{"name":"` + name + `","version":"1","type":"command",` +
		`"command":"echo ${{inputs.x}} > ${{outputs.out}}/x","environment":"azureml:env:1",` +
		`"inputs":{"x":{"type":"string"}},"outputs":{"out":{"type":"uri_folder"}},"_source":"BUILDER"}}}`
}

// TestARMAnonymousComponents registers an inline step as the SDK does, at
// azureml_anonymous/versions/<hash>: the step keeps its own name in its
// componentSpec, registering the same hash again (under another step's
// name) answers the version there and stores nothing new, and anonymous
// versions are listed by neither ARM's nor Wharf's list of components.
// A named component is still refused a componentSpec naming another.
func TestARMAnonymousComponents(t *testing.T) {
	ts, token := armPipelineServer(t)
	path := ws1 + "/components/azureml_anonymous/versions/abc?api-version=2024-01-01-preview"
	st, _, again := armCall(t, ts, token, "PUT", path, anonymousStep("step_b"))
	props, _ := again["properties"].(map[string]any)
	spec, _ := props["componentSpec"].(map[string]any)
	if st != http.StatusOK || props["isAnonymous"] != true || spec["name"] != "step_a" ||
		again["id"] != ws1+"/components/azureml_anonymous/versions/abc" {
		t.Errorf("registered again: %d %v", st, again)
	}
	versions, err := ts.DB.ListAssets(context.Background(), "ws1", wharf.AssetComponent, wharf.AnonymousComponent)
	if err != nil || len(versions) != 1 || versions[0].Version != "abc" {
		t.Errorf("anonymous versions: %v %v", versions, err)
	}
	if st, _, body := armCall(t, ts, token, "PUT", ws1+"/components/named/versions/1?api-version=2024-01-01-preview",
		`{"properties":{"componentSpec":{"name":"named","version":"1","type":"command","command":"echo hi","environment":"azureml:env:1"}}}`); st != http.StatusOK {
		t.Fatalf("named component: %d %v", st, body)
	}
	_, _, listed := armCall(t, ts, token, "GET", ws1+"/components?api-version=2024-01-01-preview", "")
	if b, _ := json.Marshal(listed["value"]); strings.Contains(string(b), "anonymous") || !strings.Contains(string(b), `"name":"named"`) {
		t.Errorf("ARM components listed: %s", b)
	}
	apiList := listAPI(t, ts, token, "/api/v1/workspaces/ws1/components")
	if len(apiList) != 1 || apiList[0] != "named" {
		t.Errorf("API components listed: %v", apiList)
	}
	if st, page := bearerGet(t, ts, token, "/workspaces/ws1/components"); st != http.StatusOK ||
		strings.Contains(string(page), wharf.AnonymousComponent) || !strings.Contains(string(page), "named") {
		t.Errorf("studio's components: %d\n%s", st, page)
	}
	for _, tc := range []struct{ path, body, field string }{
		{"/components/other/versions/1", anonymousStep("other"), "properties.isAnonymous"},
		{"/components/other/versions/1", `{"properties":{"componentSpec":{"name":"else","version":"1","type":"command","command":"echo","environment":"azureml:env:1"}}}`, "properties.componentSpec.name"},
		{"/components/azureml_anonymous/versions/def", `{"properties":{"isAnonymous":true,"componentSpec":{"type":"command","command":"echo","environment":"azureml:env:9"}}}`, "properties.componentSpec.environment"},
	} {
		st, _, body := armCall(t, ts, token, "PUT", ws1+tc.path+"?api-version=2024-01-01-preview", tc.body)
		if e, _ := body["error"].(map[string]any); st != http.StatusBadRequest || e["target"] != tc.field {
			t.Errorf("PUT %s: %d %v, want 400 naming %s", tc.path, st, body, tc.field)
		}
	}
	for _, name := range []string{"other", wharf.AnonymousComponent} {
		list, _ := ts.DB.ListAssets(context.Background(), "ws1", wharf.AssetComponent, name)
		if len(list) != map[string]int{"other": 0, wharf.AnonymousComponent: 1}[name] {
			t.Errorf("%s: %d versions stored after the refusals", name, len(list))
		}
	}
}

// listAPI lists the names Wharf's API returns at path.
func listAPI(t *testing.T, ts *servertest.Server, token, path string) []string {
	t.Helper()
	var list []struct{ Name string }
	apiGet(t, ts, token, path, &list)
	var names []string
	for _, a := range list {
		names = append(names, a.Name)
	}
	return names
}

// TestARMRefusesBadPipelines sends pipelines as the SDK writes them, each
// with one mistake: each is refused with 400 naming the request's field
// at fault, and no job is stored.
func TestARMRefusesBadPipelines(t *testing.T) {
	ts, token := armPipelineServer(t)
	const comps = "/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/ws1/components/"
	step := func(fields string) string {
		return `{"properties":{"jobType":"Pipeline","jobs":{"a":{"type":"command","componentId":"` + comps + `azureml_anonymous/versions/abc"` + fields + `}}}}`
	}
	literal := func(v string) string { return `{"job_input_type":"literal","value":"` + v + `"}` }
	for _, tc := range []struct{ name, body, field, says string }{
		{"missing pipeline input", step(`,"inputs":{"x":` + literal("${{parent.inputs.nope}}") + `}`), "properties.jobs.a.inputs.x", `no input "nope"`},
		{"missing step", step(`,"inputs":{"x":` + literal("${{parent.jobs.ghost.outputs.out}}") + `}`), "properties.jobs.a.inputs.x", `no step "ghost"`},
		{"input the component lacks", step(`,"inputs":{"x":` + literal("1") + `,"y":` + literal("1") + `}`), "properties.jobs.a.inputs.y", `no input "y"`},
		{"required input unset", step(``), "properties.jobs.a.inputs.x", `required input "x"`},
		{"missing pipeline output", `{"properties":{"jobType":"Pipeline","outputs":{"o":{"jobOutputType":"uri_folder"}},"jobs":{"a":{"type":"command","componentId":"` + comps + `azureml_anonymous/versions/abc","inputs":{"x":` + literal("1") + `},"outputs":{"out":{"value":"${{parent.outputs.nope}}","type":"literal"}}}}}}`, "properties.jobs.a.outputs.out", `no output "nope"`},
		{"unknown component", `{"properties":{"jobType":"Pipeline","jobs":{"a":{"type":"command","componentId":"` + comps + `nope/versions/1"}}}}`, "properties.jobs.a.componentId", "azureml:nope:1"},
		{"unknown anonymous version", `{"properties":{"jobType":"Pipeline","jobs":{"a":{"type":"command","componentId":"` + comps + `azureml_anonymous/versions/zzz"}}}}`, "properties.jobs.a.componentId", "azureml_anonymous:zzz"},
		{"no component", `{"properties":{"jobType":"Pipeline","jobs":{"a":{"type":"command"}}}}`, "properties.jobs.a.componentId", "no componentId"},
		{"parallel step", `{"properties":{"jobType":"Pipeline","jobs":{"a":{"type":"parallel","componentId":"` + comps + `azureml_anonymous/versions/abc"}}}}`, "properties.jobs.a.type", "parallel"},
		{"no steps", `{"properties":{"jobType":"Pipeline","jobs":{}}}`, "properties.jobs", "at least one step"},
		{"unknown compute", `{"properties":{"jobType":"Pipeline","settings":{"default_compute":"/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/ws1/computes/gpu"},"jobs":{"a":{"type":"command","componentId":"` + comps + `azureml_anonymous/versions/abc","inputs":{"x":` + literal("1") + `}}}}}`, "properties.jobs", `compute "gpu"`},
		{"literal without value", `{"properties":{"jobType":"Pipeline","inputs":{"i":{"jobInputType":"literal"}},"jobs":{"a":{"type":"command","componentId":"` + comps + `azureml_anonymous/versions/abc"}}}}`, "properties.inputs.i.value", "no literal value"},
		{"step timeout", step(`,"inputs":{"x":` + literal("1") + `},"limits":{"timeout":"ten minutes"}`), "properties.jobs.a.limits.timeout", "ISO 8601"},
		{"command timeout", `{"properties":{"jobType":"Command","command":"echo","limits":{"timeout":"P1X"}}}`, "properties.limits.timeout", "ISO 8601"},
		{"sweep without trial", `{"properties":{"jobType":"Sweep","searchSpace":{"lr":["uniform",[0,1]]}}}`, "properties.trial", "needs a trial"},
		{"sweep distribution", `{"properties":{"jobType":"Sweep","trial":{"command":"echo"},"searchSpace":{"lr":["gamma",[1]]}}}`, "properties.searchSpace.lr", `"gamma"`},
		{"sweep arguments", `{"properties":{"jobType":"Sweep","trial":{"command":"echo"},"searchSpace":{"lr":["uniform",[1]]}}}`, "properties.searchSpace.lr", "takes 2 arguments"},
		{"sweep objective", `{"properties":{"jobType":"Sweep","computeId":"cpu-cluster","trial":{"command":"echo ${{search_space.lr}}","environmentId":"azureml:env:1"},"searchSpace":{"lr":["choice",[[1]]]},"samplingAlgorithm":{"samplingAlgorithmType":"Grid"},"objective":{"goal":"sideways","primaryMetric":"loss"}}}`, "properties.objective.goal", "sideways"},
		{"AutoML", `{"properties":{"jobType":"AutoML"}}`, "properties.jobType", "AutoML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _, body := armCall(t, ts, token, "PUT", ws1+"/jobs/bad_pipeline?api-version=2025-01-01-preview", tc.body)
			e, _ := body["error"].(map[string]any)
			if st != http.StatusBadRequest || !strings.Contains(fmt.Sprint(e), tc.says) || e["target"] != tc.field {
				t.Errorf("%d %v, want 400 naming %s and saying %q", st, e, tc.field, tc.says)
			}
		})
	}
	if list, err := ts.DB.ListJobs(context.Background(), "ws1", "", 0); err != nil || len(list) != 0 {
		t.Errorf("jobs stored: %d %v", len(list), err)
	}
}

// TestTokenScopeOfAzureML asks the token endpoint, as the SDK's credential
// does before it submits a pipeline, for the scope of the ML resource the
// SDK derives from the metadata's portal (the server's URL): the token's
// audience is that resource, as the SDK checks, and the API accepts it
// as its own. Another cloud's ML resource, and a scope that is no
// resource's, are refused.
func TestTokenScopeOfAzureML(t *testing.T) {
	ts := servertest.New(t)
	ts.Workspace("ws1")
	owner := ts.Principal("owner", [2]string{wharf.RoleOwner, "/"})
	sp := createPrincipal(t, ts, owner, "notebook", wharf.RoleReader, "/workspaces/ws1")
	ml := wharfhttp.MLResourceID(ts.API.URL)
	token := func(scope string) (int, map[string]any) {
		resp, err := http.PostForm(ts.HTTP.URL+"/"+servertest.Tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"},
			"client_id": {sp.AppID}, "client_secret": {sp.Password}, "scope": {scope}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out := map[string]any{}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	for scope, aud := range map[string]string{ml + "/.default": ml, ts.API.URL + "/.default": wharfhttp.APIAudience, wharfhttp.APIAudience + "/.default": wharfhttp.APIAudience} {
		st, out := token(scope)
		tok, _ := out["access_token"].(string)
		if st != http.StatusOK || audience(t, tok) != aud {
			t.Errorf("scope %s: %d %v, want a token for %s", scope, st, out, aud)
			continue
		}
		if st, _, body := armCall(t, ts, tok, "GET", ws1+"?api-version=2024-10-01-preview", ""); st != http.StatusOK {
			t.Errorf("scope %s: the token's workspace read: %d %v", scope, st, body)
		}
	}
	for _, scope := range []string{"https://ml.azure.com/.default", ml + "/user_impersonation", "openid"} {
		if st, out := token(scope); st != http.StatusBadRequest || out["error"] != "invalid_scope" {
			t.Errorf("scope %s: %d %v, want invalid_scope", scope, st, out)
		}
	}
}

// audience is a JWT's aud claim, read without checking its signature.
func audience(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct{ Aud string }
	_ = json.Unmarshal(b, &claims)
	return claims.Aud
}

// TestMLResourceID derives the ML resource from a portal address as the
// SDK's _convert_arm_to_cli does (azure/ai/ml/_azure_environments.py):
// Azure's own portal gives Azure's resource.
func TestMLResourceID(t *testing.T) {
	for portal, want := range map[string]string{
		"https://portal.azure.com":            "https://ml.azure.com",
		"https://portal.azure.us/":            "https://ml.azure.us",
		"https://wharf.corp.example.com:8443": "https://ml.azure.example.com:8443",
		"https://localhost:8443":              "https://ml.azure.",
		"https://wharf.example/":              "https://ml.azure.",
		"https://a.b.c.d/path/":               "https://ml.azure.c.dpath",
	} {
		if got := wharfhttp.MLResourceID(portal); got != want {
			t.Errorf("MLResourceID(%q) = %q, want %q", portal, got, want)
		}
	}
}
