package http

import (
	"crypto/rand"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
)

// DeviceCodeGrantType is RFC 8628's grant type for polling a device code.
const DeviceCodeGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// RefreshAudience is the audience of users' refresh tokens: they buy new
// access tokens at the token endpoint and open nothing else.
const RefreshAudience = "api://wharf/refresh"

// Device-code grant parameters (RFC 8628): how long a code lives, how often
// the CLI may poll, and by how much slow_down stretches that.
const (
	DeviceCodeLifetime = 15 * time.Minute
	DeviceCodeInterval = 5 * time.Second
	deviceSlowDownStep = 5 * time.Second
	maxPendingDevices  = 10000
)

// RefreshTokenTTL is how long a user's refresh token lasts; each use
// returns a new one, and a password reset revokes them all.
const RefreshTokenTTL = 14 * 24 * time.Hour

// userCodeAlphabet has no vowels (no words spelled by chance) and no
// look-alike digits; 20^8 codes.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// deviceGrant is one pending device authorization.
type deviceGrant struct {
	deviceHash string
	userCode   string
	expires    time.Time
	interval   time.Duration
	lastPoll   time.Time
	userID     string
	denied     bool
}

// deviceCodes holds pending device authorizations in memory: they live
// minutes, and a restart only makes the CLI start its sign-in again. Only a
// hash of each device code is kept.
type deviceCodes struct {
	now func() time.Time

	mu       sync.Mutex
	byDevice map[string]*deviceGrant
	byUser   map[string]*deviceGrant
}

func (d *deviceCodes) prune(now time.Time) {
	for k, g := range d.byDevice {
		if !now.Before(g.expires) {
			delete(d.byDevice, k)
			delete(d.byUser, g.userCode)
		}
	}
}

// create starts a device authorization and returns its device code and
// user code.
func (d *deviceCodes) create() (deviceCode, userCode string, err error) {
	deviceCode, err = randomToken()
	if err != nil {
		return "", "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if d.byDevice == nil {
		d.byDevice, d.byUser = map[string]*deviceGrant{}, map[string]*deviceGrant{}
	}
	if len(d.byDevice) >= maxPendingDevices {
		d.prune(now)
		if len(d.byDevice) >= maxPendingDevices {
			return "", "", wharf.Errorf(wharf.EUNAVAILABLE, "too many device sign-ins are pending; try again in a few minutes")
		}
	}
	for {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", "", err
		}
		code := make([]byte, 8)
		for i, c := range b {
			// 256 is not a multiple of 20: the slight bias costs a
			// fraction of a bit of the code's 34.
			code[i] = userCodeAlphabet[int(c)%len(userCodeAlphabet)]
		}
		userCode = string(code)
		if _, taken := d.byUser[userCode]; !taken {
			break
		}
	}
	g := &deviceGrant{deviceHash: hashSessionID(deviceCode), userCode: userCode, expires: now.Add(DeviceCodeLifetime), interval: DeviceCodeInterval}
	d.byDevice[g.deviceHash] = g
	d.byUser[userCode] = g
	return deviceCode, userCode[:4] + "-" + userCode[4:], nil
}

// normalizeUserCode accepts a code as typed: any case, with or without
// its dash or spaces.
func normalizeUserCode(c string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(c))
}

// decide approves (or denies) the pending authorization with that user
// code for user. A code decided once cannot be decided again.
func (d *deviceCodes) decide(userCode, userID string, approve bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.byUser[normalizeUserCode(userCode)]
	if g == nil || !d.now().Before(g.expires) || g.userID != "" || g.denied {
		return wharf.Errorf(wharf.ENOTFOUND, "device code not found")
	}
	if approve {
		g.userID = userID
	} else {
		g.denied = true
	}
	return nil
}

// poll answers one poll of a device code: the approving user's id, or an
// RFC 8628 error code. An approved code is consumed by the poll that
// returns it.
func (d *deviceCodes) poll(deviceCode string) (userID, errCode string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.byDevice[hashSessionID(deviceCode)]
	if g == nil {
		return "", "invalid_grant"
	}
	now := d.now()
	drop := func() {
		delete(d.byDevice, g.deviceHash)
		delete(d.byUser, g.userCode)
	}
	if !now.Before(g.expires) {
		drop()
		return "", "expired_token"
	}
	if !g.lastPoll.IsZero() && now.Sub(g.lastPoll) < g.interval {
		g.interval += deviceSlowDownStep
		g.lastPoll = now
		return "", "slow_down"
	}
	g.lastPoll = now
	switch {
	case g.denied:
		drop()
		return "", "access_denied"
	case g.userID == "":
		return "", "authorization_pending"
	}
	drop()
	return g.userID, ""
}

// DeviceCodeResponse is RFC 8628's device authorization response, with
// Entra ID's message.
type DeviceCodeResponse struct {
	DeviceCode      string `json:"device_code"`
	UserCode        string `json:"user_code"`
	VerificationURI string `json:"verification_uri"`
	// VerificationURIComplete carries the code too, for a link or a QR
	// code (RFC 8628 §3.3.1).
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
	Message                 string `json:"message"`
}

func (s *Server) handleDeviceCode(w http.ResponseWriter, r *http.Request) {
	if t := r.PathValue("tenant"); t != "" && t != s.TenantID && t != "organizations" && t != "common" {
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_request", "WHARF90002: tenant not found on this server")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_request", "the request body must be application/x-www-form-urlencoded")
		return
	}
	deviceCode, userCode, err := s.devices.create()
	if err != nil {
		writeOAuthError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", wharf.ErrorMessage(err))
		return
	}
	uri := s.URL + "/device"
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, DeviceCodeResponse{
		DeviceCode: deviceCode, UserCode: userCode, VerificationURI: uri, VerificationURIComplete: uri + "?user_code=" + userCode,
		ExpiresIn: int(DeviceCodeLifetime.Seconds()), Interval: int(DeviceCodeInterval.Seconds()),
		Message: "To sign in, use a web browser to open the page " + uri + " and enter the code " + userCode + " to authenticate.",
	})
}

// handleDeviceCodeToken is the token endpoint's device_code grant.
func (s *Server) handleDeviceCodeToken(w http.ResponseWriter, r *http.Request) {
	code := r.PostForm.Get("device_code")
	if code == "" {
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_request", "device_code is required")
		return
	}
	userID, errCode := s.devices.poll(code)
	switch errCode {
	case "":
	case "authorization_pending":
		writeOAuthError(w, r, http.StatusBadRequest, errCode, "the user has not yet approved the code")
		return
	case "slow_down":
		writeOAuthError(w, r, http.StatusBadRequest, errCode, "polling too fast: wait longer between requests")
		return
	case "expired_token":
		writeOAuthError(w, r, http.StatusBadRequest, errCode, "the device code has expired; start the sign-in again")
		return
	case "access_denied":
		writeOAuthError(w, r, http.StatusBadRequest, errCode, "the user denied the sign-in")
		return
	default:
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_grant", "the device code is not valid, or was already used")
		return
	}
	u, err := s.Store.FindUser(r.Context(), userID)
	if err != nil {
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_grant", "the user who approved the code no longer exists")
		return
	}
	s.auditSignIn(r, "deviceCode/token", "", u, http.StatusOK)
	s.writeUserTokens(w, r, u)
}

// handlePasswordToken is the resource-owner password grant, the CLI's
// fallback for people: limited and audited as the sign-in page is.
func (s *Server) handlePasswordToken(w http.ResponseWriter, r *http.Request) {
	const action = "signin/password"
	upn := strings.ToLower(strings.TrimSpace(r.PostForm.Get("username")))
	password := r.PostForm.Get("password")
	if upn == "" || password == "" {
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_request", "username and password are required")
		return
	}
	if retry := s.signInRetryAfter(r, upn); retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
		s.auditSignIn(r, action, upn, nil, http.StatusTooManyRequests)
		writeOAuthError(w, r, http.StatusTooManyRequests, "temporarily_unavailable", "too many failed sign-in attempts; try again later")
		return
	}
	u, err := s.checkUserPassword(r.Context(), upn, password)
	if wharf.ErrorCode(err) == wharf.EUNAUTHENTICATED {
		s.signInFailed(r, upn)
		s.auditSignIn(r, action, upn, nil, http.StatusBadRequest)
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_grant", "WHARF50126: incorrect user name or password")
		return
	} else if err != nil {
		s.Logger.Error("password check failed", "err", err)
		writeOAuthError(w, r, http.StatusInternalServerError, "server_error", "the password could not be checked")
		return
	}
	s.auditSignIn(r, action, upn, u, http.StatusOK)
	s.writeUserTokens(w, r, u)
}

// handleRefreshToken trades a user's refresh token for new tokens.
func (s *Server) handleRefreshToken(w http.ResponseWriter, r *http.Request) {
	claims, err := s.Tokens.Verify(r.PostForm.Get("refresh_token"), RefreshAudience)
	if err != nil || claims.IdentityType != auth.IdentityTypeUser {
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_grant", "the refresh token is invalid or expired; sign in again")
		return
	}
	g, err := s.userFromToken(r.Context(), claims)
	if err != nil {
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_grant", wharf.ErrorMessage(err))
		return
	}
	s.writeUserTokens(w, r, g.User)
}

// writeUserTokens answers a user grant with an access and a refresh token.
// A user who must change the password gets none until it is changed.
func (s *Server) writeUserTokens(w http.ResponseWriter, r *http.Request, u *wharf.User) {
	if u.ForceChangePassword {
		writeOAuthError(w, r, http.StatusBadRequest, "invalid_grant",
			"WHARF50055: the password must be changed first: sign in at "+s.URL+"/signin")
		return
	}
	tok, exp, err := s.Tokens.IssueUser(s.TenantID, u.ObjectID, u.UserPrincipalName, APIAudience, 0)
	if err != nil {
		s.Logger.Error("token signing failed", "err", err)
		writeOAuthError(w, r, http.StatusInternalServerError, "server_error", "the token could not be issued")
		return
	}
	refresh, _, err := s.Tokens.IssueUser(s.TenantID, u.ObjectID, u.UserPrincipalName, RefreshAudience, RefreshTokenTTL)
	if err != nil {
		s.Logger.Error("token signing failed", "err", err)
		writeOAuthError(w, r, http.StatusInternalServerError, "server_error", "the token could not be issued")
		return
	}
	secs := int(exp.Sub(s.now()).Seconds())
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenResponse{TokenType: "Bearer", ExpiresIn: secs, ExtExpiresIn: secs, AccessToken: tok, RefreshToken: refresh})
}
