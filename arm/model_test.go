package arm_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/http/servertest"
	"github.com/wharfml/wharf/snapshot"
)

// TestModelFromAJobOutput registers a model from a folder below a job's
// named output, as `Model(path="azureml://jobs/<job>/outputs/<output>/
// paths/model")` names it: the version holds that folder's files, laid
// out as a local folder of the same name registers them, and lists them
// in the flavors of its MLmodel.
func TestModelFromAJobOutput(t *testing.T) {
	ts := servertest.New(t)
	ts.Workspace("ws1")
	token := ts.Principal("ds", [2]string{wharf.RoleDataScientist, "/workspaces/ws1"})
	ctx := context.Background()
	out := t.TempDir()
	for name, content := range map[string]string{
		"model/MLmodel":          "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    env:\n      conda: conda.yaml\n",
		"model/model.pkl":        "not really a pickle",
		"metrics/evaluation.txt": "r2 0.9",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(out, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := snapshot.Take(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := snapshot.Upload(ctx, m, out, ts.Blobs); err != nil {
		t.Fatal(err)
	}
	job := &wharf.Job{Workspace: "ws1", Name: "train_1", Type: "command", Status: wharf.JobCompleted, SubmittedBy: "app-ds",
		Outputs: map[string]wharf.JobOutput{"model_output": {Type: "uri_folder", Kind: "folder", Digest: m.Digest}}}
	if err := ts.DB.CreateJobs(ctx, []*wharf.Job{job}); err != nil {
		t.Fatal(err)
	}
	st, _, body := armCall(t, ts, token, "PUT", ws1+"/models/from-job/versions/1",
		`{"properties":{"modelType":"mlflow_model","modelUri":"azureml://jobs/train_1/outputs/model_output/paths/model/"}}`)
	if st != http.StatusOK {
		t.Fatalf("register: %d %v", st, body)
	}
	props, _ := body["properties"].(map[string]any)
	flavors, _ := json.Marshal(props["flavors"])
	if uri, _ := props["modelUri"].(string); !strings.HasPrefix(uri, "mlflow-artifacts:/models/from-job/") || !strings.HasSuffix(uri, "/model") ||
		string(flavors) != `{"python_function":{"data":{"env":"{\"conda\":\"conda.yaml\"}","loader_module":"mlflow.sklearn"}}}` {
		t.Errorf("version: %v", body)
	}
	v, err := ts.DB.FindModelAssetVersion(ctx, "ws1", "from-job", "1")
	if err != nil {
		t.Fatal(err)
	}
	local, err := snapshot.ModelContentDigest(filepath.Join(out, "model"))
	if err != nil {
		t.Fatal(err)
	}
	if v.ContentDigest != local || v.Type != wharf.ModelTypeMLflow {
		t.Errorf("stored %+v; the folder registered from disk would be %s", v, local)
	}
	// The same files again are the same version; a version never changes.
	if st, _, body := armCall(t, ts, token, "PUT", ws1+"/models/from-job/versions/1",
		`{"properties":{"modelType":"mlflow_model","modelUri":"azureml://jobs/train_1/outputs/model_output/paths/model"}}`); st != http.StatusOK {
		t.Errorf("again: %d %v", st, body)
	}
	if st, _, body := armCall(t, ts, token, "PUT", ws1+"/models/from-job/versions/1",
		`{"properties":{"modelType":"mlflow_model","modelUri":"azureml://jobs/train_1/outputs/model_output/paths/metrics"}}`); st != http.StatusConflict || !strings.Contains(errorText(body), "never changes") {
		t.Errorf("other files as version 1: %d %v", st, body)
	}
	if st, _, body := armCall(t, ts, token, "PUT", ws1+"/models/from-job/versions/2",
		`{"properties":{"modelUri":"azureml://jobs/train_1/outputs/no_output/paths/model"}}`); st != http.StatusBadRequest || !strings.Contains(errorText(body), "no_output") {
		t.Errorf("a missing output: %d %v", st, body)
	}
}
