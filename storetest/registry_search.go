package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

func searchModels(t *testing.T, r wharf.RegistryService, q wharf.SearchQuery) []string {
	t.Helper()
	ms, token, err := r.SearchRegisteredModels(ctx(t), "ws", q)
	if err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	if token != "" {
		t.Errorf("search %+v: unexpected page token", q)
	}
	return modelNames(ms)
}

func searchVersions(t *testing.T, r wharf.RegistryService, q wharf.SearchQuery) []string {
	t.Helper()
	vs, token, err := r.SearchModelVersions(ctx(t), "ws", q)
	if err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	if token != "" {
		t.Errorf("search %+v: unexpected page token", q)
	}
	return versionNumbers(vs)
}

func testSearchRegisteredModels(t *testing.T, open Opener) {
	_, r, clk := openRegistry(t, open)
	for _, n := range []string{"taxi", "Taxi-Big", "taxi_small", "taxiXsmall", "bike", "50%off"} {
		mkRegModel(t, r, "ws", n)
		clk.Advance(time.Second)
	}
	for name, team := range map[string]string{"taxi": "ml", "Taxi-Big": "ML", "bike": "data"} {
		must(t, r.SetRegisteredModelTag(ctx(t), "ws", name, "team", team))
	}
	must(t, r.SetRegisteredModelTag(ctx(t), "ws", "taxi", "env", "prod"))
	mkRegVersion(t, r, "ws", "taxi", "r1")

	q := func(filter string, orderBy ...string) wharf.SearchQuery {
		return wharf.SearchQuery{Filter: filter, OrderBy: orderBy}
	}
	// Byte order: digits, upper case, then lower case.
	same(t, "all", searchModels(t, r, q("")), []string{"50%off", "Taxi-Big", "bike", "taxi", "taxiXsmall", "taxi_small"})
	same(t, "name =", searchModels(t, r, q("name = 'taxi'")), []string{"taxi"})
	same(t, "name !=", searchModels(t, r, q("name != 'taxi'")),
		[]string{"50%off", "Taxi-Big", "bike", "taxiXsmall", "taxi_small"})
	// LIKE is case-sensitive on every engine, ILIKE is not.
	same(t, "LIKE", searchModels(t, r, q("name LIKE 'taxi%'")), []string{"taxi", "taxiXsmall", "taxi_small"})
	same(t, "ILIKE", searchModels(t, r, q("name ILIKE 'taxi%'")),
		[]string{"Taxi-Big", "taxi", "taxiXsmall", "taxi_small"})
	same(t, "LIKE upper", searchModels(t, r, q("name LIKE 'TAXI%'")), []string{})
	same(t, "LIKE suffix", searchModels(t, r, q("name LIKE '%SMALL'")), []string{})
	same(t, "ILIKE suffix", searchModels(t, r, q("name ILIKE '%SMALL'")), []string{"taxiXsmall", "taxi_small"})
	// '_' in a pattern matches any one character, '%' any run.
	same(t, "LIKE _", searchModels(t, r, q("name LIKE 'taxi_small'")), []string{"taxiXsmall", "taxi_small"})
	same(t, "LIKE % literal", searchModels(t, r, q("name LIKE '50%'")), []string{"50%off"})
	// GLOB's metacharacters are plain characters in LIKE patterns.
	same(t, "LIKE *", searchModels(t, r, q("name LIKE 'taxi*'")), []string{})
	same(t, "LIKE [", searchModels(t, r, q("name LIKE '[t]axi'")), []string{})

	same(t, "tag =", searchModels(t, r, q("tags.team = 'ml'")), []string{"taxi"})
	same(t, "tag ILIKE", searchModels(t, r, q("tags.team ILIKE 'm%'")), []string{"Taxi-Big", "taxi"})
	same(t, "tag LIKE", searchModels(t, r, q("tags.team LIKE 'M%'")), []string{"Taxi-Big"})
	// != is the negation of =: models without the tag match it, which is
	// what the 3.x client's prompt filter on every model search relies on.
	same(t, "tag !=", searchModels(t, r, q("tags.team != 'ml'")),
		[]string{"50%off", "Taxi-Big", "bike", "taxiXsmall", "taxi_small"})
	same(t, "prompt filter", searchModels(t, r, q("tags.`mlflow.prompt.is_prompt` != 'true'")),
		[]string{"50%off", "Taxi-Big", "bike", "taxi", "taxiXsmall", "taxi_small"})
	same(t, "tag IS NULL", searchModels(t, r, q("tags.team IS NULL")), []string{"50%off", "taxiXsmall", "taxi_small"})
	same(t, "quoted tag key", searchModels(t, r, q("tags.`env` = 'prod'")), []string{"taxi"})
	same(t, "AND", searchModels(t, r, q("name ILIKE 'taxi%' AND tags.team = 'ML'")), []string{"Taxi-Big"})

	same(t, "order by time", searchModels(t, r, q("name LIKE 'taxi%'", "last_updated_timestamp DESC")),
		[]string{"taxi", "taxiXsmall", "taxi_small"}) // taxi was updated by its version
	same(t, "order by name desc", searchModels(t, r, q("name ILIKE 't%'", "name DESC")),
		[]string{"taxi_small", "taxiXsmall", "taxi", "Taxi-Big"})

	ms, _, err := r.SearchRegisteredModels(ctx(t), "ws", q("name = 'taxi'"))
	must(t, err)
	sameModel(t, "search result", ms[0], findModel(t, r, "taxi"))
	if len(ms[0].LatestVersions) != 1 || ms[0].Tags["env"] != "prod" {
		t.Errorf("search result not filled: %+v", ms[0])
	}
}

func testSearchModelVersions(t *testing.T, open Opener) {
	_, r, clk := openRegistry(t, open)
	mkRegModel(t, r, "ws", "taxi")
	mkRegModel(t, r, "ws", "bike")
	mkRegModel(t, r, "ws", "empty")
	add := func(name, run string) {
		v := &wharf.ModelVersion{Workspace: "ws", Name: name, RunID: run,
			Source: fmt.Sprintf("s3://bucket/%s/%s", name, run)}
		must(t, r.CreateModelVersion(ctx(t), v))
		clk.Advance(time.Second)
	}
	add("taxi", "r1")
	add("bike", "r1")
	add("taxi", "r2")
	add("bike", "rb")
	add("taxi", "r3")
	must(t, r.SetModelVersionTag(ctx(t), "ws", "taxi", 2, "validated", "yes"))
	must(t, r.SetModelVersionTag(ctx(t), "ws", "bike", 1, "validated", "no"))
	must(t, r.SetModelAlias(ctx(t), "ws", "taxi", "champion", 2))

	q := func(filter string, orderBy ...string) wharf.SearchQuery {
		return wharf.SearchQuery{Filter: filter, OrderBy: orderBy}
	}
	// The mlflow client's own search: newest version first.
	same(t, "name =", searchVersions(t, r, q("name='taxi'")), []string{"taxi/3", "taxi/2", "taxi/1"})
	// Without an order, MLflow's: last updated first, then name, then
	// newest version.
	same(t, "default order", searchVersions(t, r, q("")),
		[]string{"taxi/3", "bike/2", "taxi/2", "bike/1", "taxi/1"})
	same(t, "run_id", searchVersions(t, r, q("run_id = 'r1'")), []string{"bike/1", "taxi/1"})
	same(t, "run_id IN", searchVersions(t, r, q("run_id IN ('r2', 'rb')")), []string{"bike/2", "taxi/2"})
	same(t, "run_id !=", searchVersions(t, r, q("run_id != 'r1'")), []string{"taxi/3", "bike/2", "taxi/2"})
	same(t, "source LIKE", searchVersions(t, r, q("source_path LIKE 's3://bucket/taxi/%'")),
		[]string{"taxi/3", "taxi/2", "taxi/1"})
	same(t, "source ILIKE", searchVersions(t, r, q("source_path ILIKE '%/BIKE/R_'")), []string{"bike/2", "bike/1"})
	same(t, "version >", searchVersions(t, r, q("name = 'taxi' AND version_number > 1")), []string{"taxi/3", "taxi/2"})
	same(t, "version =", searchVersions(t, r, q("version_number = 2")), []string{"bike/2", "taxi/2"})
	same(t, "version >= 2.5", searchVersions(t, r, q("version_number >= 2.5")), []string{"taxi/3"})
	same(t, "version = 1.5", searchVersions(t, r, q("version_number = 1.5")), []string{})
	same(t, "version != 1.5", searchVersions(t, r, q("name = 'bike' AND version_number != 1.5")),
		[]string{"bike/2", "bike/1"})
	same(t, "version < 2", searchVersions(t, r, q("version_number < 2")), []string{"bike/1", "taxi/1"})
	same(t, "version <= 1.9", searchVersions(t, r, q("version_number <= 1.9")), []string{"bike/1", "taxi/1"})
	same(t, "tag", searchVersions(t, r, q("tags.validated = 'yes'")), []string{"taxi/2"})
	same(t, "tag IS NOT NULL", searchVersions(t, r, q("tags.validated IS NOT NULL")), []string{"taxi/2", "bike/1"})
	same(t, "no match", searchVersions(t, r, q("name = 'empty'")), []string{})

	same(t, "order by version", searchVersions(t, r, q("", "version_number ASC")),
		[]string{"bike/1", "taxi/1", "bike/2", "taxi/2", "taxi/3"})
	same(t, "order by creation", searchVersions(t, r, q("", "creation_timestamp DESC")),
		[]string{"taxi/3", "bike/2", "taxi/2", "bike/1", "taxi/1"})
	same(t, "order by name desc", searchVersions(t, r, q("", "name DESC")),
		[]string{"taxi/3", "taxi/2", "taxi/1", "bike/2", "bike/1"})
	// An update moves a version to the front of the default order; the
	// order Wharf's own callers ask for (newest version) stays.
	clk.Advance(time.Second)
	_, err := r.UpdateModelVersion(ctx(t), "ws", "bike", 1, "touched")
	must(t, err)
	same(t, "default order after an update", searchVersions(t, r, q("")),
		[]string{"bike/1", "taxi/3", "bike/2", "taxi/2", "taxi/1"})
	same(t, "newest version", searchVersions(t, r, q("name = 'bike'", "version_number DESC")),
		[]string{"bike/2", "bike/1"})
	// A field twice is refused, in MLflow's words.
	_, _, err = r.SearchModelVersions(ctx(t), "ws", q("", "name", "version_number DESC", "name DESC"))
	wantCode(t, err, wharf.EINVALID)
	wantMessage(t, err, "`order_by` contains duplicate fields: ['name', 'version_number DESC', 'name DESC']")

	vs, _, err := r.SearchModelVersions(ctx(t), "ws", q("name = 'taxi' AND version_number = 2"))
	must(t, err)
	same(t, "search result", vs, []*wharf.ModelVersion{findVersion(t, r, "taxi", 2)})
	same(t, "filled aliases", vs[0].Aliases, []string{"champion"})
	same(t, "filled tags", vs[0].Tags, map[string]string{"validated": "yes"})
}

// testSearchPaging walks both searches page by page: every item once, in
// order, and no token after the last page.
func testSearchPaging(t *testing.T, open Opener) {
	_, r, _ := openRegistry(t, open)
	var wantModels []string
	for i := range 5 {
		n := fmt.Sprintf("m%d", i)
		mkRegModel(t, r, "ws", n)
		wantModels = append(wantModels, n)
	}
	for range 7 {
		mkRegVersion(t, r, "ws", "m0", "r")
	}

	var got []string
	q := wharf.SearchQuery{MaxResults: 2}
	pages := 0
	for {
		ms, token, err := r.SearchRegisteredModels(ctx(t), "ws", q)
		must(t, err)
		pages++
		if len(ms) > 2 {
			t.Fatalf("page of %d", len(ms))
		}
		got = append(got, modelNames(ms)...)
		if token == "" {
			break
		}
		q.PageToken = token
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	same(t, "paged models", got, wantModels)
	if pages != 3 {
		t.Errorf("%d pages, want 3", pages)
	}
	// A page that ends exactly at the last item has no token.
	_, token, err := r.SearchRegisteredModels(ctx(t), "ws", wharf.SearchQuery{MaxResults: 5})
	must(t, err)
	if token != "" {
		t.Error("token after an exact last page")
	}

	got = nil
	vq := wharf.SearchQuery{Filter: "name = 'm0'", MaxResults: 3}
	for {
		vs, token, err := r.SearchModelVersions(ctx(t), "ws", vq)
		must(t, err)
		got = append(got, versionNumbers(vs)...)
		if token == "" {
			break
		}
		vq.PageToken = token
	}
	same(t, "paged versions", got, []string{"m0/7", "m0/6", "m0/5", "m0/4", "m0/3", "m0/2", "m0/1"})
}

func testSearchInvalid(t *testing.T, open Opener) {
	_, r, _ := openRegistry(t, open)
	mkRegModel(t, r, "ws", "taxi")
	for _, q := range []wharf.SearchQuery{
		{Filter: "nope = 'x'"},
		{Filter: "name = 'x' OR name = 'y'"},
		{Filter: "run_id = 'x'"}, // not a registered model attribute
		{Filter: "name = "},
		{OrderBy: []string{"version_number"}},
		{MaxResults: 1001},
		{MaxResults: -1},
		{PageToken: "not a token"},
	} {
		_, _, err := r.SearchRegisteredModels(ctx(t), "ws", q)
		if wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("registered models %+v: err %v, want EINVALID", q, err)
		}
		wantMessage(t, err)
	}
	_, _, err := r.SearchRegisteredModels(ctx(t), "ws", wharf.SearchQuery{MaxResults: 1000})
	must(t, err)
	for _, q := range []wharf.SearchQuery{
		{Filter: "version_number = 'one'"},
		{Filter: "run_id LIKE 'r%'"},
		{Filter: "metrics.acc > 1"},
		{OrderBy: []string{"tags.x"}},
		{MaxResults: 200001},
		{PageToken: "eyJvZmZzZXQiOi0xfQ"},
	} {
		_, _, err := r.SearchModelVersions(ctx(t), "ws", q)
		if wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("model versions %+v: err %v, want EINVALID", q, err)
		}
		wantMessage(t, err)
	}
	_, _, err = r.SearchModelVersions(ctx(t), "ws", wharf.SearchQuery{MaxResults: 200000})
	must(t, err)
	_, _, err = r.SearchRegisteredModels(ctx(t), "nope", wharf.SearchQuery{})
	wantCode(t, err, wharf.ENOTFOUND)
	_, _, err = r.SearchModelVersions(ctx(t), "nope", wharf.SearchQuery{})
	wantCode(t, err, wharf.ENOTFOUND)
}
