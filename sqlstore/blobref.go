package sqlstore

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/wharfml/wharf"
)

// blobRefChunk bounds the digests bound in one statement, well under both
// engines' limits on parameters, so a folder of any size can be recorded.
const blobRefChunk = 500

// blobDigestRE finds blob digests in the JSON documents rows keep (job
// specs, schedules, deployments): every place a document names content
// writes it in this one form.
var blobDigestRE = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// AddBlobRefs records that the workspace references the digests.
func (db *DB) AddBlobRefs(ctx context.Context, workspace string, digests []string) error {
	digests = uniqueDigests(digests)
	if len(digests) == 0 {
		return nil
	}
	err := db.inTx(ctx, func(c conn) error { return addBlobRefs(ctx, c, workspace, digests...) })
	if db.isForeignKey(err) {
		return wharf.Errorf(wharf.ENOTFOUND, "workspace %q not found", workspace)
	}
	return wrapErr("add blob refs", err)
}

// addBlobRefs records references inside a caller's transaction, so that
// a row naming content and the reference it gives land together.
func addBlobRefs(ctx context.Context, c conn, workspace string, digests ...string) error {
	for chunk := range slices.Chunk(digests, blobRefChunk) {
		args := make([]any, 0, 2*len(chunk))
		for _, d := range chunk {
			if d != "" {
				args = append(args, workspace, d)
			}
		}
		if len(args) == 0 {
			continue
		}
		values := strings.Repeat("(?, ?), ", len(args)/2)
		if _, err := c.exec(ctx, `INSERT INTO blob_refs (workspace, digest) VALUES `+values[:len(values)-2]+`
			ON CONFLICT (workspace, digest) DO NOTHING`, args...); err != nil {
			return err
		}
	}
	return nil
}

// UnreferencedBlobs returns those of the digests the workspace does not
// reference, each once, in their order.
func (db *DB) UnreferencedBlobs(ctx context.Context, workspace string, digests []string) ([]string, error) {
	digests = uniqueDigests(digests)
	found := make(map[string]bool, len(digests))
	for chunk := range slices.Chunk(digests, blobRefChunk) {
		args := make([]any, 0, len(chunk)+1)
		args = append(args, workspace)
		for _, d := range chunk {
			args = append(args, d)
		}
		marks := strings.Repeat("?, ", len(chunk))
		refs, err := db.queryStrings(ctx, `SELECT digest FROM blob_refs WHERE workspace = ? AND digest IN (`+
			marks[:len(marks)-2]+`)`, args...)
		if err != nil {
			return nil, wrapErr("find blob refs", err)
		}
		for _, d := range refs {
			found[d] = true
		}
	}
	var missing []string
	for _, d := range digests {
		if !found[d] {
			missing = append(missing, d)
		}
	}
	return missing, nil
}

// NamedBlobs returns every digest the workspace's rows name: the digest
// columns of assets, artifacts and datastore paths, and the digests
// written in asset specs and the documents of jobs, schedules and
// deployments.
func (db *DB) NamedBlobs(ctx context.Context, workspace string) ([]string, error) {
	var out []string
	for _, q := range []struct {
		query string
		// scan finds digests in the column's text rather than taking
		// it whole.
		scan bool
	}{
		{`SELECT digest FROM assets WHERE workspace = ? AND digest <> ''`, false},
		{`SELECT digest FROM artifacts WHERE workspace = ?`, false},
		{`SELECT digest FROM datastore_files WHERE workspace = ?`, false},
		{`SELECT spec FROM assets WHERE workspace = ?`, true},
		{`SELECT doc FROM jobs WHERE workspace = ?`, true},
		{`SELECT doc FROM schedules WHERE workspace = ?`, true},
		{`SELECT doc FROM online_deployments WHERE workspace = ?`, true},
		{`SELECT doc FROM batch_deployments WHERE workspace = ?`, true},
	} {
		values, err := db.queryStrings(ctx, q.query, workspace)
		if err != nil {
			return nil, wrapErr("list named blobs", err)
		}
		for _, v := range values {
			if q.scan {
				out = append(out, blobDigestRE.FindAllString(v, -1)...)
			} else {
				out = append(out, v)
			}
		}
	}
	return uniqueDigests(out), nil
}

// queryStrings returns the one text column a query selects.
func (db *DB) queryStrings(ctx context.Context, query string, args ...any) ([]string, error) {
	return queryList(ctx, db.reader(), func(s rowScanner) (string, error) {
		var v string
		err := s.Scan(&v)
		return v, err
	}, query, args...)
}

// uniqueDigests drops empty and repeated digests, keeping the first
// occurrence's place.
func uniqueDigests(digests []string) []string {
	seen := make(map[string]bool, len(digests))
	out := make([]string, 0, len(digests))
	for _, d := range digests {
		if d != "" && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}
