package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/wharfml/wharf"
)

const artifactColumns = `workspace, path, digest, size, updated_at`

// validateArtifactPath accepts relative slash-separated paths without
// empty, "." or ".." segments. Only such paths keep the tree unambiguous:
// "a//b" or "a/./b" would be a second name for a file, and a leading or
// trailing slash would hide it from the prefix scans.
func validateArtifactPath(p string) error {
	if p == "" {
		return wharf.Errorf(wharf.EINVALID, "artifact path is required").WithField("path")
	}
	if strings.ContainsRune(p, 0) {
		return wharf.Errorf(wharf.EINVALID, "artifact path %q contains a NUL character", p).WithField("path")
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return wharf.Errorf(wharf.EINVALID,
				"artifact path %q is not a relative path of non-empty segments without '.' or '..'", p).WithField("path")
		}
	}
	return nil
}

// artifactBelow returns a condition matching the paths inside dir, with
// its arguments. The range [dir+"/", dir+"0") holds exactly the paths that
// start with dir+"/" ('0' is the character after '/', and both engines
// compare these columns bytewise), so the primary key answers it as a
// range scan, and '_' or '%' in names are plain characters, as they would
// not be with LIKE. dir itself is matched separately: an OR of the two
// conditions would lead SQLite's planner to scan the whole workspace.
func artifactBelow(dir string) (string, []any) {
	return `path >= ? AND path < ?`, []any{dir + "/", dir + "0"}
}

// PutArtifact creates or replaces the artifact at a.Path in one statement,
// so readers see the old digest or the new one, never neither. UpdatedAt
// is set to the store's clock, in milliseconds.
func (db *DB) PutArtifact(ctx context.Context, a *wharf.Artifact) error {
	if err := validateArtifactPath(a.Path); err != nil {
		return err
	}
	if a.Digest == "" {
		return wharf.Errorf(wharf.EINVALID, "artifact digest is required").WithField("digest")
	}
	if a.Size < 0 {
		return wharf.Errorf(wharf.EINVALID, "artifact size %d is negative", a.Size).WithField("size")
	}
	now := db.registryMillis()
	err := db.inTx(ctx, func(c conn) error {
		_, err := c.exec(ctx, `INSERT INTO artifacts (`+artifactColumns+`) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (workspace, path) DO UPDATE SET digest = excluded.digest, size = excluded.size,
				updated_at = excluded.updated_at`,
			a.Workspace, a.Path, a.Digest, a.Size, now)
		if err != nil {
			return err
		}
		// An artifact of the workspace's runs or models is its content
		// (see wharf.BlobRefService).
		return addBlobRefs(ctx, c, a.Workspace, a.Digest)
	})
	if db.isForeignKey(err) {
		return errRegistryWorkspace(a.Workspace)
	}
	if err != nil {
		return wrapErr("put artifact", err)
	}
	a.UpdatedAt = now
	return nil
}

// FindArtifact returns the artifact at path.
func (db *DB) FindArtifact(ctx context.Context, workspace, path string) (*wharf.Artifact, error) {
	a, err := scanArtifact(db.reader().queryRow(ctx, `SELECT `+artifactColumns+` FROM artifacts
		WHERE workspace = ? AND path = ?`, workspace, path))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wharf.Errorf(wharf.ENOTFOUND, "artifact %q not found in workspace %q", path, workspace)
	}
	return a, wrapErr("find artifact", err)
}

// ListArtifacts returns the artifacts at or below dir, sorted by path (byte
// order); dir "" lists the whole tree. Slashes around dir are ignored. An
// empty result is ENOTFOUND only when the workspace does not exist.
func (db *DB) ListArtifacts(ctx context.Context, workspace, dir string) ([]*wharf.Artifact, error) {
	query, args := artifactListSQL(workspace, dir)
	c := db.reader()
	out := []*wharf.Artifact{}
	err := eachRow(ctx, c, query, args,
		func(s interface{ Scan(...any) error }) error {
			a, err := scanArtifact(s)
			if err != nil {
				return err
			}
			out = append(out, a)
			return nil
		})
	out, err = unlessOwnerMissing(ctx, c, out, err, mustWorkspace, workspace)
	return out, wrapErr("list artifacts", err)
}

// artifactListSQL returns the listing query of dir: the file dir itself,
// if there is one, merged with the range of paths inside it. Both halves
// come from the primary key in path order, so the engines merge rather
// than sort.
func artifactListSQL(workspace, dir string) (string, []any) {
	dir = strings.Trim(dir, "/")
	const sel = `SELECT ` + artifactColumns + ` FROM artifacts WHERE workspace = ?`
	if dir == "" {
		return sel + ` ORDER BY path`, []any{workspace}
	}
	below, args := artifactBelow(dir)
	return sel + ` AND path = ? UNION ALL ` + sel + ` AND ` + below + ` ORDER BY path`,
		append([]any{workspace, dir, workspace}, args...)
}

// DeleteArtifacts removes path and everything below it, in one
// transaction. Deleting what is not there is no error, as removing a
// directory tree that is already gone; an empty path is EINVALID rather
// than a way to wipe the workspace's tree.
func (db *DB) DeleteArtifacts(ctx context.Context, workspace, path string) error {
	path = strings.Trim(path, "/")
	if path == "" {
		return wharf.Errorf(wharf.EINVALID, "artifact path is required").WithField("path")
	}
	below, args := artifactBelow(path)
	err := db.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `DELETE FROM artifacts WHERE workspace = ? AND path = ?`, workspace, path); err != nil {
			return err
		}
		_, err := c.exec(ctx, `DELETE FROM artifacts WHERE workspace = ? AND `+below, append([]any{workspace}, args...)...)
		return err
	})
	return wrapErr("delete artifacts", err)
}

func scanArtifact(s interface{ Scan(...any) error }) (*wharf.Artifact, error) {
	var a wharf.Artifact
	err := s.Scan(&a.Workspace, &a.Path, &a.Digest, &a.Size, &a.UpdatedAt)
	return &a, err
}
