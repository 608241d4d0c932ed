package blob

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/wharfml/wharf"
)

// PutNamed writes r, size bytes, to the object called name below the
// store's prefix, replacing what is there. It is how a datastore path is
// written where Azure ML would put it, for other tools that read the
// container or bucket: by its path, where Put names content by its digest.
// The services publish an object only once it is whole, so a reader sees
// the old content or the new, never part of it.
func (s *ObjectStore) PutNamed(ctx context.Context, name string, r io.Reader, size int64) error {
	key := s.prefix + strings.TrimPrefix(name, "/")
	r = ctxReader{ctx, r}
	if size <= partSize {
		content, err := io.ReadAll(io.LimitReader(r, partSize+1))
		if err != nil {
			return s.putError(ctx, fmt.Errorf("blob: write %s: %w", name, err))
		}
		return s.putError(ctx, s.api.putSmall(ctx, key, content))
	}
	return s.putError(ctx, s.api.putStream(ctx, key, r))
}

// OpenDatastore opens the container or bucket of an azure_blob or s3
// datastore with its credentials, read from the workspace's secret store;
// ok is false, and nothing opened, for a datastore that is not in object
// storage.
func OpenDatastore(ctx context.Context, secrets wharf.SecretService, d *wharf.Datastore) (store *ObjectStore, ok bool, err error) {
	if d.Type != wharf.DatastoreAzureBlob && d.Type != wharf.DatastoreS3 {
		return nil, false, nil
	}
	creds := &wharf.DatastoreCredentials{}
	if d.Credentials != "" && d.Credentials != wharf.CredentialsNone {
		sec, err := secrets.GetSecret(ctx, wharf.WorkspaceScope(d.Workspace), wharf.DatastoreCredentialSecret(d.Name), "")
		if err != nil {
			return nil, false, fmt.Errorf("datastore %s/%s: credentials: %w", d.Workspace, d.Name, err)
		}
		if err := json.Unmarshal(sec.Value, creds); err != nil {
			return nil, false, wharf.Errorf(wharf.EINTERNAL, "datastore %s/%s: stored credentials are unreadable", d.Workspace, d.Name)
		}
	}
	store, err = ForDatastore(ctx, d, creds, "")
	return store, err == nil, err
}
