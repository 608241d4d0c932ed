package arm_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/http/servertest"
)

const ws1 = "/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/ws1"

// TestPutEnvironmentRefusesBadInput sends what the SDK could send but Wharf
// cannot keep: each is refused naming the field at fault, and nothing is
// stored.
func TestPutEnvironmentRefusesBadInput(t *testing.T) {
	ts := servertest.New(t)
	ts.Workspace("ws1")
	token := ts.Principal("ds", [2]string{wharf.RoleDataScientist, "/workspaces/ws1"})
	for _, tc := range []struct{ body, field, says string }{
		{`{"properties":{"build":{"contextUri":"https://x/ctx"}}}`, "properties.build", "build context"},
		{`{"properties":{"image":"python:3.11-slim","condaFile":"dependencies: [a"}}`, "properties.condaFile", "not YAML"},
		{`{"properties":{"image":"python:3.11-slim","condaFile":"dependencies: 3"}}`, "conda_file", "dependencies"},
		{`{"properties":`, "", "not the JSON expected"},
	} {
		req, _ := http.NewRequest(http.MethodPut, ts.HTTP.URL+ws1+"/environments/e/versions/1?api-version=2023-04-01-preview", strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct{ Error wharf.Error }
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		all := out.Error.Message + " " + out.Error.Field
		for _, d := range out.Error.Details {
			all += " " + d.Message + " " + d.Field
		}
		if err != nil || resp.StatusCode != http.StatusBadRequest || !strings.Contains(all, tc.field) || !strings.Contains(all, tc.says) {
			t.Errorf("%s: %d %+v (%v)", tc.body, resp.StatusCode, out.Error, err)
		}
	}
	if list, err := ts.DB.ListAssets(t.Context(), "ws1", wharf.AssetEnvironment, "e"); !wharf.IsNotFound(err) || len(list) != 0 {
		t.Errorf("stored after refusals: %v %v", list, err)
	}
}
