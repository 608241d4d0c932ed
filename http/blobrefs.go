package http

import (
	"context"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/snapshot"
)

// blobRefsBackfilledSetting is set once the references of content stored
// before blob references were kept have been recorded.
const blobRefsBackfilledSetting = "blob_refs_backfilled"

// BackfillBlobRefs records, once per store, the blob references of content
// stored before references were kept (see wharf.BlobRefService): every
// digest a workspace's rows name and, for those that are snapshots, the
// files they list, so that downloads, jobs and schedules that worked
// before go on working. A digest whose blob is gone gives no reference.
// It can run again after a failure, or on servers starting at once, to the
// same result. Without a blob store it does nothing.
func (s *Server) BackfillBlobRefs(ctx context.Context) error {
	if s.Blobs == nil {
		return nil
	}
	if _, done, err := s.Store.Setting(ctx, blobRefsBackfilledSetting); err != nil || done {
		return err
	}
	start := time.Now()
	workspaces, err := s.Store.ListWorkspaces(ctx)
	if err != nil {
		return err
	}
	total := 0
	for _, ws := range workspaces {
		named, err := s.Store.NamedBlobs(ctx, ws.Name)
		if err != nil {
			return err
		}
		var refs []string
		for _, d := range named {
			contents, err := snapshot.Contents(ctx, d, s.Blobs)
			switch code := wharf.ErrorCode(err); {
			case err == nil:
				refs = append(refs, contents...)
			case code != wharf.ENOTFOUND && code != wharf.EINVALID:
				return err
			}
		}
		if err := s.Store.AddBlobRefs(ctx, ws.Name, refs); err != nil && !wharf.IsNotFound(err) {
			return err
		}
		total += len(refs)
	}
	if _, err := s.Store.InitSetting(ctx, blobRefsBackfilledSetting, start.UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	s.Logger.Info("recorded which workspaces hold the content stored before blob references were kept",
		"workspaces", len(workspaces), "references", total, "took", time.Since(start).Round(time.Millisecond))
	return nil
}
