-- The studio's audit page lists one workspace's events, newest first: an
-- index on the scope its calls were authorized at, in time order.
CREATE INDEX audit_events_scope_time ON audit_events (scope, time);
