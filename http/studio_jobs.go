package http

import (
	"net/http"
	"net/url"
	"sort"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/snapshot"
)

// studioJobsPerPage is the length of a page of the jobs list.
const studioJobsPerPage = 50

// studioJobStatuses are the statuses the jobs list filters by, in the
// order a job passes through them.
var studioJobStatuses = []string{wharf.JobNotStarted, wharf.JobQueued, wharf.JobStarting, wharf.JobPreparing, wharf.JobRunning,
	wharf.JobFinalizing, wharf.JobCancelRequested, wharf.JobCompleted, wharf.JobFailed, wharf.JobCanceled}

// studioJobList is the jobs page.
type studioJobList struct {
	Filter   wharf.JobFilter
	Statuses []string
	Facets   *wharf.JobFacets
	Jobs     []*wharf.Job
	// Next is the address of the next page, First that of the first
	// page when this is a later one.
	Next, First string
}

func (s *Server) handleStudioJobs(w http.ResponseWriter, r *http.Request) {
	p, err := s.newStudioPage(r, "Jobs", "jobs")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	q := r.URL.Query()
	d := &studioJobList{Statuses: studioJobStatuses, Filter: wharf.JobFilter{Status: q.Get("status"),
		ExperimentName: q.Get("experiment"), Compute: q.Get("compute"), SubmittedBy: q.Get("submitted_by")}}
	ctx := r.Context()
	var next string
	if d.Jobs, next, err = s.Store.SearchJobs(ctx, p.Workspace, d.Filter, studioJobsPerPage, q.Get("page")); err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	if d.Facets, err = s.Store.JobFacets(ctx, p.Workspace, 200); err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	keep := url.Values{}
	for k, v := range map[string]string{"status": d.Filter.Status, "experiment": d.Filter.ExperimentName,
		"compute": d.Filter.Compute, "submitted_by": d.Filter.SubmittedBy} {
		if v != "" {
			keep.Set(k, v)
		}
	}
	base := "/workspaces/" + p.Workspace + "/jobs"
	if q.Get("page") != "" {
		d.First = base + "?" + keep.Encode()
	}
	if next != "" {
		keep.Set("page", next)
		d.Next = base + "?" + keep.Encode()
	}
	p.Data = d
	s.renderStudio(w, r, http.StatusOK, "jobs", p)
}

// studioJob is a job's page: the job, its steps (or a sweep's trials)
// and, for a pipeline, its graph; Selected is the job whose details are
// shown, a step chosen in the graph or the job itself.
type studioJob struct {
	Job      *wharf.Job
	Steps    []*wharf.Job
	Graph    *studioGraph
	Selected *wharf.Job
	// Metrics are the latest values in the selected job's run.
	Metrics []*wharf.Metric
	// Folders lists the files of the selected job's folder outputs (and
	// its default artifacts, under "artifacts").
	Folders   map[string][]snapshot.File
	CanCancel bool
	// CanRerun lets the job be run again; FromFailed offers to rerun
	// only what failed or did not run, keeping completed steps' outputs.
	CanRerun, FromFailed bool
}

// studioFolderFiles bounds the files listed for one folder.
const studioFolderFiles = 200

func (s *Server) handleStudioJob(w http.ResponseWriter, r *http.Request) {
	p, err := s.newStudioPage(r, "Job", "jobs")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	ctx := r.Context()
	j, err := s.Store.FindJob(ctx, p.Workspace, r.PathValue("name"))
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	if j.Parent != "" {
		// A step's page is its pipeline's, with the step selected.
		parent, err := s.Store.FindJob(ctx, p.Workspace, j.Parent)
		if err != nil {
			s.writeStudioError(w, r, err)
			return
		}
		http.Redirect(w, r, "/workspaces/"+p.Workspace+"/jobs/"+parent.Name+"?step="+url.QueryEscape(j.Name), http.StatusSeeOther)
		return
	}
	d := &studioJob{Job: j, Selected: j}
	p.Title = j.DisplayName
	if p.Title == "" {
		p.Title = j.Name
	}
	if j.Type == wharf.JobTypePipeline || j.Type == wharf.JobTypeSweep {
		if d.Steps, err = s.Store.ListJobs(ctx, p.Workspace, j.Name, 0); err != nil {
			s.writeStudioError(w, r, err)
			return
		}
	}
	if j.Type == wharf.JobTypePipeline {
		d.Graph = layoutPipeline(d.Steps)
	}
	if step := r.URL.Query().Get("step"); step != "" {
		for _, st := range d.Steps {
			if st.Name == step || st.Step == step {
				d.Selected = st
			}
		}
	}
	term := wharf.JobTerminal(j.Status)
	d.CanCancel = !term && j.Status != wharf.JobCancelRequested && p.Can(wharf.ActionJobCancel)
	d.CanRerun = term && p.Can(wharf.ActionJobWrite) && len(j.Document) > 0
	d.FromFailed = d.CanRerun && j.Type == wharf.JobTypePipeline && j.Status != wharf.JobCompleted
	if sel := d.Selected; sel.RunID != "" {
		if run, err := s.Store.FindRun(ctx, p.Workspace, sel.RunID); err == nil {
			d.Metrics = run.Metrics
			sort.Slice(d.Metrics, func(a, b int) bool { return d.Metrics[a].Key < d.Metrics[b].Key })
		}
	}
	d.Folders = s.outputFolders(r, d.Selected)
	p.Data = d
	s.renderStudio(w, r, http.StatusOK, "job", p)
}

// outputFolders lists the files of a job's folder outputs and default
// artifacts; a folder whose manifest cannot be read is left out.
func (s *Server) outputFolders(r *http.Request, j *wharf.Job) map[string][]snapshot.File {
	if s.Blobs == nil {
		return nil
	}
	out := map[string][]snapshot.File{}
	add := func(name string, o wharf.JobOutput) {
		if o.Kind != "folder" || o.Digest == "" {
			return
		}
		m, err := snapshot.Load(r.Context(), o.Digest, s.Blobs)
		if err != nil {
			return
		}
		files := m.Files
		if len(files) > studioFolderFiles {
			files = files[:studioFolderFiles]
		}
		out[name] = files
	}
	for name, o := range j.Outputs {
		add(name, o)
	}
	if j.Artifacts != nil {
		add("artifacts", *j.Artifacts)
	}
	return out
}

// handleStudioJobGraph answers a job page's script with its steps' states.
func (s *Server) handleStudioJobGraph(w http.ResponseWriter, r *http.Request) {
	ctx, ws := r.Context(), r.PathValue("workspace")
	j, err := s.Store.FindJob(ctx, ws, r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := graphStateJSON{Status: j.Status, Terminal: wharf.JobTerminal(j.Status), Steps: []*studioGraphNode{}, Edges: []studioGraphEdge{}}
	if j.Type == wharf.JobTypePipeline {
		steps, err := s.Store.ListJobs(ctx, ws, j.Name, 0)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		g := layoutPipeline(steps)
		out.Steps, out.Edges = g.Nodes, g.Edges
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// handleStudioCancelJob is the Cancel button's form.
func (s *Server) handleStudioCancelJob(w http.ResponseWriter, r *http.Request) {
	if s.Scheduler == nil {
		s.writeStudioError(w, r, wharf.Errorf(wharf.EUNAVAILABLE, "this server does not run jobs"))
		return
	}
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	if _, err := s.Scheduler.Cancel(r.Context(), ws, name); err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	http.Redirect(w, r, "/workspaces/"+ws+"/jobs/"+name, http.StatusSeeOther)
}

// handleStudioRerunJob is the Rerun buttons' form: the whole job again,
// or with from_failed only what did not complete.
func (s *Server) handleStudioRerunJob(w http.ResponseWriter, r *http.Request) {
	if s.Scheduler == nil {
		s.writeStudioError(w, r, wharf.Errorf(wharf.EUNAVAILABLE, "this server does not run jobs"))
		return
	}
	ws := r.PathValue("workspace")
	j, err := s.Scheduler.Rerun(r.Context(), ws, r.PathValue("name"), callerID(r), r.PostFormValue("from_failed") == "true")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	http.Redirect(w, r, "/workspaces/"+ws+"/jobs/"+j.Name, http.StatusSeeOther)
}
