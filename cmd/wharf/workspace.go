package main

import (
	"fmt"
	"net/url"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// workspaceSpec is the az ml workspace YAML. Keys Wharf has no use for are
// accepted so that files written for Azure load unchanged.
type workspaceSpec struct {
	Name                string            `yaml:"name"`
	DisplayName         string            `yaml:"display_name"`
	Description         string            `yaml:"description"`
	Location            string            `yaml:"location"`
	ResourceGroup       string            `yaml:"resource_group"`
	KeyVault            string            `yaml:"key_vault"`
	ApplicationInsights string            `yaml:"application_insights"`
	StorageAccount      string            `yaml:"storage_account"`
	Tags                map[string]string `yaml:"tags"`

	ContainerRegistry   any `yaml:"container_registry"`
	HBIWorkspace        any `yaml:"hbi_workspace"`
	ImageBuildCompute   any `yaml:"image_build_compute"`
	PublicNetworkAccess any `yaml:"public_network_access"`
	Identity            any `yaml:"identity"`
	ManagedNetwork      any `yaml:"managed_network"`
	PrimaryUAI          any `yaml:"primary_user_assigned_identity"`
	EnableDataIsolation any `yaml:"enable_data_isolation"`
	CustomerManagedKey  any `yaml:"customer_managed_key"`
}

func (a *app) workspaceCommand() *cobra.Command {
	ws := &cobra.Command{Use: "workspace", Short: "Workspaces"}

	var spec workspaceSpec
	var file string
	var sets, tags []string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create or update a workspace",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var fromFile workspaceSpec
			if file != "" {
				if _, err := loadYAML(file, sets, &fromFile); err != nil {
					return err
				}
			} else if len(sets) > 0 {
				return usagef("--set needs --file")
			}
			merged := mergeWorkspace(fromFile, spec)
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			if t != nil {
				merged.Tags = t
			}
			if merged.Name == "" {
				return usagef("--name/-n is required (or name: in --file)")
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			var out any
			if err := c.Do(cmd.Context(), "PUT", "/api/v1/workspaces/"+url.PathEscape(merged.Name), merged.request(), &out); err != nil {
				return err
			}
			return a.print(out)
		},
	}
	f := create.Flags()
	f.StringVarP(&spec.Name, "name", "n", "", "workspace name")
	f.StringVarP(&spec.ResourceGroup, "resource-group", "g", "", "resource group recorded on the workspace")
	f.StringVarP(&spec.Location, "location", "l", "", "location")
	f.StringVar(&spec.DisplayName, "display-name", "", "display name")
	f.StringVar(&spec.Description, "description", "", "description")
	f.StringVarP(&file, "file", "f", "", "workspace YAML")
	f.StringArrayVar(&sets, "set", nil, "override a YAML field: --set key.path=value")
	f.StringArrayVar(&tags, "tags", nil, "tags KEY=VALUE")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the workspaces you can read",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.getAndPrint(cmd, "/api/v1/workspaces")
		},
	}
	list.Flags().StringP("resource-group", "g", "", "accepted for az compatibility")

	var name string
	var w wsFlags
	show := &cobra.Command{
		Use:   "show",
		Short: "Show a workspace",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n := name
			if n == "" {
				var err error
				if n, err = a.workspaceName(w.workspace); err != nil {
					return err
				}
			}
			return a.getAndPrint(cmd, "/api/v1/workspaces/"+url.PathEscape(n))
		},
	}
	show.Flags().StringVarP(&name, "name", "n", "", "workspace name")
	w.add(show)

	var yes bool
	del := &cobra.Command{
		Use:   "delete",
		Short: "Delete a workspace and everything in it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n := name
			if n == "" {
				var err error
				if n, err = a.workspaceName(w.workspace); err != nil {
					return err
				}
			}
			if err := a.confirm(yes, fmt.Sprintf("Delete workspace %q and all its compute, datastores, secrets and role assignments?", n)); err != nil {
				return err
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			return c.Do(cmd.Context(), "DELETE", "/api/v1/workspaces/"+url.PathEscape(n), nil, nil)
		},
	}
	del.Flags().StringVarP(&name, "name", "n", "", "workspace name")
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not prompt for confirmation")
	del.Flags().Bool("all-resources", false, "accepted for az compatibility (everything in the workspace is always deleted)")
	del.Flags().Bool("no-wait", false, "accepted for az compatibility")
	w.add(del)

	ws.AddCommand(create, list, show, del)
	return ws
}

// mergeWorkspace lays flags over the file: flags win, as in az.
func mergeWorkspace(file, flags workspaceSpec) workspaceSpec {
	out := file
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&out.Name, flags.Name)
	set(&out.DisplayName, flags.DisplayName)
	set(&out.Description, flags.Description)
	set(&out.Location, flags.Location)
	set(&out.ResourceGroup, flags.ResourceGroup)
	return out
}

func (s workspaceSpec) request() map[string]any {
	return map[string]any{
		"name": s.Name, "display_name": s.DisplayName, "description": s.Description, "location": s.Location,
		"resource_group": s.ResourceGroup, "key_vault": s.KeyVault, "application_insights": s.ApplicationInsights,
		"storage_account": s.StorageAccount, "tags": s.Tags,
	}
}

// confirm asks on a terminal; without one it refuses, as az does, rather
// than deleting silently or hanging a CI job.
func (a *app) confirm(yes bool, question string) error {
	if yes {
		return nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return usagef("this command needs confirmation and no terminal is attached: pass --yes")
	}
	fmt.Fprintf(a.stderr, "%s (y/n): ", question)
	var answer string
	_, _ = fmt.Fscanln(a.stdin, &answer)
	if answer != "y" && answer != "Y" && answer != "yes" {
		return usagef("cancelled")
	}
	return nil
}
