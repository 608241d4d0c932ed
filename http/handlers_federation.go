package http

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/wharfml/wharf"
)

// federatedCredentialRequest is the --parameters JSON of
// `az ad app federated-credential create|update`.
type federatedCredentialRequest struct {
	Name        string   `json:"name"`
	Issuer      string   `json:"issuer"`
	Subject     string   `json:"subject"`
	Audiences   []string `json:"audiences"`
	Description string   `json:"description"`
}

// validFederatedCredential checks fc and refuses this server's own issuer:
// a principal must not be reachable with another principal's Wharf token.
func (s *Server) validFederatedCredential(fc *wharf.FederatedCredential) error {
	if err := fc.Validate(); err != nil {
		return err
	}
	if s.Tokens != nil && fc.Issuer == s.Tokens.Issuer {
		return wharf.Errorf(wharf.EINVALID, "issuer %q is this server's own; tokens it issues cannot be federated", fc.Issuer).WithField("issuer")
	}
	return nil
}

func (s *Server) createFederatedCredential(r *http.Request, req *federatedCredentialRequest) (int, *wharf.FederatedCredential, error) {
	sp, err := s.Store.FindServicePrincipal(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	fc := &wharf.FederatedCredential{ID: uuid.NewString(), PrincipalID: sp.AppID, Name: req.Name, Issuer: req.Issuer,
		Subject: req.Subject, Audiences: req.Audiences, Description: req.Description}
	if err := s.validFederatedCredential(fc); err != nil {
		return 0, nil, err
	}
	if err := s.Store.CreateFederatedCredential(r.Context(), fc); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, fc, nil
}

func (s *Server) listFederatedCredentials(r *http.Request, _ *noBody) (int, []*wharf.FederatedCredential, error) {
	sp, err := s.Store.FindServicePrincipal(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	list, err := s.Store.ListFederatedCredentials(r.Context(), sp.AppID)
	return http.StatusOK, list, err
}

func (s *Server) getFederatedCredential(r *http.Request, _ *noBody) (int, *wharf.FederatedCredential, error) {
	sp, err := s.Store.FindServicePrincipal(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	fc, err := s.Store.FindFederatedCredential(r.Context(), sp.AppID, r.PathValue("fic"))
	return http.StatusOK, fc, err
}

// updateFederatedCredential replaces the credential's issuer, subject,
// audiences and description. The name may be repeated but not changed.
func (s *Server) updateFederatedCredential(r *http.Request, req *federatedCredentialRequest) (int, *wharf.FederatedCredential, error) {
	sp, err := s.Store.FindServicePrincipal(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	fc, err := s.Store.FindFederatedCredential(r.Context(), sp.AppID, r.PathValue("fic"))
	if err != nil {
		return 0, nil, err
	}
	if req.Name != "" && req.Name != fc.Name {
		return 0, nil, wharf.Errorf(wharf.EINVALID, "the name of federated credential %q cannot be changed (to %q); create a new one and delete this one", fc.Name, req.Name).WithField("name")
	}
	fc.Issuer, fc.Subject, fc.Audiences, fc.Description = req.Issuer, req.Subject, req.Audiences, req.Description
	if err := s.validFederatedCredential(fc); err != nil {
		return 0, nil, err
	}
	if err := s.Store.UpdateFederatedCredential(r.Context(), fc); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, fc, nil
}

func (s *Server) deleteFederatedCredential(r *http.Request, _ *noBody) (int, noBody, error) {
	sp, err := s.Store.FindServicePrincipal(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, noBody{}, err
	}
	return http.StatusNoContent, noBody{}, s.Store.DeleteFederatedCredential(r.Context(), sp.AppID, r.PathValue("fic"))
}
