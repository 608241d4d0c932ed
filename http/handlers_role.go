package http

import (
	"context"
	"net/http"
	"strings"

	"github.com/wharfml/wharf"
)

// roleAssignmentRequest is `az role assignment create --assignee --role`;
// the scope is the path the request is sent to.
type roleAssignmentRequest struct {
	Assignee string `json:"assignee"`
	Role     string `json:"role"`
}

func (s *Server) listRoleAssignments(r *http.Request, _ *noBody) (int, []*wharf.RoleAssignment, error) {
	q := r.URL.Query()
	scope := scopeOf(r)
	f := wharf.RoleAssignmentFilter{}
	if q.Get("all") != "true" || scope != wharf.ServerScope {
		f.Scope = scope
	}
	if v := q.Get("role"); v != "" {
		role, err := wharf.FindRole(v)
		if err != nil {
			return 0, nil, err
		}
		f.RoleName = role.Name
	}
	if v := q.Get("assignee"); v != "" {
		id, err := s.resolveAssignee(r.Context(), v)
		if err != nil {
			return 0, nil, err
		}
		f.PrincipalID = id
	}
	list, err := s.Store.ListRoleAssignments(r.Context(), f)
	if list == nil {
		list = []*wharf.RoleAssignment{}
	}
	return http.StatusOK, list, err
}

// resolveAssignee returns the principal id an assignee names: a service
// principal (app id, object id or display name) or a user (object id or
// user principal name), as `az role assignment create --assignee` takes
// either.
func (s *Server) resolveAssignee(ctx context.Context, assignee string) (string, error) {
	sp, err := s.Store.FindServicePrincipal(ctx, assignee)
	if err == nil {
		return sp.AppID, nil
	} else if !wharf.IsNotFound(err) {
		return "", err
	}
	u, err := s.Store.FindUser(ctx, strings.ToLower(strings.TrimSpace(assignee)))
	if wharf.IsNotFound(err) {
		return "", wharf.Errorf(wharf.ENOTFOUND, "no service principal or user %q", assignee).WithField("assignee")
	} else if err != nil {
		return "", err
	}
	return u.ObjectID, nil
}

// createRoleAssignment is idempotent: an assignment that exists is returned
// as it is, as az does.
func (s *Server) createRoleAssignment(r *http.Request, req *roleAssignmentRequest) (int, *wharf.RoleAssignment, error) {
	if req.Assignee == "" {
		return 0, nil, wharf.Errorf(wharf.EINVALID, "assignee is required").WithField("assignee")
	}
	role, err := wharf.FindRole(req.Role)
	if err != nil {
		return 0, nil, err
	}
	scope, err := s.checkGrantScope(r.Context(), scopeOf(r))
	if err != nil {
		return 0, nil, err
	}
	id, err := s.resolveAssignee(r.Context(), req.Assignee)
	if err != nil {
		return 0, nil, err
	}
	existing, err := s.Store.ListRoleAssignments(r.Context(), wharf.RoleAssignmentFilter{PrincipalID: id, Scope: scope, RoleName: role.Name})
	if err != nil {
		return 0, nil, err
	}
	if len(existing) > 0 {
		return http.StatusOK, existing[0], nil
	}
	a := &wharf.RoleAssignment{PrincipalID: id, RoleName: role.Name, Scope: scope}
	return http.StatusCreated, a, s.Store.CreateRoleAssignment(r.Context(), a)
}

// deleteRoleAssignment deletes an assignment only through the path of its
// own scope, so a workspace Owner cannot remove server-wide grants by id.
func (s *Server) deleteRoleAssignment(r *http.Request, _ *noBody) (int, noBody, error) {
	scope := scopeOf(r)
	list, err := s.Store.ListRoleAssignments(r.Context(), wharf.RoleAssignmentFilter{Scope: scope})
	if err != nil {
		return 0, noBody{}, err
	}
	id := r.PathValue("id")
	var found *wharf.RoleAssignment
	for _, a := range list {
		if a.ID == id {
			found = a
		}
	}
	if found == nil {
		return 0, noBody{}, wharf.Errorf(wharf.ENOTFOUND, "role assignment %q not found at scope %q", id, scope)
	}
	if found.RoleName == wharf.RoleOwner && scope == wharf.ServerScope {
		if err := s.guardLastOwner(r.Context(), found.PrincipalID, found.ID); err != nil {
			return 0, noBody{}, err
		}
	}
	return http.StatusNoContent, noBody{}, s.Store.DeleteRoleAssignment(r.Context(), id)
}
