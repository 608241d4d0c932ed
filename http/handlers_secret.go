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

func (s *Server) handleListSecrets(w http.ResponseWriter, r *http.Request) {
	if err := s.ensureWorkspace(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.Store.ListSecrets(r.Context(), scopeOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]secretJSON, 0, len(list))
	for _, sec := range list {
		out = append(out, toSecretJSON(sec, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleListSecretVersions(w http.ResponseWriter, r *http.Request) {
	name, err := secretName(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.Store.ListSecretVersions(r.Context(), scopeOf(r), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]secretJSON, 0, len(list))
	for _, sec := range list {
		out = append(out, toSecretJSON(sec, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetSecret(w http.ResponseWriter, r *http.Request) {
	name, err := secretName(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sec, err := s.Store.GetSecret(r.Context(), scopeOf(r), name, r.URL.Query().Get("version"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, toSecretJSON(sec, true))
}

func (s *Server) handlePutSecret(w http.ResponseWriter, r *http.Request) {
	name, err := writableSecretName(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.ensureWorkspace(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	var req secretRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(req.Value) > maxSecretBytes {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "secret value exceeds %d bytes", maxSecretBytes).WithField("value"))
		return
	}
	sec, err := s.Store.SetSecret(r.Context(), scopeOf(r), name, []byte(req.Value), req.ContentType)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toSecretJSON(sec, false))
}

func (s *Server) handleDeleteSecret(w http.ResponseWriter, r *http.Request) {
	name, err := writableSecretName(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Store.DeleteSecret(r.Context(), scopeOf(r), name); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
