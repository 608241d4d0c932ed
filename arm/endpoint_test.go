package arm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/http/servertest"
	"github.com/wharfml/wharf/serving"
)

// armCall sends one ARM request with token and returns the status, the
// headers and the decoded body.
func armCall(t *testing.T, ts *servertest.Server, token, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, ts.HTTP.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, resp.Header, out
}

// errorText is everything an ARM error says: message, field and details.
func errorText(body map[string]any) string {
	b, _ := json.Marshal(body["error"])
	return string(b)
}

// TestARMRefusesBadModelsDataAndDeployments sends what the SDK could send
// but Wharf cannot keep: each is refused with 400 naming the request field
// at fault, and nothing is stored.
func TestARMRefusesBadModelsDataAndDeployments(t *testing.T) {
	ts := servertest.New(t)
	ts.Workspace("ws1")
	token := ts.Principal("ds", [2]string{wharf.RoleDataScientist, "/workspaces/ws1"})
	if st, _, body := armCall(t, ts, token, "PUT", ws1+"/onlineEndpoints/ep?api-version=2022-02-01-preview", `{"properties":{"authMode":"Key"}}`); st != http.StatusCreated {
		t.Fatalf("endpoint: %d %v", st, body)
	}
	for _, tc := range []struct{ path, body, field, says string }{
		{"/models/m/versions/1", `{"properties":{"modelType":"triton_model","modelUri":"azureml://datastores/workspaceblobstore/paths/m"}}`, "properties.modelType", "triton_model"},
		{"/models/m/versions/1", `{"properties":{"modelType":"custom_model"}}`, "properties.modelUri", "required"},
		{"/models/m/versions/1", `{"properties":{"modelUri":"https://example.com/model.pkl"}}`, "properties.modelUri", "not a place Wharf holds files"},
		{"/models/m/versions/1", `{"properties":{"modelUri":"azureml://datastores/workspaceblobstore/paths/nothing/here"}}`, "properties.modelUri", "nothing is stored"},
		{"/models/m/versions/1", `{"properties":{"modelUri":"azureml://jobs/no_such_job/outputs/artifacts/paths/model"}}`, "properties.modelUri", "no_such_job"},
		{"/models/m/versions/1", `{"properties":{"modelUri":"azureml://datastores/workspaceblobstore/paths/../../etc"}}`, "properties.modelUri", ".."},
		{"/models/m/versions/1", `{"properties":`, "", "not the JSON expected"},
		{"/data/d/versions/1", `{"properties":{"dataType":"uri_table","dataUri":"azureml://datastores/workspaceblobstore/paths/a.csv"}}`, "properties.dataType", "uri_table"},
		{"/data/d/versions/1", `{"properties":{"dataType":"uri_file"}}`, "properties.dataUri", "required"},
		{"/onlineEndpoints/ep2", `{"properties":{"authMode":"AADToken"}}`, "properties.authMode", "AADToken"},
		{"/onlineEndpoints/ep", `{"properties":{"authMode":"Key","traffic":{"blue":90}}}`, "properties.traffic", "90%"},
		{"/onlineEndpoints/ep/deployments/blue", `{"properties":{}}`, "properties.model", "needs a model"},
		{"/onlineEndpoints/ep/deployments/blue", `{"properties":{"model":"/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/ws1/models/nope/versions/1"}}`, "properties.model", "nope"},
		{"/onlineEndpoints/ep/deployments/blue", `{"properties":{"model":"https://example.com/m"}}`, "properties.model", "not a model version"},
		{"/onlineEndpoints/ep/deployments/blue", `{"properties":{"model":"azureml:m:1","environmentId":"/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/ws1/environments/none/versions/1"}}`, "properties.environmentId", "none:1 not found"},
		{"/onlineEndpoints/ep/deployments/blue", `{"properties":{"model":"azureml:m:1","requestSettings":{"requestTimeout":"5s"}}}`, "properties.requestSettings.requestTimeout", "ISO 8601"},
		{"/onlineEndpoints/ep/deployments/blue", `{"properties":{"model":"azureml:m:1","endpointComputeType":"Kubernetes"}}`, "properties.endpointComputeType", "Kubernetes"},
		{"/onlineEndpoints/ep/deployments/blue", `{"properties":{"model":"azureml:m:1","livenessProbe":{"period":"ten"}}}`, "properties.livenessProbe.period", "ten"},
		{"/onlineEndpoints/nope/deployments/blue", `{"properties":{"model":"azureml:m:1"}}`, "", "nope"},
	} {
		st, _, body := armCall(t, ts, token, "PUT", ws1+tc.path+"?api-version=2023-04-01-preview", tc.body)
		all := errorText(body)
		want := http.StatusBadRequest
		if strings.HasPrefix(tc.path, "/onlineEndpoints/nope/") {
			want = http.StatusNotFound
		}
		if st != want || tc.field != "" && !strings.Contains(all, `"target":"`+tc.field+`"`) || !strings.Contains(all, tc.says) {
			t.Errorf("PUT %s %s: %d %s", tc.path, tc.body, st, all)
		}
	}
	if st, _, body := armCall(t, ts, token, "POST", ws1+"/onlineEndpoints/ep/token", ""); st != http.StatusBadRequest || !strings.Contains(errorText(body), "it has keys") {
		t.Errorf("a token of a key endpoint: %d %v", st, body)
	}
	ctx := context.Background()
	if _, err := ts.DB.FindRegisteredModel(ctx, "ws1", "m"); !wharf.IsNotFound(err) {
		t.Errorf("a model was stored: %v", err)
	}
	if list, err := ts.DB.ListAssets(ctx, "ws1", wharf.AssetData, "d"); err != nil && !wharf.IsNotFound(err) || len(list) != 0 {
		t.Errorf("data stored: %v %v", list, err)
	}
	if list, err := ts.DB.ListOnlineDeployments(ctx, "ws1", "ep"); err != nil || len(list) != 0 {
		t.Errorf("deployments stored: %v %v", list, err)
	}
	if e, err := ts.DB.FindOnlineEndpoint(ctx, "ws1", "ep"); err != nil || len(e.Traffic) != 0 {
		t.Errorf("endpoint after refusals: %+v %v", e, err)
	}
	if _, err := ts.DB.FindOnlineEndpoint(ctx, "ws1", "ep2"); !wharf.IsNotFound(err) {
		t.Errorf("endpoint ep2 stored: %v", err)
	}
}

// TestDeploymentOperationFailsWithWharfsReason deploys a model whose files
// cannot be loaded: the PUT is accepted, and the operation the SDK polls
// ends Failed with the reason the router could not start it.
func TestDeploymentOperationFailsWithWharfsReason(t *testing.T) {
	ts := servertest.New(t)
	ts.Workspace("ws1")
	router := serving.NewRouter(ts.DB, &serving.Factory{Store: ts.DB, Blobs: ts.Blobs, Dir: t.TempDir()}, ts.Issuer, nil, nil)
	router.Audience = wharfhttp.EndpointAudience
	t.Cleanup(router.Close)
	ts.API.Endpoints = router
	token := ts.Principal("ds", [2]string{wharf.RoleDataScientist, "/workspaces/ws1"})
	ctx := context.Background()
	for name, content := range map[string]string{
		"MLmodel":    "flavors:\n  wharf_linear:\n    data: model.json\n",
		"model.json": `{"columns": ["a", "b"], "coef": [1]}`,
	} {
		digest, size, err := ts.Blobs.Put(ctx, bytes.NewReader([]byte(content)))
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.DB.PutArtifact(ctx, &wharf.Artifact{Workspace: "ws1", Path: "uploads/broken/" + name, Digest: digest, Size: size}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/models/broken/versions/1", `{"properties":{"modelType":"mlflow_model","modelUri":"mlflow-artifacts:/uploads/broken"}}`},
		{"PUT", "/onlineEndpoints/ep", `{"properties":{"authMode":"Key"}}`},
	} {
		if st, _, body := armCall(t, ts, token, c.method, ws1+c.path, c.body); st/100 != 2 {
			t.Fatalf("%s %s: %d %v", c.method, c.path, st, body)
		}
	}
	st, hdr, body := armCall(t, ts, token, "PUT", ws1+"/onlineEndpoints/ep/deployments/blue",
		`{"properties":{"model":"/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/ws1/models/broken/versions/1"}}`)
	op := hdr.Get("Azure-AsyncOperation")
	if st != http.StatusCreated || !strings.HasSuffix(op, "/onlineEndpoints/ep/deployments/blue/operations/put") {
		t.Fatalf("deployment: %d %q %v", st, op, body)
	}
	var status map[string]any
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, _, status = armCall(t, ts, token, "GET", strings.TrimPrefix(op, ts.API.URL), "")
		if status["status"] != "InProgress" {
			break
		}
	}
	if msg := errorText(status); status["status"] != "Failed" || !strings.Contains(msg, "blue failed to start") || !strings.Contains(msg, "coefficients") {
		t.Errorf("operation: %v", status)
	}
	// The poll of a deployment that was then deleted says so.
	if st, hdr, _ := armCall(t, ts, token, "DELETE", ws1+"/onlineEndpoints/ep/deployments/blue", ""); st != http.StatusAccepted {
		t.Fatalf("delete: %d", st)
	} else if _, _, del := armCall(t, ts, token, "GET", strings.TrimPrefix(hdr.Get("Azure-AsyncOperation"), ts.API.URL), ""); del["status"] != "Succeeded" {
		t.Errorf("delete operation: %v", del)
	}
	if _, _, put := armCall(t, ts, token, "GET", strings.TrimPrefix(op, ts.API.URL), ""); put["status"] != "Failed" || !strings.Contains(errorText(put), "no longer exists") {
		t.Errorf("put operation after the delete: %v", put)
	}
}
