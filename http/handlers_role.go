package http

import (
	"net/http"

	"github.com/wharfml/wharf"
)

// roleAssignmentRequest is `az role assignment create --assignee --role`;
// the scope is the path the request is sent to.
type roleAssignmentRequest struct {
	Assignee string `json:"assignee"`
	Role     string `json:"role"`
}

func (s *Server) handleListRoleAssignments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	scope := scopeOf(r)
	f := wharf.RoleAssignmentFilter{}
	if q.Get("all") != "true" || scope != wharf.ServerScope {
		f.Scope = scope
	}
	if v := q.Get("role"); v != "" {
		role, err := wharf.FindRole(v)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		f.RoleName = role.Name
	}
	if v := q.Get("assignee"); v != "" {
		sp, err := s.Store.FindServicePrincipal(r.Context(), v)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		f.PrincipalID = sp.AppID
	}
	list, err := s.Store.ListRoleAssignments(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if list == nil {
		list = []*wharf.RoleAssignment{}
	}
	writeJSON(w, http.StatusOK, list)
}

// handleCreateRoleAssignment is idempotent: an assignment that exists is
// returned as it is, as az does.
func (s *Server) handleCreateRoleAssignment(w http.ResponseWriter, r *http.Request) {
	var req roleAssignmentRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Assignee == "" {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "assignee is required").WithField("assignee"))
		return
	}
	role, err := wharf.FindRole(req.Role)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	scope, err := s.checkGrantScope(r.Context(), scopeOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sp, err := s.Store.FindServicePrincipal(r.Context(), req.Assignee)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	existing, err := s.Store.ListRoleAssignments(r.Context(), wharf.RoleAssignmentFilter{PrincipalID: sp.AppID, Scope: scope, RoleName: role.Name})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(existing) > 0 {
		writeJSON(w, http.StatusOK, existing[0])
		return
	}
	a := &wharf.RoleAssignment{PrincipalID: sp.AppID, RoleName: role.Name, Scope: scope}
	if err := s.Store.CreateRoleAssignment(r.Context(), a); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, a)
}

// handleDeleteRoleAssignment deletes an assignment only through the path of
// its own scope, so a workspace Owner cannot remove server-wide grants by id.
func (s *Server) handleDeleteRoleAssignment(w http.ResponseWriter, r *http.Request) {
	scope := scopeOf(r)
	list, err := s.Store.ListRoleAssignments(r.Context(), wharf.RoleAssignmentFilter{Scope: scope})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	var found *wharf.RoleAssignment
	for _, a := range list {
		if a.ID == id {
			found = a
		}
	}
	if found == nil {
		s.writeError(w, r, wharf.Errorf(wharf.ENOTFOUND, "role assignment %q not found at scope %q", id, scope))
		return
	}
	if found.RoleName == wharf.RoleOwner && scope == wharf.ServerScope {
		if err := s.guardLastOwner(r.Context(), found.PrincipalID, found.ID); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if err := s.Store.DeleteRoleAssignment(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
