package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/wharfml/wharf"
)

// A job row keeps the columns queries need and the whole job as JSON in
// doc; the columns are rewritten from the job on every update so they can
// never disagree with it.

// CreateJobs stores a job and its steps in one transaction.
func (db *DB) CreateJobs(ctx context.Context, jobs []*wharf.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	now := db.now()
	err := db.inTx(ctx, func(c conn) error {
		if err := mustWorkspace(ctx, c, jobs[0].Workspace); err != nil {
			return err
		}
		var seq int64
		if err := c.queryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM jobs`).Scan(&seq); err != nil {
			return err
		}
		for _, j := range jobs {
			if err := wharf.ValidateName("name", j.Name); err != nil {
				return err
			}
			if j.CreatedAt.IsZero() {
				j.CreatedAt = now
			}
			if j.Tags == nil {
				j.Tags = map[string]string{}
			}
			doc, err := json.Marshal(j)
			if err != nil {
				return err
			}
			seq++
			if _, err := c.exec(ctx, `INSERT INTO jobs (workspace, name, parent, seq, status, reuse_key, doc, created_at,
				experiment, compute, submitted_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, j.Workspace, j.Name, j.Parent, seq,
				j.Status, j.ReuseKey, string(doc), j.CreatedAt.UnixMilli(), j.ExperimentName, j.Compute, j.SubmittedBy); err != nil {
				if db.dialect.IsUniqueViolation(err) {
					return wharf.Errorf(wharf.ECONFLICT, "job %q already exists in workspace %q", j.Name, j.Workspace).WithField("name")
				}
				return err
			}
		}
		return nil
	})
	return wrapErr("create job", err)
}

// FindJob returns one job.
func (db *DB) FindJob(ctx context.Context, workspace, name string) (*wharf.Job, error) {
	j, err := scanJob(db.reader().queryRow(ctx, `SELECT workspace, doc FROM jobs WHERE workspace = ? AND name = ?`,
		workspace, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "job %q not found in workspace %q", name, workspace)
	}
	return j, wrapErr("find job", err)
}

// ListJobs lists top-level jobs newest first, or a pipeline's steps.
func (db *DB) ListJobs(ctx context.Context, workspace, parent string, limit int) ([]*wharf.Job, error) {
	order := "DESC"
	if parent != "" {
		order = "ASC"
	}
	switch {
	case limit > 0:
	case parent != "":
		// Every step: a pipeline without some of its steps would look
		// done before they ran. Its submission bounds how many it has.
		limit = math.MaxInt32
	default:
		limit = 1000
	}
	c := db.reader()
	jobs, err := queryJobs(ctx, c, `SELECT workspace, doc FROM jobs WHERE workspace = ? AND parent = ?
		ORDER BY seq `+order+` LIMIT ?`, workspace, parent, limit)
	jobs, err = unlessOwnerMissing(ctx, c, jobs, err, mustWorkspace, workspace)
	return jobs, wrapErr("list jobs", err)
}

// SearchJobs pages through a workspace's top-level jobs newest first; the
// page token is the sequence number the next page starts below.
func (db *DB) SearchJobs(ctx context.Context, workspace string, f wharf.JobFilter, limit int, pageToken string) ([]*wharf.Job, string, error) {
	if limit < 1 || limit > 1000 {
		limit = 1000
	}
	q := `SELECT workspace, doc, seq FROM jobs WHERE workspace = ? AND parent = ''`
	args := []any{workspace}
	for _, c := range []struct{ col, val string }{
		{"status", f.Status}, {"experiment", f.ExperimentName}, {"compute", f.Compute}, {"submitted_by", f.SubmittedBy},
	} {
		if c.val != "" {
			q += ` AND ` + c.col + ` = ?`
			args = append(args, c.val)
		}
	}
	if pageToken != "" {
		before, err := strconv.ParseInt(pageToken, 10, 64)
		if err != nil || before < 1 {
			return nil, "", wharf.Errorf(wharf.EINVALID, "page token %q is not one this server gave", pageToken).WithField("page_token")
		}
		q += ` AND seq < ?`
		args = append(args, before)
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, limit+1)
	c := db.reader()
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, "", wrapErr("search jobs", err)
	}
	defer rows.Close()
	out := []*wharf.Job{}
	var next string
	for rows.Next() {
		var ws, doc string
		var seq int64
		if err := rows.Scan(&ws, &doc, &seq); err != nil {
			return nil, "", wrapErr("search jobs", err)
		}
		if len(out) == limit {
			next = strconv.FormatInt(seq+1, 10)
			break
		}
		j := &wharf.Job{}
		if err := json.Unmarshal([]byte(doc), j); err != nil {
			return nil, "", wrapErr("search jobs", fmt.Errorf("decode job: %w", err))
		}
		j.Workspace = ws
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, "", wrapErr("search jobs", err)
	}
	if len(out) == 0 && pageToken == "" {
		if err := mustWorkspace(ctx, c, workspace); err != nil {
			return nil, "", wrapErr("search jobs", err)
		}
	}
	return out, next, nil
}

// JobFacets reads each filter column's distinct values from its index.
func (db *DB) JobFacets(ctx context.Context, workspace string, limit int) (*wharf.JobFacets, error) {
	c := db.reader()
	out := &wharf.JobFacets{}
	for _, f := range []struct {
		col string
		dst *[]string
	}{{"status", &out.Statuses}, {"experiment", &out.ExperimentNames}, {"compute", &out.Computes}, {"submitted_by", &out.SubmittedBy}} {
		err := eachRow(ctx, c, `SELECT DISTINCT `+f.col+` FROM jobs WHERE workspace = ? AND parent = '' AND `+f.col+` <> ''
			ORDER BY `+f.col+` LIMIT ?`, []any{workspace, limit}, func(s rowScanner) error {
			var v string
			if err := s.Scan(&v); err != nil {
				return err
			}
			*f.dst = append(*f.dst, v)
			return nil
		})
		if err != nil {
			return nil, wrapErr("job facets", err)
		}
	}
	return out, nil
}

// ListUnfinishedJobs returns the jobs not in a terminal status, oldest
// first.
func (db *DB) ListUnfinishedJobs(ctx context.Context) ([]*wharf.Job, error) {
	jobs, err := queryJobs(ctx, db.reader(), `SELECT workspace, doc FROM jobs
		WHERE status NOT IN (?, ?, ?) ORDER BY seq`, wharf.JobCompleted, wharf.JobFailed, wharf.JobCanceled)
	return jobs, wrapErr("list unfinished jobs", err)
}

// UpdateJob is a read-modify-write of one job in a transaction.
func (db *DB) UpdateJob(ctx context.Context, workspace, name string, fn func(j *wharf.Job) error) (*wharf.Job, error) {
	var out *wharf.Job
	err := db.inTx(ctx, func(c conn) error {
		// The no-op update takes the row lock on PostgreSQL before the
		// read; SQLite's write transaction already excludes other writers.
		err := mustChange(ctx, c, wharf.Errorf(wharf.ENOTFOUND, "job %q not found in workspace %q", name, workspace),
			`UPDATE jobs SET seq = seq WHERE workspace = ? AND name = ?`, workspace, name)
		if err != nil {
			return err
		}
		j, err := scanJob(c.queryRow(ctx, `SELECT workspace, doc FROM jobs WHERE workspace = ? AND name = ?`,
			workspace, name))
		if err != nil {
			return err
		}
		if err := fn(j); err != nil {
			return err
		}
		if j.Name != name || j.Workspace != workspace {
			return fmt.Errorf("sqlstore: UpdateJob may not rename job %s", name)
		}
		doc, err := json.Marshal(j)
		if err != nil {
			return err
		}
		if _, err := c.exec(ctx, `UPDATE jobs SET status = ?, reuse_key = ?, doc = ?, experiment = ?, compute = ?, submitted_by = ?
			WHERE workspace = ? AND name = ?`,
			j.Status, j.ReuseKey, string(doc), j.ExperimentName, j.Compute, j.SubmittedBy, workspace, name); err != nil {
			return err
		}
		out = j
		return nil
	})
	if err != nil {
		return nil, wrapErr("update job", err)
	}
	return out, nil
}

// FindReusableJob returns the newest completed job with the reuse key.
func (db *DB) FindReusableJob(ctx context.Context, workspace, reuseKey string) (*wharf.Job, error) {
	if strings.TrimSpace(reuseKey) == "" {
		return nil, wharf.Errorf(wharf.EINVALID, "empty reuse key")
	}
	j, err := scanJob(db.reader().queryRow(ctx, `SELECT workspace, doc FROM jobs
		WHERE workspace = ? AND reuse_key = ? AND status = ? ORDER BY seq DESC LIMIT 1`,
		workspace, reuseKey, wharf.JobCompleted))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "no completed job with reuse key %s", reuseKey)
	}
	return j, wrapErr("find reusable job", err)
}

func queryJobs(ctx context.Context, c conn, q string, args ...any) ([]*wharf.Job, error) {
	return queryList(ctx, c, scanJob, q, args...)
}

func scanJob(s interface{ Scan(...any) error }) (*wharf.Job, error) {
	var ws, doc string
	if err := s.Scan(&ws, &doc); err != nil {
		return nil, err
	}
	var j wharf.Job
	if err := json.Unmarshal([]byte(doc), &j); err != nil {
		return nil, fmt.Errorf("decode job: %w", err)
	}
	j.Workspace = ws
	return &j, nil
}
