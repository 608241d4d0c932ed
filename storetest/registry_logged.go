package storetest

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

var loggedModelIDRE = regexp.MustCompile(`^m-[0-9a-f]{32}$`)

func mkLoggedModel(t *testing.T, r wharf.RegistryService, workspace, experiment, name string) *wharf.LoggedModel {
	t.Helper()
	m := &wharf.LoggedModel{Workspace: workspace, ExperimentID: experiment, Name: name}
	must(t, r.CreateLoggedModel(ctx(t), m))
	return m
}

func findLogged(t *testing.T, r wharf.RegistryService, id string) *wharf.LoggedModel {
	t.Helper()
	m, err := r.FindLoggedModel(ctx(t), "ws", id)
	must(t, err)
	return m
}

func testLoggedModels(t *testing.T, open Opener) {
	_, r, clk := openRegistry(t, open)

	m := &wharf.LoggedModel{Workspace: "ws", ExperimentID: "3", Name: "model", CreatorID: "alice",
		ModelType: "sklearn", SourceRunID: "run1", Tags: map[string]string{"k": "v"},
		Params: map[string]string{"alpha": "0.5"}}
	must(t, r.CreateLoggedModel(ctx(t), m))
	if !loggedModelIDRE.MatchString(m.ID) {
		t.Errorf("id %q is not m- and 32 hex digits", m.ID)
	}
	want := &wharf.LoggedModel{Workspace: "ws", ID: m.ID, ExperimentID: "3", Name: "model",
		ArtifactURI: "mlflow-artifacts:/3/models/" + m.ID + "/artifacts",
		Status:      "LOGGED_MODEL_PENDING", CreatorID: "alice", ModelType: "sklearn", SourceRunID: "run1",
		CreationTime: millis(clk), LastUpdatedTime: millis(clk),
		Tags: map[string]string{"k": "v"}, Params: map[string]string{"alpha": "0.5"}}
	same(t, "created", m, want)
	same(t, "found", findLogged(t, r, m.ID), want)

	// Registering a logged model by its id alone records the run that
	// logged it, as the 3.x client's register_model does.
	mkRegModel(t, r, "ws", "from-logged")
	byID := &wharf.ModelVersion{Workspace: "ws", Name: "from-logged", Source: "models:/" + m.ID, ModelID: m.ID}
	must(t, r.CreateModelVersion(ctx(t), byID))
	if byID.RunID != "run1" {
		t.Errorf("version registered from logged model %s has run %q, want run1", m.ID, byID.RunID)
	}

	other := mkLoggedModel(t, r, "ws", "3", "")
	if other.ID == m.ID || other.Name == "" || len(other.Tags) != 0 || other.Params == nil {
		t.Errorf("second model %+v", other)
	}
	custom := &wharf.LoggedModel{Workspace: "ws", ExperimentID: "0", Name: "c", ArtifactURI: "s3://b/c"}
	must(t, r.CreateLoggedModel(ctx(t), custom))
	if findLogged(t, r, custom.ID).ArtifactURI != "s3://b/c" {
		t.Error("explicit artifact URI not kept")
	}
	wantCode(t, r.CreateLoggedModel(ctx(t), &wharf.LoggedModel{Workspace: "ws"}), wharf.EINVALID)
	wantCode(t, r.CreateLoggedModel(ctx(t), &wharf.LoggedModel{Workspace: "ws", ExperimentID: "x"}), wharf.ENOTFOUND)
	wantCode(t, r.CreateLoggedModel(ctx(t), &wharf.LoggedModel{Workspace: "nope", ExperimentID: "0"}), wharf.ENOTFOUND)

	const missing = "m-00000000000000000000000000000000"
	_, err := r.FindLoggedModel(ctx(t), "ws", missing)
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Logged model with ID '"+missing+"' not found.")

	clk.Advance(time.Second)
	for _, bad := range []string{"LOGGED_MODEL_PENDING", "READY", ""} {
		_, err := r.FinalizeLoggedModel(ctx(t), "ws", m.ID, bad, "")
		if wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("finalize as %q: %v, want EINVALID", bad, err)
		}
	}
	fin, err := r.FinalizeLoggedModel(ctx(t), "ws", m.ID, "LOGGED_MODEL_READY", "")
	must(t, err)
	want.Status, want.LastUpdatedTime = "LOGGED_MODEL_READY", millis(clk)
	same(t, "finalized", fin, want)
	failed, err := r.FinalizeLoggedModel(ctx(t), "ws", other.ID, "LOGGED_MODEL_UPLOAD_FAILED", "disk full")
	must(t, err)
	if failed.Status != "LOGGED_MODEL_UPLOAD_FAILED" || failed.StatusMessage != "disk full" {
		t.Errorf("failed model %+v", failed)
	}
	_, err = r.FinalizeLoggedModel(ctx(t), "ws", missing, "LOGGED_MODEL_READY", "")
	wantCode(t, err, wharf.ENOTFOUND)

	got, err := r.SetLoggedModelTags(ctx(t), "ws", m.ID, map[string]string{"k": "v2", "n": "1"})
	must(t, err)
	want.Tags = map[string]string{"k": "v2", "n": "1"}
	same(t, "tags set", got, want)
	_, err = r.SetLoggedModelTags(ctx(t), "ws", missing, map[string]string{"k": "v"})
	wantCode(t, err, wharf.ENOTFOUND)
	must(t, r.DeleteLoggedModelTag(ctx(t), "ws", m.ID, "n"))
	err = r.DeleteLoggedModelTag(ctx(t), "ws", m.ID, "n")
	wantCode(t, err, wharf.ENOTFOUND)
	wantCode(t, r.DeleteLoggedModelTag(ctx(t), "ws", missing, "k"), wharf.ENOTFOUND)
	same(t, "tags after delete", findLogged(t, r, m.ID).Tags, map[string]string{"k": "v2"})

	must(t, r.DeleteLoggedModel(ctx(t), "ws", m.ID))
	_, err = r.FindLoggedModel(ctx(t), "ws", m.ID)
	wantCode(t, err, wharf.ENOTFOUND)
	err = r.DeleteLoggedModel(ctx(t), "ws", m.ID)
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "Logged model with ID '"+m.ID+"' not found.")
	findLogged(t, r, other.ID)
}

func testLoggedModelParams(t *testing.T, open Opener) {
	_, r, _ := openRegistry(t, open)
	m := mkLoggedModel(t, r, "ws", "0", "model")
	must(t, r.LogLoggedModelParams(ctx(t), "ws", m.ID, map[string]string{"a": "1", "b": "2"}))
	// The same value again is fine.
	must(t, r.LogLoggedModelParams(ctx(t), "ws", m.ID, map[string]string{"a": "1", "c": "3"}))
	// A different value is refused, and nothing of that call is written.
	err := r.LogLoggedModelParams(ctx(t), "ws", m.ID, map[string]string{"d": "4", "b": "changed"})
	wantCode(t, err, wharf.EINVALID)
	wantMessage(t, err, "key='b'", "changed")
	same(t, "params", findLogged(t, r, m.ID).Params, map[string]string{"a": "1", "b": "2", "c": "3"})
	err = r.LogLoggedModelParams(ctx(t), "ws", "m-00000000000000000000000000000000", map[string]string{"a": "1"})
	wantCode(t, err, wharf.ENOTFOUND)
}

func testSearchLoggedModels(t *testing.T, open Opener) {
	_, r, clk := openRegistry(t, open)
	mk := func(exp, name, run string, tags, params map[string]string) *wharf.LoggedModel {
		m := &wharf.LoggedModel{Workspace: "ws", ExperimentID: exp, Name: name, SourceRunID: run,
			Tags: tags, Params: params}
		must(t, r.CreateLoggedModel(ctx(t), m))
		clk.Advance(time.Second)
		return m
	}
	a := mk("1", "alpha", "r1", map[string]string{"team": "ml"}, map[string]string{"lr": "0.1"})
	b := mk("1", "Beta", "r2", nil, map[string]string{"lr": "0.2"})
	c := mk("2", "gamma", "r1", map[string]string{"team": "data"}, nil)
	d := mk("3", "delta", "r3", nil, nil)
	_, err := r.FinalizeLoggedModel(ctx(t), "ws", b.ID, "LOGGED_MODEL_READY", "")
	must(t, err)

	ids := func(ms []*wharf.LoggedModel) []string {
		out := []string{}
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out
	}
	search := func(exps []string, filter string, orderBy ...string) []string {
		t.Helper()
		ms, token, err := r.SearchLoggedModels(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: exps,
			Filter: filter, OrderBy: orderBy})
		if err != nil {
			t.Fatalf("search %q: %v", filter, err)
		}
		if token != "" {
			t.Errorf("search %q: unexpected token", filter)
		}
		return ids(ms)
	}
	// Newest first by default.
	same(t, "experiments 1,2", search([]string{"1", "2"}, ""), []string{"gamma", "Beta", "alpha"})
	same(t, "experiment 3", search([]string{"3"}, ""), []string{"delta"})
	same(t, "unknown experiment", search([]string{"9", "x"}, ""), []string{})
	all := []string{"1", "2", "3"}
	same(t, "name", search(all, "name = 'alpha'"), []string{"alpha"})
	same(t, "name LIKE", search(all, "name LIKE 'b%'"), []string{})
	same(t, "name ILIKE", search(all, "name ILIKE 'b%'"), []string{"Beta"})
	same(t, "status READY", search(all, "status = 'READY'"), []string{"Beta"})
	same(t, "status protocol name", search(all, "status = 'LOGGED_MODEL_PENDING'"), []string{"delta", "gamma", "alpha"})
	same(t, "status !=", search(all, "status != 'PENDING'"), []string{"Beta"})
	same(t, "source run", search(all, "source_run_id = 'r1'"), []string{"gamma", "alpha"})
	same(t, "model id IN", search(all, "model_id IN ('"+a.ID+"', '"+d.ID+"')"), []string{"delta", "alpha"})
	same(t, "tag", search(all, "tags.team = 'ml'"), []string{"alpha"})
	same(t, "param", search(all, "params.lr = '0.2'"), []string{"Beta"})
	same(t, "param LIKE", search(all, "params.lr LIKE '0.%'"), []string{"Beta", "alpha"})
	same(t, "created after", search(all, "creation_timestamp > "+strconv.FormatInt(c.CreationTime-1, 10)), []string{"delta", "gamma"})
	same(t, "order by name", search(all, "", "name ASC"), []string{"Beta", "alpha", "delta", "gamma"})
	same(t, "order by creation asc", search(all, "", "creation_timestamp ASC"), []string{"alpha", "Beta", "gamma", "delta"})

	ms, _, err := r.SearchLoggedModels(ctx(t), "ws", wharf.SearchQuery{ExperimentIDs: all, Filter: "name = 'alpha'"})
	must(t, err)
	same(t, "search result", ms, []*wharf.LoggedModel{findLogged(t, r, a.ID)})

	var got []string
	q := wharf.SearchQuery{ExperimentIDs: all, MaxResults: 3}
	for {
		ms, token, err := r.SearchLoggedModels(ctx(t), "ws", q)
		must(t, err)
		got = append(got, ids(ms)...)
		if token == "" {
			break
		}
		q.PageToken = token
	}
	same(t, "paged", got, []string{"delta", "gamma", "Beta", "alpha"})

	for _, q := range []wharf.SearchQuery{
		{},
		{ExperimentIDs: all, Filter: "nope = 1"},
		{ExperimentIDs: all, MaxResults: 1001},
	} {
		_, _, err := r.SearchLoggedModels(ctx(t), "ws", q)
		if wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("%+v: err %v, want EINVALID", q, err)
		}
		wantMessage(t, err)
	}
}
