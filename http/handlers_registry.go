package http

import (
	"net/http"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/curated"
	"github.com/wharfml/wharf/resolve"
)

// registerRegistryRoutes serves the azureml registry's environments from
// Wharf's catalog of Azure's curated environments, as az ml environment
// list/show --registry-name azureml read them. The catalog is the same for
// everyone and holds nothing of any workspace, so any caller may read it.
func (s *Server) registerRegistryRoutes() {
	const base = "/api/v1/registries/{registry}/environments"
	s.authenticated("GET "+base, jsonAPI(s, s.listRegistryEnvironments))
	s.authenticated("GET "+base+"/{name}/versions/{version}", jsonAPI(s, s.getRegistryEnvironment))
}

// RegistryEnvironment is a row of a registry's environment list: the
// fields az ml environment list prints.
type RegistryEnvironment struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description"`
}

// registry checks that the request names the one registry held here.
func registry(r *http.Request) error {
	if reg := r.PathValue("registry"); !strings.EqualFold(reg, curated.Registry) {
		return wharf.Errorf(wharf.ENOTFOUND, "registry %s not found: this server holds only the %s registry of Azure's curated environments",
			reg, curated.Registry)
	}
	return nil
}

// listRegistryEnvironments lists every name the catalog answers to, each
// at its newest version, as Azure's registry lists each as an asset of
// its own.
func (s *Server) listRegistryEnvironments(r *http.Request, _ *noBody) (int, []RegistryEnvironment, error) {
	if err := registry(r); err != nil {
		return 0, nil, err
	}
	var out []RegistryEnvironment
	for _, e := range curated.All() {
		for _, n := range e.Names() {
			out = append(out, RegistryEnvironment{Name: n, Version: e.Version, Description: e.Description})
		}
	}
	return http.StatusOK, out, nil
}

// getRegistryEnvironment shows one version (or "latest") of a curated
// environment.
func (s *Server) getRegistryEnvironment(r *http.Request, _ *noBody) (int, *wharf.Asset, error) {
	if err := registry(r); err != nil {
		return 0, nil, err
	}
	name, version := r.PathValue("name"), r.PathValue("version")
	a, ok := resolve.Curated(name, version)
	if !ok {
		return 0, nil, wharf.Errorf(wharf.ENOTFOUND, "environment %s version %s not found in registry %s", name, version, curated.Registry)
	}
	return http.StatusOK, a, nil
}
