package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
)

// appCommand is `az ad app`, of which Wharf has the federated credentials:
// a service principal is its own application.
func (a *app) appCommand() *cobra.Command {
	appCmd := &cobra.Command{Use: "app", Short: "Applications (az ad app): federated identity credentials of a service principal"}
	fc := &cobra.Command{Use: "federated-credential", Short: "Trust a CI system's OIDC tokens in place of a secret (workload identity federation)"}
	appCmd.AddCommand(fc)

	var id, params, ficID string
	base := func() string {
		return "/api/v1/servicePrincipals/" + url.PathEscape(id) + "/federatedIdentityCredentials"
	}
	idFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&id, "id", "", "app id (or object id or display name) of the service principal")
		_ = c.MarkFlagRequired("id")
	}
	ficFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&ficID, "federated-credential-id", "", "name or id of the federated credential")
		_ = c.MarkFlagRequired("federated-credential-id")
	}
	paramsFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&params, "parameters", "", `JSON, or @FILE holding it: {"name", "issuer", "subject", "audiences": ["api://AzureADTokenExchange"], "description"}`)
		_ = c.MarkFlagRequired("parameters")
	}
	send := func(cmd *cobra.Command, method, path string) error {
		body, err := readParameters(params)
		if err != nil {
			return err
		}
		c, _, err := a.client()
		if err != nil {
			return err
		}
		var out any
		if err := c.Do(cmd.Context(), method, path, body, &out); err != nil {
			return err
		}
		return a.print(out)
	}

	create := &cobra.Command{
		Use:   "create",
		Short: "Create a federated credential (at most 20 per principal; Owner only)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return send(cmd, "POST", base()) },
	}
	idFlag(create)
	paramsFlag(create)
	update := &cobra.Command{
		Use:   "update",
		Short: "Replace a federated credential's issuer, subject, audiences and description (the name cannot change)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return send(cmd, "PATCH", base()+"/"+url.PathEscape(ficID))
		},
	}
	idFlag(update)
	ficFlag(update)
	paramsFlag(update)
	list := &cobra.Command{
		Use:   "list",
		Short: "List a principal's federated credentials",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return a.getAndPrint(cmd, base()) },
	}
	idFlag(list)
	show := &cobra.Command{
		Use:   "show",
		Short: "Show one federated credential",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.getAndPrint(cmd, base()+"/"+url.PathEscape(ficID))
		},
	}
	idFlag(show)
	ficFlag(show)
	del := &cobra.Command{
		Use:   "delete",
		Short: "Delete a federated credential; its tokens are refused from then on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := a.client()
			if err != nil {
				return err
			}
			return c.Do(cmd.Context(), "DELETE", base()+"/"+url.PathEscape(ficID), nil, nil)
		},
	}
	idFlag(del)
	ficFlag(del)
	fc.AddCommand(create, list, show, update, del)
	return appCmd
}

// readParameters reads --parameters: inline JSON or @FILE. A mistake names
// the file (or "--parameters"), the line and the field.
func readParameters(p string) (map[string]any, error) {
	where, text := "--parameters", []byte(p)
	if strings.HasPrefix(p, "@") {
		where = p[1:]
		b, err := os.ReadFile(where)
		if err != nil {
			return nil, usagef("--parameters: %v", err)
		}
		text = b
	}
	fields := map[string]bool{"name": true, "issuer": true, "subject": true, "audiences": true, "description": true}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(text))
	if err := dec.Decode(&out); err != nil {
		line := 1
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			line += bytes.Count(text[:min(int(syn.Offset), len(text))], []byte("\n"))
		}
		return nil, wharf.Errorf(wharf.EINVALID, "%s: line %d: not a JSON object: %v", where, line, err)
	}
	for k := range out {
		if !fields[k] {
			line := 1 + bytes.Count(text[:max(bytes.Index(text, []byte(`"`+k+`"`)), 0)], []byte("\n"))
			return nil, wharf.Errorf(wharf.EINVALID, "%s: line %d: unknown field %q; the fields are name, issuer, subject, audiences and description", where, line, k).WithField(k)
		}
	}
	if s, ok := out["audiences"].(string); ok {
		// az accepts a single audience as a string, too.
		out["audiences"] = []string{s}
	}
	return out, nil
}
