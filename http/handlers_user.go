package http

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
)

// PasswordProfile is the password part of a user request, in Microsoft
// Graph's shape (`az ad user create` sends it so).
type PasswordProfile struct {
	Password                      string `json:"password"`
	ForceChangePasswordNextSignIn bool   `json:"forceChangePasswordNextSignIn"`
}

// CreateUserRequest is `az ad user create`.
type CreateUserRequest struct {
	DisplayName       string          `json:"displayName"`
	UserPrincipalName string          `json:"userPrincipalName"`
	PasswordProfile   PasswordProfile `json:"passwordProfile"`
}

// UpdateUserRequest is `az ad user update --password`: a password reset.
type UpdateUserRequest struct {
	PasswordProfile *PasswordProfile `json:"passwordProfile,omitempty"`
}

func (s *Server) registerUserRoutes() {
	s.route("GET /api/v1/users", wharf.ActionUserRead, jsonAPI(s, s.listUsers))
	s.route("POST /api/v1/users", wharf.ActionUserWrite, jsonAPI(s, s.createUser))
	s.route("GET /api/v1/users/{id}", wharf.ActionUserRead, jsonAPI(s, s.getUser))
	s.route("PATCH /api/v1/users/{id}", wharf.ActionUserWrite, jsonAPI(s, s.updateUser))
	s.route("DELETE /api/v1/users/{id}", wharf.ActionUserDelete, jsonAPI(s, s.deleteUser))
}

func (s *Server) listUsers(r *http.Request, _ *noBody) (int, []*wharf.User, error) {
	list, err := s.Store.ListUsers(r.Context())
	return http.StatusOK, list, err
}

// findUser looks a user up by object id or user principal name, in any case.
func (s *Server) findUser(ctx context.Context, id string) (*wharf.User, error) {
	if upn, err := wharf.NormalizeUserPrincipalName(id); err == nil {
		id = upn
	}
	return s.Store.FindUser(ctx, id)
}

func (s *Server) getUser(r *http.Request, _ *noBody) (int, *wharf.User, error) {
	u, err := s.findUser(r.Context(), r.PathValue("id"))
	return http.StatusOK, u, err
}

// hashPassword checks the policy and hashes with argon2id (auth.HashSecret).
func hashPassword(password, upn string) (string, error) {
	if err := wharf.ValidatePassword(password, upn); err != nil {
		return "", err
	}
	return auth.HashSecret(password)
}

func (s *Server) createUser(r *http.Request, req *CreateUserRequest) (int, *wharf.User, error) {
	upn, err := wharf.NormalizeUserPrincipalName(req.UserPrincipalName)
	if err != nil {
		return 0, nil, err
	}
	if req.DisplayName == "" {
		return 0, nil, wharf.Errorf(wharf.EINVALID, "displayName is required").WithField("displayName")
	}
	if len(req.DisplayName) > 256 {
		return 0, nil, wharf.Errorf(wharf.EINVALID, "displayName must be at most 256 characters").WithField("displayName")
	}
	hash, err := hashPassword(req.PasswordProfile.Password, upn)
	if err != nil {
		return 0, nil, err
	}
	u := &wharf.User{
		ObjectID: uuid.NewString(), UserPrincipalName: upn, DisplayName: req.DisplayName,
		PasswordHash: hash, ForceChangePassword: req.PasswordProfile.ForceChangePasswordNextSignIn,
	}
	if err := s.Store.CreateUser(r.Context(), u); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, u, nil
}

// updateUser resets the password, ending the user's sessions and revoking
// its tokens.
func (s *Server) updateUser(r *http.Request, req *UpdateUserRequest) (int, *wharf.User, error) {
	ctx := r.Context()
	u, err := s.findUser(ctx, r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if req.PasswordProfile == nil {
		return 0, nil, wharf.Errorf(wharf.EINVALID, "passwordProfile is required").WithField("passwordProfile")
	}
	hash, err := hashPassword(req.PasswordProfile.Password, u.UserPrincipalName)
	if err != nil {
		return 0, nil, err
	}
	if err := s.Store.SetUserPassword(ctx, u.ObjectID, hash, req.PasswordProfile.ForceChangePasswordNextSignIn); err != nil {
		return 0, nil, err
	}
	u, err = s.Store.FindUser(ctx, u.ObjectID)
	return http.StatusOK, u, err
}

func (s *Server) deleteUser(r *http.Request, _ *noBody) (int, noBody, error) {
	u, err := s.findUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, noBody{}, err
	}
	if err := s.guardLastOwner(r.Context(), u.ObjectID, ""); err != nil {
		return 0, noBody{}, err
	}
	return http.StatusNoContent, noBody{}, s.Store.DeleteUser(r.Context(), u.ObjectID)
}
