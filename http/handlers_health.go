package http

import (
	"context"
	"net/http"
	"time"

	"github.com/wharfml/wharf"
)

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": wharf.Build().Version})
}

// handleReadyz answers 503 while the store cannot serve, so a load balancer
// keeps traffic away from a server whose database is gone.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Store.Ping(ctx); err != nil {
		s.Logger.Warn("readiness check failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// meResponse is what `wharf account show` prints.
type meResponse struct {
	ID              string                  `json:"id"`
	Name            string                  `json:"name"`
	TenantID        string                  `json:"tenantId"`
	User            map[string]string       `json:"user"`
	IsDefault       bool                    `json:"isDefault"`
	State           string                  `json:"state"`
	RoleAssignments []*wharf.RoleAssignment `json:"roleAssignments"`
}

func (s *Server) me(r *http.Request, _ *noBody) (int, meResponse, error) {
	c := wharf.CallerFromContext(r.Context())
	as, err := s.Store.ListRoleAssignments(r.Context(), wharf.RoleAssignmentFilter{PrincipalID: c.PrincipalID})
	user := map[string]string{"name": c.PrincipalID, "type": "servicePrincipal"}
	if c.User {
		user = map[string]string{"name": c.DisplayName, "type": "user", "id": c.PrincipalID}
	}
	return http.StatusOK, meResponse{
		ID:              s.TenantID,
		Name:            "wharf",
		TenantID:        s.TenantID,
		User:            user,
		IsDefault:       true,
		State:           "Enabled",
		RoleAssignments: as,
	}, err
}

func (s *Server) handleListRoleDefinitions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, wharf.BuiltinRoles())
}

func (s *Server) listAuditEvents(r *http.Request, _ *noBody) (int, []*wharf.AuditEvent, error) {
	q := r.URL.Query()
	f := wharf.AuditFilter{PrincipalID: q.Get("principal")}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return 0, nil, wharf.Errorf(wharf.EINVALID, "since must be an RFC 3339 time, got %q", v).WithField("since")
		}
		f.Since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := parsePositive(v)
		if err != nil {
			return 0, nil, wharf.Errorf(wharf.EINVALID, "limit must be a positive integer, got %q", v).WithField("limit")
		}
		f.Limit = n
	}
	events, err := s.Store.ListAuditEvents(r.Context(), f)
	return http.StatusOK, events, err
}
