package http

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"time"

	"github.com/wharfml/wharf"
)

// batchEndpointRow is one batch endpoint with its deployments.
type batchEndpointRow struct {
	*wharf.BatchEndpoint
	Deployments []batchDeploymentRow
}

// batchDeploymentRow is a batch deployment with the settings a list shows.
type batchDeploymentRow struct {
	*wharf.BatchDeployment
	Compute       string
	MiniBatchSize string
}

func (s *Server) batchEndpointRow(ctx context.Context, e *wharf.BatchEndpoint) (batchEndpointRow, error) {
	ds, err := s.Store.ListBatchDeployments(ctx, e.Workspace, e.Name)
	row := batchEndpointRow{BatchEndpoint: e}
	for _, d := range ds {
		var spec map[string]any
		_ = json.Unmarshal(d.Spec, &spec)
		dr := batchDeploymentRow{BatchDeployment: d}
		dr.Compute, _ = spec["compute"].(string)
		if n, ok := spec["mini_batch_size"].(float64); ok {
			dr.MiniBatchSize = jsonNumber(n)
		}
		row.Deployments = append(row.Deployments, dr)
	}
	return row, err
}

func jsonNumber(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func (s *Server) pageBatchEndpoints(w http.ResponseWriter, r *http.Request) {
	p, err := s.newStudioPage(r, "Batch endpoints", "batch-endpoints")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	eps, err := s.Store.ListBatchEndpoints(r.Context(), p.Workspace)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	rows := make([]batchEndpointRow, len(eps))
	for i, e := range eps {
		if rows[i], err = s.batchEndpointRow(r.Context(), e); err != nil {
			s.writeStudioError(w, r, err)
			return
		}
	}
	p.Data = rows
	s.renderStudio(w, r, http.StatusOK, "batch-endpoints", p)
}

// batchJobRow is a job a batch endpoint's invocation made, with its
// mini-batch progress as its log last reported it.
type batchJobRow struct {
	*wharf.Job
	Progress string
}

// batchEndpointView is the batch endpoint page.
type batchEndpointView struct {
	batchEndpointRow
	Jobs []batchJobRow
}

// Jobs a list page looks through for those an endpoint or a schedule made,
// newest first, and how many it shows.
const (
	recentJobsScanned = 500
	batchJobsShown    = 50
)

func (s *Server) pageBatchEndpoint(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, err := s.newStudioPage(r, "", "batch-endpoints")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	e, err := s.Store.FindBatchEndpoint(ctx, p.Workspace, r.PathValue("name"))
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	row, err := s.batchEndpointRow(ctx, e)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	jobs, err := s.Store.ListJobs(ctx, p.Workspace, "", recentJobsScanned)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	v := &batchEndpointView{batchEndpointRow: row}
	for _, j := range jobs {
		if j.Tags["wharf.batch_endpoint"] != e.Name {
			continue
		}
		v.Jobs = append(v.Jobs, batchJobRow{Job: j, Progress: s.miniBatchProgress(j)})
		if len(v.Jobs) == batchJobsShown {
			break
		}
	}
	p.Title, p.Data = "Batch endpoint "+e.Name, v
	s.renderStudio(w, r, http.StatusOK, "batch-endpoint", p)
}

// progressRE matches the progress lines batch scoring logs.
var progressRE = regexp.MustCompile(`(\d+ of [0-9?]+ mini-batches done, \d+ failed|\d+ mini-batches done, \d+ failed items, \d+ rows scored)`)

// progressTail is how much of a job's log end is searched for progress.
const progressTail = 16 << 10

// miniBatchProgress is the last progress line in the log of a job's last
// attempt; "" when it has none.
func (s *Server) miniBatchProgress(j *wharf.Job) string {
	if s.Scheduler == nil || len(j.Attempts) == 0 {
		return ""
	}
	f, err := os.Open(s.Scheduler.LogPath(j.Workspace, j.Name, j.Attempts[len(j.Attempts)-1].Number))
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > progressTail {
		_, _ = f.Seek(st.Size()-progressTail, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, progressTail))
	all := progressRE.FindAllString(string(b), -1)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1]
}

// computeRow is a cluster with the slots its running steps hold.
type computeRow struct {
	*wharf.Compute
	InUse, Queued int
}

// computeView is the compute page: clusters, and the steps waiting for a
// slot, oldest first.
type computeView struct {
	Clusters []computeRow
	Queue    []*wharf.Job
	Running  []*wharf.Job
}

// holdsSlot reports whether a job occupies a node: steps and command
// jobs do from Starting until they end; pipelines and sweeps only
// coordinate.
func holdsSlot(j *wharf.Job) bool {
	if j.Type == wharf.JobTypePipeline || j.Type == wharf.JobTypeSweep {
		return false
	}
	switch j.Status {
	case wharf.JobStarting, wharf.JobPreparing, wharf.JobRunning, wharf.JobFinalizing, wharf.JobCancelRequested:
		return true
	}
	return false
}

func waiting(j *wharf.Job) bool {
	return j.Type != wharf.JobTypePipeline && j.Type != wharf.JobTypeSweep &&
		(j.Status == wharf.JobQueued || j.Status == wharf.JobNotStarted)
}

func (s *Server) pageComputes(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, err := s.newStudioPage(r, "Compute", "computes")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	cs, err := s.Store.ListComputes(ctx, p.Workspace)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	jobs, err := s.Store.ListUnfinishedJobs(ctx)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	v := &computeView{}
	rows := map[string]*computeRow{}
	for _, c := range cs {
		v.Clusters = append(v.Clusters, computeRow{Compute: c})
	}
	for i := range v.Clusters {
		rows[v.Clusters[i].Name] = &v.Clusters[i]
	}
	for _, j := range jobs {
		if j.Workspace != p.Workspace {
			continue
		}
		row := rows[j.Compute]
		switch {
		case holdsSlot(j):
			v.Running = append(v.Running, j)
			if row != nil {
				row.InUse++
			}
		case waiting(j):
			v.Queue = append(v.Queue, j)
			if row != nil {
				row.Queued++
			}
		}
	}
	p.Data = v
	s.renderStudio(w, r, http.StatusOK, "computes", p)
}

// scheduleRow is a schedule with its trigger in words and its last jobs.
type scheduleRow struct {
	*wharf.Schedule
	Trigger string
	Jobs    []*wharf.Job
}

// scheduleLastJobs is how many of a schedule's last jobs its row shows.
const scheduleLastJobs = 5

func (s *Server) pageSchedules(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, err := s.newStudioPage(r, "Schedules", "schedules")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	scs, err := s.Store.ListSchedules(ctx, p.Workspace)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	rows := make([]scheduleRow, len(scs))
	byName := map[string]*scheduleRow{}
	for i, sc := range scs {
		rows[i] = scheduleRow{Schedule: sc, Trigger: triggerText(sc.Trigger)}
		byName[sc.Name] = &rows[i]
	}
	if len(scs) > 0 {
		jobs, err := s.Store.ListJobs(ctx, p.Workspace, "", recentJobsScanned)
		if err != nil {
			s.writeStudioError(w, r, err)
			return
		}
		for _, j := range jobs {
			if row := byName[j.Tags["wharf.schedule"]]; row != nil && len(row.Jobs) < scheduleLastJobs {
				row.Jobs = append(row.Jobs, j)
			}
		}
	}
	p.Data = rows
	s.renderStudio(w, r, http.StatusOK, "schedules", p)
}

// triggerText describes a schedule's trigger: its cron expression, or its
// recurrence, with the time zone.
func triggerText(raw json.RawMessage) string {
	var t struct {
		Type       string `json:"type"`
		Expression string `json:"expression"`
		Frequency  string `json:"frequency"`
		Interval   int    `json:"interval"`
		TimeZone   string `json:"time_zone"`
	}
	if json.Unmarshal(raw, &t) != nil {
		return ""
	}
	out := t.Type
	switch {
	case t.Expression != "":
		out = "cron " + t.Expression
	case t.Frequency != "":
		n := max(t.Interval, 1)
		out = "every " + jsonNumber(float64(n)) + " " + t.Frequency
	}
	if t.TimeZone != "" {
		out += " (" + t.TimeZone + ")"
	}
	return out
}

// auditShown is how many events the audit page shows, newest first.
const auditShown = 100

func (s *Server) pageAudit(w http.ResponseWriter, r *http.Request) {
	p, err := s.newStudioPage(r, "Audit log", "audit")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	// The workspace's events: those authorized at its scope.
	f := wharf.AuditFilter{Scope: wharf.WorkspaceScope(p.Workspace), Limit: auditShown, PrincipalID: r.URL.Query().Get("principal")}
	if d, err := time.ParseDuration(r.URL.Query().Get("since")); err == nil && d > 0 {
		f.Since = s.now().Add(-d)
	}
	events, err := s.Store.ListAuditEvents(r.Context(), f)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	p.Data = events
	s.renderStudio(w, r, http.StatusOK, "audit", p)
}
