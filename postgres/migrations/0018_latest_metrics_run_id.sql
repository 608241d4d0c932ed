-- The run id joins the metric index, so that a search walking a metric in
-- value order (the runs ordered by it) reads each entry's run from the
-- index alone, without a visit to the table per entry.
DROP INDEX latest_metrics_key_value;
CREATE INDEX latest_metrics_key_value ON latest_metrics (workspace, experiment_id, key, value, is_nan, run_id);
