package main

import (
	"net/url"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
)

// roleAssignmentsPath is the API path of the assignments at a scope.
func roleAssignmentsPath(scope string) (string, error) {
	norm, err := wharf.NormalizeScope(scope)
	if err != nil {
		return "", err
	}
	if norm == wharf.ServerScope {
		return "/api/v1/roleAssignments", nil
	}
	return "/api/v1" + norm + "/roleAssignments", nil
}

// assignmentFilter is the query that lists the role assignments of
// assignee and of roleName; either may be empty, for any.
func assignmentFilter(assignee, roleName string) url.Values {
	q := url.Values{}
	if assignee != "" {
		q.Set("assignee", assignee)
	}
	if roleName != "" {
		q.Set("role", roleName)
	}
	return q
}

func (a *app) roleCommand() *cobra.Command {
	role := &cobra.Command{Use: "role", Short: "Role assignments and definitions (az role)"}
	assignment := &cobra.Command{Use: "assignment", Short: "Role assignments"}
	definition := &cobra.Command{Use: "definition", Short: "Role definitions"}
	role.AddCommand(assignment, definition)

	var assignee, roleName, scope string
	create := &cobra.Command{
		Use:   "create",
		Short: "Grant a role to a principal at a scope",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := roleAssignmentsPath(scope)
			if err != nil {
				return err
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			var out wharf.RoleAssignment
			if err := c.Do(cmd.Context(), "POST", path, map[string]string{"assignee": assignee, "role": roleName}, &out); err != nil {
				return err
			}
			return a.print(out)
		},
	}
	create.Flags().StringVar(&assignee, "assignee", "", "principal (app id, object id or display name) or user (user principal name or object id)")
	create.Flags().StringVar(&assignee, "assignee-object-id", "", "principal object id")
	create.Flags().StringVar(&roleName, "role", "", "role name")
	create.Flags().StringVar(&scope, "scope", "/", "scope: / or /workspaces/NAME")
	_ = create.MarkFlagRequired("role")

	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List role assignments at a scope",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := roleAssignmentsPath(scope)
			if err != nil {
				return err
			}
			q := assignmentFilter(assignee, roleName)
			if all {
				q.Set("all", "true")
			}
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			return a.getAndPrint(cmd, path)
		},
	}
	list.Flags().StringVar(&assignee, "assignee", "", "only this principal")
	list.Flags().StringVar(&roleName, "role", "", "only this role")
	list.Flags().StringVar(&scope, "scope", "/", "scope: / or /workspaces/NAME")
	list.Flags().BoolVar(&all, "all", false, "every assignment on the server")

	var ids []string
	del := &cobra.Command{
		Use:   "delete",
		Short: "Remove role assignments (by --ids, or by --assignee/--role at --scope)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := roleAssignmentsPath(scope)
			if err != nil {
				return err
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				if assignee == "" && roleName == "" {
					return usagef("pass --ids, or --assignee and/or --role with --scope")
				}
				q := assignmentFilter(assignee, roleName)
				var found []wharf.RoleAssignment
				if err := c.Do(cmd.Context(), "GET", path+"?"+q.Encode(), nil, &found); err != nil {
					return err
				}
				if len(found) == 0 {
					return wharf.Errorf(wharf.ENOTFOUND, "no role assignment matches at scope %q", scope)
				}
				for _, f := range found {
					ids = append(ids, f.ID)
				}
			}
			for _, id := range ids {
				if err := c.Do(cmd.Context(), "DELETE", path+"/"+url.PathEscape(id), nil, nil); err != nil {
					return err
				}
			}
			return nil
		},
	}
	del.Flags().StringSliceVar(&ids, "ids", nil, "assignment ids")
	del.Flags().StringVar(&assignee, "assignee", "", "principal")
	del.Flags().StringVar(&roleName, "role", "", "role name")
	del.Flags().StringVar(&scope, "scope", "/", "scope: / or /workspaces/NAME")

	assignment.AddCommand(create, list, del)

	var defName string
	defList := &cobra.Command{
		Use:   "list",
		Short: "List the built-in roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if defName != "" {
				r, err := wharf.FindRole(defName)
				if err != nil {
					return err
				}
				return a.print([]*wharf.RoleDefinition{r})
			}
			return a.print(wharf.BuiltinRoles())
		},
	}
	defList.Flags().StringVarP(&defName, "name", "n", "", "only this role")
	definition.AddCommand(defList)
	return role
}

func (a *app) monitorCommand() *cobra.Command {
	monitor := &cobra.Command{Use: "monitor", Short: "Monitoring (az monitor)"}
	activity := &cobra.Command{Use: "activity-log", Short: "The audit log of mutating calls"}
	var principal, since string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit events, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if principal != "" {
				q.Set("principal", principal)
			}
			if since != "" {
				q.Set("since", since)
			}
			if limit > 0 {
				q.Set("limit", itoa(limit))
			}
			path := "/api/v1/auditEvents"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			return a.getAndPrint(cmd, path)
		},
	}
	list.Flags().StringVar(&principal, "caller", "", "only calls by this principal (app id)")
	list.Flags().StringVar(&since, "start-time", "", "only events at or after this RFC 3339 time")
	list.Flags().IntVar(&limit, "max-events", 100, "at most this many events")
	activity.AddCommand(list)
	monitor.AddCommand(activity, a.monitorComputeCommand(), a.monitorImportanceCommand())
	return monitor
}
