package http

import (
	"net/http"
	"sort"

	"github.com/wharfml/wharf"
)

// studioHome is a workspace's home page: what ran lately, what serves,
// and which models were registered last.
type studioHome struct {
	Jobs      []*wharf.Job
	Endpoints []studioEndpointSummary
	Models    []*wharf.ModelVersion
}

// studioEndpointSummary is an endpoint's line on the home page.
type studioEndpointSummary struct {
	Name string
	// Health is the endpoint's provisioning state, or the first
	// deployment taking traffic that is not Succeeded.
	Health  string
	Traffic []studioTrafficShare
}

// studioTrafficShare is one deployment's share of live traffic.
type studioTrafficShare struct {
	Deployment string
	Percent    int
}

// studioHomeItems bounds each list of the home page.
const studioHomeItems = 10

func (s *Server) handleStudioHome(w http.ResponseWriter, r *http.Request) {
	p, err := s.newStudioPage(r, "Home", "home")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	ctx, ws := r.Context(), p.Workspace
	if _, err := s.Store.FindWorkspace(ctx, ws); err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	p.Title = ws
	home := &studioHome{}
	if home.Jobs, err = s.Store.ListJobs(ctx, ws, "", studioHomeItems); err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	eps, err := s.Store.ListOnlineEndpoints(ctx, ws)
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	for i, e := range eps {
		if i == studioHomeItems {
			break
		}
		sum := studioEndpointSummary{Name: e.Name, Health: e.ProvisioningState}
		deps, err := s.Store.ListOnlineDeployments(ctx, ws, e.Name)
		if err != nil {
			s.writeStudioError(w, r, err)
			return
		}
		for _, d := range deps {
			if e.Traffic[d.Name] > 0 && d.ProvisioningState != "Succeeded" && sum.Health == "Succeeded" {
				sum.Health = d.ProvisioningState
			}
		}
		for d, pct := range e.Traffic {
			sum.Traffic = append(sum.Traffic, studioTrafficShare{d, pct})
		}
		sort.Slice(sum.Traffic, func(i, j int) bool { return sum.Traffic[i].Deployment < sum.Traffic[j].Deployment })
		home.Endpoints = append(home.Endpoints, sum)
	}
	home.Models, _, err = s.Store.SearchModelVersions(ctx, ws, wharf.SearchQuery{MaxResults: studioHomeItems, OrderBy: []string{"creation_timestamp DESC"}})
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	p.Data = home
	s.renderStudio(w, r, http.StatusOK, "home", p)
}
