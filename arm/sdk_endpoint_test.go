package arm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/internal/sdktest"
	"github.com/wharfml/wharf/linear"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/serving"
)

// taxiRequest is the taxi example's scoring request: two rides.
const taxiRequest = "../../shared/data/taxi/taxi-request.json"

// serveEndpoints gives the server the data plane `wharf server` runs, so
// that its online endpoints score.
func (s *sdkServer) serveEndpoints(t *testing.T) {
	t.Helper()
	router := serving.NewRouter(s.DB, &serving.Factory{Store: s.DB, Blobs: s.Blobs, Dir: t.TempDir()}, s.Issuer, nil, nil)
	router.Audience = wharfhttp.EndpointAudience
	t.Cleanup(router.Close)
	s.API.Endpoints = router
}

// taxiModel writes a linear model of the taxi request's twenty columns
// to a local folder named model, and returns the model and the folder.
func taxiModel(t *testing.T) (*linear.Model, string) {
	t.Helper()
	m := &linear.Model{Intercept: 2.5}
	for i, c := range []string{"distance", "dropoff_latitude", "dropoff_longitude", "passengers", "pickup_latitude",
		"pickup_longitude", "store_forward", "vendor", "pickup_weekday", "pickup_month", "pickup_monthday", "pickup_hour",
		"pickup_minute", "pickup_second", "dropoff_weekday", "dropoff_month", "dropoff_monthday", "dropoff_hour",
		"dropoff_minute", "dropoff_second"} {
		m.Columns = append(m.Columns, c)
		m.Coef = append(m.Coef, 0.25*float64(i%5)-0.3)
	}
	dir := filepath.Join(t.TempDir(), "model")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	return m, dir
}

// TestSDKRegistersAndDeploysAModel runs the unchanged SDK through a model's
// way to production: it registers the model from a local folder, which
// the SDK uploads through Wharf's Blob API (twice, the second time
// answered with the same version), lists it,
// creates a key endpoint and a deployment, both long-running operations
// polled to Succeeded, sends it all traffic and invokes it with the taxi
// request, getting the model's two predictions; it regenerates the
// primary key and deletes the endpoint, both long-running operations too. A Reader lists models
// and is refused registering, creating and reading keys, with 403.
func TestSDKRegistersAndDeploysAModel(t *testing.T) {
	s := newSDKServer(t)
	s.serveEndpoints(t)
	model, dir := taxiModel(t)
	req, err := filepath.Abs(taxiRequest)
	if err != nil {
		t.Fatal(err)
	}
	env := append(append([]string{}, s.env...), "WHARF_SDK_MODEL_DIR="+dir, "WHARF_SDK_REQUEST="+req)
	got := s.runWith(t, env, "model_endpoint", "model_denied", "endpoint_delete")
	out := decode[struct {
		Version, Again, Type       string
		Flavors                    map[string]map[string]string
		Listed, Names, Deployments []string
		Traffic                    map[string]int
		ScoringURI                 string `json:"scoring_uri"`
		DeploymentModel            string `json:"deployment_model"`
		Predictions                []float64
		KeyLength                  int    `json:"key_length"`
		PrimaryChanged             bool   `json:"primary_changed"`
		SecondaryKept              bool   `json:"secondary_kept"`
		TokenType                  string `json:"token_type"`
		TokenLength                int    `json:"token_length"`
		EndpointState              string `json:"endpoint_state"`
		DeploymentState            string `json:"deployment_state"`
	}](t, got["model_endpoint"])
	if out.Version != "1" || out.Again != "1" || out.Type != "mlflow_model" || out.Flavors[linear.Flavor]["data"] != linear.DataFile ||
		len(out.Listed) != 1 || len(out.Names) != 1 || out.Names[0] != "taxi-model" {
		t.Errorf("model: %+v", out)
	}
	if out.EndpointState != "Succeeded" || out.DeploymentState != "Succeeded" || out.Traffic["blue"] != 100 ||
		out.ScoringURI != s.URL+"/endpoints/ws1/taxi-ep/score" || !strings.HasSuffix(out.DeploymentModel, "/models/taxi-model/versions/1") ||
		len(out.Deployments) != 1 || out.KeyLength < 40 || !out.PrimaryChanged || !out.SecondaryKept ||
		out.TokenType != "EndpointAuthToken" || out.TokenLength < 100 {
		t.Errorf("endpoint: %+v", out)
	}
	sdktest.CheckPredictions(t, "invoke", out.Predictions, sdktest.RequestRows(t, req), model.Predict)
	v, err := s.DB.FindModelAssetVersion(context.Background(), "ws1", "taxi-model", "1")
	if err != nil || v.ContentDigest == "" || !strings.HasPrefix(v.Source, "mlflow-artifacts:/models/taxi-model/") {
		t.Errorf("stored version: %+v %v", v, err)
	}

	if d := decode[struct{ Deleted string }](t, got["endpoint_delete"]); d.Deleted != "ResourceNotFoundError" {
		t.Errorf("after delete: %+v", d)
	}
	denied := decode[struct {
		Listed                []string
		Model, Endpoint, Keys struct {
			Status  int
			Type    string
			Message string
		}
	}](t, got["model_denied"])
	if len(denied.Listed) != 1 {
		t.Errorf("reader lists %v", denied.Listed)
	}
	for what, d := range map[string]struct {
		Status  int
		Type    string
		Message string
	}{"model": denied.Model, "endpoint": denied.Endpoint, "keys": denied.Keys} {
		if d.Status != http.StatusForbidden || d.Type != "HttpResponseError" {
			t.Errorf("reader's %s: %+v", what, d)
		}
	}
}

// TestSDKDataAssets creates data asset versions of a file on the default
// datastore through the SDK: Wharf's data assets, pinned to the file's
// content, read back through the SDK.
func TestSDKDataAssets(t *testing.T) {
	s := newSDKServer(t)
	ctx := context.Background()
	if _, err := s.DB.PutDatastore(ctx, &wharf.Datastore{Workspace: "ws1", Name: wharf.DefaultDatastore, Type: wharf.DatastoreLocal, IsDefault: true}); err != nil {
		t.Fatal(err)
	}
	digest, _, err := s.Blobs.Put(ctx, strings.NewReader("distance,cost\n1.5,7.25\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DB.PutDatastoreFile(ctx, &wharf.DatastoreFile{Workspace: "ws1", Datastore: wharf.DefaultDatastore,
		Path: "taxi/taxi-data.csv", Digest: digest, Kind: "file"}); err != nil {
		t.Fatal(err)
	}
	env := append(append([]string{}, s.env...), "WHARF_SDK_DATA_PATH=taxi/taxi-data.csv")
	got := decode[struct {
		First, Second, Type, Path, Latest string
		Versions, Names                   []string
	}](t, s.runWith(t, env, "data")["data"])
	if got.First != "1" || got.Second != "2" || got.Type != "uri_file" || got.Latest != "2" ||
		!strings.HasSuffix(got.Path, "datastores/workspaceblobstore/paths/taxi/taxi-data.csv") ||
		strings.Join(got.Versions, ",") != "1,2" || strings.Join(got.Names, ",") != "taxi-data" {
		t.Errorf("data: %+v", got)
	}
	a, err := s.DB.FindAsset(ctx, "ws1", wharf.AssetData, "taxi-data", "2")
	if err != nil || a.Digest != digest || a.Description != "again" || a.CreatedBy == "" {
		t.Errorf("stored: %+v %v", a, err)
	}
}

// TestSDKComponents registers a command component through the SDK: it is
// Wharf's component, read as a component file is, and the SDK reads it
// back; one whose environment does not exist is refused naming it.
func TestSDKComponents(t *testing.T) {
	s := newSDKServer(t)
	got := decode[struct {
		Version, Command, Environment string
		Inputs, Outputs, Listed       []string
		Refused                       struct {
			Status  int
			Message string
		}
	}](t, s.run(t, "environment", "component")["component"])
	if got.Version != "1" || !strings.Contains(got.Command, "train linear-regression") || !strings.Contains(got.Environment, "sdk-env") ||
		strings.Join(got.Inputs, ",") != "train_data" || strings.Join(got.Outputs, ",") != "model_output" || strings.Join(got.Listed, ",") != "1" {
		t.Errorf("component: %+v", got)
	}
	if got.Refused.Status != http.StatusBadRequest || !strings.Contains(got.Refused.Message, "no-such-env") || !strings.Contains(got.Refused.Message, "properties.componentSpec.environment") {
		t.Errorf("bad component: %+v", got.Refused)
	}
	a, err := s.DB.FindAsset(context.Background(), "ws1", wharf.AssetComponent, "taxi_train", "1")
	if err != nil {
		t.Fatal(err)
	}
	var stored resolve.Component
	if err := json.Unmarshal(a.Spec, &stored); err != nil || stored.Component == nil ||
		!strings.Contains(stored.Component.Command, "--target cost") || len(stored.Component.Inputs) != 1 {
		t.Errorf("stored: %s %v", a.Spec, err)
	}
}

// TestSDKDeploysAScoringScript deploys a scoring script through the SDK's
// ManagedOnlineDeployment(code_configuration=CodeConfiguration(code=<local
// folder>, scoring_script="score.py")): the SDK uploads the folder, the
// deployment's long-running operation succeeds once its worker has run
// init(), and invoke answers what run() returns, with an environment given
// inline (which the SDK registers itself) and with a registered one.
func TestSDKDeploysAScoringScript(t *testing.T) {
	s := newSDKServer(t)
	s.serveEndpoints(t)
	got := decode[struct {
		States map[string]struct{ State, Script, Environment string }
		// run() returns the request's data scaled by the model's
		// weight, and the deployment it ran in.
		Answers map[string]struct {
			Scaled []float64
			By     string
		}
	}](t, s.run(t, "score_script")["score_script"])
	for _, name := range []string{"inline", "registered"} {
		st, a := got.States[name], got.Answers[name]
		if st.State != "Succeeded" || st.Script != "score.py" {
			t.Errorf("deployment %s: %+v", name, st)
		}
		if fmt.Sprint(a.Scaled) != "[2.5 10]" || a.By != name {
			t.Errorf("deployment %s answered %+v, want [2.5 10] by %s", name, a, name)
		}
	}
	if !strings.HasSuffix(got.States["registered"].Environment, "/environments/sdk-env/versions/1") ||
		!strings.Contains(got.States["inline"].Environment, "/environments/CliV2AnonymousEnvironment/versions/") {
		t.Errorf("environments: %+v", got.States)
	}
	// Stored as `wharf ml online-deployment create` stores one: the
	// uploaded code's snapshot and the environment pinned.
	d, err := s.DB.FindOnlineDeployment(context.Background(), "ws1", "scaler-ep", "inline")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		CodeConfiguration struct {
			CodeDigest    string `json:"code_digest"`
			ScoringScript string `json:"scoring_script"`
		} `json:"code_configuration"`
		Environment struct{ Ref, Image string }
	}
	if err := json.Unmarshal(d.Spec, &spec); err != nil || spec.CodeConfiguration.CodeDigest == "" ||
		spec.CodeConfiguration.ScoringScript != "score.py" || spec.Environment.Image != "python:3.11-slim" ||
		!strings.HasPrefix(spec.Environment.Ref, "CliV2AnonymousEnvironment:") {
		t.Errorf("stored deployment: %s %v", d.Spec, err)
	}
}
