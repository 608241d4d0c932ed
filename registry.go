package wharf

import (
	"context"
	"strconv"
)

// Model version stages (deprecated by MLflow in favour of aliases, still
// used by clients) and statuses.
const (
	StageNone       = "None"
	StageStaging    = "Staging"
	StageProduction = "Production"
	StageArchived   = "Archived"

	VersionReady = "READY"

	// Model asset types of `az ml model create --type`.
	ModelTypeMLflow = "mlflow_model"
	ModelTypeCustom = "custom_model"
)

// RegisteredModel is a named model in a workspace's registry. The registry is
// one store: the mlflow client and `wharf ml model` see the same entries.
type RegisteredModel struct {
	Workspace       string
	Name            string
	Description     string
	UserID          string
	CreationTime    int64
	LastUpdatedTime int64
	Tags            map[string]string
	// Aliases maps alias to version number.
	Aliases map[string]int64
	// LatestVersions has the newest version of each stage.
	LatestVersions []*ModelVersion
}

// ModelVersion is one registered version: a model asset.
type ModelVersion struct {
	Workspace       string
	Name            string
	Version         int64
	Source          string
	RunID           string
	RunLink         string
	ModelID         string
	Description     string
	UserID          string
	Status          string
	StatusMessage   string
	CurrentStage    string
	CreationTime    int64
	LastUpdatedTime int64
	Tags            map[string]string
	Aliases         []string
	// Type is mlflow_model or custom_model (`az ml model` types).
	Type string
	// AssetVersion is the version as az ml names it when that is not its
	// number: a string given at `az ml model create` ("1.0.0"). "" means
	// the number is its name.
	AssetVersion string
	// ContentDigest identifies the files the version was registered with
	// (see ModelContentDigest); "" when it was registered through MLflow,
	// whose files are a run's.
	ContentDigest string
}

// AzureVersion is the version as az ml shows it: its asset version, or
// its number.
func (v *ModelVersion) AzureVersion() string {
	if v.AssetVersion != "" {
		return v.AssetVersion
	}
	return strconv.FormatInt(v.Version, 10)
}

// LoggedModel is MLflow 3's model entity created by log_model.
type LoggedModel struct {
	Workspace       string
	ID              string // "m-" + 32 hex
	ExperimentID    string
	Name            string
	ArtifactURI     string
	Status          string // LOGGED_MODEL_PENDING, LOGGED_MODEL_READY, LOGGED_MODEL_UPLOAD_FAILED
	StatusMessage   string
	CreatorID       string
	ModelType       string
	SourceRunID     string
	CreationTime    int64
	LastUpdatedTime int64
	Tags            map[string]string
	Params          map[string]string
	// Metrics holds every value logged with the model's id, each with
	// its run and dataset.
	Metrics []*Metric
}

// RegistryService is the model registry, per workspace.
type RegistryService interface {
	// CreateRegisteredModel: ECONFLICT when the name exists.
	CreateRegisteredModel(ctx context.Context, m *RegisteredModel) error
	FindRegisteredModel(ctx context.Context, workspace, name string) (*RegisteredModel, error)
	RenameRegisteredModel(ctx context.Context, workspace, name, newName string) (*RegisteredModel, error)
	UpdateRegisteredModel(ctx context.Context, workspace, name, description string) (*RegisteredModel, error)
	// DeleteRegisteredModel deletes the model, its versions, tags and aliases.
	DeleteRegisteredModel(ctx context.Context, workspace, name string) error
	SearchRegisteredModels(ctx context.Context, workspace string, q SearchQuery) ([]*RegisteredModel, string, error)
	SetRegisteredModelTag(ctx context.Context, workspace, name, key, value string) error
	DeleteRegisteredModelTag(ctx context.Context, workspace, name, key string) error

	// CreateModelVersion assigns the next version number (max + 1) in the
	// same transaction, so concurrent registrations never collide; the
	// registered model must exist.
	//
	// A version with an AssetVersion is registered under it: a whole
	// number N becomes version N (which must be free; later versions
	// number on from the highest), any other string takes the next number
	// and keeps the string as its az ml name (ECONFLICT when taken).
	CreateModelVersion(ctx context.Context, v *ModelVersion) error
	// FindModelAssetVersion finds a version as az ml names it: a whole
	// number is the version's number, any other string its AssetVersion.
	FindModelAssetVersion(ctx context.Context, workspace, name, version string) (*ModelVersion, error)
	FindModelVersion(ctx context.Context, workspace, name string, version int64) (*ModelVersion, error)
	UpdateModelVersion(ctx context.Context, workspace, name string, version int64, description string) (*ModelVersion, error)
	DeleteModelVersion(ctx context.Context, workspace, name string, version int64) error
	SearchModelVersions(ctx context.Context, workspace string, q SearchQuery) ([]*ModelVersion, string, error)
	// TransitionModelVersionStage sets the stage; with archiveExisting the
	// other versions in that stage move to Archived in the same transaction.
	TransitionModelVersionStage(ctx context.Context, workspace, name string, version int64, stage string, archiveExisting bool) (*ModelVersion, error)
	// LatestModelVersions returns the newest version per stage, limited to
	// stages when given.
	LatestModelVersions(ctx context.Context, workspace, name string, stages []string) ([]*ModelVersion, error)
	SetModelVersionTag(ctx context.Context, workspace, name string, version int64, key, value string) error
	DeleteModelVersionTag(ctx context.Context, workspace, name string, version int64, key string) error
	SetModelAlias(ctx context.Context, workspace, name, alias string, version int64) error
	DeleteModelAlias(ctx context.Context, workspace, name, alias string) error
	FindModelVersionByAlias(ctx context.Context, workspace, name, alias string) (*ModelVersion, error)

	CreateLoggedModel(ctx context.Context, m *LoggedModel) error
	FindLoggedModel(ctx context.Context, workspace, id string) (*LoggedModel, error)
	FinalizeLoggedModel(ctx context.Context, workspace, id, status, message string) (*LoggedModel, error)
	SetLoggedModelTags(ctx context.Context, workspace, id string, tags map[string]string) (*LoggedModel, error)
	DeleteLoggedModelTag(ctx context.Context, workspace, id, key string) error
	LogLoggedModelParams(ctx context.Context, workspace, id string, params map[string]string) error
	DeleteLoggedModel(ctx context.Context, workspace, id string) error
	SearchLoggedModels(ctx context.Context, workspace string, q SearchQuery) ([]*LoggedModel, string, error)
}

// Artifact is one file in a workspace's artifact tree. Content lives in the
// blob store by digest; the tree maps paths to digests, so a path is
// replaced atomically and identical files are stored once.
type Artifact struct {
	Workspace string
	Path      string
	Digest    string
	Size      int64
	UpdatedAt int64
}

// ArtifactService keeps the artifact tree.
type ArtifactService interface {
	PutArtifact(ctx context.Context, a *Artifact) error
	FindArtifact(ctx context.Context, workspace, path string) (*Artifact, error)
	// ListArtifacts returns the files at or below dir (recursive), sorted by
	// path; callers fold them into directory entries.
	ListArtifacts(ctx context.Context, workspace, dir string) ([]*Artifact, error)
	// DeleteArtifacts removes path and everything below it.
	DeleteArtifacts(ctx context.Context, workspace, path string) error
}
