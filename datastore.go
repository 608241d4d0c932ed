package wharf

import (
	"context"
	"strings"
	"time"
)

// Datastore types. A local datastore keeps blobs in the server's artifact
// folder; object-store types point at S3 or Azure Blob compatible services.
const (
	DatastoreLocal     = "local"
	DatastoreAzureBlob = "azure_blob"
	DatastoreS3        = "s3"
	// DefaultDatastore is the name Azure ML gives a workspace's default
	// datastore; pipelines reference it by that name.
	DefaultDatastore = "workspaceblobstore"
)

// Datastore credential kinds.
const (
	CredentialsNone       = "none"
	CredentialsAccountKey = "account_key"
	CredentialsSASToken   = "sas_token"
	CredentialsAccessKey  = "access_key"
)

// DatastoreCredentials are the secret values of a datastore's credential;
// they are kept, sealed, in the workspace's secret store.
type DatastoreCredentials struct {
	AccountKey      string `json:"account_key,omitempty" yaml:"account_key"`
	SASToken        string `json:"sas_token,omitempty" yaml:"sas_token"`
	AccessKeyID     string `json:"access_key_id,omitempty" yaml:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key,omitempty" yaml:"secret_access_key"`
}

// Kind says which credential c holds, or EINVALID naming the field when
// it mixes kinds or the kind does not fit the datastore type.
func (c *DatastoreCredentials) Kind(datastoreType string) (string, error) {
	var kinds []string
	if c.AccountKey != "" {
		kinds = append(kinds, CredentialsAccountKey)
	}
	if c.SASToken != "" {
		kinds = append(kinds, CredentialsSASToken)
	}
	if c.AccessKeyID != "" || c.SecretAccessKey != "" {
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return "", Errorf(EINVALID, "credentials need both access_key_id and secret_access_key").WithField("credentials")
		}
		kinds = append(kinds, CredentialsAccessKey)
	}
	switch {
	case len(kinds) == 0:
		return CredentialsNone, nil
	case len(kinds) > 1:
		return "", Errorf(EINVALID, "credentials give %s: give one", strings.Join(kinds, " and ")).WithField("credentials")
	}
	fits := map[string]string{CredentialsAccountKey: DatastoreAzureBlob, CredentialsSASToken: DatastoreAzureBlob, CredentialsAccessKey: DatastoreS3}
	if fits[kinds[0]] != datastoreType {
		return "", Errorf(EINVALID, "credentials: %s is not a credential of a %s datastore", kinds[0], datastoreType).WithField("credentials." + kinds[0])
	}
	return kinds[0], nil
}

// DatastoreCredentialSecret names the secret that holds a datastore's
// credentials in its workspace's secret store.
func DatastoreCredentialSecret(datastore string) string {
	return "datastore-" + datastore + "-credentials"
}

// Datastore is a named place where a workspace's data and job outputs live.
type Datastore struct {
	Workspace     string `json:"-"`
	Name          string `json:"name"`
	Type          string `json:"type"`
	IsDefault     bool   `json:"is_default"`
	AccountName   string `json:"account_name,omitempty"`
	ContainerName string `json:"container_name,omitempty"`
	// Endpoint is, for azure_blob, Azure's storage endpoint suffix
	// (core.windows.net) or a whole account URL such as an emulator's
	// http://127.0.0.1:10000/devstoreaccount1; for s3, the service's URL
	// (empty for AWS).
	Endpoint string `json:"endpoint,omitempty"`
	// Protocol is https (the default) or http, for azure_blob.
	Protocol string `json:"protocol,omitempty"`
	// Bucket, Region and PathStyle place an s3 datastore.
	Bucket    string `json:"bucket,omitempty"`
	Region    string `json:"region,omitempty"`
	PathStyle bool   `json:"path_style,omitempty"`
	// Credentials says which kind of credential the datastore has
	// (account_key, sas_token, access_key, or none); the values are in the
	// workspace's secret store, as DatastoreCredentialSecret, and never in
	// the datastore.
	Credentials string            `json:"credentials,omitempty"`
	Description string            `json:"description"`
	Tags        map[string]string `json:"tags"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

// Validate checks a datastore definition and fills defaults.
func (d *Datastore) Validate() error {
	if err := ValidateName("name", d.Name); err != nil {
		return err
	}
	switch d.Type {
	case "":
		d.Type = DatastoreLocal
	case DatastoreLocal, DatastoreAzureBlob, DatastoreS3:
	default:
		return Errorf(EINVALID, "type %q is not supported (allowed: local, azure_blob, s3)", d.Type).WithField("type")
	}
	switch d.Protocol {
	case "", "https", "http":
	default:
		return Errorf(EINVALID, "protocol %q is not https or http", d.Protocol).WithField("protocol")
	}
	if d.Type == DatastoreS3 && d.Bucket == "" && d.ContainerName != "" {
		d.Bucket = d.ContainerName
	}
	if d.Credentials == "" {
		d.Credentials = CredentialsNone
	}
	if d.Tags == nil {
		d.Tags = map[string]string{}
	}
	return nil
}

// DatastoreService manages datastores.
type DatastoreService interface {
	FindDatastore(ctx context.Context, workspace, name string) (*Datastore, error)
	ListDatastores(ctx context.Context, workspace string) ([]*Datastore, error)
	// PutDatastore creates or updates a datastore. Marking one default
	// clears the flag on the others in the same transaction, so a
	// workspace never has two defaults.
	PutDatastore(ctx context.Context, d *Datastore) (created bool, err error)
	DeleteDatastore(ctx context.Context, workspace, name string) error
}

// DatastoreFile is content stored at a path of a datastore: what an
// azureml://datastores/<ds>/paths/<path> URI names. Uploads and job outputs
// are recorded here, so a later job or data asset can name them by path.
type DatastoreFile struct {
	Workspace string `json:"-"`
	Datastore string `json:"datastore"`
	// Path has no leading slash; a folder's path has no trailing one.
	Path string `json:"path"`
	// Digest and Kind are the content: a blob ("file") or a folder
	// snapshot manifest ("folder").
	Digest    string    `json:"digest"`
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
}

// DatastorePathService records what is stored at datastore paths.
type DatastorePathService interface {
	// PutDatastoreFile records content at a path, replacing what was
	// there: a job re-run writes its outputs to the same place.
	PutDatastoreFile(ctx context.Context, f *DatastoreFile) error
	// FindDatastoreFile returns what is at a path, or ENOTFOUND.
	FindDatastoreFile(ctx context.Context, workspace, datastore, path string) (*DatastoreFile, error)
	// ListDatastoreFiles returns what is recorded below the folder
	// prefix (not at prefix itself), ordered by path: the content a job
	// reading the folder sees, resolved anew at each submission so that
	// files written since are included. An empty prefix lists the whole
	// datastore.
	ListDatastoreFiles(ctx context.Context, workspace, datastore, prefix string) ([]*DatastoreFile, error)
}

// CleanDatastorePath normalizes a datastore path: no leading or trailing
// slashes, no empty, "." or ".." segments.
func CleanDatastorePath(p string) (string, error) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	for _, s := range parts {
		if s == "" || s == "." || s == ".." {
			return "", Errorf(EINVALID, "datastore path %q is not a clean relative path", p).WithField("path")
		}
	}
	return strings.Join(parts, "/"), nil
}

// DatastoreObject is an object in the container or bucket of an azure_blob
// or s3 datastore, in the version Wharf last read or wrote: the service's
// ETag and the size say which version, Digest what bytes that version
// holds. Another tool may replace an object at any time; a read that finds
// the same ETag and size takes the recorded digest instead of reading the
// bytes again, and one that finds another version reads it anew, so what a
// job is given by digest is always what the container held when the job
// was submitted.
type DatastoreObject struct {
	Workspace string `json:"-"`
	Datastore string `json:"datastore"`
	// Path is the object's name in the container, which is its datastore
	// path.
	Path      string    `json:"path"`
	ETag      string    `json:"etag"`
	Size      int64     `json:"size"`
	Digest    string    `json:"digest"`
	UpdatedAt time.Time `json:"updated_at"`
}

// DatastoreObjectService remembers the versions of datastore objects Wharf
// has read or written, and the content they hold.
type DatastoreObjectService interface {
	// PutDatastoreObjects records the objects' versions and digests,
	// replacing what was recorded at their paths, and makes their content
	// the workspace's (see BlobRefService), in one transaction.
	PutDatastoreObjects(ctx context.Context, objects []*DatastoreObject) error
	// ListDatastoreObjects returns the objects recorded at prefix or
	// below it (prefix/...), ordered by path; an empty prefix lists the
	// whole datastore.
	ListDatastoreObjects(ctx context.Context, workspace, datastore, prefix string) ([]*DatastoreObject, error)
}
