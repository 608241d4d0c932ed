package http

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/mlflow"
)

// The experiments pages read MLflow's data through the store, as the
// MLflow UI reads it through the REST API: the runs table is a run search
// (MLflow's filter and order-by syntax), the charts read each history
// sampled for display (see studio_downsample.go).

const (
	studioRunsPerPage = 100
	// studioRunColumns bounds the param and metric columns of the runs
	// table, each: the keys of the page's runs, in name order.
	studioRunColumns = 12
	// studioCharts bounds the charts of a run page; the others are a
	// click away.
	studioCharts = 12
)

// studioExperiments is the experiments page.
type studioExperiments struct {
	Experiments []*wharf.Experiment
	Next        string
}

func (s *Server) handleStudioExperiments(w http.ResponseWriter, r *http.Request) {
	p, err := s.newStudioPage(r, "Experiments", "experiments")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	d := &studioExperiments{}
	var next string
	d.Experiments, next, err = s.Store.SearchExperiments(r.Context(), p.Workspace, wharf.SearchQuery{MaxResults: studioRunsPerPage,
		OrderBy: []string{"last_update_time DESC"}, PageToken: r.URL.Query().Get("page")})
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	if next != "" {
		d.Next = "?page=" + url.QueryEscape(next)
	}
	p.Data = d
	s.renderStudio(w, r, http.StatusOK, "experiments", p)
}

// studioRuns is an experiment's runs table.
type studioRuns struct {
	Experiment            *wharf.Experiment
	Filter, Order         string
	Runs                  []*studioRunRow
	ParamKeys, MetricKeys []string
	// Error is a filter or order the store refused, said back.
	Error       string
	Next, First string
}

// studioRunRow is one run of the table.
type studioRunRow struct {
	*wharf.Run
	Metrics map[string]float64
}

// SortLink is the address that orders the table by column (an MLflow
// order-by term such as metrics.`rmse`): descending first, ascending
// when it is so ordered already.
func (d *studioRuns) SortLink(column string) string {
	dir := " DESC"
	if d.Order == column+" DESC" {
		dir = " ASC"
	}
	q := url.Values{"order": {column + dir}}
	if d.Filter != "" {
		q.Set("filter", d.Filter)
	}
	return "?" + q.Encode()
}

// SortState is the aria-sort value of a column.
func (d *studioRuns) SortState(column string) string {
	switch d.Order {
	case column + " DESC":
		return "descending"
	case column + " ASC":
		return "ascending"
	}
	return "none"
}

func (s *Server) handleStudioRuns(w http.ResponseWriter, r *http.Request) {
	p, err := s.newStudioPage(r, "Runs", "experiments")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	ctx, q := r.Context(), r.URL.Query()
	exp, err := s.Store.FindExperiment(ctx, p.Workspace, r.PathValue("id"))
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	p.Title = exp.Name
	d := &studioRuns{Experiment: exp, Filter: q.Get("filter"), Order: q.Get("order")}
	if d.Order == "" {
		d.Order = "attributes.start_time DESC"
	}
	runs, next, err := s.Store.SearchRuns(ctx, p.Workspace, wharf.SearchQuery{ExperimentIDs: []string{exp.ID}, Filter: d.Filter,
		OrderBy: []string{d.Order}, MaxResults: studioRunsPerPage, PageToken: q.Get("page"), ViewType: 1})
	if wharf.ErrorCode(err) == wharf.EINVALID {
		d.Error = wharf.ErrorMessage(err)
	} else if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	params, metrics := map[string]bool{}, map[string]bool{}
	for _, run := range runs {
		row := &studioRunRow{Run: run, Metrics: map[string]float64{}}
		for k := range run.Params {
			params[k] = true
		}
		for _, m := range run.Metrics {
			row.Metrics[m.Key] = m.Value
			metrics[m.Key] = true
		}
		d.Runs = append(d.Runs, row)
	}
	d.ParamKeys, d.MetricKeys = firstKeys(params, studioRunColumns), firstKeys(metrics, studioRunColumns)
	keep := url.Values{"order": {d.Order}}
	if d.Filter != "" {
		keep.Set("filter", d.Filter)
	}
	if q.Get("page") != "" {
		d.First = "?" + keep.Encode()
	}
	if next != "" {
		keep.Set("page", next)
		d.Next = "?" + keep.Encode()
	}
	p.Data = d
	s.renderStudio(w, r, http.StatusOK, "runs", p)
}

// firstKeys returns the first n keys of set in name order.
func firstKeys(set map[string]bool, n int) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > n {
		keys = keys[:n]
	}
	return keys
}

// studioRun is a run's page.
type studioRun struct {
	Run        *wharf.Run
	Experiment *wharf.Experiment
	Params     []wharf.Param
	Tags       []wharf.Param
	Metrics    []*wharf.Metric
	// Charts are the metric keys drawn.
	Charts []string
	// Job is the job that logged the run, when one did.
	Job string
	// Artifacts is the browser: the folder or file at Path.
	Artifacts *studioArtifacts
}

func (s *Server) handleStudioRun(w http.ResponseWriter, r *http.Request) {
	p, err := s.newStudioPage(r, "Run", "experiments")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	ctx := r.Context()
	run, err := s.Store.FindRun(ctx, p.Workspace, r.PathValue("id"))
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	d := &studioRun{Run: run, Job: run.Tags["wharf.job"]}
	if d.Experiment, err = s.Store.FindExperiment(ctx, p.Workspace, run.ExperimentID); err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	p.Title = run.Name
	d.Params, d.Tags = sortedPairs(run.Params), sortedPairs(run.Tags)
	d.Metrics = run.Metrics
	sort.Slice(d.Metrics, func(i, j int) bool { return d.Metrics[i].Key < d.Metrics[j].Key })
	for _, m := range d.Metrics {
		if len(d.Charts) < studioCharts || m.Key == r.URL.Query().Get("chart") {
			d.Charts = append(d.Charts, m.Key)
		}
	}
	if d.Artifacts, err = s.browseArtifacts(r, run); err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	p.Data = d
	s.renderStudio(w, r, http.StatusOK, "run", p)
}

func sortedPairs(m map[string]string) []wharf.Param {
	out := make([]wharf.Param, 0, len(m))
	for k, v := range m {
		out = append(out, wharf.Param{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// studioCompare overlays runs: their params and latest metrics side by
// side, and a chart per metric they share with every run a series.
type studioCompare struct {
	Runs      []*wharf.Run
	RunIDs    []string
	ParamKeys []string
	Params    map[string][]string
	// Metrics maps a key to each run's latest value ("" where it has
	// none).
	MetricKeys []string
	Metrics    map[string][]string
	Charts     []string
}

// studioCompareRuns bounds the runs of one comparison.
const studioCompareRuns = 10

func (s *Server) handleStudioCompare(w http.ResponseWriter, r *http.Request) {
	p, err := s.newStudioPage(r, "Compare runs", "experiments")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	ids := r.URL.Query()["run"]
	if len(ids) == 0 || len(ids) > studioCompareRuns {
		s.writeStudioError(w, r, wharf.Errorf(wharf.EINVALID, "choose between 1 and %d runs to compare", studioCompareRuns).WithField("run"))
		return
	}
	d := &studioCompare{Params: map[string][]string{}, Metrics: map[string][]string{}}
	params, metrics, counts := map[string]bool{}, map[string]bool{}, map[string]int{}
	for _, id := range ids {
		run, err := s.Store.FindRun(r.Context(), p.Workspace, id)
		if err != nil {
			s.writeStudioError(w, r, err)
			return
		}
		d.Runs, d.RunIDs = append(d.Runs, run), append(d.RunIDs, run.ID)
		for k := range run.Params {
			params[k] = true
		}
		for _, m := range run.Metrics {
			metrics[m.Key] = true
			counts[m.Key]++
		}
	}
	d.ParamKeys, d.MetricKeys = firstKeys(params, 100), firstKeys(metrics, 100)
	for _, k := range d.ParamKeys {
		for _, run := range d.Runs {
			d.Params[k] = append(d.Params[k], run.Params[k])
		}
	}
	for _, k := range d.MetricKeys {
		for _, run := range d.Runs {
			v := ""
			for _, m := range run.Metrics {
				if m.Key == k {
					v = strconv.FormatFloat(m.Value, 'g', 6, 64)
				}
			}
			d.Metrics[k] = append(d.Metrics[k], v)
		}
		if counts[k] > 1 || len(d.Runs) == 1 {
			if len(d.Charts) < studioCharts {
				d.Charts = append(d.Charts, k)
			}
		}
	}
	p.Data = d
	s.renderStudio(w, r, http.StatusOK, "compare", p)
}

// ChartQuery is the query of the history route for these runs.
func (d *studioCompare) ChartQuery() string {
	return url.Values{"run": d.RunIDs}.Encode()
}

// historyJSON is what a chart draws: each run's values of one key, in
// order, with their steps and times; NaN and infinities are null.
type historyJSON struct {
	Key  string           `json:"key"`
	Runs []runHistoryJSON `json:"runs"`
}

type runHistoryJSON struct {
	Run  string `json:"run"`
	Name string `json:"name"`
	// Sampled says the history was longer than what is drawn: its first
	// and last values are exact, the rest a sample spread over its steps.
	Sampled bool       `json:"sampled"`
	Steps   []int64    `json:"steps"`
	Times   []int64    `json:"times"`
	Values  []*float64 `json:"values"`
}

// handleStudioMetricHistory answers a chart's request for key in runs.
func (s *Server) handleStudioMetricHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key, ids := q.Get("key"), q["run"]
	if key == "" || len(ids) == 0 || len(ids) > studioCompareRuns {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "name the metric in key and between 1 and %d runs in run", studioCompareRuns))
		return
	}
	out := historyJSON{Key: key, Runs: []runHistoryJSON{}}
	for _, id := range ids {
		run, err := s.Store.FindRun(r.Context(), r.PathValue("workspace"), id)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		sample, err := s.Store.MetricHistorySample(r.Context(), run.Workspace, run.ID, key, chartPoints, chartExactPoints)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		points := downsampleM4(sample.Points, chartPoints)
		h := runHistoryJSON{Run: run.ID, Name: run.Name, Sampled: !sample.Exact,
			Steps: make([]int64, len(points)), Times: make([]int64, len(points)), Values: make([]*float64, len(points))}
		for i, m := range points {
			h.Steps[i], h.Times[i] = m.Step, m.Timestamp
			if v := m.Value; !math.IsNaN(v) && !math.IsInf(v, 0) {
				h.Values[i] = &v
			}
		}
		out.Runs = append(out.Runs, h)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// studioArtifacts is the artifact browser of a run: the entries of the
// folder at Path, or the preview of the file there.
type studioArtifacts struct {
	Path    string
	Parents []studioCrumb
	Entries []studioArtifactEntry
	// File is set when Path is a file.
	File *studioPreview
}

// studioCrumb is one folder of the path shown above the listing.
type studioCrumb struct{ Name, Path string }

// studioArtifactEntry is one entry of a folder.
type studioArtifactEntry struct {
	Name, Path string
	Dir        bool
	Size       int64
}

// studioPreview is how a file is shown: Kind is text, json, csv, image or
// none (too large or binary; download only).
type studioPreview struct {
	Name, Kind string
	Size       int64
	Text       string
	Truncated  bool
	Rows       [][]string
}

// Preview bounds: the bytes of text read, the rows of a CSV's head.
const (
	artifactPreviewBytes = 64 << 10
	artifactPreviewRows  = 20
)

// browseArtifacts lists the folder or previews the file at the request's
// path below the run's artifact root.
func (s *Server) browseArtifacts(r *http.Request, run *wharf.Run) (*studioArtifacts, error) {
	root, ok := mlflow.ArtifactRoot(run.ArtifactURI)
	out := &studioArtifacts{Path: strings.Trim(r.URL.Query().Get("path"), "/")}
	if !ok {
		return out, nil
	}
	if out.Path != "" {
		if hasDotSegment("/" + out.Path) {
			return nil, wharf.Errorf(wharf.EINVALID, "artifact path %q has an empty, . or .. segment", out.Path).WithField("path")
		}
		parts := strings.Split(out.Path, "/")
		for i := range parts[:len(parts)-1] {
			out.Parents = append(out.Parents, studioCrumb{Name: parts[i], Path: strings.Join(parts[:i+1], "/")})
		}
	}
	full := root
	if out.Path != "" {
		full = root + "/" + out.Path
	}
	if out.Path != "" {
		if a, err := s.Store.FindArtifact(r.Context(), run.Workspace, full); err == nil {
			out.File, err = s.previewArtifact(r, a)
			return out, err
		} else if !wharf.IsNotFound(err) {
			return nil, err
		}
	}
	arts, err := s.Store.ListArtifacts(r.Context(), run.Workspace, full)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, a := range arts {
		rest, ok := strings.CutPrefix(a.Path, full+"/")
		if !ok {
			continue
		}
		name, _, isDir := strings.Cut(rest, "/")
		if seen[name] {
			continue
		}
		seen[name] = true
		p := name
		if out.Path != "" {
			p = out.Path + "/" + name
		}
		out.Entries = append(out.Entries, studioArtifactEntry{Name: name, Path: p, Dir: isDir, Size: a.Size})
	}
	return out, nil
}

// previewKind says how a file name is previewed.
func previewKind(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg":
		return "image"
	case ".json":
		return "json"
	case ".csv":
		return "csv"
	}
	return "text"
}

func (s *Server) previewArtifact(r *http.Request, a *wharf.Artifact) (*studioPreview, error) {
	p := &studioPreview{Name: path.Base(a.Path), Size: a.Size, Kind: previewKind(a.Path)}
	if p.Kind == "image" || s.Blobs == nil {
		return p, nil
	}
	rc, _, err := s.Blobs.Open(r.Context(), a.Digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	head := make([]byte, artifactPreviewBytes)
	n, err := io.ReadFull(rc, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, err
	}
	head, p.Truncated = head[:n], int64(n) < a.Size
	if bytes.IndexByte(head, 0) >= 0 || !utf8.Valid(trimPartialRune(head)) {
		p.Kind = "none"
		return p, nil
	}
	p.Text = string(head)
	switch p.Kind {
	case "json":
		var buf bytes.Buffer
		if !p.Truncated && json.Indent(&buf, head, "", "  ") == nil {
			p.Text = buf.String()
		}
	case "csv":
		cr := csv.NewReader(bytes.NewReader(head))
		cr.FieldsPerRecord, cr.LazyQuotes = -1, true
		for len(p.Rows) <= artifactPreviewRows {
			rec, err := cr.Read()
			if err != nil {
				break
			}
			p.Rows = append(p.Rows, rec)
		}
		if len(p.Rows) == 0 {
			p.Kind = "text"
		}
	}
	return p, nil
}

// trimPartialRune drops a rune cut at the end of a preview.
func trimPartialRune(b []byte) []byte {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		if utf8.Valid(b) {
			return b
		}
		b = b[:len(b)-1]
	}
	return b
}

// handleStudioArtifactFile sends one artifact of a run: images (SVG
// included) as themselves for the preview, under a policy that runs no
// script, and everything else as a download.
func (s *Server) handleStudioArtifactFile(w http.ResponseWriter, r *http.Request) {
	if s.Blobs == nil {
		s.writeStudioError(w, r, errNoBlobs)
		return
	}
	run, err := s.Store.FindRun(r.Context(), r.PathValue("workspace"), r.PathValue("id"))
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	root, ok := mlflow.ArtifactRoot(run.ArtifactURI)
	rel := strings.Trim(r.URL.Query().Get("path"), "/")
	if !ok || rel == "" || hasDotSegment("/"+rel) {
		s.writeStudioError(w, r, wharf.Errorf(wharf.ENOTFOUND, "no artifact %q in run %s", rel, run.ID))
		return
	}
	a, rc, err := mlflow.OpenArtifact(r.Context(), s.Store, s.Blobs, run.Workspace, root+"/"+rel)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	defer rc.Close()
	h := w.Header()
	ctype := "application/octet-stream"
	if previewKind(rel) == "image" && r.URL.Query().Get("download") == "" {
		ctype = mime.TypeByExtension(strings.ToLower(path.Ext(rel)))
	} else {
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(rel)}))
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.FormatInt(a.Size, 10))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	h.Set("Cache-Control", "private, max-age=300")
	_, _ = io.Copy(w, rc)
}
