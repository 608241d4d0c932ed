package http_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/snapshot"
)

func sha(content string) string {
	sum := sha256.Sum256([]byte(content))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// withBlobs returns the blob store the fixture's server keeps content in,
// for the REST content routes and the MLflow artifact proxy alike.
func (f *fixture) withBlobs() *blob.FS {
	return f.ts.Blobs
}

// blobStatus sends a bare GET or HEAD to a workspace's content route and
// returns the status and body.
func (f *fixture) blobStatus(method, token, ws, digest string) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.http.URL+"/api/v1/workspaces/"+ws+"/blobs/"+digest, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBlobsAreReadOnlyThroughAWorkspaceThatHoldsThem stores content in
// workspace B and asks for it through workspace A, as a principal who may
// read A but not B: the content routes answer 404, as for content nobody
// stored, until the same bytes are uploaded through A. Naming B's digest
// in an asset of A, directly or in a folder manifest, is refused too.
func TestBlobsAreReadOnlyThroughAWorkspaceThatHoldsThem(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.withBlobs()
	f.workspace("ws-a")
	f.workspace("ws-b")
	ownerTok := f.principal("owner", [2]string{wharf.RoleOwner, "/"})
	aliceTok := f.principal("alice", [2]string{wharf.RoleDataScientist, "/workspaces/ws-a"})
	owner, alice := f.client(ownerTok), f.client(aliceTok)
	upload := func(c *wharfhttp.Client, ws, content string) {
		t.Helper()
		if err := c.Upload(ctx, "/api/v1/workspaces/"+ws+"/blobs/"+sha(content), strings.NewReader(content), int64(len(content))); err != nil {
			t.Fatal(err)
		}
	}

	const secret = "b's training data"
	upload(owner, "ws-b", secret)
	if status, body := f.blobStatus("GET", ownerTok, "ws-b", sha(secret)); status != 200 || body != secret {
		t.Fatalf("B's own content through B: %d %q", status, body)
	}
	for _, method := range []string{"GET", "HEAD"} {
		if status, _ := f.blobStatus(method, aliceTok, "ws-a", sha(secret)); status != 404 {
			t.Errorf("%s of B's content through A: %d, want 404", method, status)
		}
		if status, _ := f.blobStatus(method, ownerTok, "ws-a", sha(secret)); status != 404 {
			t.Errorf("%s of B's content through A by an owner of both: %d, want 404", method, status)
		}
		if status, _ := f.blobStatus(method, aliceTok, "ws-b", sha(secret)); status != 403 {
			t.Errorf("%s of B's content through B by a principal of A: %d, want 403", method, status)
		}
	}

	// An asset of A cannot adopt B's content by naming its digest...
	err := alice.Do(ctx, "POST", "/api/v1/workspaces/ws-a/data/stolen/versions", map[string]any{"digest": sha(secret)}, nil)
	wantField(t, "asset naming B's content", err, "digest", sha(secret))
	// ...nor by listing it in a folder manifest of its own.
	manifest := fmt.Sprintf(`{"version":1,"files":[{"path":"data.csv","mode":420,"digest":%q,"size":%d}]}`, sha(secret), len(secret))
	upload(alice, "ws-a", manifest)
	err = alice.Do(ctx, "POST", "/api/v1/workspaces/ws-a/data/stolen/versions", map[string]any{"digest": sha(manifest)}, nil)
	wantField(t, "asset naming a folder of B's content", err, "digest", "folder")
	if status, _ := f.blobStatus("GET", aliceTok, "ws-a", sha(secret)); status != 404 {
		t.Errorf("B's content through A after the refused assets: %d, want 404", status)
	}

	// Whoever uploads the bytes holds them.
	upload(alice, "ws-a", secret)
	if status, body := f.blobStatus("GET", aliceTok, "ws-a", sha(secret)); status != 200 || body != secret {
		t.Errorf("the same bytes uploaded through A: %d %q", status, body)
	}
	if err := alice.Do(ctx, "POST", "/api/v1/workspaces/ws-a/data/mine/versions", map[string]any{"digest": sha(manifest)}, nil); err != nil {
		t.Errorf("asset of a folder whose files A holds: %v", err)
	}

	// Content the server writes into a workspace is the workspace's: an
	// artifact logged through A's MLflow API.
	const artifact = "a's model weights"
	req, _ := http.NewRequest("PUT", f.http.URL+"/mlflow/v1.0/workspaces/ws-a/api/2.0/mlflow-artifacts/artifacts/models/m/w.bin", bytes.NewReader([]byte(artifact)))
	req.Header.Set("Authorization", "Bearer "+aliceTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("artifact upload: %v %v", resp, err)
	}
	resp.Body.Close()
	if status, body := f.blobStatus("GET", aliceTok, "ws-a", sha(artifact)); status != 200 || body != artifact {
		t.Errorf("an artifact of A through A: %d %q", status, body)
	}
	if status, _ := f.blobStatus("GET", ownerTok, "ws-b", sha(artifact)); status != 404 {
		t.Errorf("an artifact of A through B: %d, want 404", status)
	}
}

func wantField(t *testing.T, what string, err error, field, inMessage string) {
	t.Helper()
	var we *wharf.Error
	if !errors.As(err, &we) || we.Code != wharf.EINVALID || we.Field != field || !strings.Contains(we.Message, inMessage) {
		t.Errorf("%s: %v, want a 400 on %s mentioning %q", what, err, field, inMessage)
	}
}

// TestBackfillRecordsWhatEarlierDataNamed stores content the way a server
// did before blob references were kept — a job's output folder, a code
// snapshot named only in a schedule — and checks that the backfill makes
// every file a download needs readable through the workspace, once, and
// through no other.
func TestBackfillRecordsWhatEarlierDataNamed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	blobs := f.withBlobs()
	f.workspace("ws")
	f.workspace("other")
	tok := f.principal("owner", [2]string{wharf.RoleOwner, "/"})
	put := func(content string) snapshot.File {
		t.Helper()
		d, n, err := blobs.Put(ctx, strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		return snapshot.File{Path: content + ".txt", Mode: snapshot.ModeFile, Digest: d, Size: n}
	}
	output, err := snapshot.FromStored(ctx, []snapshot.File{put("metrics"), put("model")}, blobs)
	if err != nil {
		t.Fatal(err)
	}
	code := put("train.py")
	if err := f.db.CreateJobs(ctx, []*wharf.Job{{Workspace: "ws", Name: "calm_owl", Type: wharf.JobTypeCommand, Status: wharf.JobCompleted,
		Outputs: map[string]wharf.JobOutput{"model": {Type: "uri_folder", Kind: "folder", Digest: output.Digest}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.PutSchedule(ctx, &wharf.Schedule{Workspace: "ws", Name: "nightly", Trigger: json.RawMessage(`{}`),
		Job: json.RawMessage(`{"steps":[{"name":"train","spec":{"code_digest":"` + code.Digest + `"}}]}`)}); err != nil {
		t.Fatal(err)
	}
	want := append(output.Digests(), code.Digest)
	for _, d := range want {
		if status, _ := f.blobStatus("GET", tok, "ws", d); status != 404 {
			t.Fatalf("%s before the backfill: %d, want 404", d, status)
		}
	}

	if err := f.srv.BackfillBlobRefs(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range want {
		if status, _ := f.blobStatus("GET", tok, "ws", d); status != 200 {
			t.Errorf("%s after the backfill: %d, want 200", d, status)
		}
		if status, _ := f.blobStatus("GET", tok, "other", d); status != 404 {
			t.Errorf("%s through another workspace after the backfill: %d, want 404", d, status)
		}
	}

	// It runs once: data stored without references later is not adopted
	// by a second start.
	late := put("late")
	if err := f.db.CreateJobs(ctx, []*wharf.Job{{Workspace: "ws", Name: "late_owl", Type: wharf.JobTypeCommand, Status: wharf.JobCompleted,
		Outputs: map[string]wharf.JobOutput{"x": {Type: "uri_file", Kind: "file", Digest: late.Digest}}}}); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.BackfillBlobRefs(ctx); err != nil {
		t.Fatal(err)
	}
	if status, _ := f.blobStatus("GET", tok, "ws", late.Digest); status != 404 {
		t.Errorf("content named after the backfill ran: %d, want 404", status)
	}
}
