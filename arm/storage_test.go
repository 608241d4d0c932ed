package arm_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/http/servertest"
)

// blobServer is a server with workspaces ws1 and ws2, each with its
// default datastore, and a Data Scientist of ws1.
func blobServer(t *testing.T) (*servertest.Server, string) {
	t.Helper()
	ts := servertest.New(t)
	for _, ws := range []string{"ws1", "ws2"} {
		ts.Workspace(ws)
		if _, err := ts.DB.PutDatastore(context.Background(), &wharf.Datastore{Workspace: ws, Name: wharf.DefaultDatastore, Type: wharf.DatastoreLocal, IsDefault: true}); err != nil {
			t.Fatal(err)
		}
	}
	return ts, ts.Principal("ds", [2]string{wharf.RoleDataScientist, "/workspaces/ws1"})
}

// armPost posts to an ARM route of ws1 and decodes the answer into out.
func armPost(t *testing.T, ts *servertest.Server, token, path, body string, out any) {
	t.Helper()
	status, _, got := armCall(t, ts, token, http.MethodPost, ws1+path+"?api-version=2024-10-01-preview", body)
	if status != http.StatusOK {
		t.Fatalf("POST %s: %d %v", path, status, got)
	}
	b, _ := json.Marshal(got)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

// blobCall calls the Blob API path-style, as a client given the server's
// own host would, and returns the status and Azure's error code.
func blobCall(t *testing.T, ts *servertest.Server, method, container, blob, query, body string) (int, string) {
	t.Helper()
	u := ts.HTTP.URL + "/blob/wharf/" + container
	if blob != "" {
		u += "/" + blob
	}
	req, _ := http.NewRequest(method, u+"?"+query, strings.NewReader(body))
	req.Header.Set("x-ms-blob-type", "BlockBlob")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("x-ms-error-code")
}

// TestBlobSignatures: the Blob API accepts a request only with a signature
// the server issued, unaltered, for the container or folder the request
// names: a datastore's secret is its own workspace's container and no
// other, a code upload's its own folder and no other, and a signature
// edited in any field is refused. Nothing is written by a refused call.
func TestBlobSignatures(t *testing.T) {
	ts, token := blobServer(t)
	var secret struct{ SecretsType, SasToken string }
	armPost(t, ts, token, "/datastores/workspaceblobstore/listSecrets", `{"expirableSecret":true,"expireAfterHours":1}`, &secret)
	if secret.SecretsType != "Sas" || !strings.Contains(secret.SasToken, "sig=") {
		t.Fatalf("listSecrets: %+v", secret)
	}
	var pending struct {
		BlobReferenceForConsumption struct {
			BlobURI    string `json:"blobUri"`
			Credential struct {
				SasURI string `json:"sasUri"`
			}
		}
	}
	armPost(t, ts, token, "/codes/c1/versions/1/startPendingUpload", `{"pendingUploadType":"TemporaryBlobReference"}`, &pending)
	codeURL, err := url.Parse(pending.BlobReferenceForConsumption.Credential.SasURI)
	if err != nil {
		t.Fatal(err)
	}
	codeFolder := strings.TrimPrefix(codeURL.Path, "/ws1.workspaceblobstore/") // LocalUpload/<id>
	codeSAS := codeURL.RawQuery

	const own = "ws1.workspaceblobstore"
	if s, code := blobCall(t, ts, http.MethodPut, own, "LocalUpload/h/a.csv", secret.SasToken, "a,b\n"); s != http.StatusCreated {
		t.Fatalf("put with the datastore's secret: %d %s", s, code)
	}
	if s, _ := blobCall(t, ts, http.MethodPut, own, codeFolder+"/src/train.py", codeSAS, "print(1)\n"); s != http.StatusCreated {
		t.Fatalf("put in the code folder: %d", s)
	}
	tampered := func(q, key, value string) string {
		v, _ := url.ParseQuery(q)
		v.Set(key, value)
		return v.Encode()
	}
	for _, tc := range []struct {
		what, container, blob, query, code string
	}{
		{"no signature", own, "x.csv", "", "AuthenticationFailed"},
		{"another workspace's container", "ws2.workspaceblobstore", "x.csv", secret.SasToken, "AuthenticationFailed"},
		{"a longer expiry", own, "x.csv", tampered(secret.SasToken, "se", "2099-01-01T00:00:00Z"), "AuthenticationFailed"},
		{"more permissions", own, "x.csv", tampered(codeSAS, "sp", "racwdl"), "AuthenticationFailed"},
		{"the whole container with a folder's signature", own, "x.csv", tampered(codeSAS, "sr", "c"), "AuthenticationFailed"},
		{"outside the code folder", own, "LocalUpload/other/src/x.py", codeSAS, "AuthenticationFailed"},
		{"a sibling of the code folder", own, codeFolder + "x/src/x.py", codeSAS, "AuthenticationFailed"},
		{"another principal's", own, "x.csv", tampered(secret.SasToken, "skoid", "someone-else"), "AuthenticationFailed"},
		{"an expired signature", own, "x.csv", "sv=2025-01-05&sr=c&sp=racwl&se=2000-01-01T00%3A00%3A00Z&spr=https&skoid=x&sig=AAAA", "AuthenticationFailed"},
	} {
		if s, code := blobCall(t, ts, http.MethodPut, tc.container, tc.blob, tc.query, "x"); s != http.StatusForbidden || code != tc.code {
			t.Errorf("%s: %d %q, want 403 %s", tc.what, s, code, tc.code)
		}
	}
	for _, ws := range []string{"ws1", "ws2"} {
		files, err := ts.DB.ListDatastoreFiles(context.Background(), ws, wharf.DefaultDatastore, "")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"ws1": 2, "ws2": 0}[ws]
		if len(files) != want {
			t.Errorf("%s holds %d files after the refused calls, want %d", ws, len(files), want)
		}
	}
	// Reads need the signature too; a missing blob is Azure's 404.
	if s, code := blobCall(t, ts, http.MethodHead, own, "LocalUpload/h/a.csv", "", ""); s != http.StatusForbidden || code != "AuthenticationFailed" {
		t.Errorf("HEAD without a signature: %d %s", s, code)
	}
	if s, code := blobCall(t, ts, http.MethodHead, own, "LocalUpload/h/none.csv", secret.SasToken, ""); s != http.StatusNotFound || code != "BlobNotFound" {
		t.Errorf("HEAD of a missing blob: %d %s", s, code)
	}
	// If-None-Match: * keeps what is there.
	req, _ := http.NewRequest(http.MethodPut, ts.HTTP.URL+"/blob/wharf/"+own+"/LocalUpload/h/a.csv?"+secret.SasToken, strings.NewReader("other"))
	req.Header.Set("If-None-Match", "*")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("x-ms-error-code") != "BlobAlreadyExists" {
		t.Errorf("If-None-Match on an existing blob: %d %s", resp.StatusCode, resp.Header.Get("x-ms-error-code"))
	}
}
