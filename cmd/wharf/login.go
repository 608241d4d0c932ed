package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/wharfml/wharf/atomicfile"

	"github.com/spf13/cobra"

	wharfhttp "github.com/wharfml/wharf/http"
)

// subscription is the account entry `az login` and `az account show` print;
// Wharf's tenant plays the subscription's part.
type subscription struct {
	CloudName string            `json:"cloudName"`
	ID        string            `json:"id"`
	IsDefault bool              `json:"isDefault"`
	Name      string            `json:"name"`
	State     string            `json:"state"`
	TenantID  string            `json:"tenantId"`
	User      map[string]string `json:"user"`
}

func (a *app) loginCommand() *cobra.Command {
	var sp bool
	var user, password, federatedToken, tenant, url string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in as a person (device code, or --username) or as a service principal (--service-principal)",
		Long: `Log in as a person or as a service principal, as az login does.

Without --service-principal: with no --username, prints a code to enter at
the server's /device page in a signed-in browser (az login --use-device-code);
with --username, asks for the password (no echo), or takes --password.
The login is kept and its token refreshed until the session ends.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !sp {
				if federatedToken != "" {
					return usagef("--federated-token needs --service-principal")
				}
				if password != "" && user == "" {
					return usagef("--password needs --username")
				}
				return a.loginUser(cmd.Context(), a.serverURL(&credentials{ServerURL: url}), tenant, user, password)
			}
			if password != "" && federatedToken != "" {
				return usagef("give --password/-p or --federated-token, not both")
			}
			creds := &credentials{ClientID: user, ClientSecret: password, TenantID: tenant, ServerURL: url, Federated: password == ""}
			if user == "" {
				return usagef("--username/-u is required")
			}
			if password == "" && federatedToken == "" {
				if _, ok, _ := federatedSource(); !ok {
					return usagef("--password/-p or --federated-token is required (or WHARF_FEDERATED_TOKEN_FILE, or a CI job's OIDC token)")
				}
			}
			base := a.serverURL(creds)
			creds.ServerURL = base
			ts := &tokenSource{cfg: a.cfg, creds: creds, url: base}
			var tok string
			var exp time.Time
			var err error
			if federatedToken != "" {
				tok, exp, err = wharfhttp.RequestTokenWithAssertion(cmd.Context(), base, tenant, user, federatedToken)
			} else {
				tok, exp, err = ts.request(cmd.Context())
			}
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(creds, "", "  ")
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(filepath.Join(a.cfg.dir, "credentials.json"), b, 0o600); err != nil {
				return err
			}
			_ = os.Remove(ts.path())
			if creds.Federated {
				// No secret to get the next token with: keep this one,
				// for the commands that follow while it lasts.
				if err := ts.save(&cachedToken{AccessToken: tok, ExpiresOn: exp, ClientID: user, ServerURL: base}); err != nil {
					return err
				}
			}
			a.cfg.URL = base
			if err := a.cfg.save(); err != nil {
				return err
			}
			return a.print([]subscription{{
				CloudName: "Wharf", ID: tenant, IsDefault: true, Name: "wharf", State: "Enabled", TenantID: tenant,
				User: map[string]string{"name": user, "type": "servicePrincipal"},
			}})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&sp, "service-principal", false, "log in as a service principal")
	f.StringVarP(&user, "username", "u", "", "application (client) id; without --service-principal, the user principal name")
	f.StringVarP(&password, "password", "p", "", "client secret; without --service-principal, the user's password (prompted for when omitted)")
	f.Bool("use-device-code", false, "accepted for az compatibility: a person's login without --username uses a device code")
	f.StringVar(&federatedToken, "federated-token", "", "an OIDC token from the CI system (GitHub Actions, Azure Pipelines, GitLab) that a federated credential of the principal trusts, in place of a secret")
	f.StringVarP(&tenant, "tenant", "t", "", "tenant id")
	f.StringVar(&url, "url", "", "Wharf server URL (default $WHARF_URL or "+defaultURL+")")
	f.Bool("allow-no-subscriptions", false, "accepted for az compatibility")
	return cmd
}

func (a *app) logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the saved credentials and token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, f := range []string{"credentials.json", "token.json"} {
				if err := os.Remove(filepath.Join(a.cfg.dir, f)); err != nil && !os.IsNotExist(err) {
					return err
				}
			}
			return nil
		},
	}
}

func (a *app) accountCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "account", Short: "Show the signed-in account and get access tokens"}
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the signed-in principal and its tenant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := a.client()
			if err != nil {
				return err
			}
			var me map[string]any
			if err := c.Do(cmd.Context(), "GET", "/api/v1/me", nil, &me); err != nil {
				return err
			}
			return a.print(me)
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List accounts (the one Wharf tenant)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			creds, _, err := resolveCredentials(a.cfg)
			if err != nil {
				return err
			}
			return a.print([]subscription{{
				CloudName: "Wharf", ID: creds.TenantID, IsDefault: true, Name: "wharf", State: "Enabled", TenantID: creds.TenantID,
				User: map[string]string{"name": creds.ClientID, "type": principalKind(creds)},
			}})
		},
	}
	set := &cobra.Command{
		Use:   "set",
		Short: "Accepted for az compatibility (Wharf has one tenant)",
		RunE:  func(cmd *cobra.Command, args []string) error { return nil },
	}
	set.Flags().StringP("subscription", "s", "", "ignored")
	getToken := &cobra.Command{
		Use:   "get-access-token",
		Short: "Print an access token for the Wharf API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, ts, err := a.client()
			if err != nil {
				return err
			}
			tok, err := ts.token(cmd.Context())
			if err != nil {
				return err
			}
			exp := ts.tok.ExpiresOn
			return a.print(accessToken{
				AccessToken: tok, ExpiresOn: exp.Local().Format("2006-01-02 15:04:05.000000"), ExpiresOnUnix: exp.Unix(),
				Subscription: ts.creds.TenantID, Tenant: ts.creds.TenantID, TokenType: "Bearer",
			})
		},
	}
	getToken.Flags().String("resource", "", "accepted for az compatibility")
	getToken.Flags().String("scope", "", "accepted for az compatibility")
	cmd.AddCommand(show, list, set, getToken)
	return cmd
}

// accessToken is the shape `az account get-access-token` prints.
type accessToken struct {
	AccessToken   string `json:"accessToken"`
	ExpiresOn     string `json:"expiresOn"`
	ExpiresOnUnix int64  `json:"expires_on"`
	Subscription  string `json:"subscription"`
	Tenant        string `json:"tenant"`
	TokenType     string `json:"tokenType"`
}

// principalKind is how az names the kind of a login: "user" or
// "servicePrincipal".
func principalKind(c *credentials) string {
	if c.User {
		return "user"
	}
	return "servicePrincipal"
}
