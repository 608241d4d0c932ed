package http

import (
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
}

func (s *Server) handleListComputes(w http.ResponseWriter, r *http.Request) {
	cs, err := s.Store.ListComputes(r.Context(), r.PathValue("workspace"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cs)
}

func (s *Server) handleGetCompute(w http.ResponseWriter, r *http.Request) {
	c, err := s.Store.FindCompute(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) handlePutCompute(w http.ResponseWriter, r *http.Request) {
	ws, err := pathName(r, "workspace")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	name, err := pathName(r, "name")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req computeRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Name != "" && req.Name != name {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "name %q in the body differs from %q in the path", req.Name, name).WithField("name"))
		return
	}
	c := &wharf.Compute{
		Workspace: ws, Name: name, Type: req.Type, Size: req.Size, MinInstances: req.MinInstances,
		MaxInstances: req.MaxInstances, Tier: req.Tier, IdleTimeBeforeScaleDown: req.IdleTimeBeforeScaleDown,
		Location: req.Location, Description: req.Description, Tags: req.Tags,
	}
	if err := c.Validate(); err != nil {
		s.writeError(w, r, err)
		return
	}
	created, err := s.Store.PutCompute(r.Context(), c)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, createdStatus(created), c)
}

func (s *Server) handleDeleteCompute(w http.ResponseWriter, r *http.Request) {
	if err := s.Store.DeleteCompute(r.Context(), r.PathValue("workspace"), r.PathValue("name")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// datastoreRequest holds the fields of a datastore definition.
type datastoreRequest struct {
	Name          string            `json:"name"`
	Type          string            `json:"type"`
	IsDefault     bool              `json:"is_default"`
	AccountName   string            `json:"account_name"`
	ContainerName string            `json:"container_name"`
	Endpoint      string            `json:"endpoint"`
	Description   string            `json:"description"`
	Tags          map[string]string `json:"tags"`
}

func (s *Server) handleListDatastores(w http.ResponseWriter, r *http.Request) {
	ds, err := s.Store.ListDatastores(r.Context(), r.PathValue("workspace"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ds)
}

func (s *Server) handleGetDatastore(w http.ResponseWriter, r *http.Request) {
	d, err := s.Store.FindDatastore(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) handlePutDatastore(w http.ResponseWriter, r *http.Request) {
	ws, err := pathName(r, "workspace")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	name, err := pathName(r, "name")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req datastoreRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Name != "" && req.Name != name {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "name %q in the body differs from %q in the path", req.Name, name).WithField("name"))
		return
	}
	d := &wharf.Datastore{
		Workspace: ws, Name: name, Type: req.Type, IsDefault: req.IsDefault, AccountName: req.AccountName,
		ContainerName: req.ContainerName, Endpoint: req.Endpoint, Description: req.Description, Tags: req.Tags,
	}
	if err := d.Validate(); err != nil {
		s.writeError(w, r, err)
		return
	}
	created, err := s.Store.PutDatastore(r.Context(), d)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, createdStatus(created), d)
}

func (s *Server) handleDeleteDatastore(w http.ResponseWriter, r *http.Request) {
	if err := s.Store.DeleteDatastore(r.Context(), r.PathValue("workspace"), r.PathValue("name")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
