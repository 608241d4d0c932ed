package http

import (
	"net/http"
	"strconv"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/mlflow"
)

// workspaceJSON adds the derived fields `az ml workspace show` prints.
type workspaceJSON struct {
	ID string `json:"id"`
	// MLflowTrackingURI is the value for MLFLOW_TRACKING_URI: each
	// workspace is its own MLflow namespace.
	MLflowTrackingURI string `json:"mlflow_tracking_uri"`
	*wharf.Workspace
}

func (s *Server) workspaceJSON(ws *wharf.Workspace) workspaceJSON {
	return workspaceJSON{ID: wharf.WorkspaceScope(ws.Name), MLflowTrackingURI: s.TrackingURI(ws.Name), Workspace: ws}
}

// TrackingURI is a workspace's MLflow tracking URI.
func (s *Server) TrackingURI(workspace string) string {
	return mlflow.TrackingURI(s.URL, workspace)
}

// workspaceRequest holds the fields a client may set on a workspace.
type workspaceRequest struct {
	Name                string            `json:"name"`
	DisplayName         string            `json:"display_name"`
	Description         string            `json:"description"`
	Location            string            `json:"location"`
	ResourceGroup       string            `json:"resource_group"`
	KeyVault            string            `json:"key_vault"`
	ApplicationInsights string            `json:"application_insights"`
	StorageAccount      string            `json:"storage_account"`
	Tags                map[string]string `json:"tags"`
}

func (s *Server) listWorkspaces(r *http.Request, _ *noBody) (int, []workspaceJSON, error) {
	all, err := s.Store.ListWorkspaces(r.Context())
	if err != nil {
		return 0, nil, err
	}
	c := wharf.CallerFromContext(r.Context())
	as, err := s.Store.ListRoleAssignments(r.Context(), wharf.RoleAssignmentFilter{PrincipalID: c.PrincipalID})
	if err != nil {
		return 0, nil, err
	}
	out := []workspaceJSON{}
	for _, ws := range all {
		if wharf.AuthorizeCaller(c, as, wharf.ActionWorkspaceRead, wharf.WorkspaceScope(ws.Name)) {
			out = append(out, s.workspaceJSON(ws))
		}
	}
	return http.StatusOK, out, nil
}

func (s *Server) getWorkspace(r *http.Request, _ *noBody) (int, workspaceJSON, error) {
	name, err := pathName(r, "workspace")
	if err != nil {
		return 0, workspaceJSON{}, err
	}
	ws, err := s.Store.FindWorkspace(r.Context(), name)
	if err != nil {
		return 0, workspaceJSON{}, err
	}
	return http.StatusOK, s.workspaceJSON(ws), nil
}

func (s *Server) putWorkspace(r *http.Request, req *workspaceRequest) (int, workspaceJSON, error) {
	name, err := pathName(r, "workspace")
	if err == nil {
		err = sameName(req.Name, name)
	}
	if err != nil {
		return 0, workspaceJSON{}, err
	}
	ws := &wharf.Workspace{
		Name: name, DisplayName: req.DisplayName, Description: req.Description, Location: req.Location,
		ResourceGroup: req.ResourceGroup, KeyVault: req.KeyVault, ApplicationInsights: req.ApplicationInsights,
		StorageAccount: req.StorageAccount, Tags: req.Tags,
	}
	if err := ws.Validate(); err != nil {
		return 0, workspaceJSON{}, err
	}
	created, err := s.Store.PutWorkspace(r.Context(), ws)
	if err != nil {
		return 0, workspaceJSON{}, err
	}
	if created {
		// Every Azure ML workspace comes with its default datastore, and
		// pipelines name it (default_datastore: azureml:workspaceblobstore).
		if _, err := s.Store.PutDatastore(r.Context(), &wharf.Datastore{Workspace: name, Name: wharf.DefaultDatastore,
			Type: wharf.DatastoreLocal, IsDefault: true, Credentials: wharf.CredentialsNone, Tags: map[string]string{}}); err != nil {
			return 0, workspaceJSON{}, err
		}
	}
	return createdStatus(created), s.workspaceJSON(ws), nil
}

func (s *Server) deleteWorkspace(r *http.Request, _ *noBody) (int, noBody, error) {
	name, err := pathName(r, "workspace")
	if err != nil {
		return 0, noBody{}, err
	}
	if err := s.Store.DeleteWorkspace(r.Context(), name); err != nil {
		return 0, noBody{}, err
	}
	// Its online endpoints and their key secrets went with it.
	s.Endpoints.InvalidateWorkspace(name)
	return http.StatusNoContent, noBody{}, nil
}

func createdStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

func parsePositive(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, strconv.ErrSyntax
	}
	return n, nil
}
