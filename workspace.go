package wharf

import (
	"context"
	"time"
)

// Workspace is the top-level container of a team's work: its datastores,
// secret store, monitoring store and compute clusters live inside it, and
// roles are granted on it.
type Workspace struct {
	Name          string `json:"name"`
	DisplayName   string `json:"display_name"`
	Description   string `json:"description"`
	Location      string `json:"location"`
	ResourceGroup string `json:"resource_group"`
	// KeyVault names the workspace's secret store.
	KeyVault string `json:"key_vault"`
	// ApplicationInsights names the monitoring store; empty when monitoring
	// is off.
	ApplicationInsights string            `json:"application_insights"`
	StorageAccount      string            `json:"storage_account"`
	Tags                map[string]string `json:"tags"`
	CreatedAt           time.Time         `json:"created_at"`
	UpdatedAt           time.Time         `json:"updated_at"`
}

// Validate checks the fields a client may set and fills defaults.
func (w *Workspace) Validate() error {
	if err := ValidateName("name", w.Name); err != nil {
		return err
	}
	if w.DisplayName == "" {
		w.DisplayName = w.Name
	}
	if w.Location == "" {
		w.Location = "local"
	}
	if w.KeyVault == "" {
		w.KeyVault = "kv-" + w.Name
	}
	if w.Tags == nil {
		w.Tags = map[string]string{}
	}
	return nil
}

// WorkspaceService manages workspaces.
type WorkspaceService interface {
	// FindWorkspace returns ENOTFOUND when no workspace has that name.
	FindWorkspace(ctx context.Context, name string) (*Workspace, error)
	ListWorkspaces(ctx context.Context) ([]*Workspace, error)
	// PutWorkspace creates the workspace or updates its mutable fields, the
	// create-or-update semantics `az ml workspace create` has, so that
	// applying the same definition twice is a no-op. created reports which.
	PutWorkspace(ctx context.Context, w *Workspace) (created bool, err error)
	// DeleteWorkspace removes the workspace and everything scoped to it:
	// datastores, compute, secrets and role assignments.
	DeleteWorkspace(ctx context.Context, name string) error
}
