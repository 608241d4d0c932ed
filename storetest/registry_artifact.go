package storetest

import (
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

func putArtifact(t *testing.T, a wharf.ArtifactService, workspace, path, digest string) *wharf.Artifact {
	t.Helper()
	art := &wharf.Artifact{Workspace: workspace, Path: path, Digest: digest, Size: int64(len(path))}
	must(t, a.PutArtifact(ctx(t), art))
	return art
}

func listPaths(t *testing.T, a wharf.ArtifactService, workspace, dir string) []string {
	t.Helper()
	list, err := a.ListArtifacts(ctx(t), workspace, dir)
	must(t, err)
	out := []string{}
	for _, art := range list {
		out = append(out, art.Path)
	}
	return out
}

func testArtifacts(t *testing.T, open Opener) {
	s := open(t)
	clk := withClock(t, s)
	mkWorkspace(t, s, "ws")
	a := artifactsOf(t, s)

	_, err := a.FindArtifact(ctx(t), "ws", "models/m/MLmodel")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, `"models/m/MLmodel"`)

	art := &wharf.Artifact{Workspace: "ws", Path: "models/m/MLmodel", Digest: "sha256:aa", Size: 10}
	must(t, a.PutArtifact(ctx(t), art))
	if art.UpdatedAt != millis(clk) {
		t.Errorf("UpdatedAt = %d, want %d", art.UpdatedAt, millis(clk))
	}
	got, err := a.FindArtifact(ctx(t), "ws", "models/m/MLmodel")
	must(t, err)
	same(t, "found", got, art)

	// Putting again replaces the path's content.
	clk.Advance(time.Second)
	art2 := &wharf.Artifact{Workspace: "ws", Path: "models/m/MLmodel", Digest: "sha256:bb", Size: 20}
	must(t, a.PutArtifact(ctx(t), art2))
	got, err = a.FindArtifact(ctx(t), "ws", "models/m/MLmodel")
	must(t, err)
	same(t, "replaced", got, art2)
	same(t, "one entry", listPaths(t, a, "ws", ""), []string{"models/m/MLmodel"})

	for _, bad := range []string{"", "/abs", "dir/", "a//b", "./a", "a/../b", "a/.", "nul\x00"} {
		err := a.PutArtifact(ctx(t), &wharf.Artifact{Workspace: "ws", Path: bad, Digest: "d"})
		if wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("path %q: err %v, want EINVALID", bad, err)
		}
	}
	wantCode(t, a.PutArtifact(ctx(t), &wharf.Artifact{Workspace: "ws", Path: "x"}), wharf.EINVALID)
	wantCode(t, a.PutArtifact(ctx(t), &wharf.Artifact{Workspace: "ws", Path: "x", Digest: "d", Size: -1}), wharf.EINVALID)
	err = a.PutArtifact(ctx(t), &wharf.Artifact{Workspace: "nope", Path: "x", Digest: "d"})
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, `workspace "nope" not found`)
	_, err = a.ListArtifacts(ctx(t), "nope", "")
	wantCode(t, err, wharf.ENOTFOUND)
	wantCode(t, a.DeleteArtifacts(ctx(t), "ws", ""), wharf.EINVALID)
}

// testArtifactPrefixes lists and deletes directories whose names hold
// LIKE's wildcards and characters that sort just around '/'.
func testArtifactPrefixes(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	a := artifactsOf(t, s)
	paths := []string{
		"a", "a/1", "a/b/2", "a/b/c/3", // a, and what is below it
		"a-c", "a.txt", "a0", "aX/1", "ab", "a b/1", // siblings that share the prefix "a"
		"a_b/x", "a%b/y", "aXb/z", "a\\b/w", // wildcards, and what they would match
		"b/a/1", "é/1",
	}
	for _, p := range paths {
		putArtifact(t, a, "ws", p, "d-"+p)
	}
	same(t, "all, sorted", listPaths(t, a, "ws", ""), []string{
		"a", "a b/1", "a%b/y", "a-c", "a.txt", "a/1", "a/b/2", "a/b/c/3", "a0", "aX/1", "aXb/z",
		"a\\b/w", "a_b/x", "ab", "b/a/1", "é/1",
	})
	same(t, "a", listPaths(t, a, "ws", "a"), []string{"a", "a/1", "a/b/2", "a/b/c/3"})
	same(t, "a/", listPaths(t, a, "ws", "a/"), []string{"a", "a/1", "a/b/2", "a/b/c/3"})
	same(t, "a/b", listPaths(t, a, "ws", "a/b"), []string{"a/b/2", "a/b/c/3"})
	same(t, "a_b", listPaths(t, a, "ws", "a_b"), []string{"a_b/x"})
	same(t, "a%b", listPaths(t, a, "ws", "a%b"), []string{"a%b/y"})
	same(t, "a\\b", listPaths(t, a, "ws", "a\\b"), []string{"a\\b/w"})
	same(t, "a%", listPaths(t, a, "ws", "a%"), []string{})
	same(t, "a b", listPaths(t, a, "ws", "a b"), []string{"a b/1"})
	same(t, "file", listPaths(t, a, "ws", "a/b/2"), []string{"a/b/2"})
	same(t, "é", listPaths(t, a, "ws", "é"), []string{"é/1"})
	same(t, "missing", listPaths(t, a, "ws", "zz"), []string{})

	must(t, a.DeleteArtifacts(ctx(t), "ws", "a_b"))
	must(t, a.DeleteArtifacts(ctx(t), "ws", "a"))
	// Deleting what is not there is fine.
	must(t, a.DeleteArtifacts(ctx(t), "ws", "a"))
	same(t, "after delete", listPaths(t, a, "ws", ""), []string{
		"a b/1", "a%b/y", "a-c", "a.txt", "a0", "aX/1", "aXb/z", "a\\b/w", "ab", "b/a/1", "é/1",
	})
	_, err := a.FindArtifact(ctx(t), "ws", "a/b/c/3")
	wantCode(t, err, wharf.ENOTFOUND)
	must(t, a.DeleteArtifacts(ctx(t), "ws", "b/a/1"))
	same(t, "b", listPaths(t, a, "ws", "b"), []string{})
}

// testRegistryWorkspaceIsolation: each workspace is its own namespace.
func testRegistryWorkspaceIsolation(t *testing.T, open Opener) {
	s, r, _ := openRegistry(t, open)
	mkWorkspace(t, s, "ws2")
	a := artifactsOf(t, s)

	mkRegModel(t, r, "ws", "taxi")
	mkRegVersion(t, r, "ws", "taxi", "r")
	mkRegVersion(t, r, "ws", "taxi", "r")
	must(t, r.SetModelAlias(ctx(t), "ws", "taxi", "champion", 2))
	// The same name in another workspace is another model.
	mkRegModel(t, r, "ws2", "taxi")
	if v := mkRegVersion(t, r, "ws2", "taxi", "r"); v.Version != 1 {
		t.Errorf("ws2's first version = %d", v.Version)
	}
	_, err := r.FindModelVersion(ctx(t), "ws2", "taxi", 2)
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = r.FindModelVersionByAlias(ctx(t), "ws2", "taxi", "champion")
	wantCode(t, err, wharf.ENOTFOUND)
	wantCode(t, r.SetModelAlias(ctx(t), "ws2", "taxi", "champion", 2), wharf.ENOTFOUND)
	mkRegModel(t, r, "ws", "only-ws")
	_, err = r.FindRegisteredModel(ctx(t), "ws2", "only-ws")
	wantCode(t, err, wharf.ENOTFOUND)

	ms, _, err := r.SearchRegisteredModels(ctx(t), "ws2", wharf.SearchQuery{})
	must(t, err)
	same(t, "ws2 models", modelNames(ms), []string{"taxi"})
	vs, _, err := r.SearchModelVersions(ctx(t), "ws2", wharf.SearchQuery{Filter: "name = 'taxi'"})
	must(t, err)
	same(t, "ws2 versions", versionNumbers(vs), []string{"taxi/1"})
	if m, err := r.FindRegisteredModel(ctx(t), "ws2", "taxi"); err != nil || len(m.Aliases) != 0 {
		t.Errorf("ws2 model %+v, %v", m, err)
	}

	// Deleting in one workspace leaves the other alone.
	must(t, r.DeleteRegisteredModel(ctx(t), "ws2", "taxi"))
	if len(findModel(t, r, "taxi").LatestVersions) != 1 {
		t.Error("ws's model lost versions")
	}

	lm := mkLoggedModel(t, r, "ws", "0", "m")
	_, err = r.FindLoggedModel(ctx(t), "ws2", lm.ID)
	wantCode(t, err, wharf.ENOTFOUND)
	wantCode(t, r.DeleteLoggedModel(ctx(t), "ws2", lm.ID), wharf.ENOTFOUND)
	lms, _, err := r.SearchLoggedModels(ctx(t), "ws2", wharf.SearchQuery{ExperimentIDs: []string{"0"}})
	must(t, err)
	if len(lms) != 0 {
		t.Errorf("ws2 sees %d logged models", len(lms))
	}

	putArtifact(t, a, "ws", "x/y", "d1")
	putArtifact(t, a, "ws2", "x/z", "d2")
	same(t, "ws artifacts", listPaths(t, a, "ws", "x"), []string{"x/y"})
	same(t, "ws2 artifacts", listPaths(t, a, "ws2", ""), []string{"x/z"})
	_, err = a.FindArtifact(ctx(t), "ws2", "x/y")
	wantCode(t, err, wharf.ENOTFOUND)
	must(t, a.DeleteArtifacts(ctx(t), "ws2", "x"))
	same(t, "ws artifacts after ws2 delete", listPaths(t, a, "ws", ""), []string{"x/y"})
}

// testRegistryWorkspaceDeleteCascade: deleting a workspace removes its
// registry, logged models and artifacts; a workspace of the same name
// starts empty.
func testRegistryWorkspaceDeleteCascade(t *testing.T, open Opener) {
	s, r, _ := openRegistry(t, open)
	mkWorkspace(t, s, "keep")
	a := artifactsOf(t, s)
	for _, ws := range []string{"ws", "keep"} {
		m := &wharf.RegisteredModel{Workspace: ws, Name: "taxi", Tags: map[string]string{"k": "v"}}
		must(t, r.CreateRegisteredModel(ctx(t), m))
		v := &wharf.ModelVersion{Workspace: ws, Name: "taxi", Tags: map[string]string{"k": "v"}}
		must(t, r.CreateModelVersion(ctx(t), v))
		must(t, r.SetModelAlias(ctx(t), ws, "taxi", "champion", 1))
		lm := &wharf.LoggedModel{Workspace: ws, ExperimentID: "0", Name: "m",
			Tags: map[string]string{"k": "v"}, Params: map[string]string{"p": "1"}}
		must(t, r.CreateLoggedModel(ctx(t), lm))
		putArtifact(t, a, ws, "models/"+lm.ID+"/MLmodel", "d")
	}

	must(t, s.DeleteWorkspace(ctx(t), "ws"))
	mkWorkspace(t, s, "ws")
	_, err := r.FindRegisteredModel(ctx(t), "ws", "taxi")
	wantCode(t, err, wharf.ENOTFOUND)
	ms, _, err := r.SearchRegisteredModels(ctx(t), "ws", wharf.SearchQuery{})
	must(t, err)
	vs, _, err := r.SearchModelVersions(ctx(t), "ws", wharf.SearchQuery{})
	must(t, err)
	lms, _, err := r.SearchLoggedModels(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: []string{"0"}})
	must(t, err)
	arts := listPaths(t, a, "ws", "")
	if len(ms) != 0 || len(vs) != 0 || len(lms) != 0 || len(arts) != 0 {
		t.Fatalf("re-created workspace has %d models, %d versions, %d logged models, %d artifacts",
			len(ms), len(vs), len(lms), len(arts))
	}
	// Re-creating the model starts from scratch: no tags, version 1.
	mkRegModel(t, r, "ws", "taxi")
	v := mkRegVersion(t, r, "ws", "taxi", "r")
	if v.Version != 1 || len(findVersion(t, r, "taxi", 1).Tags) != 0 || len(findModel(t, r, "taxi").Tags) != 0 {
		t.Errorf("re-created model carries old rows: %+v", findModel(t, r, "taxi"))
	}

	// The other workspace is untouched.
	km, err := r.FindRegisteredModel(ctx(t), "keep", "taxi")
	must(t, err)
	if len(km.LatestVersions) != 1 || km.Aliases["champion"] != 1 || km.Tags["k"] != "v" {
		t.Errorf("kept model %+v", km)
	}
	lms, _, err = r.SearchLoggedModels(ctx(t), "keep", wharf.SearchQuery{ExperimentIDs: []string{"0"}})
	must(t, err)
	if len(lms) != 1 || lms[0].Params["p"] != "1" {
		t.Errorf("kept logged models %+v", lms)
	}
	if n := len(listPaths(t, a, "keep", "")); n != 1 {
		t.Errorf("kept %d artifacts", n)
	}
}
