package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/atomicfile"
	wharfhttp "github.com/wharfml/wharf/http"
)

// deviceWait waits between polls of a device code; tests replace it with
// one that moves the server's clock.
var deviceWait = func(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// readPassword prompts for a password on the terminal without echo; from a
// pipe it reads one line.
func (a *app) readPassword(prompt string) (string, error) {
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(a.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		return string(b), err
	}
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usagef("no password given: type it at the prompt, pipe it on stdin, or pass --password")
	}
	_ = err // a last line without its newline is still the password
	return line, nil
}

// loginUser signs a person in: with the password grant when username is
// given, else with a device code approved in the browser (az login
// --use-device-code). It stores the refresh token as the login's
// credential and the access token as the cached token.
func (a *app) loginUser(ctx context.Context, base, tenant, username, password string) error {
	var toks *wharfhttp.UserTokens
	var err error
	if username != "" {
		if password == "" {
			if password, err = a.readPassword("Password: "); err != nil {
				return err
			}
		}
		toks, err = wharfhttp.RequestUserTokenWithPassword(ctx, base, tenant, strings.ToLower(username), password)
	} else {
		var dc *wharfhttp.DeviceCodeResponse
		if dc, err = wharfhttp.StartDeviceCode(ctx, base, tenant); err != nil {
			return err
		}
		fmt.Fprintln(a.stderr, dc.Message)
		toks, err = wharfhttp.PollDeviceCode(ctx, base, tenant, dc, deviceWait)
	}
	if err != nil {
		return err
	}
	c := wharfhttp.NewClient(base, func(context.Context) (string, error) { return toks.AccessToken, nil })
	var me struct {
		TenantID string            `json:"tenantId"`
		User     map[string]string `json:"user"`
	}
	if err := c.Do(ctx, "GET", "/api/v1/me", nil, &me); err != nil {
		return err
	}
	name := me.User["name"]
	creds := &credentials{ClientID: name, TenantID: me.TenantID, ServerURL: base, User: true, RefreshToken: toks.RefreshToken}
	if err := saveCredentials(a.cfg, creds); err != nil {
		return err
	}
	ts := &tokenSource{cfg: a.cfg, creds: creds, url: base}
	if err := ts.save(&cachedToken{AccessToken: toks.AccessToken, ExpiresOn: toks.ExpiresOn, ClientID: name, ServerURL: base}); err != nil {
		return err
	}
	a.cfg.URL = base
	if err := a.cfg.save(); err != nil {
		return err
	}
	return a.print([]subscription{{
		CloudName: "Wharf", ID: me.TenantID, IsDefault: true, Name: "wharf", State: "Enabled", TenantID: me.TenantID,
		User: map[string]string{"name": name, "type": "user"},
	}})
}

func saveCredentials(cfg *cliConfig, c *credentials) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(cfg.dir, "credentials.json"), b, 0o600)
}

// refreshUser gets a user's next access token with the refresh token, and
// keeps the new refresh token the answer brings (each is used once).
func (t *tokenSource) refreshUser(ctx context.Context) (string, time.Time, error) {
	toks, err := wharfhttp.RefreshUserToken(ctx, t.url, t.creds.TenantID, t.creds.RefreshToken)
	if err != nil {
		return "", time.Time{}, wharf.Errorf(wharf.EUNAUTHENTICATED, "the sign-in of %s has ended (%s); run `wharf login` again", t.creds.ClientID, wharf.ErrorMessage(err))
	}
	t.creds.RefreshToken = toks.RefreshToken
	if err := saveCredentials(t.cfg, t.creds); err != nil {
		return "", time.Time{}, err
	}
	return toks.AccessToken, toks.ExpiresOn, nil
}
