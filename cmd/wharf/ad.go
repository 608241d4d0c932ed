package main

import (
	"net/url"

	"github.com/spf13/cobra"

	wharfhttp "github.com/wharfml/wharf/http"
)

func (a *app) adCommand() *cobra.Command {
	ad := &cobra.Command{Use: "ad", Short: "Identities: service principals, their federated credentials, and users (az ad)"}
	sp := &cobra.Command{Use: "sp", Short: "Service principals"}
	ad.AddCommand(sp, a.appCommand(), a.userCommand())

	var name, role string
	var scopes []string
	var sdkAuth bool
	var years int
	create := &cobra.Command{
		Use:   "create-for-rbac",
		Short: "Create a service principal with a secret and, with --role and --scopes, role assignments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (role == "") != (len(scopes) == 0) {
				return usagef("usage error: to create role assignments, specify both --role and --scopes")
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			var resp wharfhttp.CredentialResponse
			body := map[string]any{"displayName": name, "role": role, "scopes": scopes, "years": years}
			if err := c.Do(cmd.Context(), "POST", "/api/v1/servicePrincipals", body, &resp); err != nil {
				return err
			}
			if sdkAuth {
				return a.print(wharfhttp.NewSDKAuth(&resp))
			}
			return a.print(map[string]string{"appId": resp.AppID, "displayName": resp.DisplayName, "password": resp.Password, "tenant": resp.Tenant})
		},
	}
	f := create.Flags()
	f.StringVarP(&name, "name", "n", "", "display name of the principal")
	f.StringVar(&role, "role", "", "role to assign (Owner, Contributor, Reader, Data Scientist, Compute Operator)")
	f.StringSliceVar(&scopes, "scopes", nil, "scopes of the role assignment: / or /workspaces/NAME (space or comma separated)")
	f.BoolVar(&sdkAuth, "sdk-auth", false, "print the credential JSON CI secrets hold (WHARF_CREDENTIALS / AZURE_CREDENTIALS)")
	f.BoolVar(&sdkAuth, "json-auth", false, "same as --sdk-auth")
	f.IntVar(&years, "years", 1, "secret lifetime in years (1 or 2)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List service principals",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.getAndPrint(cmd, "/api/v1/servicePrincipals")
		},
	}
	list.Flags().Bool("all", false, "accepted for az compatibility")
	list.Flags().String("display-name", "", "accepted for az compatibility")

	var id string
	show := &cobra.Command{
		Use:   "show",
		Short: "Show a service principal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.getAndPrint(cmd, "/api/v1/servicePrincipals/"+url.PathEscape(id))
		},
	}
	show.Flags().StringVar(&id, "id", "", "app id, object id or display name")
	_ = show.MarkFlagRequired("id")

	del := &cobra.Command{
		Use:   "delete",
		Short: "Delete a service principal, its secrets and its role assignments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := a.client()
			if err != nil {
				return err
			}
			return c.Do(cmd.Context(), "DELETE", "/api/v1/servicePrincipals/"+url.PathEscape(id), nil, nil)
		},
	}
	del.Flags().StringVar(&id, "id", "", "app id, object id or display name")
	_ = del.MarkFlagRequired("id")

	sp.AddCommand(create, list, show, del, a.credentialCommand())
	return ad
}

func (a *app) credentialCommand() *cobra.Command {
	cred := &cobra.Command{Use: "credential", Short: "Client secrets of a service principal"}
	var id, keyID string
	var appendCred bool
	var years int
	reset := &cobra.Command{
		Use:   "reset",
		Short: "Issue a new secret; replaces the others unless --append",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := a.client()
			if err != nil {
				return err
			}
			var resp wharfhttp.CredentialResponse
			body := map[string]any{"append": appendCred, "years": years}
			if err := c.Do(cmd.Context(), "POST", "/api/v1/servicePrincipals/"+url.PathEscape(id)+"/credentials", body, &resp); err != nil {
				return err
			}
			return a.print(map[string]string{"appId": resp.AppID, "password": resp.Password, "tenant": resp.Tenant})
		},
	}
	reset.Flags().StringVar(&id, "id", "", "app id, object id or display name")
	reset.Flags().BoolVar(&appendCred, "append", false, "keep the existing secrets")
	reset.Flags().IntVar(&years, "years", 1, "secret lifetime in years (1 or 2)")
	_ = reset.MarkFlagRequired("id")

	list := &cobra.Command{
		Use:   "list",
		Short: "List secrets (metadata only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.getAndPrint(cmd, "/api/v1/servicePrincipals/"+url.PathEscape(id)+"/credentials")
		},
	}
	list.Flags().StringVar(&id, "id", "", "app id, object id or display name")
	_ = list.MarkFlagRequired("id")

	del := &cobra.Command{
		Use:   "delete",
		Short: "Delete one secret by key id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := a.client()
			if err != nil {
				return err
			}
			return c.Do(cmd.Context(), "DELETE", "/api/v1/servicePrincipals/"+url.PathEscape(id)+"/credentials/"+url.PathEscape(keyID), nil, nil)
		},
	}
	del.Flags().StringVar(&id, "id", "", "app id, object id or display name")
	del.Flags().StringVar(&keyID, "key-id", "", "key id of the secret")
	_ = del.MarkFlagRequired("id")
	_ = del.MarkFlagRequired("key-id")
	cred.AddCommand(reset, list, del)
	return cred
}

// getAndPrint GETs a path and prints the JSON result.
func (a *app) getAndPrint(cmd *cobra.Command, path string) error {
	c, _, err := a.client()
	if err != nil {
		return err
	}
	var v any
	if err := c.Do(cmd.Context(), "GET", path, nil, &v); err != nil {
		return err
	}
	return a.print(v)
}
