package arm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/http/servertest"
	"github.com/wharfml/wharf/internal/sdktest"
	"github.com/wharfml/wharf/local"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/scheduler"
)

// sdkServer is a Wharf server behind TLS, as the SDK needs it, with the
// SDK's Python and its environment.
type sdkServer struct {
	*servertest.Server
	URL    string
	python string
	env    []string
	// writer is the Data Scientist principal the SDK runs as.
	writer wharfhttp.CredentialResponse
}

// newSDKServer serves Wharf over TLS on localhost with workspace ws1, a
// Data Scientist principal on it (the SDK's "writer") and a Reader of
// it, both with client
// secrets, as the SDK's ClientSecretCredential needs them.
func newSDKServer(t *testing.T) *sdkServer {
	t.Helper()
	python := sdktest.Python(t)
	ts := servertest.New(t)
	dir := t.TempDir()
	// The Blob API is served to <account>.blob.localhost:<port> (the
	// metadata's storage suffix is the server's host and port).
	ca, certFile, keyFile := sdktest.Certificate(t, dir)
	files, err := wharfhttp.LoadCertificateFiles(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(ts.API.Handler())
	hs.TLS = files.TLSConfig()
	hs.StartTLS()
	t.Cleanup(hs.Close)
	// The certificate names localhost; the SDK checks it against the CA.
	url := strings.Replace(hs.URL, "127.0.0.1", "localhost", 1)
	ts.API.URL = url

	ts.Workspace("ws1")
	ctx := context.Background()
	// What creating a workspace through the API adds: its default
	// datastore; and a compute to run on.
	if _, err := ts.DB.PutDatastore(ctx, &wharf.Datastore{Workspace: "ws1", Name: wharf.DefaultDatastore, Type: wharf.DatastoreLocal, IsDefault: true}); err != nil {
		t.Fatal(err)
	}
	c := &wharf.Compute{Workspace: "ws1", Name: "cpu-cluster", MaxInstances: 2}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.DB.PutCompute(ctx, c); err != nil {
		t.Fatal(err)
	}
	runJobs(t, ts)
	owner := ts.Principal("owner", [2]string{wharf.RoleOwner, "/"})
	writer := createPrincipal(t, ts, owner, "writer", wharf.RoleDataScientist, "/workspaces/ws1")
	reader := createPrincipal(t, ts, owner, "reader", wharf.RoleReader, "/workspaces/ws1")
	env := append(sdktest.Env(t, url, ca.File),
		"WHARF_SDK_URL="+url,
		"WHARF_SDK_TENANT="+servertest.Tenant,
		"WHARF_SDK_WORKSPACE=ws1",
		"WHARF_SDK_WRITER_CLIENT_ID="+writer.AppID,
		"WHARF_SDK_WRITER_SECRET="+writer.Password,
		"WHARF_SDK_READER_CLIENT_ID="+reader.AppID,
		"WHARF_SDK_READER_SECRET="+reader.Password,
	)
	return &sdkServer{Server: ts, URL: url, python: python, env: env, writer: writer}
}

// runJobs gives the server a scheduler that runs steps on this machine,
// as the server's own user: the tests' jobs are their own.
func runJobs(t *testing.T, ts *servertest.Server) {
	t.Helper()
	sched := &scheduler.Scheduler{Store: ts.DB, Blobs: ts.Blobs, Exec: &local.Executor{KillGrace: time.Second},
		WorkDir: t.TempDir(), TrackingURI: ts.API.TrackingURI, Resolve: ts.API.Resolve, Now: time.Now,
		// Steps log to their tracking runs with the job's token, as
		// the server's own steps do: a sweep's trials their metric.
		Token: func(principal, workspace, job string, ttl time.Duration) (string, error) {
			tok, _, err := ts.API.Tokens.IssueJob(servertest.Tenant, principal, wharfhttp.JobAudience, workspace, job, ttl)
			return tok, err
		}}
	ctx, cancel := context.WithCancel(context.Background())
	if err := sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); sched.Wait() })
	ts.API.Scheduler = sched
}

// createPrincipal creates a principal with a client secret through the
// API, as `wharf ad sp create-for-rbac` does.
func createPrincipal(t *testing.T, ts *servertest.Server, token, name, role, scope string) wharfhttp.CredentialResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"displayName": name, "role": role, "scopes": []string{scope}})
	status, _, out := armCall(t, ts, token, http.MethodPost, "/api/v1/servicePrincipals", string(body))
	var cred wharfhttp.CredentialResponse
	b, _ := json.Marshal(out)
	if err := json.Unmarshal(b, &cred); err != nil || status/100 != 2 || cred.Password == "" {
		t.Fatalf("create principal %s: %d %v", name, status, err)
	}
	return cred
}

// run runs testdata/sdk.py with the given steps and returns each step's
// reported result.
func (s *sdkServer) run(t *testing.T, steps ...string) map[string]json.RawMessage {
	t.Helper()
	return s.runWith(t, s.env, steps...)
}

func (s *sdkServer) runWith(t *testing.T, env []string, steps ...string) map[string]json.RawMessage {
	t.Helper()
	return s.runScript(t, env, "testdata/sdk.py", steps...)
}

// runScript runs a script of testdata with the given steps in env and
// returns each step's reported result.
func (s *sdkServer) runScript(t *testing.T, env []string, script string, steps ...string) map[string]json.RawMessage {
	t.Helper()
	got, out := sdktest.Run(t, s.python, env, s.Logs.String, script, steps...)
	for _, step := range steps {
		if _, ok := got[step]; !ok {
			t.Fatalf("%s reported nothing for %q\noutput:\n%s", script, step, out)
		}
	}
	return got
}

func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	return sdktest.Decode[T](t, raw)
}

// TestSDKGetsWorkspace runs the unchanged SDK, with a ClientSecretCredential
// whose authority is Wharf, against the cloud metadata Wharf serves: it
// gets the workspace, and a Reader of it, who may read it, is refused
// creating an environment with 403 through azure-core's HttpResponseError.
func TestSDKGetsWorkspace(t *testing.T) {
	s := newSDKServer(t)
	got := s.run(t, "workspace", "denied")
	ws := decode[struct {
		Name, Location string
		DiscoveryURL   string `json:"discovery_url"`
	}](t, got["workspace"])
	if ws.Name != "ws1" || ws.DiscoveryURL != s.URL+"/azureml/discovery" {
		t.Errorf("workspace: %+v", ws)
	}
	denied := decode[struct {
		Status  int
		Type    string
		Message string
	}](t, got["denied"])
	if denied.Status != http.StatusForbidden || denied.Type != "HttpResponseError" || !strings.Contains(denied.Message, "workspaces/environments/write") {
		t.Errorf("reader: %+v", denied)
	}
}

// TestSDKCloudNamedInCode names the cloud in MLClient's arguments, with no
// metadata URL to fetch.
func TestSDKCloudNamedInCode(t *testing.T) {
	s := newSDKServer(t)
	var env []string
	for _, kv := range s.env {
		if !strings.HasPrefix(kv, "ARM_CLOUD_METADATA_URL=") {
			env = append(env, kv)
		}
	}
	got := s.runWith(t, env, "cloud_kwarg")
	if ws := decode[struct{ Name string }](t, got["cloud_kwarg"]); ws.Name != "ws1" {
		t.Errorf("workspace: %+v", ws)
	}
}

// TestSDKEnvironments creates an environment version with an image and an
// inline conda file through the SDK; it is Wharf's environment, read back
// by the SDK and by Wharf's own store.
func TestSDKEnvironments(t *testing.T) {
	s := newSDKServer(t)
	got := decode[struct {
		Image    string
		Conda    map[string]any
		Versions []string
		Missing  string
	}](t, s.run(t, "environment")["environment"])
	if got.Image != "python:3.11-slim" || got.Missing != "ResourceNotFoundError" || len(got.Versions) != 1 || got.Versions[0] != "1" {
		t.Errorf("environment: %+v", got)
	}
	if deps := fmt.Sprint(got.Conda["dependencies"]); !strings.Contains(deps, "scikit-learn==1.5.2") || !strings.Contains(deps, "python=3.11") {
		t.Errorf("conda file read back: %v", got.Conda)
	}
	a, err := s.DB.FindAsset(context.Background(), "ws1", wharf.AssetEnvironment, "sdk-env", "1")
	if err != nil {
		t.Fatal(err)
	}
	var env resolve.Environment
	if err := json.Unmarshal(a.Spec, &env); err != nil {
		t.Fatal(err)
	}
	if env.Image != "python:3.11-slim" || env.PythonVersion != "3.11" || len(env.Pip) != 1 || env.Hash == "" || a.CreatedBy == "" {
		t.Errorf("stored environment: %+v by %q", env, a.CreatedBy)
	}
}

// TestSDKReadsJobs reads a command job Wharf ran, submitted by the CLI,
// through jobs.get and jobs.list, its inputs and outputs among it.
func TestSDKReadsJobs(t *testing.T) {
	s := newSDKServer(t)
	doc := `{"type":"command","command":"python train.py","environment":"azureml:sdk-env:1","compute":"azureml:cpu",` +
		`"inputs":{"trips":{"type":"uri_folder","path":"azureml://datastores/workspaceblobstore/paths/taxi/"},"alpha":"0.5"},` +
		`"outputs":{"model":{"type":"mlflow_model","path":"azureml://datastores/workspaceblobstore/paths/out/model/"}}}`
	job := &wharf.Job{Workspace: "ws1", Name: "tidy_fig_1", Type: "command", DisplayName: "train", ExperimentName: "taxi",
		Status: wharf.JobCompleted, Compute: "cpu", Document: json.RawMessage(doc), SubmittedBy: "app-owner"}
	if err := s.DB.CreateJobs(context.Background(), []*wharf.Job{job}); err != nil {
		t.Fatal(err)
	}
	env := append(append([]string{}, s.env...), "WHARF_SDK_JOB=tidy_fig_1")
	got := decode[struct {
		Name, Type, Status, Command, Environment, Compute, Studio, Missing string
		Listed                                                             []string
		Inputs                                                             map[string]struct{ Type, Path, Value string }
		Outputs                                                            map[string]struct{ Type, Path string }
	}](t, s.runWith(t, env, "jobs")["jobs"])
	if in := got.Inputs["trips"]; in.Type != "uri_folder" || in.Path != "azureml://datastores/workspaceblobstore/paths/taxi/" {
		t.Errorf("jobs.get input trips: %+v", got.Inputs)
	}
	if got.Inputs["alpha"].Value != "0.5" {
		t.Errorf("jobs.get literal input alpha: %+v", got.Inputs)
	}
	if out := got.Outputs["model"]; out.Type != "mlflow_model" || out.Path != "azureml://datastores/workspaceblobstore/paths/out/model/" {
		t.Errorf("jobs.get output model: %+v", got.Outputs)
	}
	want := "/workspaces/ws1/jobs/tidy_fig_1"
	if got.Name != "tidy_fig_1" || got.Type != "command" || got.Status != "Completed" || got.Command != "python train.py" ||
		got.Compute != "cpu" || !strings.Contains(got.Environment, "sdk-env:1") || !strings.HasPrefix(got.Studio, s.URL+want+"?") ||
		got.Missing != "ResourceNotFoundError" || len(got.Listed) != 1 || got.Listed[0] != "tidy_fig_1" {
		t.Errorf("job: %+v", got)
	}
}

// TestSDKSubmitsAndStreamsJob submits a command job through the SDK with a
// local code folder and a local uri_file input, which the SDK uploads
// through the Blob API Wharf serves (at <account>.blob.<suffix>, with the
// signatures Wharf issues); jobs.stream prints the job's log and returns
// once it has completed. The job is Wharf's: its code is a snapshot and
// its input the uploaded file. Submitted again, the code is found by its
// hash and not uploaded twice.
func TestSDKSubmitsAndStreamsJob(t *testing.T) {
	s := newSDKServer(t)
	got := decode[struct {
		Name, Status, Studio, Streamed, Code string
		CreatedStatus                        string `json:"created_status"`
		CodeAgain                            string `json:"code_again"`
		InputPath                            string `json:"input_path"`
		InputType                            string `json:"input_type"`
	}](t, s.run(t, "submit")["submit"])
	if got.Status != "Completed" || got.Name == "" || !strings.HasPrefix(got.Studio, s.URL+"/workspaces/ws1/jobs/"+got.Name+"?") {
		t.Errorf("job: %+v", got)
	}
	for _, want := range []string{"Streaming user_logs/std_log.txt", "header: distance,fare", "rows: 3", "Execution Summary"} {
		if !strings.Contains(got.Streamed, want) {
			t.Errorf("jobs.stream printed no %q:\n%s", want, got.Streamed)
		}
	}
	if got.Code == "" || got.Code != got.CodeAgain {
		t.Errorf("code %q, submitted again %q: want the same code version", got.Code, got.CodeAgain)
	}
	j, err := s.DB.FindJob(context.Background(), "ws1", got.Name)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Code   string
		Inputs map[string]struct{ Type, Path string }
	}
	if err := json.Unmarshal(j.Document, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.Code, "azureml://datastores/workspaceblobstore/paths/LocalUpload/") || !strings.HasSuffix(doc.Code, "/src/") ||
		doc.Inputs["trips"].Type != "uri_file" || !strings.HasSuffix(doc.Inputs["trips"].Path, "/trips.csv") ||
		j.ExperimentName != "sdk-jobs" || j.DisplayName != "train from the SDK" || j.Compute != "cpu-cluster" {
		t.Errorf("stored job: %+v document %s", j, j.Document)
	}
	if got.InputType != "uri_file" || got.InputPath != doc.Inputs["trips"].Path {
		t.Errorf("jobs.get input trips: %s at %q, stored %q", got.InputType, got.InputPath, doc.Inputs["trips"].Path)
	}
}

// TestSDKCancelsJob cancels a running job through the SDK's long-running
// cancel operation, which returns once the job has ended.
func TestSDKCancelsJob(t *testing.T) {
	s := newSDKServer(t)
	got := decode[struct{ Name, Running, Status string }](t, s.run(t, "cancel")["cancel"])
	if got.Running != "Running" || got.Status != "Canceled" {
		t.Errorf("cancel: %+v", got)
	}
}

// TestSDKReaderCannotSubmit: a Reader of the workspace is refused a job
// with 403 through azure-core's HttpResponseError; and a path Wharf does
// not serve answers ARM's 404, which the SDK raises as
// ResourceNotFoundError.
func TestSDKReaderCannotSubmit(t *testing.T) {
	s := newSDKServer(t)
	got := s.run(t, "denied_job", "unknown_path")
	denied := decode[struct {
		Status        int
		Type, Message string
	}](t, got["denied_job"])
	if denied.Status != http.StatusForbidden || denied.Type != "HttpResponseError" || !strings.Contains(denied.Message, "workspaces/jobs/write") {
		t.Errorf("reader: %+v", denied)
	}
	unknown := decode[struct {
		Type   string
		Status int
	}](t, got["unknown_path"])
	if unknown.Type != "ResourceNotFoundError" || unknown.Status != http.StatusNotFound {
		t.Errorf("unknown path: %+v", unknown)
	}
}

// TestSDKBlobClient drives azure-storage-blob, set up from the workspace's
// default datastore as the SDK sets it up for uploads, against the Blob
// API: a file larger than one request is sent as blocks and committed by
// a block list, metadata is set and read back, a listing by prefix
// returns names, sizes and metadata, and a download (in ranges) returns
// the bytes sent.
func TestSDKBlobClient(t *testing.T) {
	s := newSDKServer(t)
	got := decode[struct {
		Datastore  map[string]string
		AccountURL string `json:"account_url"`
		Size       int
		Metadata   map[string]string
		Listed     [][]any
		Same       bool
		Range      []int
	}](t, s.run(t, "blobs")["blobs"])
	port := s.URL[strings.LastIndex(s.URL, ":")+1:]
	if got.AccountURL != "https://wharf.blob.localhost:"+port || got.Datastore["container"] != "ws1.workspaceblobstore" ||
		got.Datastore["credentials"] != "SasTokenConfiguration" {
		t.Errorf("datastore: %v at %s", got.Datastore, got.AccountURL)
	}
	if got.Size != 25600 || !got.Same || fmt.Sprint(got.Range) != "[44 45 46 47]" ||
		got.Metadata["upload_status"] != "completed" || got.Metadata["origin"] != "" {
		t.Errorf("blob: size %d, same %v, range %v, metadata %v", got.Size, got.Same, got.Range, got.Metadata)
	}
	if fmt.Sprint(got.Listed) != "[[big/data.bin 25600 map[name:d upload_status:completed]] [big/small.txt 5 map[]]]" {
		t.Errorf("listed: %v", got.Listed)
	}
	// The blob is the datastore's file, its content Wharf's.
	f, err := s.DB.FindDatastoreFile(context.Background(), "ws1", "workspaceblobstore", "big/data.bin")
	if err != nil {
		t.Fatal(err)
	}
	if size, err := s.Blobs.Stat(context.Background(), f.Digest); err != nil || size != 25600 {
		t.Errorf("stored content: %d %v", size, err)
	}
}

// TestSDKReadsCompute reads a Wharf compute cluster through compute.get,
// which the SDK also calls to check a pipeline's compute.
func TestSDKReadsCompute(t *testing.T) {
	s := newSDKServer(t)
	got := decode[struct {
		Name, Type, State string
		Max               int
	}](t, s.run(t, "compute")["compute"])
	if got.Name != "cpu-cluster" || got.Type != "amlcompute" || got.Max != 2 || got.State != "Succeeded" {
		t.Errorf("compute: %+v", got)
	}
}
