package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wharfml/wharf/internal/jsoncall"
	"github.com/wharfml/wharf/snapshot"
)

// Tracking is the MLflow run a job step runs in. Its methods speak the
// MLflow REST API to the server the step runs against, with the
// credentials the executor gave the step, as the mlflow Python client in a
// step would. A nil *Tracking is a step run outside a job: it logs
// nothing and has no registered models to compare with.
type Tracking struct {
	URI   string // MLFLOW_TRACKING_URI, an http(s) URL
	Token string // MLFLOW_TRACKING_TOKEN
	RunID string // MLFLOW_RUN_ID
}

// TrackingFromEnv returns the run the executor put in the environment, or
// nil outside a job (or with a tracking URI that is not a server, such as
// a local folder, which the steps do not write to).
func TrackingFromEnv() *Tracking {
	uri, run := os.Getenv("MLFLOW_TRACKING_URI"), os.Getenv("MLFLOW_RUN_ID")
	if uri == "" || run == "" || !strings.HasPrefix(uri, "http") {
		return nil
	}
	return &Tracking{URI: strings.TrimRight(uri, "/"), Token: os.Getenv("MLFLOW_TRACKING_TOKEN"), RunID: run}
}

// mlflowError is an error answer of the MLflow API.
type mlflowError struct {
	Status  int
	Code    string `json:"error_code"`
	Message string `json:"message"`
}

func (e *mlflowError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// call sends a JSON request to an /api/2.0/mlflow path; out, when not
// nil, receives the answer.
func (t *Tracking) call(ctx context.Context, method, path string, in, out any) error {
	return t.api().Do(ctx, method, t.URI+"/api/2.0/mlflow/"+path, in, out)
}

// api is how the tracking server is called: with the step's token, its
// errors read as MLflow's (mlflowError).
func (t *Tracking) api() jsoncall.Call {
	return jsoncall.Call{
		Authorize: func(req *http.Request) error {
			if t.Token != "" {
				req.Header.Set("Authorization", "Bearer "+t.Token)
			}
			return nil
		},
		Failed: func(resp *http.Response) error {
			e := &mlflowError{Status: resp.StatusCode}
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if json.Unmarshal(msg, e) != nil || e.Message == "" {
				e.Message = strings.TrimSpace(string(msg))
			}
			return e
		},
	}
}

// logBatch logs metrics and params to the step's run; nothing outside a
// job.
func (t *Tracking) logBatch(ctx context.Context, metrics map[string]float64, params map[string]string) error {
	if t == nil {
		return nil
	}
	now := time.Now().UnixMilli()
	ms := []map[string]any{}
	for k, v := range metrics {
		ms = append(ms, map[string]any{"key": k, "value": v, "timestamp": now, "step": 0})
	}
	ps := []map[string]string{}
	for k, v := range params {
		ps = append(ps, map[string]string{"key": k, "value": v})
	}
	return t.call(ctx, http.MethodPost, "runs/log-batch", map[string]any{"run_id": t.RunID, "metrics": ms, "params": ps}, nil)
}

// artifactURL is the proxy URL of a path under mlflow-artifacts:/.
func (t *Tracking) artifactURL(path string) string {
	return t.URI + "/api/2.0/mlflow-artifacts/artifacts/" + (&url.URL{Path: strings.TrimLeft(path, "/")}).EscapedPath()
}

// artifactPath is the path of an mlflow-artifacts URI under the proxy.
func artifactPath(uri string) (string, error) {
	rest, ok := strings.CutPrefix(uri, "mlflow-artifacts:")
	if !ok {
		return "", fmt.Errorf("%s is not an mlflow-artifacts: URI", uri)
	}
	if strings.HasPrefix(rest, "//") {
		_, rest, _ = strings.Cut(rest[2:], "/")
	}
	return strings.Trim(rest, "/"), nil
}

// resolveRunsURI turns a runs:/<run>/<path> URI, which the registry
// gives back as a download URI as MLflow's does, into the run's artifact
// location; other URIs are returned as they are.
func (t *Tracking) resolveRunsURI(ctx context.Context, uri string) (string, error) {
	rest, ok := strings.CutPrefix(uri, "runs:/")
	if !ok {
		return uri, nil
	}
	runID, sub, _ := strings.Cut(strings.TrimLeft(rest, "/"), "/")
	root, err := t.runArtifactURI(ctx, runID)
	if err != nil {
		return "", fmt.Errorf("read run %s of %s: %w", runID, uri, err)
	}
	root = strings.TrimRight(root, "/")
	if sub = strings.Trim(sub, "/"); sub == "" {
		return root, nil
	}
	return root + "/" + sub, nil
}

// runArtifactURI is the artifact location of a run.
func (t *Tracking) runArtifactURI(ctx context.Context, runID string) (string, error) {
	var run struct {
		Run struct {
			Info struct {
				ArtifactURI string `json:"artifact_uri"`
			} `json:"info"`
		} `json:"run"`
	}
	err := t.call(ctx, http.MethodGet, "runs/get?run_id="+url.QueryEscape(runID), nil, &run)
	return run.Run.Info.ArtifactURI, err
}

// uploadDir uploads every file under dir to the artifact path dest, as
// snapshot.Files lists them: no link is followed out of dir.
func (t *Tracking) uploadDir(ctx context.Context, dir, dest string) error {
	files, err := snapshot.Files(dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := t.upload(ctx, f.Real, dest+"/"+f.Path); err != nil {
			return fmt.Errorf("upload %s: %w", f.Path, err)
		}
	}
	return nil
}

// upload sends one file to the artifact path dest.
func (t *Tracking) upload(ctx context.Context, file, dest string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, t.artifactURL(dest), f)
	if err != nil {
		return err
	}
	req.ContentLength = st.Size()
	return t.api().Send(req, nil)
}

// download fetches one artifact file into target.
func (t *Tracking) download(ctx context.Context, path, target string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.artifactURL(path), nil)
	if err != nil {
		return err
	}
	if t.Token != "" {
		req.Header.Set("Authorization", "Bearer "+t.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download %s: HTTP %d", path, resp.StatusCode)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.Create(target)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// modelVersion is the part of an MLflow model version the steps use.
type modelVersion struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Source  string `json:"source"`
	RunID   string `json:"run_id"`
}

// modelVersions lists every version of a registered model.
func (t *Tracking) modelVersions(ctx context.Context, name string) ([]modelVersion, error) {
	var all []modelVersion
	token := ""
	for {
		q := url.Values{"filter": {"name='" + strings.ReplaceAll(name, "'", "\\'") + "'"}, "max_results": {"1000"}}
		if token != "" {
			q.Set("page_token", token)
		}
		var page struct {
			Versions []modelVersion `json:"model_versions"`
			Next     string         `json:"next_page_token"`
		}
		if err := t.call(ctx, http.MethodGet, "model-versions/search?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Versions...)
		if page.Next == "" {
			return all, nil
		}
		token = page.Next
	}
}
