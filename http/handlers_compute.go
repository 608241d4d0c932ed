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

// compute is the compute the request puts at workspace/name.
func (req *computeRequest) compute(ws, name string) *wharf.Compute {
	return &wharf.Compute{
		Workspace: ws, Name: name, Type: req.Type, Size: req.Size, MinInstances: req.MinInstances,
		MaxInstances: req.MaxInstances, Tier: req.Tier, IdleTimeBeforeScaleDown: req.IdleTimeBeforeScaleDown,
		Location: req.Location, Description: req.Description, Tags: req.Tags,
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
	return http.StatusNoContent, noBody{}, s.Store.DeleteCompute(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
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

// datastore is the datastore the request puts at workspace/name.
func (req *datastoreRequest) datastore(ws, name string) *wharf.Datastore {
	return &wharf.Datastore{
		Workspace: ws, Name: name, Type: req.Type, IsDefault: req.IsDefault, AccountName: req.AccountName,
		ContainerName: req.ContainerName, Endpoint: req.Endpoint, Description: req.Description, Tags: req.Tags,
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
	if err := d.Validate(); err != nil {
		return 0, nil, err
	}
	created, err := s.Store.PutDatastore(r.Context(), d)
	return createdStatus(created), d, err
}

func (s *Server) deleteDatastore(r *http.Request, _ *noBody) (int, noBody, error) {
	return http.StatusNoContent, noBody{}, s.Store.DeleteDatastore(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
}
