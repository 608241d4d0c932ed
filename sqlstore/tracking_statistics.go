package sqlstore

import (
	"context"
	"strings"
	"sync"
	"time"
)

// runSearchTables are the tables a run search plans over.
var runSearchTables = []string{"latest_metrics", "params", "runs", "tags"}

// statisticsInterval is how often at most a run search checks PostgreSQL's
// planner statistics.
const statisticsInterval = time.Second

// statisticsCheck paces freshenStatistics: one check at a time, at most
// one per statisticsInterval.
type statisticsCheck struct {
	mu   sync.Mutex
	last time.Time
}

// freshenStatistics runs ANALYZE on the tables a run search reads when
// PostgreSQL has no statistics on one of them (never analyzed) or when
// autovacuum's own rule says its statistics are due (more rows changed
// since the last analyze than autovacuum_analyze_threshold plus
// autovacuum_analyze_scale_factor of the table) and autovacuum has not got
// to it yet: it looks only once a minute (autovacuum_naptime), and a store
// filled by thousands of runs in that minute would otherwise be planned
// from no statistics. Without them PostgreSQL estimates one row for each
// condition and picks nested loops that reread a whole table for every
// run, seconds instead of milliseconds at tens of thousands of runs. A
// search that finds them due waits for the ANALYZE, which samples a
// bounded number of rows, so that it is planned from them.
func (db *DB) freshenStatistics(ctx context.Context) error {
	st := &db.statistics
	st.mu.Lock()
	defer st.mu.Unlock()
	if time.Since(st.last) < statisticsInterval {
		return nil
	}
	rows, err := db.write.QueryContext(ctx, `SELECT c.relname FROM pg_class c
		JOIN pg_stat_user_tables s ON s.relid = c.oid
		WHERE c.oid = ANY (CAST($1 AS regclass[]))
			AND (c.reltuples < 0 OR s.n_mod_since_analyze >
				current_setting('autovacuum_analyze_threshold')::float8 +
				current_setting('autovacuum_analyze_scale_factor')::float8 * c.reltuples)
		ORDER BY c.relname`, "{"+strings.Join(runSearchTables, ",")+"}")
	if err != nil {
		return err
	}
	var due []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		due = append(due, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(due) > 0 {
		// The names come from runSearchTables, through pg_class.
		if _, err := db.write.ExecContext(ctx, `ANALYZE `+strings.Join(due, ", ")); err != nil {
			return err
		}
	}
	st.last = time.Now()
	return nil
}
