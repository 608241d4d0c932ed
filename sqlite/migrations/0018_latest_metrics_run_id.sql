-- Nothing to change on SQLite: latest_metrics is a WITHOUT ROWID table, so
-- its metric index already ends with the primary key, run_id included, and
-- a search reads each entry's run from the index alone. The migration
-- keeps the numbering the same on both engines (PostgreSQL's adds run_id
-- to that index).
SELECT 1;
