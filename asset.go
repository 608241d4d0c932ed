package wharf

import (
	"context"
	"encoding/json"
	"slices"
	"time"
)

// Asset kinds: the versioned inputs of jobs.
const (
	AssetData        = "data"
	AssetEnvironment = "environments"
	AssetComponent   = "components"
	// AssetCode is a code snapshot registered by the Azure ML SDK, which
	// uploads a job's code folder and names it in the job by its id.
	AssetCode = "codes"
)

// AnonymousComponent is the name under which a pipeline's inline steps
// are stored as components, each version named by its content hash, as
// Azure ML keeps them: the Azure ML SDK registers every step it builds
// with command(...) there before it submits the pipeline. They are not
// listed among the workspace's named components.
const AnonymousComponent = "azureml_anonymous"

// LatestVersion is the version label that selects the newest version of an
// asset by creation time, as azureml:<name>@latest does.
const LatestVersion = "latest"

// Asset is one version of a data asset, an environment or a component.
// Versions are immutable: a job that names taxi-data:3 reads the same bytes
// forever.
type Asset struct {
	Workspace string `json:"-"`
	Kind      string `json:"-"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	// Spec is the definition in the shape of the az ml CLI v2 schema of the
	// kind, with local paths replaced by what they were uploaded as.
	Spec json.RawMessage `json:"spec"`
	// Digest pins content the asset stands for: a data asset's file or
	// folder snapshot, a component's code snapshot; "" when there is none.
	Digest      string            `json:"digest,omitempty"`
	Description string            `json:"description"`
	Tags        map[string]string `json:"tags"`
	CreatedBy   string            `json:"created_by"`
	CreatedAt   time.Time         `json:"created_at"`
}

// Anonymous reports whether a is a pipeline's inline step, stored as a
// version of AnonymousComponent.
func (a *Asset) Anonymous() bool { return a.Kind == AssetComponent && a.Name == AnonymousComponent }

// NamedAssets is list without its anonymous components: what a list of a
// workspace's assets shows. It reuses list's storage.
func NamedAssets(list []*Asset) []*Asset { return slices.DeleteFunc(list, (*Asset).Anonymous) }

// AssetService stores asset versions.
type AssetService interface {
	// CreateAsset stores a new version. An empty Version takes the next
	// whole number after the highest the name has had. Creating a version
	// that exists with the same spec and digest returns it unchanged (a CI
	// job that re-runs is not an error); with different content it fails
	// with ECONFLICT, because versions never change.
	CreateAsset(ctx context.Context, a *Asset) error
	// FindAsset returns a version; version "" or LatestVersion is the
	// newest by creation.
	FindAsset(ctx context.Context, workspace, kind, name, version string) (*Asset, error)
	// ListAssets returns the versions of name, newest first, or, with name
	// "", the newest version of every name ordered by name.
	ListAssets(ctx context.Context, workspace, kind, name string) ([]*Asset, error)
}
