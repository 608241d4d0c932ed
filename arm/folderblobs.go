package arm

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/scheduler"
	"github.com/wharfml/wharf/snapshot"
)

// A job's folder output is recorded at its datastore path as one folder,
// a snapshot manifest, not as a blob a file; the Blob API shows the files
// of such folders as the blobs below its path, as Azure's container holds
// them, so that the SDK's downloads of an azureml:// path find them.

// folderBlob is the file at path p inside a recorded folder above it, or
// nil when no folder above p holds it.
func (h *Handler) folderBlob(ctx context.Context, workspace, datastore, p string) (*wharf.StorageBlob, error) {
	for dir := p; ; {
		i := strings.LastIndexByte(dir, '/')
		if i <= 0 {
			return nil, nil
		}
		dir = dir[:i]
		f, err := h.Store.FindDatastoreFile(ctx, workspace, datastore, dir)
		if wharf.IsNotFound(err) {
			continue
		}
		if err != nil || f.Kind != scheduler.KindFolder {
			return nil, err
		}
		files, err := h.folderFiles(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, b := range files {
			if b.Path == p {
				return b, nil
			}
		}
		return nil, nil
	}
}

// folderFiles are the files of a recorded folder as blobs at their paths.
func (h *Handler) folderFiles(ctx context.Context, f *wharf.DatastoreFile) ([]*wharf.StorageBlob, error) {
	m, err := snapshot.Load(ctx, f.Digest, h.Blobs)
	if err != nil {
		return nil, err
	}
	out := make([]*wharf.StorageBlob, 0, len(m.Files))
	for _, file := range m.Files {
		out = append(out, &wharf.StorageBlob{DatastoreFile: wharf.DatastoreFile{Workspace: f.Workspace, Datastore: f.Datastore,
			Path: f.Path + "/" + file.Path, Digest: file.Digest, Kind: scheduler.KindFile, CreatedAt: f.CreatedAt}, UpdatedAt: f.CreatedAt})
	}
	return out, nil
}

// withFolderFiles adds to blobs, a listing's page below prefix after
// marker, the files of the recorded folders that lie below prefix or hold
// it, keeping the page sorted and at most limit long.
func (h *Handler) withFolderFiles(ctx context.Context, workspace, datastore, prefix, marker string, blobs []*wharf.StorageBlob, limit int) ([]*wharf.StorageBlob, error) {
	var folders []*wharf.DatastoreFile
	// Folders below the prefix's own folder whose paths start with it.
	dir := ""
	if i := strings.LastIndexByte(prefix, '/'); i > 0 {
		dir = prefix[:i]
	}
	// (Not at the container's root, which would read the whole
	// datastore at every listing.)
	var below []*wharf.DatastoreFile
	if dir != "" {
		var err error
		if below, err = h.Store.ListDatastoreFiles(ctx, workspace, datastore, dir); err != nil && !wharf.IsNotFound(err) {
			return nil, err
		}
	}
	for _, f := range below {
		if f.Kind == scheduler.KindFolder && strings.HasPrefix(f.Path+"/", prefix) {
			folders = append(folders, f)
		}
	}
	// A folder holding the prefix.
	for d := dir; d != ""; {
		f, err := h.Store.FindDatastoreFile(ctx, workspace, datastore, d)
		if err == nil && f.Kind == scheduler.KindFolder {
			folders = append(folders, f)
			break
		}
		if err != nil && !wharf.IsNotFound(err) {
			return nil, err
		}
		i := strings.LastIndexByte(d, '/')
		if i <= 0 {
			break
		}
		d = d[:i]
	}
	if len(folders) == 0 {
		return blobs, nil
	}
	for _, f := range folders {
		files, err := h.folderFiles(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, b := range files {
			if strings.HasPrefix(b.Path, prefix) && b.Path > marker {
				blobs = append(blobs, b)
			}
		}
	}
	// A path recorded both ways is listed once, as its blob.
	sort.SliceStable(blobs, func(i, j int) bool { return blobs[i].Path < blobs[j].Path })
	blobs = slices.CompactFunc(blobs, func(a, b *wharf.StorageBlob) bool { return a.Path == b.Path })
	if len(blobs) > limit {
		blobs = blobs[:limit]
	}
	return blobs, nil
}
