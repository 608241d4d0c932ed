package http

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
)

// createPrincipalRequest is `az ad sp create-for-rbac`.
type createPrincipalRequest struct {
	DisplayName string   `json:"displayName"`
	Role        string   `json:"role"`
	Scopes      []string `json:"scopes"`
	// Years is the credential lifetime; 0 means one year, az's default.
	Years int `json:"years"`
}

// CredentialResponse is returned once, when a secret is created: the only
// time the secret exists outside the caller's hands.
type CredentialResponse struct {
	AppID       string    `json:"appId"`
	DisplayName string    `json:"displayName"`
	Password    string    `json:"password"`
	Tenant      string    `json:"tenant"`
	KeyID       string    `json:"keyId"`
	EndDate     time.Time `json:"endDateTime"`
	ServerURL   string    `json:"serverUrl"`
}

func (s *Server) listPrincipals(r *http.Request, _ *noBody) (int, []*wharf.ServicePrincipal, error) {
	list, err := s.Store.ListServicePrincipals(r.Context())
	return http.StatusOK, list, err
}

func (s *Server) getPrincipal(r *http.Request, _ *noBody) (int, *wharf.ServicePrincipal, error) {
	sp, err := s.Store.FindServicePrincipal(r.Context(), r.PathValue("id"))
	return http.StatusOK, sp, err
}

// createPrincipal creates a principal with a secret and, with a role, its
// role assignments. Run again with the same name it issues a new secret and
// adds missing assignments, so CI bootstrap scripts can be re-run.
func (s *Server) createPrincipal(r *http.Request, req *createPrincipalRequest) (int, *CredentialResponse, error) {
	ctx := r.Context()
	if req.DisplayName == "" {
		req.DisplayName = "wharf-sp-" + time.Now().UTC().Format("2006-01-02-15-04-05")
	}
	if err := validateDisplayName(req.DisplayName); err != nil {
		return 0, nil, err
	}
	if (req.Role == "") != (len(req.Scopes) == 0) {
		return 0, nil, wharf.Errorf(wharf.EINVALID, "usage error: to create role assignments, specify both role and scopes").WithField("role")
	}
	var role *wharf.RoleDefinition
	scopes := make([]string, 0, len(req.Scopes))
	if req.Role != "" {
		var err error
		if role, err = wharf.FindRole(req.Role); err != nil {
			return 0, nil, err
		}
		for _, sc := range req.Scopes {
			norm, err := s.checkGrantScope(ctx, sc)
			if err != nil {
				return 0, nil, err
			}
			scopes = append(scopes, norm)
		}
	}

	sp, err := s.Store.FindServicePrincipal(ctx, req.DisplayName)
	switch {
	case wharf.IsNotFound(err):
		sp = &wharf.ServicePrincipal{AppID: uuid.NewString(), ObjectID: uuid.NewString(), DisplayName: req.DisplayName}
		if err := s.Store.CreateServicePrincipal(ctx, sp); err != nil {
			return 0, nil, err
		}
	case err != nil:
		return 0, nil, err
	}
	for _, sc := range scopes {
		a := &wharf.RoleAssignment{PrincipalID: sp.AppID, RoleName: role.Name, Scope: sc}
		if err := s.Store.CreateRoleAssignment(ctx, a); err != nil && wharf.ErrorCode(err) != wharf.ECONFLICT {
			return 0, nil, err
		}
	}
	resp, err := s.issueCredential(ctx, sp, req.Years, true)
	return http.StatusCreated, resp, err
}

// checkGrantScope normalises a scope for a new grant, requires the caller to
// be allowed to assign roles there, and requires a workspace scope to exist:
// a grant on a name nobody owns yet would hand over a future workspace.
func (s *Server) checkGrantScope(ctx context.Context, scope string) (string, error) {
	norm, err := wharf.NormalizeScope(scope)
	if err != nil {
		return "", err
	}
	c := wharf.CallerFromContext(ctx)
	ok, err := s.authorize(ctx, c, wharf.ActionRoleAssignmentWrite, norm)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", forbidden(c, wharf.ActionRoleAssignmentWrite, norm)
	}
	if norm != wharf.ServerScope {
		if _, err := s.Store.FindWorkspace(ctx, norm[len("/workspaces/"):]); err != nil {
			return "", err
		}
	}
	return norm, nil
}

func validateDisplayName(n string) error {
	if len(n) == 0 || len(n) > 120 {
		return wharf.Errorf(wharf.EINVALID, "displayName must be 1-120 characters").WithField("displayName")
	}
	return wharf.ValidateName("displayName", n)
}

// issueCredential creates a secret, stores only its hash, and returns it.
func (s *Server) issueCredential(ctx context.Context, sp *wharf.ServicePrincipal, years int, replace bool) (*CredentialResponse, error) {
	cred, resp, err := s.newCredential(sp, years)
	if err != nil {
		return nil, err
	}
	if err := s.Store.AddCredential(ctx, cred, replace); err != nil {
		return nil, err
	}
	return resp, nil
}

// newCredential creates a secret valid for years (1 by default) and
// returns the credential to store, which holds only its hash, and the
// response that shows the secret once.
func (s *Server) newCredential(sp *wharf.ServicePrincipal, years int) (*wharf.PasswordCredential, *CredentialResponse, error) {
	if years == 0 {
		years = 1
	}
	if years < 0 || years > 2 {
		return nil, nil, wharf.Errorf(wharf.EINVALID, "years must be 1 or 2 (secrets should be rotated within two years)").WithField("years")
	}
	secret, err := auth.GenerateSecret()
	if err != nil {
		return nil, nil, err
	}
	hash, err := auth.HashSecret(secret)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now().UTC()
	cred := &wharf.PasswordCredential{
		KeyID: uuid.NewString(), PrincipalID: sp.AppID, Hint: secret[:3], SecretHash: hash,
		StartDate: now, EndDate: now.AddDate(years, 0, 0),
	}
	return cred, &CredentialResponse{
		AppID: sp.AppID, DisplayName: sp.DisplayName, Password: secret, Tenant: s.TenantID,
		KeyID: cred.KeyID, EndDate: cred.EndDate, ServerURL: s.URL,
	}, nil
}

// resetCredentialRequest is `az ad sp credential reset [--append]`.
type resetCredentialRequest struct {
	Append bool `json:"append"`
	Years  int  `json:"years"`
}

func (s *Server) resetCredential(r *http.Request, req *resetCredentialRequest) (int, *CredentialResponse, error) {
	sp, err := s.Store.FindServicePrincipal(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	resp, err := s.issueCredential(r.Context(), sp, req.Years, !req.Append)
	return http.StatusCreated, resp, err
}

func (s *Server) listCredentials(r *http.Request, _ *noBody) (int, []*wharf.PasswordCredential, error) {
	sp, err := s.Store.FindServicePrincipal(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	list, err := s.Store.ListCredentials(r.Context(), sp.AppID)
	return http.StatusOK, list, err
}

func (s *Server) deleteCredential(r *http.Request, _ *noBody) (int, noBody, error) {
	sp, err := s.Store.FindServicePrincipal(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, noBody{}, err
	}
	return http.StatusNoContent, noBody{}, s.Store.DeleteCredential(r.Context(), sp.AppID, r.PathValue("keyId"))
}

func (s *Server) deletePrincipal(r *http.Request, _ *noBody) (int, noBody, error) {
	sp, err := s.Store.FindServicePrincipal(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, noBody{}, err
	}
	if err := s.guardLastOwner(r.Context(), sp.AppID, ""); err != nil {
		return 0, noBody{}, err
	}
	return http.StatusNoContent, noBody{}, s.Store.DeleteServicePrincipal(r.Context(), sp.AppID)
}

// guardLastOwner refuses a change that would leave the server without an
// Owner at the server scope: nobody could then assign roles again. It checks
// the removal of principal's server Owner assignment (assignmentID, or any
// when empty).
func (s *Server) guardLastOwner(ctx context.Context, principal, assignmentID string) error {
	owners, err := s.Store.ListRoleAssignments(ctx, wharf.RoleAssignmentFilter{Scope: wharf.ServerScope, RoleName: wharf.RoleOwner})
	if err != nil {
		return err
	}
	remaining := 0
	removes := false
	for _, a := range owners {
		if a.PrincipalID == principal && (assignmentID == "" || a.ID == assignmentID) {
			removes = true
			continue
		}
		remaining++
	}
	if removes && remaining == 0 {
		return wharf.Errorf(wharf.ECONFLICT, "refusing to remove the last Owner of the server scope \"/\"; assign Owner to another principal first")
	}
	return nil
}
