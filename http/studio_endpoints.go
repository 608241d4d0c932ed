package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/scoring"
	"github.com/wharfml/wharf/serving"
	"github.com/wharfml/wharf/snapshot"
)

// endpointRow is one online endpoint in the list.
type endpointRow struct {
	Name, AuthMode, Description string
	Deployments                 []deploymentJSON
	Traffic                     map[string]int
	// Health is Healthy when every deployment with live traffic has
	// started, Failed when one has failed, else the first other state.
	Health string
}

func (s *Server) pageEndpoints(w http.ResponseWriter, r *http.Request) {
	p, err := s.newStudioPage(r, "Online endpoints", "endpoints")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	eps, err := s.Store.ListOnlineEndpoints(r.Context(), p.Workspace)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	rows := make([]endpointRow, len(eps))
	for i, e := range eps {
		rows[i], err = s.endpointRow(r, e)
		if err != nil {
			s.writeStudioError(w, r, err)
			return
		}
	}
	p.Data = rows
	s.renderStudio(w, r, http.StatusOK, "endpoints", p)
}

func (s *Server) endpointRow(r *http.Request, e *wharf.OnlineEndpoint) (endpointRow, error) {
	ds, err := s.Store.ListOnlineDeployments(r.Context(), e.Workspace, e.Name)
	if err != nil {
		return endpointRow{}, err
	}
	row := endpointRow{Name: e.Name, AuthMode: e.AuthMode, Description: e.Description, Traffic: e.Traffic, Health: "No traffic"}
	for _, d := range ds {
		dj := s.deploymentJSON(r, d)
		row.Deployments = append(row.Deployments, dj)
		if e.Traffic[d.Name] == 0 {
			continue
		}
		switch {
		case dj.ProvisioningState == "Failed":
			row.Health = "Failed"
		case row.Health == "Failed":
		case dj.ProvisioningState != "Succeeded":
			row.Health = dj.ProvisioningState
		case row.Health == "No traffic":
			row.Health = "Healthy"
		}
	}
	return row, nil
}

// endpointView is the online endpoint page.
type endpointView struct {
	endpointRow
	Tab        string
	ScoringURI string
	Mirror     map[string]int
	// Logs is the chosen deployment's log tail (Logs tab).
	LogDeployment string
	Logs          string
	// Request is the Test tab's request body; Response its answer.
	Request    string
	Deployment string
	Response   *testResponse
	Charts     []studioChart
	Totals     endpointTotals
	// Error and Message report how a form's change went.
	Error, Message string
}

// testResponse is the scoring route's answer to a Test tab request.
type testResponse struct {
	Status     int
	StatusText string
	Latency    time.Duration
	Body       string
	Truncated  bool
}

// endpointTabOrder lists the endpoint page's tabs.
var endpointTabOrder = []string{"details", "test", "logs", "monitoring"}

func (s *Server) pageEndpoint(w http.ResponseWriter, r *http.Request) {
	s.renderEndpoint(w, r, http.StatusOK, nil)
}

// renderEndpoint renders the endpoint page; edit, when set, is called with
// the view before it renders (a form's outcome).
func (s *Server) renderEndpoint(w http.ResponseWriter, r *http.Request, status int, edit func(v *endpointView)) {
	ctx := r.Context()
	p, err := s.newStudioPage(r, "", "endpoints")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	e, err := s.Store.FindOnlineEndpoint(ctx, p.Workspace, r.PathValue("name"))
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	row, err := s.endpointRow(r, e)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	v := &endpointView{endpointRow: row, Tab: r.URL.Query().Get("tab"), ScoringURI: s.ScoringURI(e.Workspace, e.Name), Mirror: e.MirrorTraffic}
	if !slices.Contains(endpointTabOrder, v.Tab) {
		v.Tab = "details"
	}
	p.Title, p.Data = "Endpoint "+e.Name, v
	if edit != nil {
		edit(v)
	}
	switch v.Tab {
	case "logs":
		v.LogDeployment = r.URL.Query().Get("deployment")
		if v.LogDeployment == "" && len(row.Deployments) > 0 {
			v.LogDeployment = row.Deployments[0].Name
		}
		if v.LogDeployment != "" {
			b, err := s.Endpoints.DeploymentLogs(e.Workspace, e.Name, v.LogDeployment, 200)
			if err != nil {
				v.Logs = "The log cannot be read: " + err.Error()
			} else {
				v.Logs = string(b)
			}
		}
	case "test":
		if v.Request == "" {
			v.Request = s.sampleRequest(ctx, e.Workspace, row)
		}
	case "monitoring":
		v.Totals = s.endpointSeries.totals(s.registry, e.Workspace, e.Name, s.now())
		base := "/workspaces/" + e.Workspace + "/endpoints/" + e.Name + "/series?chart="
		for _, c := range endpointCharts {
			v.Charts = append(v.Charts, studioChart{Key: c.Title, Src: base + c.Key})
		}
	}
	s.renderStudio(w, r, status, "endpoint", p)
}

// pageEndpointSeries answers a monitoring chart's request for one of
// endpointCharts, as JSON the studio's charts draw.
func (s *Server) pageEndpointSeries(w http.ResponseWriter, r *http.Request) {
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	if _, err := s.Store.FindOnlineEndpoint(r.Context(), ws, name); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, ok := s.endpointSeries.chart(s.registry, ws, name, r.URL.Query().Get("chart"), s.now())
	if !ok {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "chart must be requests, latency or errors").WithField("chart"))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// pageSetTraffic changes the live traffic split from the endpoint page's
// form: one field traffic.<deployment> per deployment. The split is
// checked as the API checks it, and a refused one changes nothing.
func (s *Server) pageSetTraffic(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	e, err := s.Store.FindOnlineEndpoint(ctx, ws, name)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	ds, err := s.Store.ListOnlineDeployments(ctx, ws, name)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	traffic := map[string]int{}
	var problem error
	for _, d := range ds {
		field := "traffic." + d.Name
		raw := strings.TrimSpace(r.PostFormValue(field))
		if raw == "" {
			raw = "0"
		}
		n, err := strconv.Atoi(raw)
		if err != nil {
			problem = wharf.Errorf(wharf.EINVALID, "traffic for %s must be a whole number of percent, got %q", d.Name, raw).WithField(field)
			break
		}
		if n != 0 {
			traffic[d.Name] = n
		}
	}
	if problem == nil {
		next := *e
		next.Traffic = traffic
		if problem = next.Validate(); problem == nil {
			if _, problem = s.Store.PutOnlineEndpoint(ctx, &next); problem == nil {
				s.Endpoints.Invalidate(ws, name)
			}
		}
	}
	if problem != nil && wharf.ErrorCode(problem) != wharf.EINVALID {
		s.writeStudioError(w, r, problem)
		return
	}
	status := http.StatusOK
	s.renderEndpoint(w, r, status, func(v *endpointView) {
		if problem != nil {
			v.Error = "The traffic was not changed: " + wharf.ErrorMessage(problem)
			return
		}
		v.Message = "Traffic updated."
	})
}

// testRequestLimit caps the Test tab's request body, as the scoring route
// caps its own.
const testRequestLimit = 1 << 20

// testResponseShown is how much of a scoring answer the Test tab shows.
const testResponseShown = 64 << 10

// pageTestEndpoint sends the Test tab's request to the endpoint's scoring
// route on the signed-in user's behalf. The server presents the endpoint's
// key (or, for an aml_token endpoint, a token it issues to the caller)
// itself: the credential never reaches the page.
func (s *Server) pageTestEndpoint(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	body := r.PostFormValue("request")
	dep := r.PostFormValue("deployment")
	e, err := s.Store.FindOnlineEndpoint(ctx, ws, name)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	var res *testResponse
	var problem string
	switch {
	case len(body) > testRequestLimit:
		problem = "The request is larger than 1 MiB."
	case !json.Valid([]byte(body)):
		problem = "The request is not valid JSON."
	default:
		res, err = s.forwardScore(r, e, body, dep)
		if err != nil {
			s.writeStudioError(w, r, err)
			return
		}
	}
	r.URL.RawQuery = "tab=test"
	s.renderEndpoint(w, r, http.StatusOK, func(v *endpointView) {
		v.Tab, v.Request, v.Deployment, v.Response = "test", body, dep, res
		v.Error = problem
	})
}

// forwardScore answers body as the scoring route would answer the
// endpoint's own client.
func (s *Server) forwardScore(r *http.Request, e *wharf.OnlineEndpoint, body, deployment string) (*testResponse, error) {
	ctx := r.Context()
	var cred string
	if e.AuthMode == wharf.AuthModeAMLToken {
		tok, _, err := s.Tokens.Issue(callerID(r), s.TenantID, callerID(r), EndpointAudience(e.Workspace, e.Name))
		if err != nil {
			return nil, err
		}
		cred = tok
	} else {
		sec, err := s.Store.GetSecret(ctx, wharf.WorkspaceScope(e.Workspace), wharf.OnlineEndpointKeySecret(e.Name, "primary"), "")
		if err != nil {
			return nil, err
		}
		cred = string(sec.Value)
	}
	path := "/endpoints/" + e.Workspace + "/" + e.Name + "/score"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.SetPathValue("workspace", e.Workspace)
	req.SetPathValue("endpoint", e.Name)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+cred)
	if deployment != "" {
		req.Header.Set(serving.DeploymentHeader, deployment)
	}
	rec := &captureWriter{header: http.Header{}, limit: testResponseShown}
	start := time.Now()
	s.Endpoints.Score(rec, req, e.Workspace, e.Name)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &testResponse{Status: rec.status, StatusText: http.StatusText(rec.status), Latency: time.Since(start).Round(10 * time.Microsecond),
		Body: rec.buf.String(), Truncated: rec.truncated}, nil
}

// captureWriter keeps the head of a response for the Test tab.
type captureWriter struct {
	header    http.Header
	status    int
	buf       bytes.Buffer
	limit     int
	truncated bool
}

func (c *captureWriter) Header() http.Header { return c.header }

func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	room := c.limit - c.buf.Len()
	if room < len(p) {
		c.truncated = true
		if room > 0 {
			c.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return c.buf.Write(p)
}

// sampleRequest is the Test tab's starting request: the example the model
// was logged with, or one row built from its signature, or an empty
// Azure ML request.
func (s *Server) sampleRequest(ctx context.Context, ws string, row endpointRow) string {
	const fallback = `{"input_data": {"columns": [], "data": [[]]}}`
	model := ""
	for _, d := range row.Deployments {
		if model == "" || row.Traffic[d.Name] > 0 {
			model = d.Model
		}
	}
	if model == "" || s.Blobs == nil {
		return fallback
	}
	files, err := s.modelFiles(ctx, ws, model)
	if err != nil {
		return fallback
	}
	read := modelFileReader(ctx, s.Blobs, files)
	if b, err := read("serving_input_example.json"); err == nil && json.Valid(b) {
		return indentJSON(b)
	}
	b, err := read("MLmodel")
	if err != nil {
		return fallback
	}
	mm, err := scoring.ParseMLmodel(b)
	if err != nil || mm.Signature == nil || mm.Signature.Inputs == "" {
		return fallback
	}
	var cols []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if json.Unmarshal([]byte(mm.Signature.Inputs), &cols) != nil || len(cols) == 0 {
		return fallback
	}
	names := make([]string, len(cols))
	values := make([]any, len(cols))
	for i, c := range cols {
		names[i] = c.Name
		switch c.Type {
		case "string":
			values[i] = ""
		case "boolean":
			values[i] = false
		default:
			values[i] = 0
		}
	}
	out, _ := json.Marshal(map[string]any{"input_data": map[string]any{"columns": names, "data": [][]any{values}}})
	return indentJSON(out)
}

// modelFileReader reads small files of a model folder (MLmodel and its
// companions, up to 1 MiB each): at its top or, for a model registered
// from a folder, in that folder, the only one there.
func modelFileReader(ctx context.Context, blobs wharf.BlobStore, files []snapshot.File) func(name string) ([]byte, error) {
	byPath := map[string]snapshot.File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	folder := ""
	if _, ok := byPath["MLmodel"]; !ok && len(files) > 0 {
		top, _, _ := strings.Cut(files[0].Path, "/")
		folder = top + "/"
	}
	return func(name string) ([]byte, error) {
		f, ok := byPath[folder+name]
		if !ok {
			return nil, fs.ErrNotExist
		}
		if f.Size > 1<<20 {
			return nil, errors.New(name + " is too large to show")
		}
		rc, _, err := blobs.Open(ctx, f.Digest)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(io.LimitReader(rc, 1<<20))
	}
}

func indentJSON(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return string(b)
	}
	return out.String()
}
