package http

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
	"github.com/wharfml/wharf/federation"
)

// tokenResponse is the OAuth2 client-credentials success body, as Entra ID
// returns it.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	// RefreshToken is set for users' grants only.
	RefreshToken string `json:"refresh_token,omitempty"`
}

// oauthError is the RFC 6749 error body.
type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	// ErrorCodes holds the AADSTS number of a refused federated
	// assertion, as Entra ID reports it.
	ErrorCodes []int `json:"error_codes,omitempty"`
}

func writeOAuthError(w http.ResponseWriter, r *http.Request, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, oauthError{
		Error: code, ErrorDescription: desc,
		Timestamp: time.Now().UTC().Format("2006-01-02 15:04:05Z"), TraceID: requestID(r.Context()),
	})
}

// checkAssertion verifies a federated assertion against the federated
// credentials of the principal whose app id is clientID. An unknown client
// is refused like an assertion that matches nothing, so the answer does
// not tell which client ids exist.
func (s *Server) checkAssertion(r *http.Request, clientID, assertion string) (*wharf.ServicePrincipal, error) {
	ctx := r.Context()
	var creds []*wharf.FederatedCredential
	sp, err := s.Store.FindServicePrincipal(ctx, clientID)
	switch {
	case err == nil && sp.AppID == clientID:
		if creds, err = s.Store.ListFederatedCredentials(ctx, sp.AppID); err != nil {
			return nil, err
		}
	case err != nil && !wharf.IsNotFound(err):
		return nil, err
	}
	a, err := s.Federation.Verify(ctx, assertion, creds)
	if err != nil {
		return nil, err
	}
	s.Logger.Info("federated credential exchanged", "client_id", sp.AppID, "credential", a.Credential.Name,
		"iss", a.Issuer, "sub", a.Subject, "jti", a.ID, "ip", clientIP(r))
	return sp, nil
}

// writeAssertionError answers a refused assertion with Entra ID's code and
// message, which say what kind of check failed but not which claim; the
// log says more, never the assertion itself.
func (s *Server) writeAssertionError(w http.ResponseWriter, r *http.Request, clientID string, err error) {
	var fe *federation.Error
	if !errors.As(err, &fe) {
		s.Logger.Error("federated credential check failed", "client_id", clientID, "err", err)
		writeOAuthError(w, r, http.StatusInternalServerError, "server_error", "the assertion could not be checked")
		return
	}
	s.Logger.Warn("federated assertion refused", "client_id", clientID, "code", fe.Code, "reason", fe.Reason, "ip", clientIP(r))
	w.Header().Set("Cache-Control", "no-store")
	status := http.StatusUnauthorized
	if fe.Code == federation.CodeIssuerUnreachable {
		status = http.StatusBadGateway
	}
	writeJSON(w, status, oauthError{
		Error: "invalid_client", ErrorDescription: fe.Error(), ErrorCodes: []int{fe.Code},
		Timestamp: time.Now().UTC().Format("2006-01-02 15:04:05Z"), TraceID: requestID(r.Context()),
	})
}

// verifySlots bounds concurrent argon2id verifications: each costs ~20 MiB
// and tens of milliseconds, and the endpoint is unauthenticated.
var verifySlots = make(chan struct{}, 4)

// handleToken implements the client-credentials grant for service
// principals, and for users the device-code, password and refresh-token
// grants. Every failure to
// authenticate gets the same answer, so callers cannot probe which client ids
// exist.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if t := r.PathValue("tenant"); t != "" && t != s.TenantID && t != "organizations" && t != "common" {
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_request", "WHARF90002: tenant not found on this server")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_request", "the request body must be application/x-www-form-urlencoded")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
	case DeviceCodeGrantType:
		s.handleDeviceCodeToken(w, r)
		return
	case "password":
		s.handlePasswordToken(w, r)
		return
	case "refresh_token":
		s.handleRefreshToken(w, r)
		return
	default:
		writeOAuthError(w, r, http.StatusBadRequest, "unsupported_grant_type",
			"grant_type must be client_credentials, password, refresh_token or "+DeviceCodeGrantType)
		return
	}
	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if id, sec, ok := r.BasicAuth(); ok {
		clientID, secret = id, sec
	}
	assertionType, assertion := r.PostForm.Get("client_assertion_type"), r.PostForm.Get("client_assertion")
	federated := assertionType != "" || assertion != ""
	switch {
	case federated && secret != "":
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_request", "send either client_secret or client_assertion, not both")
		return
	case federated && assertionType != federation.AssertionType:
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_request", "client_assertion_type must be "+federation.AssertionType)
		return
	case federated && (clientID == "" || assertion == ""):
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_request", "client_id and client_assertion are required")
		return
	case !federated && (clientID == "" || secret == ""):
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_request", "client_id and client_secret (or client_assertion) are required")
		return
	}
	audience, err := s.scopeAudience(r.PostForm.Get("scope"))
	if err != nil {
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_scope", err.Error())
		return
	}
	var sp *wharf.ServicePrincipal
	if federated {
		if sp, err = s.checkAssertion(r, clientID, assertion); err != nil {
			s.writeAssertionError(w, r, clientID, err)
			return
		}
	} else if sp, err = s.checkClientSecret(r.Context(), clientID, secret); err != nil {
		s.Logger.Warn("client authentication failed", "client_id", clientID, "ip", clientIP(r))
		writeOAuthError(w, r, http.StatusUnauthorized, "invalid_client", "WHARF7000215: invalid client secret provided, or the client does not exist")
		return
	}
	tok, exp, err := s.Tokens.Issue(sp.AppID, s.TenantID, sp.AppID, audience)
	if err != nil {
		s.Logger.Error("token signing failed", "err", err)
		writeOAuthError(w, r, http.StatusInternalServerError, "server_error", "the token could not be issued")
		return
	}
	secs := int(time.Until(exp).Seconds())
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenResponse{TokenType: "Bearer", ExpiresIn: secs, ExtExpiresIn: secs, AccessToken: tok})
}

// MLResourceID is the resource the Azure ML SDK derives from the portal
// address of its cloud's metadata (which Wharf's metadata gives as the
// server's URL) and asks a pipeline's submitter for a token of, with the
// scope <id>/.default: https://ml.azure. followed by the portal's dotted
// labels from the third on, its slashes removed. The SDK refuses the
// token unless its audience is exactly this; the same derivation, of
// https://portal.azure.com, gives Azure's https://ml.azure.com.
func MLResourceID(portal string) string {
	labels := strings.Split(strings.TrimRight(portal, "/"), ".")
	suffix := ""
	if len(labels) > 2 {
		suffix = strings.Join(labels[2:], ".")
	}
	return "https://ml.azure." + strings.ReplaceAll(suffix, "/", "")
}

// MLAudience is the audience of the tokens issued for MLResourceID: a
// token for Wharf's API, as APIAudience's is, named as the SDK expects.
func (s *Server) MLAudience() string { return MLResourceID(s.URL) }

// scopeAudience is the audience of a token asked for with scope: the
// Azure ML SDK's ML resource gets MLAudience; any other resource followed
// by /.default, and no scope, Wharf's own API audience. Azure ML's
// resource of another cloud is no resource here.
func (s *Server) scopeAudience(scope string) (string, error) {
	if scope == "" {
		return APIAudience, nil
	}
	resource, ok := strings.CutSuffix(scope, "/.default")
	if !ok {
		return "", errors.New("scope must name a resource followed by /.default, e.g. api://wharf/.default")
	}
	ml := s.MLAudience()
	switch {
	case resource == ml:
		return ml, nil
	case strings.HasPrefix(resource, "https://ml.azure."):
		return "", fmt.Errorf("WHARF500011: the resource %s is not served here; this server's Azure ML resource is %s", resource, ml)
	}
	return APIAudience, nil
}

// checkClientSecret finds the principal whose app id is clientID and a live
// credential matching the secret. Only credentials whose hint matches are
// hashed, so a principal with several secrets costs one verification; and
// one verification is done whatever happens, against a hash nothing
// matches when there is no candidate, so that the time an answer takes
// does not tell which client ids exist.
func (s *Server) checkClientSecret(ctx context.Context, clientID, secret string) (*wharf.ServicePrincipal, error) {
	refused := wharf.Errorf(wharf.EUNAUTHENTICATED, "invalid client credentials")
	var candidates []*wharf.PasswordCredential
	sp, err := s.Store.FindServicePrincipal(ctx, clientID)
	switch {
	case err == nil && sp.AppID == clientID:
		// The store also finds principals by display name and object id;
		// OAuth names a client by its app id alone.
		creds, err := s.Store.ListCredentials(ctx, sp.AppID)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		for _, c := range creds {
			if now.Before(c.StartDate.Add(-time.Minute)) || now.After(c.EndDate) {
				continue
			}
			if len(secret) < 3 || c.Hint != secret[:3] {
				continue
			}
			candidates = append(candidates, c)
		}
	case err != nil && !wharf.IsNotFound(err):
		return nil, err
	}
	if len(candidates) == 0 {
		if _, err := verifyClientSecret(ctx, decoySecretHash(), secret); err != nil {
			return nil, err
		}
		return nil, refused
	}
	for _, c := range candidates {
		ok, err := verifyClientSecret(ctx, c.SecretHash, secret)
		if err != nil {
			return nil, err
		}
		if ok {
			return sp, nil
		}
	}
	return nil, refused
}

// verifyClientSecret runs one argon2id verification in a verifySlots slot.
// A malformed stored hash is a mismatch, not an error to show the client.
func verifyClientSecret(ctx context.Context, hash, secret string) (bool, error) {
	select {
	case verifySlots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-verifySlots }()
	ok, err := verifySecret(hash, secret)
	return err == nil && ok, nil
}

// verifySecret is auth.VerifySecret; tests count its calls through it.
var verifySecret = auth.VerifySecret

// decoySecretHash is the hash verified when a request names no client or
// no live credential: made with the parameters of real hashes, so that it
// costs what a real verification costs, from a random secret nobody knows.
var decoySecretHash = sync.OnceValue(func() string {
	secret, err := auth.GenerateSecret()
	if err != nil {
		panic(err)
	}
	hash, err := auth.HashSecret(secret)
	if err != nil {
		panic(err)
	}
	return hash
})

// handleOpenIDConfig serves the OpenID configuration at the server's root
// and, as Entra ID does, below a tenant's /v2.0: MSAL, given an authority
// and a tenant, reads it there.
func (s *Server) handleOpenIDConfig(w http.ResponseWriter, r *http.Request) {
	base := s.URL
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": s.Tokens.Issuer,
		// Wharf grants no authorization codes, but MSAL (the Azure
		// SDKs' token client) refuses a document without this key.
		"authorization_endpoint":                base + "/" + s.TenantID + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/" + s.TenantID + "/oauth2/v2.0/token",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"grant_types_supported":                 []string{"client_credentials", "password", "refresh_token", DeviceCodeGrantType},
		"device_authorization_endpoint":         base + "/" + s.TenantID + "/oauth2/v2.0/devicecode",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic", "private_key_jwt"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"tenant_id":                             s.TenantID,
	})
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	b, err := s.Tokens.Keys.JWKS()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=3600")
	_, _ = w.Write(b)
}
