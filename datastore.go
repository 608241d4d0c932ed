package wharf

import (
	"context"
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

// Datastore is a named place where a workspace's data and job outputs live.
type Datastore struct {
	Workspace     string            `json:"-"`
	Name          string            `json:"name"`
	Type          string            `json:"type"`
	IsDefault     bool              `json:"is_default"`
	AccountName   string            `json:"account_name,omitempty"`
	ContainerName string            `json:"container_name,omitempty"`
	Endpoint      string            `json:"endpoint,omitempty"`
	Description   string            `json:"description"`
	Tags          map[string]string `json:"tags"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
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
