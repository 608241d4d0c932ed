package arm

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// Run history, as jobs.stream reads it: the run's details (status, error
// and the URLs of its log files) below the discovery document's "api",
// and each log file at its URL, which the SDK fetches without a token:
// the URL carries a signature for that log alone, valid for a while.

// HistoryPrefix is where run history is served.
const HistoryPrefix = "/history/v1.0"

// LogPrefix is where log files are served, by signed URL.
const LogPrefix = "/azureml/logs"

// stdLogName is the name jobs.stream prints a command job's log under;
// it must match the SDK's user_logs/std_log pattern.
const stdLogName = "user_logs/std_log.txt"

// logURLLife is how long a log file's URL lasts.
const logURLLife = time.Hour

// runDetails answers a run's details: its status, times, error and log
// files (a command job's log; a pipeline's steps have their own).
func (h *Handler) runDetails(w http.ResponseWriter, r *http.Request) {
	j, err := h.Store.FindJob(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	logs := map[string]string{}
	if j.Type == wharf.JobTypeCommand && len(j.Attempts) > 0 {
		resource := "logs/" + j.Workspace + "/" + j.Name
		token, err := h.sasKeys().sign(r.Context(), sas{Permissions: "r", Expiry: time.Now().Add(logURLLife).Truncate(time.Second),
			Resource: resource, ObjectID: callerID(r)})
		if err != nil {
			h.WriteError(w, r, err)
			return
		}
		logs[stdLogName] = h.base() + LogPrefix + "/" + url.PathEscape(j.Workspace) + "/" + url.PathEscape(j.Name) + "/" + stdLogName + "?" + token
	}
	out := map[string]any{
		"runId": j.Name, "runUuid": j.Name, "status": j.Status, "target": j.Compute, "logFiles": logs,
		"properties": map[string]string{}, "warnings": []any{},
		"startTimeUtc": j.StartedAt, "endTimeUtc": j.EndedAt,
	}
	if j.Status == wharf.JobFailed {
		msg := j.Error
		if msg == "" {
			msg = "the job failed; its log says why"
		}
		out["error"] = map[string]any{"error": map[string]string{"code": "UserError", "message": msg}}
	}
	writeJSON(w, http.StatusOK, out)
}

// logFile serves a job's log to the holder of a URL runDetails gave.
func (h *Handler) logFile(w http.ResponseWriter, r *http.Request) {
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	if r.PathValue("file") != stdLogName {
		h.WriteError(w, r, wharf.Errorf(wharf.ENOTFOUND, "job %s has no log file %q", name, r.PathValue("file")))
		return
	}
	// The signature covers logs/<workspace>/<job>: as a folder of the
	// "logs" container, its first two segments.
	if _, err := h.sasKeys().verify(r.Context(), r.URL.Query(), "logs/"+ws+"/"+name+"/"+strings.ReplaceAll(stdLogName, "/", "_"), "r", time.Now()); err != nil {
		h.WriteError(w, r, err)
		return
	}
	if h.Jobs == nil {
		h.WriteError(w, r, wharf.Errorf(wharf.EUNAVAILABLE, "this server does not run jobs"))
		return
	}
	// A log is kept by the server that ran the step; behind a balancer,
	// another server may be asked for it, and asks that one in turn.
	if h.Jobs.ForwardJobLog(w, r, ws, name) {
		return
	}
	text, err := h.Jobs.JobLog(r.Context(), ws, name)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(text)
}

// runChildren lists a pipeline's steps (or a sweep's trials) as run
// history's runs, which jobs.list(parent_job_name=) reads: one page, in
// the order the steps were created.
func (h *Handler) runChildren(w http.ResponseWriter, r *http.Request) {
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	parent, err := h.Store.FindJob(r.Context(), ws, name)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	children, err := h.Store.ListJobs(r.Context(), ws, parent.Name, 0)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	runs := make([]map[string]any, 0, len(children))
	for _, j := range children {
		run := map[string]any{
			"runId": j.Name, "runUuid": j.Name, "parentRunId": parent.Name, "rootRunId": parent.Name,
			"displayName": j.Step, "status": j.Status, "experimentId": j.ExperimentName,
			"tags": j.Tags, "properties": j.Properties, "createdUtc": j.CreatedAt,
			"createdBy":    map[string]string{"userObjectId": j.SubmittedBy, "userName": j.SubmittedBy},
			"startTimeUtc": j.StartedAt, "endTimeUtc": j.EndedAt,
		}
		if j.DisplayName != "" {
			run["displayName"] = j.DisplayName
		}
		if j.Compute != "" {
			run["compute"] = map[string]string{"target": j.Compute}
		}
		runs = append(runs, run)
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": runs})
}
