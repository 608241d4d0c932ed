package http

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/scheduler"
)

// registerJobRoutes registers jobs; they need the scheduler.
func (s *Server) registerJobRoutes() {
	const base = "/api/v1/workspaces/{workspace}/jobs"
	s.route("POST "+base, wharf.ActionJobWrite, jsonAPI(s, s.createJob))
	s.route("PUT "+base+"/{name}", wharf.ActionJobWrite, jsonAPI(s, s.createJob))
	s.route("GET "+base, wharf.ActionJobRead, s.handleListJobs)
	s.route("GET "+base+"/{name}", wharf.ActionJobRead, s.handleGetJob)
	s.route("POST "+base+"/{name}/cancel", wharf.ActionJobCancel, s.handleCancelJob)
	s.route("POST "+base+"/{name}/rerun", wharf.ActionJobWrite, s.handleRerunJob)
	s.route("GET "+base+"/{name}/logs", wharf.ActionJobRead, s.handleJobLog)
	s.route("GET /api/v1/workspaces/{workspace}/job-submissions/{id}", wharf.ActionJobWrite, jsonAPI(s, s.getSubmission))
}

// jobJSON is a job as az ml job show prints it, with its steps.
type jobJSON struct {
	*wharf.Job
	ID       string         `json:"id"`
	Services map[string]any `json:"services"`
	// Metrics are the latest values the job's processes logged to its
	// tracking run.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	Steps   []*wharf.Job       `json:"steps,omitempty"`
	// MonitorResults are what a monitor job found: every signal,
	// feature and metric with its value, threshold, direction and
	// whether it passed.
	MonitorResults []wharf.MonitorResult `json:"monitor_results,omitempty"`
}

func (s *Server) jobJSON(j *wharf.Job, steps []*wharf.Job) jobJSON {
	studio := s.URL + "/workspaces/" + j.Workspace + "/jobs/" + j.Name
	out := jobJSON{Job: j, ID: wharf.WorkspaceScope(j.Workspace) + "/jobs/" + j.Name, Steps: steps,
		Services: map[string]any{"Studio": map[string]string{"endpoint": studio}}}
	out.Services["Tracking"] = map[string]string{"endpoint": s.TrackingURI(j.Workspace)}
	return out
}

func (s *Server) scheduler(w http.ResponseWriter, r *http.Request) bool {
	if s.Scheduler == nil {
		s.writeError(w, r, wharf.Errorf(wharf.EUNAVAILABLE, "this server does not run jobs"))
		return false
	}
	return true
}

// createJob creates a job from its document: the az ml CLI v2 job schema
// as JSON, with local content already uploaded and named by datastore URI.
// The server resolves what the document refers to now and keeps the
// document with the job. PUT names the job in the path; a job's name is
// never reused, so PUT to an existing name is a conflict.
func (s *Server) createJob(r *http.Request, doc *json.RawMessage) (int, any, error) {
	if s.Scheduler == nil {
		return 0, nil, errNoScheduler
	}
	ws := r.PathValue("workspace")
	var head struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(*doc, &head); err != nil {
		return 0, nil, wharf.Errorf(wharf.EINVALID, "the job document must be a JSON object: %v", err)
	}
	name := head.Name
	if r.PathValue("name") != "" {
		var err error
		if _, name, err = putTarget(r, head.Name); err != nil {
			return 0, nil, err
		}
	}
	ctx, done, err := s.reads.track(r.Context(), ws, r.URL.Query().Get("progress"))
	if err != nil {
		return 0, nil, err
	}
	defer done()
	j, err := s.SubmitJobDocument(ctx, ws, callerID(r), name, *doc)
	if err != nil {
		return 0, nil, err
	}
	var steps []*wharf.Job
	if j.Type == wharf.JobTypePipeline {
		if steps, err = s.Store.ListJobs(r.Context(), j.Workspace, j.Name, 0); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusCreated, s.jobView(j, steps, nil, nil), nil
}

// SubmitJobDocument resolves a job document in the workspace and submits
// it as principal by, named name (empty: the document's name, or one the
// scheduler makes up). It is the job document API's create, for the
// protocols that translate onto it (package arm), so a job submitted
// through any of them is resolved, checked and run as the CLI's is.
func (s *Server) SubmitJobDocument(ctx context.Context, workspace, by, name string, doc json.RawMessage) (*wharf.Job, error) {
	if s.Scheduler == nil {
		return nil, errNoScheduler
	}
	sub, err := s.resolver().Job(ctx, workspace, doc)
	if err != nil {
		return nil, err
	}
	if name != "" {
		sub.Name = name
	}
	return s.Scheduler.Submit(ctx, workspace, by, sub)
}

// CancelJob cancels a job and the steps it runs, as its cancel route
// does.
func (s *Server) CancelJob(ctx context.Context, workspace, name string) (*wharf.Job, error) {
	if s.Scheduler == nil {
		return nil, errNoScheduler
	}
	return s.Scheduler.Cancel(ctx, workspace, name)
}

// JobLog returns the log of a job's latest attempt as far as this server
// holds it, with every token in it masked and, while the attempt runs,
// only its complete lines: what a client that reads the whole log at
// each poll may print. A job with no attempt yet has an empty log.
func (s *Server) JobLog(ctx context.Context, workspace, name string) ([]byte, error) {
	if s.Scheduler == nil {
		return nil, errNoScheduler
	}
	j, err := s.Store.FindJob(ctx, workspace, name)
	if err != nil || len(j.Attempts) == 0 {
		return nil, err
	}
	f, err := os.Open(s.Scheduler.LogPath(workspace, j.Name, len(j.Attempts)))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxWholeLog))
	if err != nil {
		return nil, err
	}
	if !wharf.JobTerminal(j.Status) && j.Attempts[len(j.Attempts)-1].Ended == nil {
		b = b[:bytes.LastIndexByte(b, '\n')+1]
	}
	return maskTokens(b), nil
}

// ForwardJobLog answers a request for a job's log from the server that
// ran the job's latest attempt, when that is another server over the same
// store and this one holds no copy of the log: the request goes on as it
// came, with its token or signature, which that server checks as its own.
// False when it was not forwarded (this server holds the log, or no other
// server answers for it), and nothing was written.
func (s *Server) ForwardJobLog(w http.ResponseWriter, r *http.Request, workspace, name string) bool {
	if s.Scheduler == nil {
		return false
	}
	j, err := s.Store.FindJob(r.Context(), workspace, name)
	if err != nil || len(j.Attempts) == 0 {
		return false
	}
	if _, err := os.Stat(s.Scheduler.LogPath(workspace, j.Name, len(j.Attempts))); !os.IsNotExist(err) {
		return false
	}
	return s.forwardLog(w, r, j.Attempts[len(j.Attempts)-1].Server)
}

// maxWholeLog bounds the log JobLog returns.
const maxWholeLog = 64 << 20

// errNoScheduler answers job and schedule routes on a server that does
// not run jobs.
var errNoScheduler = wharf.Errorf(wharf.EUNAVAILABLE, "this server does not run jobs")

// resolver resolves job documents against this server's store.
func (s *Server) resolver() *resolve.Resolver {
	return &resolve.Resolver{Store: s.Store, Blobs: s.Blobs}
}

// Resolve resolves a job document; the scheduler's schedule firings call
// it.
func (s *Server) Resolve(ctx context.Context, workspace string, doc json.RawMessage) (*scheduler.Submission, error) {
	return s.resolver().Job(ctx, workspace, doc)
}

// resolutionFields are what the server resolved for a job and what it
// produced, whose names the document uses for what it asked for. With a
// document they are shown under "resolution", so that the document's own
// inputs and outputs keep the az shape and the whole can be submitted
// again; the job's state (status, attempts, reuse) stays beside them.
var resolutionFields = []string{"inputs", "outputs", "artifacts", "resolved", "spec"}

// documentFields are the fields a job document decides when it has them;
// the server's value of the same name is its resolved form.
var documentFields = map[string]bool{"inputs": true, "outputs": true, "compute": true, "type": true}

// jobView is a job as az ml job show prints it: its document, as
// submitted, with the server's state (name, status, services, steps,
// creation_context) and, under resolution, what it resolved and produced.
// A job stored without a document is shown as stored.
func (s *Server) jobView(j *wharf.Job, steps []*wharf.Job, metrics map[string]float64, monitor []wharf.MonitorResult) any {
	out := s.jobJSON(j, steps)
	out.Metrics = metrics
	out.MonitorResults = monitor
	if len(j.Document) == 0 {
		return out
	}
	var doc map[string]any
	if err := json.Unmarshal(j.Document, &doc); err != nil || doc == nil {
		return out
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return out
	}
	var state map[string]any
	if err := json.Unmarshal(raw, &state); err != nil {
		return out
	}
	delete(state, "document")
	resolution := map[string]any{}
	for _, k := range resolutionFields {
		if v, ok := state[k]; ok {
			resolution[k] = v
			delete(state, k)
		}
	}
	for k, v := range state {
		if _, written := doc[k]; written && documentFields[k] {
			continue
		}
		doc[k] = v
	}
	doc["resolution"] = resolution
	doc["creation_context"] = map[string]any{"created_at": j.CreatedAt, "created_by": j.SubmittedBy}
	return doc
}

func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request) {
	limit := 0
	if v := r.URL.Query().Get("max_results"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "max_results must be a positive integer").WithField("max_results"))
			return
		}
		limit = n
	}
	// With parent_job_name, the children of that job: a pipeline's
	// steps or a sweep's trials, as az ml job list --parent-job-name.
	jobs, err := s.Store.ListJobs(r.Context(), r.PathValue("workspace"), r.URL.Query().Get("parent_job_name"), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]jobJSON, len(jobs))
	for i, j := range jobs {
		j.Spec, j.Document = nil, nil
		out[i] = s.jobJSON(j, nil)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	j, err := s.Store.FindJob(r.Context(), ws, r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var steps []*wharf.Job
	if j.Type == wharf.JobTypePipeline || j.Type == wharf.JobTypeSweep {
		// A pipeline's steps, or a sweep's trials.
		if steps, err = s.Store.ListJobs(r.Context(), ws, j.Name, 0); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	var metrics map[string]float64
	if j.RunID != "" {
		if run, err := s.Store.FindRun(r.Context(), ws, j.RunID); err == nil && len(run.Metrics) > 0 {
			metrics = map[string]float64{}
			for _, m := range run.Metrics {
				metrics[m.Key] = m.Value
			}
		}
	}
	var monitor []wharf.MonitorResult
	if j.Type == wharf.JobTypeMonitor {
		if monitor, err = s.Store.JobMonitorResults(r.Context(), ws, j.Name); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, s.jobView(j, steps, metrics, monitor))
}

func (s *Server) handleCancelJob(w http.ResponseWriter, r *http.Request) {
	if !s.scheduler(w, r) {
		return
	}
	j, err := s.Scheduler.Cancel(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, s.jobJSON(j, nil))
}

func (s *Server) handleRerunJob(w http.ResponseWriter, r *http.Request) {
	if !s.scheduler(w, r) {
		return
	}
	var req struct {
		FromFailed bool `json:"from_failed"`
	}
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	j, err := s.Scheduler.Rerun(r.Context(), r.PathValue("workspace"), r.PathValue("name"), callerID(r), req.FromFailed)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.jobJSON(j, nil))
}

// forwardedHeader marks a log request one server forwarded to another,
// which answers it from its own folder, never forwarding it again.
const forwardedHeader = "X-Wharf-Forwarded"

// forwardLog answers a log request from the server that ran the attempt
// (server, its peer URL), which holds the log, when that is another
// server sharing the store; false when it cannot (no other server, or it
// does not answer), and nothing was written.
func (s *Server) forwardLog(w http.ResponseWriter, r *http.Request, server string) bool {
	if server == "" || server == s.PeerURL || r.Header.Get(forwardedHeader) != "" {
		return false
	}
	target, err := url.Parse(server)
	if err != nil {
		return false
	}
	failed := false
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set(forwardedHeader, "1")
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.Logger.Warn("the server that ran a step does not answer for its log", "server", server, "err", err)
			failed = true
		},
	}
	proxy.ServeHTTP(w, r)
	return !failed
}

// maxLogChunk bounds one log response, so a client following a chatty job
// gets steady chunks instead of one huge body.
const maxLogChunk = 1 << 20

// handleJobLog returns an attempt's log from a byte offset. The response
// says where to continue (X-Wharf-Log-Offset) and whether the log is
// complete (X-Wharf-Log-Complete: the attempt has ended and all of it was
// sent), which is all a follower needs.
func (s *Server) handleJobLog(w http.ResponseWriter, r *http.Request) {
	if !s.scheduler(w, r) {
		return
	}
	ws := r.PathValue("workspace")
	j, err := s.Store.FindJob(r.Context(), ws, r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	attempt := len(j.Attempts)
	if v := q.Get("attempt"); v != "" {
		if attempt, err = strconv.Atoi(v); err != nil || attempt < 1 {
			s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "attempt must be a positive integer").WithField("attempt"))
			return
		}
	}
	var offset int64
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.ParseInt(v, 10, 64); err != nil || offset < 0 {
			s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "offset must be a byte offset").WithField("offset"))
			return
		}
	}
	ended := wharf.JobTerminal(j.Status) || (attempt >= 1 && attempt <= len(j.Attempts) && j.Attempts[attempt-1].Ended != nil)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if attempt == 0 {
		w.Header().Set("X-Wharf-Log-Offset", "0")
		w.Header().Set("X-Wharf-Log-Complete", strconv.FormatBool(ended))
		w.WriteHeader(http.StatusOK)
		return
	}
	f, err := os.Open(s.Scheduler.LogPath(ws, j.Name, attempt))
	if err != nil {
		if os.IsNotExist(err) && attempt <= len(j.Attempts) && s.forwardLog(w, r, j.Attempts[attempt-1].Server) {
			return
		}
		if os.IsNotExist(err) {
			w.Header().Set("X-Wharf-Log-Offset", strconv.FormatInt(offset, 10))
			w.Header().Set("X-Wharf-Log-Complete", strconv.FormatBool(ended))
			w.WriteHeader(http.StatusOK)
			return
		}
		s.writeError(w, r, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	size := st.Size()
	if offset > size {
		offset = size
	}
	n := min(size-offset, maxLogChunk)
	chunk := make([]byte, n)
	if _, err := io.ReadFull(io.NewSectionReader(f, offset, n), chunk); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !ended {
		// A line still being written may hold half a token, which
		// masking would miss: it is sent once it is complete.
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			chunk = chunk[:i+1]
		} else if n < maxLogChunk {
			chunk = chunk[:0]
		}
	}
	next := offset + int64(len(chunk))
	w.Header().Set("X-Wharf-Log-Offset", strconv.FormatInt(next, 10))
	w.Header().Set("X-Wharf-Log-Complete", strconv.FormatBool(ended && next == size))
	w.Header().Set("Last-Modified", st.ModTime().UTC().Format(time.RFC1123))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(maskTokens(chunk))
}

// tokenPattern matches a JSON Web Token: three base64url parts, the first
// two JSON objects (so starting "eyJ", the encoding of `{"`).
var tokenPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+`)

// maskTokens hides every token a step printed (its own, from its
// environment, or any other) from whoever reads its log, as CI systems
// mask their secrets.
func maskTokens(b []byte) []byte {
	if !bytes.Contains(b, []byte("eyJ")) {
		return b
	}
	return tokenPattern.ReplaceAll(b, []byte("***"))
}
