package http

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/snapshot"
)

// modelRow is one registered model in the list.
type modelRow struct {
	Name, Description string
	Latest            int64
	Aliases           map[string]string
	Tags              map[string]string
	Updated           int64
}

func (s *Server) pageModels(w http.ResponseWriter, r *http.Request) {
	p, err := s.newStudioPage(r, "Models", "models")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	models, _, err := s.Store.SearchRegisteredModels(r.Context(), p.Workspace, wharf.SearchQuery{MaxResults: 1000})
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	rows := make([]modelRow, 0, len(models))
	for _, m := range models {
		row := modelRow{Name: m.Name, Description: m.Description, Tags: m.Tags, Updated: m.LastUpdatedTime, Aliases: aliasNames(m.Aliases)}
		for _, v := range m.LatestVersions {
			row.Latest = max(row.Latest, v.Version)
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	p.Data = rows
	s.renderStudio(w, r, http.StatusOK, "models", p)
}

// aliasNames shows aliases as alias → "v<number>".
func aliasNames(as map[string]int64) map[string]string {
	out := map[string]string{}
	for a, v := range as {
		out[a] = "v" + strconv.FormatInt(v, 10)
	}
	return out
}

// modelView is the page of one registered model and one of its versions.
type modelView struct {
	Model    *wharf.RegisteredModel
	Aliases  map[string]string
	Versions []*wharf.ModelVersion
	Version  *wharf.ModelVersion
	Lineage  *lineageJSON
	// Pipeline is the pipeline job the version's run was a step of.
	Pipeline   string
	Comparison *modelComparison
}

// modelVersionsShown bounds the versions table.
const modelVersionsShown = 200

func (s *Server) pageModel(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, err := s.newStudioPage(r, "", "models")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	name := r.PathValue("name")
	m, err := s.Store.FindRegisteredModel(ctx, p.Workspace, name)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	vs, _, err := s.Store.SearchModelVersions(ctx, p.Workspace, wharf.SearchQuery{Filter: nameFilter(name), OrderBy: []string{"version_number DESC"}, MaxResults: modelVersionsShown})
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	v := &modelView{Model: m, Aliases: aliasNames(m.Aliases), Versions: vs}
	p.Title, p.Data = "Model "+name, v
	want := r.URL.Query().Get("version")
	switch {
	case want != "":
		if v.Version, err = s.findVersion(r, p.Workspace, name, want); err != nil {
			s.writeStudioError(w, r, err)
			return
		}
	case len(vs) > 0:
		v.Version = vs[0]
	}
	if v.Version != nil {
		v.Lineage = s.lineage(r, p.Workspace, v.Version)
		if v.Lineage != nil {
			if run, err := s.Store.FindRun(ctx, p.Workspace, v.Lineage.RunID); err == nil {
				v.Pipeline = run.Tags["wharf.pipeline"]
			}
		}
		if v.Pipeline != "" && s.Blobs != nil {
			v.Comparison = s.findComparison(ctx, p.Workspace, v.Pipeline)
		}
	}
	s.renderStudio(w, r, http.StatusOK, "model", p)
}

// modelComparison is what a pipeline's evaluate step stored: the
// candidate's score and each registered version's on the same test rows.
type modelComparison struct {
	Step      string
	Metric    string
	Candidate float64
	Versions  []comparedVersion
	// Bars draws the comparison (x, width, y, height in a 600×200 box).
	Bars []comparisonBar
	// Image is where a picture the step drew can be fetched.
	Image      string
	DeployFlag *int
}

type comparedVersion struct {
	Version string
	Score   float64
}

type comparisonBar struct {
	Label, Value   string
	X, Y, W, H     float64
	LabelX, LabelY float64
	Candidate      bool
}

// comparisonFiles are the files evaluate steps leave: the built-in
// step's metrics.json and the examples' score.json.
var comparisonFiles = []string{"metrics.json", "score.json"}

// findComparison looks through the outputs of a pipeline's steps for an
// evaluation; nil when none has one.
func (s *Server) findComparison(ctx context.Context, ws, pipeline string) *modelComparison {
	steps, err := s.Store.ListJobs(ctx, ws, pipeline, 0)
	if err != nil {
		return nil
	}
	for _, st := range steps {
		for _, out := range st.Outputs {
			if out.Kind != "folder" || out.Files > 100 {
				continue
			}
			m, err := snapshot.Load(ctx, out.Digest, s.Blobs)
			if err != nil {
				continue
			}
			if c := s.readComparison(ctx, ws, m); c != nil {
				c.Step = st.Step
				return c
			}
		}
	}
	return nil
}

func (s *Server) readComparison(ctx context.Context, ws string, m *snapshot.Manifest) *modelComparison {
	byName := map[string]snapshot.File{}
	for _, f := range m.Files {
		byName[f.Path] = f
	}
	for _, name := range comparisonFiles {
		f, ok := byName[name]
		if !ok || f.Size > 1<<20 {
			continue
		}
		rc, _, err := s.Blobs.Open(ctx, f.Digest)
		if err != nil {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		rc.Close()
		if err != nil {
			continue
		}
		c := parseComparison(b)
		if c == nil {
			continue
		}
		if png, ok := byName["perf_comparison.png"]; ok {
			c.Image = "/api/v1/workspaces/" + ws + "/blobs/" + png.Digest
		}
		c.Bars = comparisonBars(c)
		return c
	}
	return nil
}

// parseComparison reads the built-in evaluate step's Evaluation
// ({"candidate": {"r2": …}, "registered": [{"version", "scores"}]}) or
// the examples' score.json ({"candidate": {"r2": …}, "registered_r2":
// {"1": …}}); nil for anything else.
func parseComparison(b []byte) *modelComparison {
	var doc struct {
		Candidate  map[string]float64 `json:"candidate"`
		Registered []struct {
			Version string             `json:"version"`
			Scores  map[string]float64 `json:"scores"`
		} `json:"registered"`
		RegisteredR2 map[string]float64 `json:"registered_r2"`
		DeployFlag   *int               `json:"deploy_flag"`
	}
	if json.Unmarshal(b, &doc) != nil {
		return nil
	}
	cand, ok := doc.Candidate["r2"]
	if !ok {
		return nil
	}
	c := &modelComparison{Metric: "r2", Candidate: cand, DeployFlag: doc.DeployFlag}
	for _, v := range doc.Registered {
		if sc, ok := v.Scores["r2"]; ok {
			c.Versions = append(c.Versions, comparedVersion{Version: v.Version, Score: sc})
		}
	}
	for v, sc := range doc.RegisteredR2 {
		c.Versions = append(c.Versions, comparedVersion{Version: v, Score: sc})
	}
	sort.Slice(c.Versions, func(i, j int) bool {
		a, _ := strconv.Atoi(c.Versions[i].Version)
		b, _ := strconv.Atoi(c.Versions[j].Version)
		return a < b
	})
	return c
}

// comparisonBars lays out one bar per model, the candidate first, from
// zero (or the lowest negative score) to the best score.
func comparisonBars(c *modelComparison) []comparisonBar {
	type bar struct {
		label string
		v     float64
		cand  bool
	}
	bars := []bar{{"candidate", c.Candidate, true}}
	for _, v := range c.Versions {
		bars = append(bars, bar{"v" + v.Version, v.Score, false})
	}
	top, bottom := 0.0, 0.0
	for _, b := range bars {
		top, bottom = max(top, b.v), min(bottom, b.v)
	}
	if top == bottom {
		top = bottom + 1
	}
	const width, height, base = 600.0, 170.0, 10.0
	slot := width / float64(len(bars))
	zero := base + height*top/(top-bottom)
	out := make([]comparisonBar, len(bars))
	for i, b := range bars {
		h := height * b.v / (top - bottom)
		y := zero - h
		if h < 0 {
			y, h = zero, -h
		}
		out[i] = comparisonBar{Label: b.label, Value: fmt.Sprintf("%.4f", b.v), X: float64(i)*slot + slot*0.15, W: slot * 0.7,
			Y: y, H: max(h, 0.5), LabelX: float64(i)*slot + slot/2, LabelY: max(y-3, 9), Candidate: b.cand}
	}
	return out
}
