package blob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/snapshot"
)

// namedConcurrency is how many objects a Container reads or writes at
// once: a folder of many small files costs round trips more than bytes,
// and each large one is itself sent in parts concurrently.
const namedConcurrency = 8

// namedAPI reads and writes objects by their names, the datastore paths
// other tools use, together with the version (ETag) the service gives
// each write. Every error other than errNoObject names the datastore.
type namedAPI interface {
	// listVersions calls fn with the name, ETag and size of every object
	// whose name starts with prefix.
	listVersions(ctx context.Context, prefix string, fn func(key, etag string, size int64) error) error
	// getVersion opens an object and says which version it reads.
	getVersion(ctx context.Context, key string) (r io.ReadCloser, etag string, size int64, err error)
	// putVersion writes r, size bytes, to key and returns the version
	// written. The services publish an object only once it is whole, so
	// a reader sees the old content or the new, never part of it, and a
	// write that fails or is interrupted leaves the old one.
	putVersion(ctx context.Context, key string, r io.Reader, size int64) (etag string, err error)
}

// unquoteETag drops the quotes some responses put around an ETag.
func unquoteETag(s string) string { return strings.Trim(s, `"`) }

// ContainerRecords is what a Container keeps in Wharf's store: the
// datastore's credentials, and the versions of its objects read or written.
type ContainerRecords interface {
	wharf.SecretService
	wharf.DatastoreObjectService
}

// DatastoreRecords is ContainerRecords with the datastores themselves.
type DatastoreRecords interface {
	ContainerRecords
	wharf.DatastoreService
}

// WriteDatastorePath writes content of Wharf's store (a file, or a folder
// snapshot's files) to the path p of the workspace's datastore ds, in its
// container or bucket, when ds is an azure_blob or s3 datastore: where
// Azure ML puts it, for other tools reading the container. For another
// datastore it does nothing. Callers record the path in Wharf's store
// once it returns.
func WriteDatastorePath(ctx context.Context, records DatastoreRecords, blobs wharf.BlobStore, ws, ds, p, digest string, folder bool) error {
	d, err := records.FindDatastore(ctx, ws, ds)
	if err != nil {
		return err
	}
	c, ok, err := OpenContainer(ctx, records, blobs, d)
	if err != nil || !ok {
		return err
	}
	return c.Write(ctx, p, digest, folder)
}

// DefinitionFault makes a container's error for a missing container or
// credentials it refuses (ENOTFOUND, EFORBIDDEN) an EINVALID one: the
// datastore's definition is at fault, not a path with nothing yet nor the
// caller's permissions. Other errors are returned as they are.
func DefinitionFault(err error) error {
	if code := wharf.ErrorCode(err); code == wharf.ENOTFOUND || code == wharf.EFORBIDDEN {
		return wharf.Errorf(wharf.EINVALID, "%s", wharf.ErrorMessage(err))
	}
	return err
}

// Container is the container or bucket of an azure_blob or s3 datastore,
// where its paths are: files any tool put there are read from it, and what
// Wharf writes to a path lands in it for any tool to read.
//
// Reading a path copies what is there into Wharf's content store, so a job
// or data asset names exact bytes by digest: its lineage says what it read,
// a cached step is reused only for the same bytes, and a later change in
// the container does not change a data asset already created. The version
// of each object read is recorded with its digest; an object found again in
// the same version is not read again.
type Container struct {
	datastore *wharf.Datastore
	api       namedAPI
	records   ContainerRecords
	blobs     wharf.BlobStore
}

// OpenContainer opens the container or bucket of d with its credentials,
// read from the workspace's secret store; blobs is Wharf's content store.
// ok is false, and nothing opened, for a datastore that is not in object
// storage.
func OpenContainer(ctx context.Context, records ContainerRecords, blobs wharf.BlobStore, d *wharf.Datastore) (c *Container, ok bool, err error) {
	if d.Type != wharf.DatastoreAzureBlob && d.Type != wharf.DatastoreS3 {
		return nil, false, nil
	}
	creds := &wharf.DatastoreCredentials{}
	if d.Credentials != "" && d.Credentials != wharf.CredentialsNone {
		sec, err := records.GetSecret(ctx, wharf.WorkspaceScope(d.Workspace), wharf.DatastoreCredentialSecret(d.Name), "")
		if err != nil {
			return nil, false, fmt.Errorf("datastore %s/%s: credentials: %w", d.Workspace, d.Name, err)
		}
		if err := json.Unmarshal(sec.Value, creds); err != nil {
			return nil, false, wharf.Errorf(wharf.EINTERNAL, "datastore %s/%s: stored credentials are unreadable", d.Workspace, d.Name)
		}
	}
	store, err := ForDatastore(ctx, d, creds, "")
	if err != nil {
		return nil, false, err
	}
	api, isNamed := store.api.(namedAPI)
	if !isNamed {
		return nil, false, wharf.Errorf(wharf.EINTERNAL, "datastore %s/%s: its store cannot name objects", d.Workspace, d.Name)
	}
	if blobs == nil {
		return nil, false, wharf.Errorf(wharf.EUNAVAILABLE, "content storage is not configured on this server")
	}
	return &Container{datastore: d, api: api, records: records, blobs: blobs}, true, nil
}

// uri is a datastore path as a job names it, for error messages.
func (c *Container) uri(p string) string {
	return "azureml://datastores/" + c.datastore.Name + "/paths/" + p
}

// Read returns what the container holds at the datastore path p: the object
// named p, as one file named by its base name (isFile), or else every
// object below p/, by its path relative to p (an empty p is the whole
// container). Objects whose names end in "/", the folder markers some
// tools write, are not files. Objects not read before in their current
// version are read into the content store, several at once, streamed. An
// empty list means nothing is there.
func (c *Container) Read(ctx context.Context, p string) (files []snapshot.File, isFile bool, err error) {
	p = strings.Trim(p, "/")
	type listed struct {
		key, etag string
		size      int64
	}
	var file *listed
	var below []listed
	err = c.api.listVersions(ctx, p, func(key, etag string, size int64) error {
		switch {
		case key == p && p != "":
			file = &listed{key, etag, size}
		case strings.HasSuffix(key, "/"):
		case p == "" || strings.HasPrefix(key, p+"/"):
			below = append(below, listed{key, etag, size})
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if file != nil {
		below, isFile = []listed{*file}, true
	}
	if len(below) == 0 {
		return nil, false, nil
	}
	recorded, err := c.records.ListDatastoreObjects(ctx, c.datastore.Workspace, c.datastore.Name, p)
	if err != nil {
		return nil, false, err
	}
	known := make(map[string]*wharf.DatastoreObject, len(recorded))
	for _, o := range recorded {
		known[o.Path] = o
	}
	files = make([]snapshot.File, len(below))
	read := make([]*wharf.DatastoreObject, len(below))
	held := func(l listed) *wharf.DatastoreObject {
		if o := known[l.key]; o != nil && o.ETag == l.etag && o.Size == l.size {
			return o
		}
		return nil
	}
	counter := readCounterOf(ctx)
	for _, l := range below {
		if held(l) == nil {
			counter.filesTotal.Add(1)
			counter.bytesTotal.Add(l.size)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(namedConcurrency)
	for i, l := range below {
		rel := path.Base(l.key)
		if !isFile {
			rel = strings.TrimPrefix(strings.TrimPrefix(l.key, p), "/")
		}
		if o := held(l); o != nil {
			files[i] = snapshot.File{Path: rel, Mode: snapshot.ModeFile, Digest: o.Digest, Size: o.Size}
			continue
		}
		g.Go(func() error {
			o, err := c.readObject(gctx, l.key, counter)
			if err != nil {
				return err
			}
			counter.files.Add(1)
			read[i] = o
			files[i] = snapshot.File{Path: rel, Mode: snapshot.ModeFile, Digest: o.Digest, Size: o.Size}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, false, err
	}
	var fresh []*wharf.DatastoreObject
	for _, o := range read {
		if o != nil {
			fresh = append(fresh, o)
		}
	}
	if err := c.records.PutDatastoreObjects(ctx, fresh); err != nil {
		return nil, false, err
	}
	return files, isFile, nil
}

// readObject copies one object into the content store and says which
// version it copied: the one the read got, which may be newer than the
// one listed.
func (c *Container) readObject(ctx context.Context, key string, counter *ReadCounter) (*wharf.DatastoreObject, error) {
	r, etag, size, err := c.api.getVersion(ctx, key)
	if errors.Is(err, errNoObject) {
		return nil, wharf.Errorf(wharf.EUNAVAILABLE, "datastore %s/%s: %s was deleted while it was read: try again",
			c.datastore.Workspace, c.datastore.Name, c.uri(key))
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	digest, n, err := c.blobs.Put(ctx, tallyReader{r, counter})
	if err != nil {
		return nil, fmt.Errorf("datastore %s/%s: read %s: %w", c.datastore.Workspace, c.datastore.Name, c.uri(key), err)
	}
	if n != size {
		return nil, wharf.Errorf(wharf.EUNAVAILABLE, "datastore %s/%s: read %d of the %d bytes of %s: try again",
			c.datastore.Workspace, c.datastore.Name, n, size, c.uri(key))
	}
	return &wharf.DatastoreObject{Workspace: c.datastore.Workspace, Datastore: c.datastore.Name, Path: key, ETag: etag, Size: n, Digest: digest}, nil
}

// Write puts content of Wharf's store at the datastore path p in the
// container: a file (folder false) as the object p, a folder snapshot's
// files below p/, several at once. Each object is checked against its
// digest on the way and published whole; the versions written are
// recorded, so reading them back costs no download.
func (c *Container) Write(ctx context.Context, p, digest string, folder bool) error {
	return c.write(ctx, p, digest, folder, false)
}

// WriteMissing is Write for a path named by its content (LocalUpload/
// <hash>/...): an object Wharf already wrote or read there with the same
// digest is not sent again, so submitting the same code twice uploads it
// once.
func (c *Container) WriteMissing(ctx context.Context, p, digest string, folder bool) error {
	return c.write(ctx, p, digest, folder, true)
}

func (c *Container) write(ctx context.Context, p, digest string, folder, skipRecorded bool) error {
	var files []snapshot.File
	if folder {
		m, err := snapshot.Load(ctx, digest, c.blobs)
		if err != nil {
			return err
		}
		files = m.Files
	} else {
		size, err := c.blobs.Stat(ctx, digest)
		if err != nil {
			return err
		}
		files = []snapshot.File{{Digest: digest, Size: size}}
	}
	return c.writeFiles(ctx, p, files, skipRecorded)
}

// WriteMissingFiles is WriteMissing for files of Wharf's store that make
// no snapshot of their own (a registered model's): each below p at its
// path.
func (c *Container) WriteMissingFiles(ctx context.Context, p string, files []snapshot.File) error {
	return c.writeFiles(ctx, p, files, true)
}

func (c *Container) writeFiles(ctx context.Context, p string, files []snapshot.File, skipRecorded bool) error {
	p = strings.Trim(p, "/")
	recorded := map[string]string{}
	if skipRecorded {
		objects, err := c.records.ListDatastoreObjects(ctx, c.datastore.Workspace, c.datastore.Name, p)
		if err != nil {
			return err
		}
		for _, o := range objects {
			recorded[o.Path] = o.Digest
		}
	}
	written := make([]*wharf.DatastoreObject, 0, len(files))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(namedConcurrency)
	for _, f := range files {
		key := p
		if f.Path != "" {
			key = path.Join(p, f.Path)
		}
		if recorded[key] == f.Digest {
			continue
		}
		g.Go(func() error {
			etag, err := c.writeObject(gctx, key, f.Digest)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			written = append(written, &wharf.DatastoreObject{Workspace: c.datastore.Workspace, Datastore: c.datastore.Name, Path: key,
				ETag: etag, Size: f.Size, Digest: f.Digest})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return c.records.PutDatastoreObjects(ctx, written)
}

// writeObject writes one stored blob to the object key.
func (c *Container) writeObject(ctx context.Context, key, digest string) (string, error) {
	r, size, err := c.blobs.Open(ctx, digest)
	if err != nil {
		return "", err
	}
	defer r.Close()
	return c.api.putVersion(ctx, key, ctxReader{ctx, r}, size)
}
