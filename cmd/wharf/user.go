package main

import (
	"net/url"

	"github.com/spf13/cobra"

	wharfhttp "github.com/wharfml/wharf/http"
)

// userCommand is `az ad user`: people who sign in to the web studio and to
// the CLI (wharf login).
func (a *app) userCommand() *cobra.Command {
	user := &cobra.Command{Use: "user", Short: "Users: people who sign in with a password (az ad user)"}

	var displayName, upn, password, id string
	var force bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a user (Owner only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := a.client()
			if err != nil {
				return err
			}
			var out map[string]any
			body := wharfhttp.CreateUserRequest{DisplayName: displayName, UserPrincipalName: upn,
				PasswordProfile: wharfhttp.PasswordProfile{Password: password, ForceChangePasswordNextSignIn: force}}
			if err := c.Do(cmd.Context(), "POST", "/api/v1/users", body, &out); err != nil {
				return err
			}
			return a.print(out)
		},
	}
	f := create.Flags()
	f.StringVar(&displayName, "display-name", "", "the user's name as people read it")
	f.StringVar(&upn, "user-principal-name", "", "the sign-in name, NAME@DOMAIN (e.g. alice@team)")
	f.StringVar(&password, "password", "", "the initial password (at least 12 characters, not the sign-in name)")
	f.BoolVar(&force, "force-change-password-next-sign-in", false, "make the user choose a new password at the first sign-in")
	for _, n := range []string{"display-name", "user-principal-name", "password"} {
		_ = create.MarkFlagRequired(n)
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.getAndPrint(cmd, "/api/v1/users")
		},
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Show a user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.getAndPrint(cmd, "/api/v1/users/"+url.PathEscape(id))
		},
	}
	del := &cobra.Command{
		Use:   "delete",
		Short: "Delete a user, ending its sessions and removing its role assignments (Owner only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := a.client()
			if err != nil {
				return err
			}
			return c.Do(cmd.Context(), "DELETE", "/api/v1/users/"+url.PathEscape(id), nil, nil)
		},
	}
	var newPassword string
	var forceUpdate bool
	update := &cobra.Command{
		Use:   "update",
		Short: "Reset a user's password, ending its sessions and revoking its tokens (Owner only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := a.client()
			if err != nil {
				return err
			}
			body := wharfhttp.UpdateUserRequest{PasswordProfile: &wharfhttp.PasswordProfile{Password: newPassword, ForceChangePasswordNextSignIn: forceUpdate}}
			return c.Do(cmd.Context(), "PATCH", "/api/v1/users/"+url.PathEscape(id), body, nil)
		},
	}
	update.Flags().StringVar(&newPassword, "password", "", "the new password")
	update.Flags().BoolVar(&forceUpdate, "force-change-password-next-sign-in", false, "make the user choose a new password at the next sign-in")
	_ = update.MarkFlagRequired("password")
	for _, c := range []*cobra.Command{show, del, update} {
		c.Flags().StringVar(&id, "id", "", "user principal name or object id")
		_ = c.MarkFlagRequired("id")
	}
	user.AddCommand(create, list, show, del, update)
	return user
}
