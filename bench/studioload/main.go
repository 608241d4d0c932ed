// Command studioload measures the studio's operations pages over a large
// store: it seeds a fresh SQLite store (jobs, audit events, models and
// versions, endpoints, assets with a data file to preview, schedules,
// clusters), serves it with Wharf's HTTP server on loopback, then asks
// each page -n times in a row (after a warm-up) and, side by side in the
// same run, the REST API call that returns the same data as JSON. It
// prints one JSON line per page: p50 and p95 of the page and of the API
// call, their ratio, and the page's size in bytes (its weight before
// caching, the stylesheet and scripts excluded: they are cached for good).
//
//	studioload -jobs 10000 -audit 10000 -n 200
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
	"github.com/wharfml/wharf/bench/internal/loadstat"
	"github.com/wharfml/wharf/blob"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/seal"
	"github.com/wharfml/wharf/sqlite"
)

const (
	tenant = "00000000-0000-4000-8000-0000000000b1"
	ws     = "bench"
)

type options struct {
	jobs, audit, models, versions, endpoints, assets, rows, n, warmup int
	only, cpuprofile                                                  string
}

func main() {
	var o options
	flag.IntVar(&o.jobs, "jobs", 10000, "top-level jobs in the store")
	flag.IntVar(&o.audit, "audit", 10000, "audit events in the store")
	flag.IntVar(&o.models, "models", 100, "registered models")
	flag.IntVar(&o.versions, "versions", 10, "versions per model")
	flag.IntVar(&o.endpoints, "endpoints", 20, "online endpoints, two deployments each")
	flag.IntVar(&o.assets, "assets", 200, "data assets, environments and components, each")
	flag.IntVar(&o.rows, "rows", 100000, "rows of the CSV file the data page previews")
	flag.IntVar(&o.n, "n", 200, "measured requests per page")
	flag.IntVar(&o.warmup, "warmup", 20, "unmeasured requests per page first")
	flag.StringVar(&o.only, "page", "", "measure only the page of this name")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured requests to this file")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "studioload:", err)
		os.Exit(1)
	}
}

// page is a studio page and the API call that returns the same data.
type page struct {
	name, path, api string
	apiMethod       string
}

func run(o options) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "studioload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "wharf.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if db.Sealer, err = seal.NewSealer(key); err != nil {
		return err
	}
	k, err := auth.NewKey(time.Now())
	if err != nil {
		return err
	}
	issuer := &auth.Issuer{Issuer: "urn:wharf:tenant:" + tenant, Audience: wharfhttp.APIAudience, TTL: time.Hour, Keys: auth.NewKeyRing(k)}
	blobs, err := blob.NewFS(filepath.Join(dir, "blobs"))
	if err != nil {
		return err
	}
	start := time.Now()
	if err := seed(ctx, db, blobs, o); err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	fmt.Fprintf(os.Stderr, "seeded in %s\n", time.Since(start).Round(time.Second))

	api := wharfhttp.NewServer(db, issuer, tenant, slog.New(slog.NewTextHandler(io.Discard, nil)))
	api.Blobs = blobs
	hs := httptest.NewServer(api.Handler())
	defer hs.Close()
	api.URL = hs.URL
	sp := &wharf.ServicePrincipal{AppID: "app-bench", ObjectID: "obj-bench", DisplayName: "bench"}
	if err := db.CreateServicePrincipal(ctx, sp); err != nil {
		return err
	}
	if err := db.CreateRoleAssignment(ctx, &wharf.RoleAssignment{PrincipalID: sp.AppID, RoleName: wharf.RoleOwner, Scope: "/"}); err != nil {
		return err
	}
	tok, _, err := issuer.Issue(sp.AppID, tenant, sp.AppID, wharfhttp.APIAudience)
	if err != nil {
		return err
	}
	base := "/workspaces/" + ws
	apiBase := "/api/v1/workspaces/" + ws
	pages := []page{
		{"models", base + "/models", apiBase + "/models", "GET"},
		{"model", base + "/models/model-0000", apiBase + "/models?name=model-0000", "GET"},
		{"endpoints", base + "/endpoints", apiBase + "/onlineEndpoints", "GET"},
		{"endpoint", base + "/endpoints/ep-00", apiBase + "/onlineEndpoints/ep-00/deployments", "GET"},
		{"endpoint monitoring", base + "/endpoints/ep-00?tab=monitoring", apiBase + "/onlineEndpoints/ep-00", "GET"},
		{"endpoint test", base + "/endpoints/ep-00?tab=test", apiBase + "/onlineEndpoints/ep-00", "GET"},
		{"batch endpoints", base + "/batch-endpoints", apiBase + "/batchEndpoints", "GET"},
		{"batch endpoint", base + "/batch-endpoints/batch-0", apiBase + "/batchEndpoints/batch-0/jobs", "GET"},
		{"data", base + "/data", apiBase + "/data", "GET"},
		{"data asset with preview", base + "/data/data-0000", apiBase + "/data/data-0000/versions", "GET"},
		{"environments", base + "/environments", apiBase + "/environments", "GET"},
		{"component", base + "/components/component-0000", apiBase + "/components/component-0000/versions", "GET"},
		{"compute", base + "/computes", apiBase + "/computes", "GET"},
		{"schedules", base + "/schedules", apiBase + "/schedules", "GET"},
		{"audit", base + "/audit", "/api/v1/auditEvents", "GET"},
	}
	c := &http.Client{}
	enc := json.NewEncoder(os.Stdout)
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for _, p := range pages {
		if o.only != "" && p.name != o.only {
			continue
		}
		pageLat, size, err := measure(c, hs.URL+p.path, tok, o)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		apiLat, _, err := measure(c, hs.URL+p.api, tok, o)
		if err != nil {
			return fmt.Errorf("%s API: %w", p.name, err)
		}
		p50, p95 := loadstat.Percentile(pageLat, 0.50), loadstat.Percentile(pageLat, 0.95)
		a50, a95 := loadstat.Percentile(apiLat, 0.50), loadstat.Percentile(apiLat, 0.95)
		_ = enc.Encode(map[string]any{
			"page": p.name, "path": p.path, "api": p.api, "n": o.n,
			"p50_ms": loadstat.Round(loadstat.Ms(p50), 2), "p95_ms": loadstat.Round(loadstat.Ms(p95), 2),
			"api_p50_ms": loadstat.Round(loadstat.Ms(a50), 2), "api_p95_ms": loadstat.Round(loadstat.Ms(a95), 2),
			"p95_ratio": loadstat.Round(float64(p95)/float64(max(a95, 1)), 2), "bytes": size,
		})
	}
	return nil
}

// measure asks for path warmup+n times in a row and returns the n
// measured latencies, sorted, and the size of the last answer.
func measure(c *http.Client, url, tok string, o options) ([]time.Duration, int, error) {
	lat := make([]time.Duration, 0, o.n)
	size := 0
	for i := 0; i < o.warmup+o.n; i++ {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return nil, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		t0 := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return nil, 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if err != nil {
			return nil, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, 0, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b[:min(len(b), 300)])
		}
		size = len(b)
		if i >= o.warmup {
			lat = append(lat, d)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, size, nil
}

func seed(ctx context.Context, db interface {
	wharf.Store
}, blobs wharf.BlobStore, o options) error {
	w := &wharf.Workspace{Name: ws}
	if err := w.Validate(); err != nil {
		return err
	}
	if _, err := db.PutWorkspace(ctx, w); err != nil {
		return err
	}
	for i := range 5 {
		c := &wharf.Compute{Workspace: ws, Name: fmt.Sprintf("cluster-%d", i), MaxInstances: 8}
		if err := c.Validate(); err != nil {
			return err
		}
		if _, err := db.PutCompute(ctx, c); err != nil {
			return err
		}
	}
	// Jobs: newest last, in batches; one in ten made by a batch endpoint
	// or a schedule, one in a hundred still queued or running.
	now := time.Now().Add(-time.Duration(o.jobs) * time.Second)
	statuses := []string{wharf.JobCompleted, wharf.JobCompleted, wharf.JobFailed, wharf.JobCanceled}
	for i := 0; i < o.jobs; {
		var batch []*wharf.Job
		for ; i < o.jobs && len(batch) < 500; i++ {
			j := &wharf.Job{Workspace: ws, Name: fmt.Sprintf("job-%06d", i), Type: wharf.JobTypeCommand, Status: statuses[i%len(statuses)],
				Compute: fmt.Sprintf("cluster-%d", i%5), ExperimentName: fmt.Sprintf("exp-%d", i%20), SubmittedBy: "app-bench",
				Tags: map[string]string{}, CreatedAt: now.Add(time.Duration(i) * time.Second), Spec: json.RawMessage(`{}`)}
			switch i % 10 {
			case 3:
				j.Tags["wharf.batch_endpoint"] = fmt.Sprintf("batch-%d", i%3)
			case 7:
				j.Tags["wharf.schedule"] = fmt.Sprintf("schedule-%02d", i%20)
			}
			if i%100 == 99 {
				j.Status = []string{wharf.JobQueued, wharf.JobRunning}[i/100%2]
			}
			batch = append(batch, j)
		}
		if err := db.CreateJobs(ctx, batch); err != nil {
			return err
		}
	}
	for i := range o.audit {
		e := &wharf.AuditEvent{PrincipalID: "app-bench", PrincipalName: "bench", Action: wharf.ActionJobWrite, Method: "POST",
			Path: "/api/v1/workspaces/" + ws + "/jobs", Scope: wharf.WorkspaceScope(ws), Status: 201, Outcome: wharf.AuditSucceeded,
			RequestID: strconv.Itoa(i)}
		if err := db.RecordAuditEvent(ctx, e); err != nil {
			return err
		}
	}
	for m := range o.models {
		name := fmt.Sprintf("model-%04d", m)
		if err := db.CreateRegisteredModel(ctx, &wharf.RegisteredModel{Workspace: ws, Name: name, Description: "bench model"}); err != nil {
			return err
		}
		for range o.versions {
			if err := db.CreateModelVersion(ctx, &wharf.ModelVersion{Workspace: ws, Name: name, Source: "azureml://datastores/workspaceblobstore/paths/m/" + name,
				Type: wharf.ModelTypeCustom, Tags: map[string]string{"team": "bench"}}); err != nil {
				return err
			}
		}
		if err := db.SetModelAlias(ctx, ws, name, "champion", int64(o.versions)); err != nil {
			return err
		}
	}
	for e := range o.endpoints {
		ep := &wharf.OnlineEndpoint{Workspace: ws, Name: fmt.Sprintf("ep-%02d", e)}
		if err := ep.Validate(); err != nil {
			return err
		}
		if _, err := db.PutOnlineEndpoint(ctx, ep); err != nil {
			return err
		}
		for _, d := range []string{"blue", "green"} {
			if _, err := db.PutOnlineDeployment(ctx, &wharf.OnlineDeployment{Workspace: ws, Endpoint: ep.Name, Name: d, Model: "model-0000:1", Spec: json.RawMessage(`{}`)}); err != nil {
				return err
			}
		}
		ep.Traffic = map[string]int{"blue": 90, "green": 10}
		if _, err := db.PutOnlineEndpoint(ctx, ep); err != nil {
			return err
		}
	}
	for b := range 3 {
		if _, err := db.PutBatchEndpoint(ctx, &wharf.BatchEndpoint{Workspace: ws, Name: fmt.Sprintf("batch-%d", b), Tags: map[string]string{}}); err != nil {
			return err
		}
	}
	next := time.Now().Add(time.Hour)
	for s := range 20 {
		if _, err := db.PutSchedule(ctx, &wharf.Schedule{Workspace: ws, Name: fmt.Sprintf("schedule-%02d", s), Enabled: true,
			Trigger: json.RawMessage(`{"type":"cron","expression":"0 2 * * *"}`), Job: json.RawMessage(`{}`), CreatedBy: "app-bench",
			CreatedAt: time.Now(), NextRun: &next, Tags: map[string]string{}}); err != nil {
			return err
		}
	}
	// The data file the data page previews: a taxi-like CSV.
	var csv bytes.Buffer
	csv.WriteString("distance,hour,passengers,fare\n")
	for r := range o.rows {
		fmt.Fprintf(&csv, "%.2f,%d,%d,%.2f\n", float64(r%300)/10, r%24, 1+r%4, 2.5+float64(r%300)/4)
	}
	digest, size, err := blobs.Put(ctx, &csv)
	if err != nil {
		return err
	}
	if err := db.AddBlobRefs(ctx, ws, []string{digest}); err != nil {
		return err
	}
	for a := range o.assets {
		spec, _ := json.Marshal(map[string]any{"type": "uri_file", "path": "azureml://datastores/workspaceblobstore/paths/taxi.csv", "kind": "file", "file_name": "taxi.csv", "size": size})
		for _, as := range []*wharf.Asset{
			{Kind: wharf.AssetData, Name: fmt.Sprintf("data-%04d", a), Spec: spec, Digest: digest},
			{Kind: wharf.AssetEnvironment, Name: fmt.Sprintf("environment-%04d", a), Spec: json.RawMessage(`{"image":"python:3.11-slim","conda_file":{"dependencies":["python=3.11","scikit-learn"]}}`)},
			{Kind: wharf.AssetComponent, Name: fmt.Sprintf("component-%04d", a), Spec: json.RawMessage(`{"type":"command","command":"python train.py --data ${{inputs.data}}","inputs":{"data":{"type":"uri_folder"}},"environment":"azureml:environment-0000:1"}`)},
		} {
			as.Workspace, as.Version, as.Tags, as.CreatedBy = ws, "1", map[string]string{}, "app-bench"
			if err := db.CreateAsset(ctx, as); err != nil {
				return err
			}
		}
	}
	return nil
}
