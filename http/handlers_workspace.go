package http

import (
	"net/http"
	"strconv"

	"github.com/wharfml/wharf"
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
	return s.URL + "/mlflow/v1.0/workspaces/" + workspace
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

func (s *Server) handleListWorkspaces(w http.ResponseWriter, r *http.Request) {
	all, err := s.Store.ListWorkspaces(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c := wharf.CallerFromContext(r.Context())
	as, err := s.Store.ListRoleAssignments(r.Context(), wharf.RoleAssignmentFilter{PrincipalID: c.PrincipalID})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := []workspaceJSON{}
	for _, ws := range all {
		if wharf.AuthorizeCaller(c, as, wharf.ActionWorkspaceRead, wharf.WorkspaceScope(ws.Name)) {
			out = append(out, s.workspaceJSON(ws))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetWorkspace(w http.ResponseWriter, r *http.Request) {
	name, err := pathName(r, "workspace")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ws, err := s.Store.FindWorkspace(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.workspaceJSON(ws))
}

func (s *Server) handlePutWorkspace(w http.ResponseWriter, r *http.Request) {
	name, err := pathName(r, "workspace")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req workspaceRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Name != "" && req.Name != name {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "name %q in the body differs from %q in the path", req.Name, name).WithField("name"))
		return
	}
	ws := &wharf.Workspace{
		Name: name, DisplayName: req.DisplayName, Description: req.Description, Location: req.Location,
		ResourceGroup: req.ResourceGroup, KeyVault: req.KeyVault, ApplicationInsights: req.ApplicationInsights,
		StorageAccount: req.StorageAccount, Tags: req.Tags,
	}
	if err := ws.Validate(); err != nil {
		s.writeError(w, r, err)
		return
	}
	created, err := s.Store.PutWorkspace(r.Context(), ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if created {
		// Every Azure ML workspace comes with its default datastore, and
		// pipelines name it (default_datastore: azureml:workspaceblobstore).
		if _, err := s.Store.PutDatastore(r.Context(), &wharf.Datastore{Workspace: name, Name: wharf.DefaultDatastore,
			Type: wharf.DatastoreLocal, IsDefault: true, Tags: map[string]string{}}); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, createdStatus(created), s.workspaceJSON(ws))
}

func (s *Server) handleDeleteWorkspace(w http.ResponseWriter, r *http.Request) {
	name, err := pathName(r, "workspace")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Store.DeleteWorkspace(r.Context(), name); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Its online endpoints and their key secrets went with it.
	s.Endpoints.InvalidateWorkspace(name)
	w.WriteHeader(http.StatusNoContent)
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
