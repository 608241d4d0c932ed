package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

// RunRegistry runs the conformance suite of the model registry, logged
// models and the artifact index against the stores open returns. The
// store must implement wharf.RegistryService and wharf.ArtifactService.
func RunRegistry(t *testing.T, open func(t *testing.T) wharf.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"RegisteredModels", testRegisteredModels},
		{"RegisteredModelTags", testRegisteredModelTags},
		{"RenameRegisteredModel", testRenameRegisteredModel},
		{"DeleteRegisteredModel", testDeleteRegisteredModel},
		{"ModelVersions", testModelVersions},
		{"VersionNumbering", testVersionNumbering},
		{"VersionNumberingRace", testVersionNumberingRace},
		{"AssetVersions", testAssetVersions},
		{"Stages", testStages},
		{"LatestVersions", testLatestVersions},
		{"Aliases", testAliases},
		{"SearchRegisteredModels", testSearchRegisteredModels},
		{"SearchModelVersions", testSearchModelVersions},
		{"SearchPaging", testSearchPaging},
		{"SearchInvalid", testSearchInvalid},
		{"LoggedModels", testLoggedModels},
		{"LoggedModelParams", testLoggedModelParams},
		{"SearchLoggedModels", testSearchLoggedModels},
		{"Artifacts", testArtifacts},
		{"ArtifactPrefixes", testArtifactPrefixes},
		{"RegistryWorkspaceIsolation", testRegistryWorkspaceIsolation},
		{"RegistryWorkspaceDeleteCascade", testRegistryWorkspaceDeleteCascade},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// registryOf returns the store's registry, failing the test when the store
// has none: wharf.Store does not embed the registry interfaces yet.
func registryOf(t *testing.T, s wharf.Store) wharf.RegistryService {
	t.Helper()
	r, ok := s.(wharf.RegistryService)
	if !ok {
		t.Fatalf("store %T does not implement wharf.RegistryService", s)
	}
	return r
}

func artifactsOf(t *testing.T, s wharf.Store) wharf.ArtifactService {
	t.Helper()
	a, ok := s.(wharf.ArtifactService)
	if !ok {
		t.Fatalf("store %T does not implement wharf.ArtifactService", s)
	}
	return a
}

// openRegistry opens a store with workspace "ws" and a fake clock.
func openRegistry(t *testing.T, open Opener) (wharf.Store, wharf.RegistryService, *clock) {
	s := open(t)
	clk := withClock(t, s)
	mkWorkspace(t, s, "ws")
	return s, registryOf(t, s), clk
}

func millis(c *clock) int64 { return c.stored().UnixMilli() }

func mkRegModel(t *testing.T, r wharf.RegistryService, workspace, name string) *wharf.RegisteredModel {
	t.Helper()
	m := &wharf.RegisteredModel{Workspace: workspace, Name: name}
	must(t, r.CreateRegisteredModel(ctx(t), m))
	return m
}

func mkRegVersion(t *testing.T, r wharf.RegistryService, workspace, name, runID string) *wharf.ModelVersion {
	t.Helper()
	v := &wharf.ModelVersion{Workspace: workspace, Name: name, RunID: runID,
		Source: "models:/m-" + runID, UserID: "alice"}
	must(t, r.CreateModelVersion(ctx(t), v))
	return v
}

func findModel(t *testing.T, r wharf.RegistryService, name string) *wharf.RegisteredModel {
	t.Helper()
	m, err := r.FindRegisteredModel(ctx(t), "ws", name)
	must(t, err)
	return m
}

func findVersion(t *testing.T, r wharf.RegistryService, name string, version int64) *wharf.ModelVersion {
	t.Helper()
	v, err := r.FindModelVersion(ctx(t), "ws", name, version)
	must(t, err)
	return v
}

// sameModel compares registered models including their latest versions,
// which same alone would print as pointers.
func sameModel(t *testing.T, what string, got, want *wharf.RegisteredModel) {
	t.Helper()
	g, w := *got, *want
	g.LatestVersions, w.LatestVersions = nil, nil
	same(t, what, g, w)
	same(t, what+": latest versions", got.LatestVersions, want.LatestVersions)
}

func versionNumbers(vs []*wharf.ModelVersion) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%s/%d", v.Name, v.Version))
	}
	return out
}

func modelNames(ms []*wharf.RegisteredModel) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func testRegisteredModels(t *testing.T, open Opener) {
	s, r, clk := openRegistry(t, open)

	_, err := r.FindRegisteredModel(ctx(t), "ws", "taxi")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Registered Model with name=taxi not found")

	m := &wharf.RegisteredModel{Workspace: "ws", Name: "taxi", Description: "fares", UserID: "alice",
		Tags: map[string]string{"team": "ml"}}
	must(t, r.CreateRegisteredModel(ctx(t), m))
	if m.CreationTime != millis(clk) || m.LastUpdatedTime != m.CreationTime {
		t.Errorf("times %d/%d, want %d", m.CreationTime, m.LastUpdatedTime, millis(clk))
	}
	got := findModel(t, r, "taxi")
	sameModel(t, "found model", got, m)
	if got.Aliases == nil || got.LatestVersions == nil {
		t.Errorf("nil aliases or latest versions: %+v", got)
	}

	err = r.CreateRegisteredModel(ctx(t), &wharf.RegisteredModel{Workspace: "ws", Name: "taxi"})
	wantCode(t, err, wharf.ECONFLICT)
	wantMessage(t, err, "Registered Model (name=taxi) already exists.")
	// The failed create changed nothing.
	sameModel(t, "after duplicate", findModel(t, r, "taxi"), m)

	wantCode(t, r.CreateRegisteredModel(ctx(t), &wharf.RegisteredModel{Workspace: "ws"}), wharf.EINVALID)
	err = r.CreateRegisteredModel(ctx(t), &wharf.RegisteredModel{Workspace: "nope", Name: "taxi"})
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, `workspace "nope" not found`)

	clk.Advance(time.Minute)
	up, err := r.UpdateRegisteredModel(ctx(t), "ws", "taxi", "new fares")
	must(t, err)
	if up.Description != "new fares" || up.LastUpdatedTime != millis(clk) || up.CreationTime != m.CreationTime {
		t.Errorf("updated %+v", up)
	}
	sameModel(t, "after update", findModel(t, r, "taxi"), up)
	_, err = r.UpdateRegisteredModel(ctx(t), "ws", "nope", "x")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Registered Model with name=nope not found")

	// Names are case-sensitive and may hold characters resource names
	// may not, as in MLflow.
	mkRegModel(t, r, "ws", "Taxi model/v2")
	if got := findModel(t, r, "Taxi model/v2"); got.Name != "Taxi model/v2" {
		t.Errorf("got %q", got.Name)
	}
	_ = s
}

func testRegisteredModelTags(t *testing.T, open Opener) {
	_, r, _ := openRegistry(t, open)
	mkRegModel(t, r, "ws", "taxi")
	must(t, r.SetRegisteredModelTag(ctx(t), "ws", "taxi", "a", "1"))
	must(t, r.SetRegisteredModelTag(ctx(t), "ws", "taxi", "b", "2"))
	must(t, r.SetRegisteredModelTag(ctx(t), "ws", "taxi", "a", "3"))
	same(t, "tags", findModel(t, r, "taxi").Tags, map[string]string{"a": "3", "b": "2"})
	must(t, r.DeleteRegisteredModelTag(ctx(t), "ws", "taxi", "a"))
	// Deleting a tag that is not set is no error, as in MLflow.
	must(t, r.DeleteRegisteredModelTag(ctx(t), "ws", "taxi", "a"))
	same(t, "tags after delete", findModel(t, r, "taxi").Tags, map[string]string{"b": "2"})

	err := r.SetRegisteredModelTag(ctx(t), "ws", "nope", "a", "1")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Registered Model with name=nope not found")
	wantCode(t, r.DeleteRegisteredModelTag(ctx(t), "ws", "nope", "a"), wharf.ENOTFOUND)
	wantCode(t, r.SetRegisteredModelTag(ctx(t), "ws", "taxi", "", "1"), wharf.EINVALID)
}

func testRenameRegisteredModel(t *testing.T, open Opener) {
	_, r, clk := openRegistry(t, open)
	m := &wharf.RegisteredModel{Workspace: "ws", Name: "old", Description: "d", Tags: map[string]string{"k": "v"}}
	must(t, r.CreateRegisteredModel(ctx(t), m))
	v1 := mkRegVersion(t, r, "ws", "old", "r1")
	mkRegVersion(t, r, "ws", "old", "r2")
	must(t, r.SetModelVersionTag(ctx(t), "ws", "old", 1, "vk", "vv"))
	must(t, r.SetModelAlias(ctx(t), "ws", "old", "champion", 2))
	_, err := r.TransitionModelVersionStage(ctx(t), "ws", "old", 2, "Production", false)
	must(t, err)
	mkRegModel(t, r, "ws", "taken")

	_, err = r.RenameRegisteredModel(ctx(t), "ws", "old", "taken")
	wantCode(t, err, wharf.ECONFLICT)
	wantMessage(t, err, "Registered Model (name=taken) already exists.")
	// Nothing moved.
	if len(findModel(t, r, "old").LatestVersions) != 2 || len(findModel(t, r, "taken").LatestVersions) != 0 {
		t.Fatal("failed rename moved versions")
	}
	_, err = r.RenameRegisteredModel(ctx(t), "ws", "nope", "x")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Registered Model with name=nope not found")
	_, err = r.RenameRegisteredModel(ctx(t), "ws", "old", "")
	wantCode(t, err, wharf.EINVALID)

	clk.Advance(time.Second)
	got, err := r.RenameRegisteredModel(ctx(t), "ws", "old", "new")
	must(t, err)
	if got.Name != "new" || got.Description != "d" || got.CreationTime != m.CreationTime ||
		got.LastUpdatedTime != millis(clk) {
		t.Errorf("renamed %+v", got)
	}
	same(t, "tags", got.Tags, map[string]string{"k": "v"})
	same(t, "aliases", got.Aliases, map[string]int64{"champion": 2})
	same(t, "latest", versionNumbers(got.LatestVersions), []string{"new/1", "new/2"})
	sameModel(t, "found", findModel(t, r, "new"), got)

	_, err = r.FindRegisteredModel(ctx(t), "ws", "old")
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = r.FindModelVersion(ctx(t), "ws", "old", 1)
	wantCode(t, err, wharf.ENOTFOUND)
	nv1 := findVersion(t, r, "new", 1)
	if nv1.RunID != v1.RunID || nv1.Tags["vk"] != "vv" {
		t.Errorf("moved version 1: %+v", nv1)
	}
	byAlias, err := r.FindModelVersionByAlias(ctx(t), "ws", "new", "champion")
	must(t, err)
	if byAlias.Version != 2 || byAlias.CurrentStage != wharf.StageProduction {
		t.Errorf("alias resolves to %+v", byAlias)
	}
	// Numbering carries on where the old name left off.
	if v := mkRegVersion(t, r, "ws", "new", "r3"); v.Version != 3 {
		t.Errorf("version after rename = %d, want 3", v.Version)
	}
	// The old name is free again.
	if v := mkRegVersion(t, r, "ws", mkRegModel(t, r, "ws", "old").Name, "r9"); v.Version != 1 {
		t.Errorf("version of re-created model = %d, want 1", v.Version)
	}
	// Renaming to the same name is allowed and changes nothing else.
	same2, err := r.RenameRegisteredModel(ctx(t), "ws", "new", "new")
	must(t, err)
	if len(same2.LatestVersions) != 2 {
		t.Errorf("self-rename: %+v", same2)
	}
}

func testDeleteRegisteredModel(t *testing.T, open Opener) {
	_, r, _ := openRegistry(t, open)
	mkRegModel(t, r, "ws", "taxi")
	mkRegModel(t, r, "ws", "other")
	must(t, r.SetRegisteredModelTag(ctx(t), "ws", "taxi", "k", "v"))
	for range 3 {
		mkRegVersion(t, r, "ws", "taxi", "r")
	}
	mkRegVersion(t, r, "ws", "other", "r")
	must(t, r.SetModelVersionTag(ctx(t), "ws", "taxi", 2, "k", "v"))
	must(t, r.SetModelAlias(ctx(t), "ws", "taxi", "champion", 3))

	must(t, r.DeleteRegisteredModel(ctx(t), "ws", "taxi"))
	_, err := r.FindRegisteredModel(ctx(t), "ws", "taxi")
	wantCode(t, err, wharf.ENOTFOUND)
	err = r.DeleteRegisteredModel(ctx(t), "ws", "taxi")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Registered Model with name=taxi not found")
	for v := int64(1); v <= 3; v++ {
		_, err = r.FindModelVersion(ctx(t), "ws", "taxi", v)
		wantCode(t, err, wharf.ENOTFOUND)
	}
	vs, _, err := r.SearchModelVersions(ctx(t), "ws", wharf.SearchQuery{})
	must(t, err)
	same(t, "remaining versions", versionNumbers(vs), []string{"other/1"})

	// A model created under the name again starts empty, from version 1.
	m := mkRegModel(t, r, "ws", "taxi")
	got := findModel(t, r, "taxi")
	sameModel(t, "re-created", got, m)
	if v := mkRegVersion(t, r, "ws", "taxi", "r"); v.Version != 1 || len(v.Tags) != 0 {
		t.Errorf("first version of re-created model: %+v", v)
	}
	_, err = r.FindModelVersionByAlias(ctx(t), "ws", "taxi", "champion")
	wantCode(t, err, wharf.ENOTFOUND)
}

func testModelVersions(t *testing.T, open Opener) {
	_, r, clk := openRegistry(t, open)
	m := mkRegModel(t, r, "ws", "taxi")

	clk.Advance(time.Second)
	v := &wharf.ModelVersion{Workspace: "ws", Name: "taxi", Source: "models:/m-abc", RunID: "run1",
		RunLink: "http://x/run1", ModelID: "m-abc", Description: "first", UserID: "alice",
		Tags: map[string]string{"k": "v"}}
	must(t, r.CreateModelVersion(ctx(t), v))
	want := &wharf.ModelVersion{Workspace: "ws", Name: "taxi", Version: 1, Source: "models:/m-abc",
		RunID: "run1", RunLink: "http://x/run1", ModelID: "m-abc", Description: "first", UserID: "alice",
		Status: wharf.VersionReady, CurrentStage: wharf.StageNone, CreationTime: millis(clk),
		LastUpdatedTime: millis(clk), Tags: map[string]string{"k": "v"}, Aliases: []string{},
		Type: wharf.ModelTypeMLflow}
	same(t, "created", v, want)
	same(t, "found", findVersion(t, r, "taxi", 1), want)
	// Registering a version updates the model.
	if got := findModel(t, r, "taxi"); got.LastUpdatedTime != millis(clk) || got.CreationTime != m.CreationTime {
		t.Errorf("model times after create version: %d/%d", got.CreationTime, got.LastUpdatedTime)
	}

	_, err := r.FindModelVersion(ctx(t), "ws", "taxi", 3)
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Model Version (name=taxi, version=3) not found")
	err = r.CreateModelVersion(ctx(t), &wharf.ModelVersion{Workspace: "ws", Name: "nope"})
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Registered Model with name=nope not found")

	custom := &wharf.ModelVersion{Workspace: "ws", Name: "taxi", Type: wharf.ModelTypeCustom}
	must(t, r.CreateModelVersion(ctx(t), custom))
	if got := findVersion(t, r, "taxi", 2); got.Type != wharf.ModelTypeCustom {
		t.Errorf("type = %q", got.Type)
	}
	err = r.CreateModelVersion(ctx(t), &wharf.ModelVersion{Workspace: "ws", Name: "taxi", Type: "triton_model"})
	wantCode(t, err, wharf.EINVALID)

	clk.Advance(time.Second)
	up, err := r.UpdateModelVersion(ctx(t), "ws", "taxi", 1, "better")
	must(t, err)
	want.Description, want.LastUpdatedTime = "better", millis(clk)
	same(t, "updated", up, want)
	_, err = r.UpdateModelVersion(ctx(t), "ws", "taxi", 9, "x")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Model Version (name=taxi, version=9) not found")

	must(t, r.SetModelVersionTag(ctx(t), "ws", "taxi", 1, "k", "v2"))
	must(t, r.SetModelVersionTag(ctx(t), "ws", "taxi", 1, "k2", "x"))
	must(t, r.DeleteModelVersionTag(ctx(t), "ws", "taxi", 1, "k2"))
	must(t, r.DeleteModelVersionTag(ctx(t), "ws", "taxi", 1, "never-set"))
	same(t, "version tags", findVersion(t, r, "taxi", 1).Tags, map[string]string{"k": "v2"})
	err = r.SetModelVersionTag(ctx(t), "ws", "taxi", 9, "k", "v")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Model Version (name=taxi, version=9) not found")
	wantCode(t, r.DeleteModelVersionTag(ctx(t), "ws", "taxi", 9, "k"), wharf.ENOTFOUND)
	wantCode(t, r.SetModelVersionTag(ctx(t), "ws", "taxi", 1, "", "v"), wharf.EINVALID)

	clk.Advance(time.Second)
	must(t, r.DeleteModelVersion(ctx(t), "ws", "taxi", 1))
	_, err = r.FindModelVersion(ctx(t), "ws", "taxi", 1)
	wantCode(t, err, wharf.ENOTFOUND)
	err = r.DeleteModelVersion(ctx(t), "ws", "taxi", 1)
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Model Version (name=taxi, version=1) not found")
	wantCode(t, r.DeleteModelVersion(ctx(t), "ws", "nope", 1), wharf.ENOTFOUND)
	if got := findModel(t, r, "taxi"); got.LastUpdatedTime != millis(clk) {
		t.Errorf("model not updated by version delete: %d", got.LastUpdatedTime)
	}
	// A re-registered version's tags do not resurrect.
	must(t, r.SetModelVersionTag(ctx(t), "ws", "taxi", 2, "k", "v"))
	must(t, r.DeleteModelVersion(ctx(t), "ws", "taxi", 2))
	if v := mkRegVersion(t, r, "ws", "taxi", "r"); len(v.Tags) != 0 || len(findVersion(t, r, "taxi", v.Version).Tags) != 0 {
		t.Errorf("new version has tags: %+v", v)
	}
}

// testVersionNumbering: numbers are max+1 in order, and the number of a
// deleted newest version is not handed out again (MLflow keeps deleted
// versions' numbers).
func testVersionNumbering(t *testing.T, open Opener) {
	_, r, _ := openRegistry(t, open)
	mkRegModel(t, r, "ws", "a")
	mkRegModel(t, r, "ws", "b")
	for i := int64(1); i <= 3; i++ {
		if v := mkRegVersion(t, r, "ws", "a", "r"); v.Version != i {
			t.Fatalf("version %d, want %d", v.Version, i)
		}
	}
	if v := mkRegVersion(t, r, "ws", "b", "r"); v.Version != 1 {
		t.Errorf("b's first version = %d: numbering is per model", v.Version)
	}
	must(t, r.DeleteModelVersion(ctx(t), "ws", "a", 3))
	if v := mkRegVersion(t, r, "ws", "a", "r"); v.Version != 4 {
		t.Errorf("after deleting v3: version %d, want 4", v.Version)
	}
}

// testAssetVersions registers versions under az ml's version strings: a
// whole number is the version's number, with later versions numbered on
// from the highest; any other string keeps the next number for MLflow and
// names the version for az ml; either is unique.
func testAssetVersions(t *testing.T, open Opener) {
	_, r, _ := openRegistry(t, open)
	mkRegModel(t, r, "ws", "m")
	create := func(asset, digest string) (*wharf.ModelVersion, error) {
		v := &wharf.ModelVersion{Workspace: "ws", Name: "m", Source: "mlflow-artifacts:/x", Type: wharf.ModelTypeCustom, AssetVersion: asset, ContentDigest: digest}
		return v, r.CreateModelVersion(ctx(t), v)
	}
	v, err := create("5", "sha256:aa")
	must(t, err)
	if v.Version != 5 || v.AssetVersion != "" || v.AzureVersion() != "5" {
		t.Fatalf("version 5 first: %+v", v)
	}
	v, err = create("", "")
	must(t, err)
	if v.Version != 6 {
		t.Fatalf("next after 5: %d", v.Version)
	}
	v, err = create("2", "")
	must(t, err)
	if v.Version != 2 {
		t.Fatalf("a free lower number: %d", v.Version)
	}
	v, err = create("v1.0", "sha256:bb")
	must(t, err)
	if v.Version != 7 || v.AzureVersion() != "v1.0" {
		t.Fatalf("string version: %+v", v)
	}
	for _, taken := range []string{"5", "v1.0", "6"} {
		if _, err := create(taken, ""); wharf.ErrorCode(err) != wharf.ECONFLICT {
			t.Errorf("version %s again: %v, want ECONFLICT", taken, err)
		}
	}
	if _, err := create("05", ""); err != nil {
		t.Errorf(`"05" is a string version, not 5: %v`, err)
	}
	if _, err := create("a b", ""); wharf.ErrorCode(err) != wharf.EINVALID {
		t.Errorf("version with a space: %v, want EINVALID", err)
	}
	got, err := r.FindModelAssetVersion(ctx(t), "ws", "m", "v1.0")
	must(t, err)
	if got.Version != 7 || got.AssetVersion != "v1.0" || got.ContentDigest != "sha256:bb" {
		t.Errorf("find v1.0: %+v", got)
	}
	got, err = r.FindModelAssetVersion(ctx(t), "ws", "m", "5")
	must(t, err)
	if got.Version != 5 || got.ContentDigest != "sha256:aa" {
		t.Errorf("find 5: %+v", got)
	}
	if _, err := r.FindModelAssetVersion(ctx(t), "ws", "m", "v9"); !wharf.IsNotFound(err) {
		t.Errorf("find v9: %v, want ENOTFOUND", err)
	}
}

// testVersionNumberingRace registers versions from 8 goroutines at once,
// on two models: each model must get 1..N exactly.
func testVersionNumberingRace(t *testing.T, open Opener) {
	_, r, _ := openRegistry(t, open)
	mkRegModel(t, r, "ws", "a")
	mkRegModel(t, r, "ws", "b")
	const workers, each = 8, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string][]int64{}
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			name := []string{"a", "b"}[w%2]
			for range each {
				v := &wharf.ModelVersion{Workspace: "ws", Name: name, RunID: fmt.Sprint(w)}
				if err := r.CreateModelVersion(ctx(t), v); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				got[name] = append(got[name], v.Version)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		nums := got[name]
		slices.Sort(nums)
		want := []int64{}
		for i := range int64(workers / 2 * each) {
			want = append(want, i+1)
		}
		same(t, name+" versions returned", nums, want)
		vs, _, err := r.SearchModelVersions(ctx(t), "ws", wharf.SearchQuery{Filter: "name = '" + name + "'"})
		must(t, err)
		if len(vs) != len(want) || vs[0].Version != int64(len(want)) {
			t.Errorf("%s: %d versions stored, newest %d", name, len(vs), vs[0].Version)
		}
	}
}

func testStages(t *testing.T, open Opener) {
	_, r, clk := openRegistry(t, open)
	mkRegModel(t, r, "ws", "taxi")
	for range 4 {
		mkRegVersion(t, r, "ws", "taxi", "r")
	}

	clk.Advance(time.Second)
	v, err := r.TransitionModelVersionStage(ctx(t), "ws", "taxi", 1, "production", false)
	must(t, err)
	if v.CurrentStage != wharf.StageProduction || v.LastUpdatedTime != millis(clk) {
		t.Errorf("transitioned %+v", v)
	}
	same(t, "found", findVersion(t, r, "taxi", 1), v)
	if m := findModel(t, r, "taxi"); m.LastUpdatedTime != millis(clk) {
		t.Errorf("model not updated by transition")
	}
	for _, s := range []string{"STAGING", "Archived", "none", "Production"} {
		_, err := r.TransitionModelVersionStage(ctx(t), "ws", "taxi", 2, s, false)
		must(t, err)
	}
	// Without archiving, two versions can share a stage.
	same(t, "stages", []string{findVersion(t, r, "taxi", 1).CurrentStage, findVersion(t, r, "taxi", 2).CurrentStage},
		[]string{"Production", "Production"})

	_, err = r.TransitionModelVersionStage(ctx(t), "ws", "taxi", 1, "Prod", false)
	wantCode(t, err, wharf.EINVALID)
	wantMessage(t, err, "Invalid Model Version stage: Prod")
	_, err = r.TransitionModelVersionStage(ctx(t), "ws", "taxi", 9, "Staging", false)
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Model Version (name=taxi, version=9) not found")
	_, err = r.TransitionModelVersionStage(ctx(t), "ws", "nope", 1, "Staging", false)
	wantCode(t, err, wharf.ENOTFOUND)
	// Archiving others is for the active stages only.
	_, err = r.TransitionModelVersionStage(ctx(t), "ws", "taxi", 3, "Archived", true)
	wantCode(t, err, wharf.EINVALID)

	_, err = r.TransitionModelVersionStage(ctx(t), "ws", "taxi", 4, "Staging", false)
	must(t, err)
	clk.Advance(time.Second)
	v, err = r.TransitionModelVersionStage(ctx(t), "ws", "taxi", 3, "Production", true)
	must(t, err)
	if v.CurrentStage != wharf.StageProduction {
		t.Errorf("v3 stage %q", v.CurrentStage)
	}
	for version, want := range map[int64]string{1: "Archived", 2: "Archived", 3: "Production", 4: "Staging"} {
		got := findVersion(t, r, "taxi", version)
		if got.CurrentStage != want {
			t.Errorf("v%d stage %q, want %q", version, got.CurrentStage, want)
		}
		if want == "Archived" && got.LastUpdatedTime != millis(clk) {
			t.Errorf("archived v%d not updated", version)
		}
	}
}

func testLatestVersions(t *testing.T, open Opener) {
	_, r, _ := openRegistry(t, open)
	mkRegModel(t, r, "ws", "taxi")
	latest, err := r.LatestModelVersions(ctx(t), "ws", "taxi", nil)
	must(t, err)
	if len(latest) != 0 {
		t.Errorf("latest of empty model: %v", versionNumbers(latest))
	}
	for range 6 {
		mkRegVersion(t, r, "ws", "taxi", "r")
	}
	for version, stage := range map[int64]string{1: "Production", 2: "Production", 3: "Staging", 5: "Archived"} {
		_, err := r.TransitionModelVersionStage(ctx(t), "ws", "taxi", version, stage, false)
		must(t, err)
	}
	must(t, r.SetModelAlias(ctx(t), "ws", "taxi", "champion", 2))
	stagesOf := func(vs []*wharf.ModelVersion) []string {
		out := []string{}
		for _, v := range vs {
			out = append(out, fmt.Sprintf("%s:%d", v.CurrentStage, v.Version))
		}
		return out
	}
	// Newest per stage, in the order None, Staging, Production, Archived.
	all := []string{"None:6", "Staging:3", "Production:2", "Archived:5"}
	latest, err = r.LatestModelVersions(ctx(t), "ws", "taxi", nil)
	must(t, err)
	same(t, "latest", stagesOf(latest), all)
	same(t, "latest with aliases", latest[2].Aliases, []string{"champion"})
	same(t, "model's latest", stagesOf(findModel(t, r, "taxi").LatestVersions), all)
	latest, err = r.LatestModelVersions(ctx(t), "ws", "taxi", []string{"production", "None"})
	must(t, err)
	same(t, "latest None+Production", stagesOf(latest), []string{"None:6", "Production:2"})

	_, err = r.LatestModelVersions(ctx(t), "ws", "taxi", []string{"Live"})
	wantCode(t, err, wharf.EINVALID)
	_, err = r.LatestModelVersions(ctx(t), "ws", "nope", nil)
	wantCode(t, err, wharf.ENOTFOUND)

	// Deleting the newest of a stage exposes the next one.
	must(t, r.DeleteModelVersion(ctx(t), "ws", "taxi", 2))
	latest, err = r.LatestModelVersions(ctx(t), "ws", "taxi", []string{"Production"})
	must(t, err)
	same(t, "after delete", stagesOf(latest), []string{"Production:1"})
}

func testAliases(t *testing.T, open Opener) {
	_, r, _ := openRegistry(t, open)
	mkRegModel(t, r, "ws", "taxi")
	for range 3 {
		mkRegVersion(t, r, "ws", "taxi", "r")
	}

	_, err := r.FindModelVersionByAlias(ctx(t), "ws", "taxi", "champion")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Registered model alias champion not found.")
	_, err = r.FindModelVersionByAlias(ctx(t), "ws", "nope", "champion")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Registered Model with name=nope not found")

	must(t, r.SetModelAlias(ctx(t), "ws", "taxi", "champion", 1))
	must(t, r.SetModelAlias(ctx(t), "ws", "taxi", "challenger", 1))
	must(t, r.SetModelAlias(ctx(t), "ws", "taxi", "v1a", 2))
	v, err := r.FindModelVersionByAlias(ctx(t), "ws", "taxi", "champion")
	must(t, err)
	same(t, "by alias", v, findVersion(t, r, "taxi", 1))
	same(t, "aliases of v1", v.Aliases, []string{"challenger", "champion"})
	same(t, "model aliases", findModel(t, r, "taxi").Aliases,
		map[string]int64{"champion": 1, "challenger": 1, "v1a": 2})

	// Reassigning moves the alias.
	must(t, r.SetModelAlias(ctx(t), "ws", "taxi", "champion", 3))
	v, err = r.FindModelVersionByAlias(ctx(t), "ws", "taxi", "champion")
	must(t, err)
	if v.Version != 3 {
		t.Errorf("champion -> %d, want 3", v.Version)
	}
	same(t, "aliases of v1 after move", findVersion(t, r, "taxi", 1).Aliases, []string{"challenger"})

	for _, bad := range []string{"latest", "LATEST", "Latest", "v1", "V12", "", "a b", "x/y"} {
		err := r.SetModelAlias(ctx(t), "ws", "taxi", bad, 1)
		if wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("alias %q: err %v, want EINVALID", bad, err)
		}
	}
	err = r.SetModelAlias(ctx(t), "ws", "taxi", "prod", 9)
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Model Version (name=taxi, version=9) not found")
	err = r.SetModelAlias(ctx(t), "ws", "nope", "prod", 1)
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Registered Model with name=nope not found")

	must(t, r.DeleteModelAlias(ctx(t), "ws", "taxi", "challenger"))
	must(t, r.DeleteModelAlias(ctx(t), "ws", "taxi", "challenger"))
	wantCode(t, r.DeleteModelAlias(ctx(t), "ws", "nope", "challenger"), wharf.ENOTFOUND)
	_, err = r.FindModelVersionByAlias(ctx(t), "ws", "taxi", "challenger")
	wantCode(t, err, wharf.ENOTFOUND)

	// Deleting a version drops the aliases pointing at it, and only those.
	must(t, r.DeleteModelVersion(ctx(t), "ws", "taxi", 3))
	_, err = r.FindModelVersionByAlias(ctx(t), "ws", "taxi", "champion")
	wantCode(t, err, wharf.ENOTFOUND)
	same(t, "aliases after version delete", findModel(t, r, "taxi").Aliases, map[string]int64{"v1a": 2})
	// A new version 4 does not inherit anything from the deleted 3.
	if v := mkRegVersion(t, r, "ws", "taxi", "r"); len(findVersion(t, r, "taxi", v.Version).Aliases) != 0 {
		t.Errorf("new version has aliases")
	}
}
