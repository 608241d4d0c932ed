package http

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/scheduler"
)

// registerJobRoutes registers jobs; they need the scheduler.
func (s *Server) registerJobRoutes() {
	const base = "/api/v1/workspaces/{workspace}/jobs"
	s.route("POST "+base, wharf.ActionJobWrite, s.handleSubmitJob)
	s.route("GET "+base, wharf.ActionJobRead, s.handleListJobs)
	s.route("GET "+base+"/{name}", wharf.ActionJobRead, s.handleGetJob)
	s.route("POST "+base+"/{name}/cancel", wharf.ActionJobCancel, s.handleCancelJob)
	s.route("POST "+base+"/{name}/rerun", wharf.ActionJobWrite, s.handleRerunJob)
	s.route("GET "+base+"/{name}/logs", wharf.ActionJobRead, s.handleJobLog)
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
}

func (s *Server) jobJSON(j *wharf.Job, steps []*wharf.Job) jobJSON {
	studio := s.URL + "/ui/workspaces/" + j.Workspace + "/jobs/" + j.Name
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

func (s *Server) handleSubmitJob(w http.ResponseWriter, r *http.Request) {
	if !s.scheduler(w, r) {
		return
	}
	var sub scheduler.Submission
	if err := decodeJSON(r, &sub); err != nil {
		s.writeError(w, r, err)
		return
	}
	j, err := s.Scheduler.Submit(r.Context(), r.PathValue("workspace"), callerID(r), &sub)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	steps, err := s.Store.ListJobs(r.Context(), j.Workspace, j.Name, 0)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if j.Type == wharf.JobTypeCommand {
		steps = nil
	}
	writeJSON(w, http.StatusCreated, s.jobJSON(j, steps))
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
	jobs, err := s.Store.ListJobs(r.Context(), r.PathValue("workspace"), "", limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]jobJSON, len(jobs))
	for i, j := range jobs {
		j.Spec = nil
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
	if j.Type == wharf.JobTypePipeline {
		if steps, err = s.Store.ListJobs(r.Context(), ws, j.Name, 0); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	out := s.jobJSON(j, steps)
	if j.RunID != "" {
		if run, err := s.Store.FindRun(r.Context(), ws, j.RunID); err == nil && len(run.Metrics) > 0 {
			out.Metrics = map[string]float64{}
			for _, m := range run.Metrics {
				out.Metrics[m.Key] = m.Value
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
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
