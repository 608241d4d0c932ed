package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/wharfml/wharf"
)

// digestOf returns a well-formed blob digest for a label.
func digestOf(label string) string {
	sum := sha256.Sum256([]byte(label))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func testBlobRefs(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	mkWorkspace(t, s, "other")
	a, b, c := digestOf("a"), digestOf("b"), digestOf("c")
	unreferenced := func(ws string, digests ...string) []string {
		t.Helper()
		got, err := s.UnreferencedBlobs(ctx(t), ws, digests)
		must(t, err)
		return got
	}

	same(t, "before any reference", unreferenced("ws", a, b), []string{a, b})
	must(t, s.AddBlobRefs(ctx(t), "ws", []string{a, a, b}))
	must(t, s.AddBlobRefs(ctx(t), "ws", []string{b}))
	same(t, "after adding a and b", unreferenced("ws", c, a, b, c), []string{c})
	same(t, "another workspace", unreferenced("other", a), []string{a})
	same(t, "no digests", unreferenced("ws"), []string{})
	wantCode(t, s.AddBlobRefs(ctx(t), "nope", []string{a}), wharf.ENOTFOUND)

	// A folder of many files is recorded and checked whole.
	many := make([]string, 1234)
	for i := range many {
		many[i] = digestOf(fmt.Sprint("file", i))
	}
	must(t, s.AddBlobRefs(ctx(t), "other", many))
	same(t, "a large folder", unreferenced("other", append(many, c)...), []string{c})

	// Rows that name content give the workspace its reference.
	d1, d2, d3, code := digestOf("asset"), digestOf("artifact"), digestOf("datastore file"), digestOf("code")
	must(t, s.CreateAsset(ctx(t), &wharf.Asset{Workspace: "ws", Kind: wharf.AssetData, Name: "taxi", Digest: d1,
		Spec: json.RawMessage(`{"code_digest": "` + code + `"}`)}))
	must(t, s.PutArtifact(ctx(t), &wharf.Artifact{Workspace: "ws", Path: "models/m/model.pkl", Digest: d2, Size: 1}))
	mkDatastore(t, s, "ws", "blobs", true)
	must(t, s.PutDatastoreFile(ctx(t), &wharf.DatastoreFile{Workspace: "ws", Datastore: "blobs", Path: "in/taxi.csv", Digest: d3, Kind: "file"}))
	same(t, "asset, artifact and datastore file", unreferenced("ws", d1, d2, d3), []string{})
	// A digest inside a spec is named, not referenced: only what is
	// uploaded or written by the server is.
	same(t, "a digest in an asset spec", unreferenced("ws", code), []string{code})

	out, in := digestOf("job output"), digestOf("job input")
	must(t, s.CreateJobs(ctx(t), []*wharf.Job{{Workspace: "ws", Name: "calm_owl", Type: wharf.JobTypeCommand, Status: wharf.JobCompleted,
		Spec:    json.RawMessage(`{"command": "python train.py", "code_digest": "` + code + `"}`),
		Inputs:  map[string]wharf.JobValue{"data": {Type: "uri_file", Digest: in}},
		Outputs: map[string]wharf.JobOutput{"model": {Type: "uri_folder", Kind: "folder", Digest: out}}}}))
	named, err := s.NamedBlobs(ctx(t), "ws")
	must(t, err)
	slices.Sort(named)
	want := []string{d1, d2, d3, code, out, in}
	slices.Sort(want)
	same(t, "named blobs", named, want)
	named, err = s.NamedBlobs(ctx(t), "other")
	must(t, err)
	same(t, "named blobs of a workspace with only references", named, []string{})

	// References go with their workspace; a new one of the same name
	// starts with none.
	must(t, s.DeleteWorkspace(ctx(t), "ws"))
	mkWorkspace(t, s, "ws")
	same(t, "after the workspace was deleted and made again", unreferenced("ws", a, d1), []string{a, d1})
}
