package http

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/wharfml/wharf"
)

// registerScheduleRoutes registers schedules; they need the scheduler.
func (s *Server) registerScheduleRoutes() {
	const base = "/api/v1/workspaces/{workspace}/schedules"
	s.route("GET "+base, wharf.ActionScheduleRead, s.handleListSchedules)
	s.route("GET "+base+"/{name}", wharf.ActionScheduleRead, s.handleGetSchedule)
	s.route("PUT "+base+"/{name}", wharf.ActionScheduleWrite, s.handlePutSchedule)
	s.route("DELETE "+base+"/{name}", wharf.ActionScheduleDelete, s.handleDeleteSchedule)
	s.route("POST "+base+"/{name}/trigger", wharf.ActionScheduleWrite, s.handleTriggerSchedule)
	s.route("POST "+base+"/{name}/enable", wharf.ActionScheduleWrite, s.handleEnableSchedule(true))
	s.route("POST "+base+"/{name}/disable", wharf.ActionScheduleWrite, s.handleEnableSchedule(false))
	s.route("GET "+base+"/{name}/results", wharf.ActionScheduleRead, s.handleMonitorResults)
}

// monitorHistoryShown bounds the runs a monitor's results list by default.
const monitorHistoryShown = 20

// monitorResultsJSON is a monitor's history: its runs newest first, each
// with what every signal found, and the alerts its breaches raised with
// each delivery attempt.
type monitorResultsJSON struct {
	Runs       []*wharf.MonitorRun    `json:"runs"`
	Alerts     []*wharf.MonitorAlert  `json:"alerts"`
	Deliveries []*wharf.AlertDelivery `json:"deliveries"`
}

// handleMonitorResults lists a monitor's results, of one signal with
// ?signal=, the newest ?limit= runs.
func (s *Server) handleMonitorResults(w http.ResponseWriter, r *http.Request) {
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	if _, err := s.Store.FindSchedule(r.Context(), ws, name); err != nil {
		s.writeError(w, r, err)
		return
	}
	limit := monitorHistoryShown
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "limit must be a positive integer").WithField("limit"))
			return
		}
		limit = n
	}
	runs, err := s.Store.MonitorHistory(r.Context(), ws, name, r.URL.Query().Get("signal"), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	alerts, deliveries, err := s.Store.ListAlerts(r.Context(), ws, name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, a := range alerts {
		// The body is the alert's text or JSON; the list shows where
		// and when it went.
		a.Body = ""
	}
	writeJSON(w, http.StatusOK, monitorResultsJSON{Runs: runs, Alerts: alerts, Deliveries: deliveries})
}

// handleTriggerSchedule submits a schedule's job once, now, and answers
// the job.
func (s *Server) handleTriggerSchedule(w http.ResponseWriter, r *http.Request) {
	if !s.scheduler(w, r) {
		return
	}
	j, err := s.Scheduler.TriggerSchedule(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, j)
}

// handleEnableSchedule enables or disables a schedule.
func (s *Server) handleEnableSchedule(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.scheduler(w, r) {
			return
		}
		sc, err := s.Scheduler.EnableSchedule(r.Context(), r.PathValue("workspace"), r.PathValue("name"), enabled)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, sc)
	}
}

// scheduleRequest is the body of a schedule creation.
type scheduleRequest struct {
	DisplayName string            `json:"display_name"`
	Description string            `json:"description"`
	Tags        map[string]string `json:"tags"`
	Enabled     *bool             `json:"is_enabled"`
	Trigger     json.RawMessage   `json:"trigger"`
	CreateJob   json.RawMessage   `json:"create_job"`
	// CreateMonitor makes the schedule a model monitor.
	CreateMonitor json.RawMessage `json:"create_monitor"`
}

func (s *Server) handlePutSchedule(w http.ResponseWriter, r *http.Request) {
	if !s.scheduler(w, r) {
		return
	}
	name, err := pathName(r, "name")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req scheduleRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(req.CreateMonitor) > 0 {
		if len(req.CreateJob) > 0 {
			s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "a schedule has create_job or create_monitor, not both").WithField("create_monitor"))
			return
		}
		doc, err := json.Marshal(map[string]json.RawMessage{"create_monitor": req.CreateMonitor})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		req.CreateJob = doc
	}
	if len(req.Trigger) == 0 || len(req.CreateJob) == 0 {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "trigger and create_job (or create_monitor) are required").WithField("trigger"))
		return
	}
	sc := &wharf.Schedule{Workspace: r.PathValue("workspace"), Name: name, DisplayName: req.DisplayName,
		Description: req.Description, Tags: req.Tags, Enabled: req.Enabled == nil || *req.Enabled,
		Trigger: req.Trigger, Job: req.CreateJob, CreatedBy: callerID(r)}
	if err := s.Scheduler.PrepareSchedule(r.Context(), sc); err != nil {
		s.writeError(w, r, err)
		return
	}
	created, err := s.Store.PutSchedule(r.Context(), sc)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, createdStatus(created), sc)
}

// scheduleView is a schedule with the jobs it submitted, newest first,
// each with the data it resolved: which version @latest was at that
// firing, what a datastore folder held.
type scheduleView struct {
	*wharf.Schedule
	Jobs []scheduledJob `json:"jobs"`
	// Monitor is a monitor's last runs with their results.
	Monitor []*wharf.MonitorRun `json:"monitor_results,omitempty"`
}

// scheduledJob is one firing's job.
type scheduledJob struct {
	Name      string                    `json:"name"`
	Status    string                    `json:"status"`
	CreatedAt time.Time                 `json:"created_at"`
	Resolved  map[string]wharf.JobValue `json:"resolved,omitempty"`
}

// scheduleJobsShown bounds the jobs a schedule shows; the job list has
// them all.
const scheduleJobsShown = 50

func (s *Server) handleGetSchedule(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	sc, err := s.Store.FindSchedule(r.Context(), ws, r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	jobs, err := s.Store.ListJobs(r.Context(), ws, "", 0)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := scheduleView{Schedule: sc, Jobs: []scheduledJob{}}
	for _, j := range jobs {
		if j.Tags["wharf.schedule"] == sc.Name && len(out.Jobs) < scheduleJobsShown {
			out.Jobs = append(out.Jobs, scheduledJob{Name: j.Name, Status: j.Status, CreatedAt: j.CreatedAt, Resolved: j.Resolved})
		}
	}
	var probe struct {
		Monitor json.RawMessage `json:"create_monitor"`
	}
	if json.Unmarshal(sc.Job, &probe) == nil && probe.Monitor != nil {
		if out.Monitor, err = s.Store.MonitorHistory(r.Context(), ws, sc.Name, r.URL.Query().Get("signal"), monitorHistoryShown); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleListSchedules(w http.ResponseWriter, r *http.Request) {
	scs, err := s.Store.ListSchedules(r.Context(), r.PathValue("workspace"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, scs)
}

func (s *Server) handleDeleteSchedule(w http.ResponseWriter, r *http.Request) {
	if err := s.Store.DeleteSchedule(r.Context(), r.PathValue("workspace"), r.PathValue("name")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
