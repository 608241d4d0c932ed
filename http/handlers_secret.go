package http

import (
	"net/http"
	"regexp"
	"time"

	"github.com/wharfml/wharf"
)

// secretNameRE follows Key Vault's rule for secret names.
var secretNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,126}$`)

func secretName(r *http.Request) (string, error) {
	n := r.PathValue("name")
	if !secretNameRE.MatchString(n) {
		return "", wharf.Errorf(wharf.EINVALID, "secret name %q is not valid: 1-127 letters, digits and '-', starting with a letter", n).WithField("name")
	}
	return n, nil
}

// writableSecretName is secretName for writes and deletes, which may not
// touch the secrets the server keeps for itself.
func writableSecretName(r *http.Request) (string, error) {
	n, err := secretName(r)
	if err == nil && wharf.IsReservedSecretName(n) {
		err = wharf.Errorf(wharf.EINVALID,
			"secret name %q is reserved: names starting with %q hold online endpoint keys; use az ml online-endpoint regenerate-keys to change them",
			n, wharf.OnlineEndpointKeyPrefix).WithField("name")
	}
	return n, err
}

// alwaysAudited reports whether calls with the action are audited even
// though they change nothing: who read a secret's value, or tried to, is
// what an investigation of a leaked credential asks first.
func alwaysAudited(action string) bool {
	return action == wharf.ActionSecretValue
}

// maxSecretBytes is Key Vault's limit on a secret value.
const maxSecretBytes = 25 * 1024

type secretRequest struct {
	Value       string `json:"value"`
	ContentType string `json:"contentType"`
}

type secretJSON struct {
	Name        string    `json:"name"`
	Version     string    `json:"version"`
	Value       string    `json:"value,omitempty"`
	ContentType string    `json:"contentType"`
	Enabled     bool      `json:"enabled"`
	Created     time.Time `json:"created"`
}

func toSecretJSON(s *wharf.Secret, withValue bool) secretJSON {
	j := secretJSON{Name: s.Name, Version: s.Version, ContentType: s.ContentType, Enabled: s.Enabled, Created: s.CreatedAt}
	if withValue {
		j.Value = string(s.Value)
	}
	return j
}

// ensureWorkspace answers ENOTFOUND for routes under a missing workspace, so
// secrets can never be written into a scope nobody can see.
func (s *Server) ensureWorkspace(r *http.Request) error {
	_, err := s.Store.FindWorkspace(r.Context(), r.PathValue("workspace"))
	return err
}

func secretsJSON(list []*wharf.Secret) []secretJSON {
	out := make([]secretJSON, 0, len(list))
	for _, sec := range list {
		out = append(out, toSecretJSON(sec, false))
	}
	return out
}

func (s *Server) listSecrets(r *http.Request, _ *noBody) (int, []secretJSON, error) {
	if err := s.ensureWorkspace(r); err != nil {
		return 0, nil, err
	}
	list, err := s.Store.ListSecrets(r.Context(), scopeOf(r))
	return http.StatusOK, secretsJSON(list), err
}

func (s *Server) listSecretVersions(r *http.Request, _ *noBody) (int, []secretJSON, error) {
	name, err := secretName(r)
	if err != nil {
		return 0, nil, err
	}
	list, err := s.Store.ListSecretVersions(r.Context(), scopeOf(r), name)
	return http.StatusOK, secretsJSON(list), err
}

// getSecret is served under noStore: a secret's value must not linger in
// a cache.
func (s *Server) getSecret(r *http.Request, _ *noBody) (int, secretJSON, error) {
	name, err := secretName(r)
	if err != nil {
		return 0, secretJSON{}, err
	}
	sec, err := s.Store.GetSecret(r.Context(), scopeOf(r), name, r.URL.Query().Get("version"))
	if err != nil {
		return 0, secretJSON{}, err
	}
	return http.StatusOK, toSecretJSON(sec, true), nil
}

// noStore marks h's responses uncacheable.
func noStore(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h(w, r)
	}
}

func (s *Server) putSecret(r *http.Request, req *secretRequest) (int, secretJSON, error) {
	name, err := writableSecretName(r)
	if err != nil {
		return 0, secretJSON{}, err
	}
	if err := s.ensureWorkspace(r); err != nil {
		return 0, secretJSON{}, err
	}
	if len(req.Value) > maxSecretBytes {
		return 0, secretJSON{}, wharf.Errorf(wharf.EINVALID, "secret value exceeds %d bytes", maxSecretBytes).WithField("value")
	}
	sec, err := s.Store.SetSecret(r.Context(), scopeOf(r), name, []byte(req.Value), req.ContentType)
	if err != nil {
		return 0, secretJSON{}, err
	}
	return http.StatusOK, toSecretJSON(sec, false), nil
}

func (s *Server) deleteSecret(r *http.Request, _ *noBody) (int, noBody, error) {
	name, err := writableSecretName(r)
	if err != nil {
		return 0, noBody{}, err
	}
	return http.StatusNoContent, noBody{}, s.Store.DeleteSecret(r.Context(), scopeOf(r), name)
}
