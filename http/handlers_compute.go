package http

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/wharfml/wharf"
)

// computeRequest holds the fields of `az ml compute create`.
type computeRequest struct {
	Name                    string            `json:"name"`
	Type                    string            `json:"type"`
	Size                    string            `json:"size"`
	MinInstances            int               `json:"min_instances"`
	MaxInstances            int               `json:"max_instances"`
	Tier                    string            `json:"tier"`
	IdleTimeBeforeScaleDown int               `json:"idle_time_before_scale_down"`
	Location                string            `json:"location"`
	Description             string            `json:"description"`
	Tags                    map[string]string `json:"tags"`
	// Address is a Ray-backed cluster's Ray dashboard URL.
	Address string `json:"address"`
	// Sandbox: false runs a Ray-backed cluster's steps as the Ray
	// worker's user, unsandboxed.
	Sandbox *bool `json:"sandbox"`
	// SandboxReadOnlyPaths are folders of a Ray-backed cluster's nodes
	// that its sandboxed steps see read-only.
	SandboxReadOnlyPaths []string `json:"sandbox_read_only_paths"`
}

// compute is the compute the request puts at workspace/name.
func (req *computeRequest) compute(ws, name string) *wharf.Compute {
	return &wharf.Compute{
		Workspace: ws, Name: name, Type: req.Type, Size: req.Size, MinInstances: req.MinInstances,
		MaxInstances: req.MaxInstances, Tier: req.Tier, IdleTimeBeforeScaleDown: req.IdleTimeBeforeScaleDown,
		Location: req.Location, Description: req.Description, Tags: req.Tags, Address: req.Address,
		Sandbox: req.Sandbox, SandboxReadOnlyPaths: req.SandboxReadOnlyPaths,
	}
}

func (s *Server) listComputes(r *http.Request, _ *noBody) (int, []*wharf.Compute, error) {
	cs, err := s.Store.ListComputes(r.Context(), r.PathValue("workspace"))
	return http.StatusOK, cs, err
}

func (s *Server) getCompute(r *http.Request, _ *noBody) (int, *wharf.Compute, error) {
	c, err := s.Store.FindCompute(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	return http.StatusOK, c, err
}

func (s *Server) putCompute(r *http.Request, req *computeRequest) (int, *wharf.Compute, error) {
	ws, name, err := putTarget(r, req.Name)
	if err != nil {
		return 0, nil, err
	}
	c := req.compute(ws, name)
	if err := c.Validate(); err != nil {
		return 0, nil, err
	}
	created, err := s.Store.PutCompute(r.Context(), c)
	return createdStatus(created), c, err
}

func (s *Server) deleteCompute(r *http.Request, _ *noBody) (int, noBody, error) {
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	if c, err := s.Store.FindCompute(r.Context(), ws, name); err == nil && c.Type == wharf.ComputeTypeRay && s.Clusters != nil {
		// Its driver's tasks end with it; a cluster that cannot be
		// reached does not keep the compute from being deleted.
		if err := s.Clusters.StopDriver(r.Context(), c); err != nil {
			s.Logger.Warn("stopping the Ray driver job of a deleted compute failed", "compute", ws+"/"+name, "err", err)
		}
	}
	return http.StatusNoContent, noBody{}, s.Store.DeleteCompute(r.Context(), ws, name)
}

// datastoreRequest holds the fields of a datastore definition.
type datastoreRequest struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// IsDefault, when given, makes the datastore the workspace's default
	// or not; without it an update keeps what the datastore was, as
	// Azure's datastore YAML has no such field: redefining
	// workspaceblobstore as a Blob container keeps it the default.
	IsDefault     *bool             `json:"is_default"`
	AccountName   string            `json:"account_name"`
	ContainerName string            `json:"container_name"`
	Endpoint      string            `json:"endpoint"`
	Protocol      string            `json:"protocol"`
	Bucket        string            `json:"bucket"`
	Region        string            `json:"region"`
	PathStyle     bool              `json:"path_style"`
	Description   string            `json:"description"`
	Tags          map[string]string `json:"tags"`
	// Credentials are stored in the workspace's secret store, never in
	// the datastore; without them an update keeps the credential the
	// datastore had.
	Credentials *wharf.DatastoreCredentials `json:"credentials"`
}

// datastore is the datastore the request puts at workspace/name.
func (req *datastoreRequest) datastore(ws, name string) *wharf.Datastore {
	return &wharf.Datastore{
		Workspace: ws, Name: name, Type: req.Type, IsDefault: req.IsDefault != nil && *req.IsDefault, AccountName: req.AccountName,
		ContainerName: req.ContainerName, Endpoint: req.Endpoint, Protocol: req.Protocol, Bucket: req.Bucket,
		Region: req.Region, PathStyle: req.PathStyle, Description: req.Description, Tags: req.Tags,
	}
}

func (s *Server) listDatastores(r *http.Request, _ *noBody) (int, []*wharf.Datastore, error) {
	ds, err := s.Store.ListDatastores(r.Context(), r.PathValue("workspace"))
	return http.StatusOK, ds, err
}

func (s *Server) getDatastore(r *http.Request, _ *noBody) (int, *wharf.Datastore, error) {
	d, err := s.Store.FindDatastore(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	return http.StatusOK, d, err
}

func (s *Server) putDatastore(r *http.Request, req *datastoreRequest) (int, *wharf.Datastore, error) {
	ws, name, err := putTarget(r, req.Name)
	if err != nil {
		return 0, nil, err
	}
	d := req.datastore(ws, name)
	if req.IsDefault == nil {
		old, err := s.Store.FindDatastore(r.Context(), ws, name)
		switch {
		case err == nil:
			d.IsDefault = old.IsDefault
		case !wharf.IsNotFound(err):
			return 0, nil, err
		}
	}
	if err := d.Validate(); err != nil {
		return 0, nil, err
	}
	creds, err := s.datastoreCredentials(r.Context(), d, req.Credentials)
	if err != nil {
		return 0, nil, err
	}
	if s.CheckDatastore != nil && d.Type != wharf.DatastoreLocal {
		if err := s.CheckDatastore(r.Context(), d, creds); err != nil {
			return 0, nil, err
		}
	}
	// The secret first: a datastore is never saved naming a credential
	// that is not there. A failed save leaves at most a newer version of
	// the secret, which the next save replaces.
	if req.Credentials != nil && d.Credentials != wharf.CredentialsNone {
		value, err := json.Marshal(creds)
		if err != nil {
			return 0, nil, err
		}
		if _, err := s.Store.SetSecret(r.Context(), wharf.WorkspaceScope(ws), wharf.DatastoreCredentialSecret(name), value, "application/json"); err != nil {
			return 0, nil, err
		}
	}
	created, err := s.Store.PutDatastore(r.Context(), d)
	if err == nil && d.Credentials == wharf.CredentialsNone {
		err = s.deleteDatastoreCredentials(r.Context(), ws, name)
	}
	return createdStatus(created), d, err
}

// datastoreCredentials sets d.Credentials to the kind of credential the
// datastore will have and returns its values: those of the request, or,
// when it gives none, those the datastore already has if it stays of the
// same type.
func (s *Server) datastoreCredentials(ctx context.Context, d *wharf.Datastore, given *wharf.DatastoreCredentials) (*wharf.DatastoreCredentials, error) {
	if given != nil {
		kind, err := given.Kind(d.Type)
		d.Credentials = kind
		return given, err
	}
	d.Credentials = wharf.CredentialsNone
	old, err := s.Store.FindDatastore(ctx, d.Workspace, d.Name)
	if wharf.IsNotFound(err) || (err == nil && (old.Type != d.Type || old.Credentials == wharf.CredentialsNone || old.Credentials == "")) {
		return &wharf.DatastoreCredentials{}, nil
	}
	if err != nil {
		return nil, err
	}
	sec, err := s.Store.GetSecret(ctx, wharf.WorkspaceScope(d.Workspace), wharf.DatastoreCredentialSecret(d.Name), "")
	if err != nil {
		return nil, err
	}
	var creds wharf.DatastoreCredentials
	if err := json.Unmarshal(sec.Value, &creds); err != nil {
		return nil, wharf.Errorf(wharf.EINTERNAL, "datastore %s: stored credentials are unreadable", d.Name)
	}
	d.Credentials = old.Credentials
	return &creds, nil
}

// deleteDatastoreCredentials removes a datastore's credential secret, if
// it has one.
func (s *Server) deleteDatastoreCredentials(ctx context.Context, ws, name string) error {
	err := s.Store.DeleteSecret(ctx, wharf.WorkspaceScope(ws), wharf.DatastoreCredentialSecret(name))
	if wharf.IsNotFound(err) {
		return nil
	}
	return err
}

func (s *Server) deleteDatastore(r *http.Request, _ *noBody) (int, noBody, error) {
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	if err := s.Store.DeleteDatastore(r.Context(), ws, name); err != nil {
		return 0, noBody{}, err
	}
	return http.StatusNoContent, noBody{}, s.deleteDatastoreCredentials(r.Context(), ws, name)
}
