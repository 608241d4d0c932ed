-- Model monitoring: what each monitor run found, per signal, feature and
-- metric, and the alerts its breaches raised. A run's results and alerts
-- are written in one transaction, and an alert's key (job, signal,
-- channel, target) is unique, so that a firing alerts each recipient of a
-- breach once, across restarts. Times are milliseconds since the epoch. A
-- value is NULL when the metric could not be computed (detail says why).
CREATE TABLE monitor_results (
	workspace   TEXT COLLATE "C" NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	schedule    TEXT COLLATE "C" NOT NULL,
	job         TEXT COLLATE "C" NOT NULL,
	time        BIGINT NOT NULL,
	signal      TEXT COLLATE "C" NOT NULL,
	signal_type TEXT NOT NULL,
	feature     TEXT COLLATE "C" NOT NULL,
	data_type   TEXT NOT NULL,
	metric      TEXT COLLATE "C" NOT NULL,
	value       DOUBLE PRECISION,
	threshold   DOUBLE PRECISION NOT NULL,
	direction   TEXT NOT NULL,
	passed      BOOLEAN NOT NULL,
	detail      TEXT NOT NULL,
	PRIMARY KEY (workspace, job, signal, feature, metric)
);

-- A monitor's history, newest first.
CREATE INDEX monitor_results_history ON monitor_results (workspace, schedule, time);

CREATE TABLE monitor_alerts (
	id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	workspace    TEXT COLLATE "C" NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	schedule     TEXT COLLATE "C" NOT NULL,
	job          TEXT COLLATE "C" NOT NULL,
	signal       TEXT COLLATE "C" NOT NULL,
	channel      TEXT COLLATE "C" NOT NULL,
	target       TEXT COLLATE "C" NOT NULL,
	secret       TEXT NOT NULL,
	subject      TEXT NOT NULL,
	body         TEXT NOT NULL,
	attempts     BIGINT NOT NULL,
	next_attempt BIGINT NOT NULL,
	-- 0 while the alert is still to be delivered.
	delivered_at BIGINT NOT NULL,
	failed_at    BIGINT NOT NULL,
	last_error   TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	UNIQUE (workspace, job, signal, channel, target)
);

-- The alerts still to deliver, by when they are next tried.
CREATE INDEX monitor_alerts_due ON monitor_alerts (delivered_at, failed_at, next_attempt);
CREATE INDEX monitor_alerts_schedule ON monitor_alerts (workspace, schedule, created_at);

CREATE TABLE monitor_alert_deliveries (
	alert_id BIGINT NOT NULL REFERENCES monitor_alerts (id) ON DELETE CASCADE,
	attempt  BIGINT NOT NULL,
	time     BIGINT NOT NULL,
	status   BIGINT NOT NULL,
	error    TEXT NOT NULL,
	PRIMARY KEY (alert_id, attempt)
);
