-- Model monitoring: what each monitor run found, per signal, feature and
-- metric, and the alerts its breaches raised. A run's results and alerts
-- are written in one transaction, and an alert's key (job, signal,
-- channel, target) is unique, so that a firing alerts each recipient of a
-- breach once, across restarts. Times are milliseconds since the epoch. A
-- value is NULL when the metric could not be computed (detail says why).
CREATE TABLE monitor_results (
	workspace   TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	schedule    TEXT NOT NULL,
	job         TEXT NOT NULL,
	time        INTEGER NOT NULL,
	signal      TEXT NOT NULL,
	signal_type TEXT NOT NULL,
	feature     TEXT NOT NULL,
	data_type   TEXT NOT NULL,
	metric      TEXT NOT NULL,
	value       REAL,
	threshold   REAL NOT NULL,
	direction   TEXT NOT NULL,
	passed      INTEGER NOT NULL,
	detail      TEXT NOT NULL,
	PRIMARY KEY (workspace, job, signal, feature, metric)
) STRICT;

-- A monitor's history, newest first.
CREATE INDEX monitor_results_history ON monitor_results (workspace, schedule, time);

CREATE TABLE monitor_alerts (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	workspace    TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	schedule     TEXT NOT NULL,
	job          TEXT NOT NULL,
	signal       TEXT NOT NULL,
	channel      TEXT NOT NULL,
	target       TEXT NOT NULL,
	secret       TEXT NOT NULL,
	subject      TEXT NOT NULL,
	body         TEXT NOT NULL,
	attempts     INTEGER NOT NULL,
	next_attempt INTEGER NOT NULL,
	-- 0 while the alert is still to be delivered.
	delivered_at INTEGER NOT NULL,
	failed_at    INTEGER NOT NULL,
	last_error   TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	UNIQUE (workspace, job, signal, channel, target)
) STRICT;

-- The alerts still to deliver, by when they are next tried.
CREATE INDEX monitor_alerts_due ON monitor_alerts (delivered_at, failed_at, next_attempt);
CREATE INDEX monitor_alerts_schedule ON monitor_alerts (workspace, schedule, created_at);

CREATE TABLE monitor_alert_deliveries (
	alert_id INTEGER NOT NULL REFERENCES monitor_alerts (id) ON DELETE CASCADE,
	attempt  INTEGER NOT NULL,
	time     INTEGER NOT NULL,
	status   INTEGER NOT NULL,
	error    TEXT NOT NULL,
	PRIMARY KEY (alert_id, attempt)
) STRICT;
