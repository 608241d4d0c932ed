package wharf

import (
	"context"
	"encoding/json"
	"time"
)

// JobTypeMonitor is the job a model monitor's schedule makes at each
// firing: the server computes its signals over the deployment's collected
// data and records their results.
const JobTypeMonitor = "monitor"

// BreachTag is the tag a monitor job gets when a signal breaches a
// threshold, as Azure ML tags its monitor runs; its value says which
// signal failed and why.
const BreachTag = "azureml_modelmonitor_threshold_breached"

// Metric directions: whether a value above or below the threshold is a
// breach.
const (
	HigherIsWorse = "higher_is_worse"
	LowerIsWorse  = "lower_is_worse"
)

// MonitorResult is one metric of one feature of one signal, as a monitor
// run computed it.
type MonitorResult struct {
	Signal     string `json:"signal"`
	SignalType string `json:"signal_type"`
	Feature    string `json:"feature"`
	// DataType is numerical or categorical, "" for a signal-wide metric.
	DataType  string  `json:"data_type,omitempty"`
	Metric    string  `json:"metric"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Direction string  `json:"direction"`
	Passed    bool    `json:"passed"`
	// Detail says why a metric has no value (its Value is then NaN and
	// it passes), or anything else the run noted about it.
	Detail string `json:"detail,omitempty"`
}

// MarshalJSON writes a NaN value (a metric not computed) as null.
func (r MonitorResult) MarshalJSON() ([]byte, error) {
	type plain MonitorResult
	out := struct {
		plain
		Value any `json:"value"`
	}{plain: plain(r), Value: r.Value}
	if r.Value != r.Value {
		out.Value = nil
	}
	return json.Marshal(out)
}

// MonitorRun is one firing of a monitor: the job that ran it and what
// every signal found.
type MonitorRun struct {
	Workspace string          `json:"-"`
	Schedule  string          `json:"schedule"`
	Job       string          `json:"job"`
	Time      time.Time       `json:"time"`
	Results   []MonitorResult `json:"results"`
}

// Alert channels.
const (
	AlertEmail   = "email"
	AlertWebhook = "webhook"
)

// MonitorAlert is one alert to deliver: one breached signal of one firing
// to one recipient. Alerts are written with the run's results, in the same
// transaction, and delivered from there; one that was delivered is never
// sent again.
type MonitorAlert struct {
	ID        int64  `json:"id"`
	Workspace string `json:"workspace"`
	Schedule  string `json:"schedule"`
	Job       string `json:"job"`
	Signal    string `json:"signal"`
	Channel   string `json:"channel"`
	// Target is the e-mail address or webhook URL; Secret names the
	// workspace secret that signs a webhook's body.
	Target  string `json:"target"`
	Secret  string `json:"secret,omitempty"`
	Subject string `json:"subject"`
	// Body is the alert's text for an e-mail, its JSON for a webhook.
	Body        string     `json:"body"`
	Attempts    int        `json:"attempts"`
	NextAttempt time.Time  `json:"next_attempt"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	// FailedAt is set when the alert was given up on after its last
	// attempt.
	FailedAt  *time.Time `json:"failed_at,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// AlertDelivery is one attempt to deliver an alert.
type AlertDelivery struct {
	AlertID int64     `json:"alert_id"`
	Attempt int       `json:"attempt"`
	Time    time.Time `json:"time"`
	// Status is the webhook's HTTP status or the SMTP reply code, 0 when
	// none came.
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
}

// MonitorService stores monitor results and the alerts they raise.
type MonitorService interface {
	// RecordMonitorRun stores a run's results and its alerts in one
	// transaction. A job's run is recorded once: a second call for the
	// same job fails with ECONFLICT and stores nothing, so a firing is
	// never alerted twice.
	RecordMonitorRun(ctx context.Context, run *MonitorRun, alerts []*MonitorAlert) error
	// JobMonitorResults returns what one monitor job found.
	JobMonitorResults(ctx context.Context, workspace, job string) ([]MonitorResult, error)
	// MonitorHistory returns a monitor's runs, newest first, at most
	// limit; signal, when set, keeps that signal's results only.
	MonitorHistory(ctx context.Context, workspace, schedule, signal string, limit int) ([]*MonitorRun, error)
	// DueAlerts returns undelivered alerts whose next attempt is at or
	// before now, oldest first.
	DueAlerts(ctx context.Context, now time.Time, limit int) ([]*MonitorAlert, error)
	// RecordAlertDelivery records an attempt and the alert's new state
	// (Attempts, NextAttempt, DeliveredAt, FailedAt, LastError) together.
	RecordAlertDelivery(ctx context.Context, a *MonitorAlert, d *AlertDelivery) error
	// ListAlerts returns a monitor's alerts, newest first, with their
	// deliveries.
	ListAlerts(ctx context.Context, workspace, schedule string) ([]*MonitorAlert, []*AlertDelivery, error)
}
