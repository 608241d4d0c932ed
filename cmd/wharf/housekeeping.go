package main

import (
	"runtime"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
)

// azureCLICompat is the az version whose command tree Wharf accepts.
const azureCLICompat = "2.67.0"

// mlExtensionCompat is the az ml extension version whose YAML schemas Wharf
// reads.
const mlExtensionCompat = "2.32.0"

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show wharf's version, commit and build date, and the az versions it follows (az version)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b := wharf.Build()
			return a.print(map[string]any{
				"wharf":      b.Version,
				"commit":     b.Commit,
				"date":       b.BuildDate,
				"azure-cli":  azureCLICompat,
				"extensions": map[string]string{"ml": mlExtensionCompat},
				"go":         runtime.Version(),
			})
		},
	}
}

// extensionCommand makes `az extension add -n ml` and friends succeed: the
// ml command tree is built in.
func (a *app) extensionCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "extension", Short: "Extensions (the ml extension is built in)"}
	ext := func() map[string]any {
		return map[string]any{"name": "ml", "version": mlExtensionCompat, "extensionType": "builtin", "preview": false, "experimental": false}
	}
	for _, verb := range []string{"add", "update", "show"} {
		c := &cobra.Command{
			Use:   verb,
			Short: verb + " an extension (no-op: ml is built in)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				name, _ := cmd.Flags().GetString("name")
				if name != "" && name != "ml" && name != "azure-cli-ml" {
					return usagef("extension %q is not available; wharf has the ml extension built in", name)
				}
				if verb == "show" {
					return a.print(ext())
				}
				return nil
			},
		}
		c.Flags().StringP("name", "n", "ml", "extension name")
		c.Flags().BoolP("yes", "y", false, "accepted for az compatibility")
		c.Flags().Bool("upgrade", false, "accepted for az compatibility")
		c.Flags().String("version", "", "accepted for az compatibility")
		cmd.AddCommand(c)
	}
	remove := &cobra.Command{Use: "remove", Short: "Accepted for az compatibility", RunE: func(cmd *cobra.Command, args []string) error { return nil }}
	remove.Flags().StringP("name", "n", "", "ignored")
	list := &cobra.Command{
		Use:   "list",
		Short: "List extensions",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return a.print([]any{ext()}) },
	}
	cmd.AddCommand(remove, list)
	return cmd
}

// groupCommand accepts `az group create` from infra scripts. Wharf has no
// resource groups of its own; workspaces record the group they were given.
func (a *app) groupCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Resource groups (recorded on workspaces; accepted for az compatibility)"}
	var name, location string
	create := &cobra.Command{
		Use:   "create",
		Short: "Accept a resource group",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return usagef("--name/-n is required")
			}
			return a.print(map[string]any{
				"id": "/resourceGroups/" + name, "location": location, "name": name,
				"properties": map[string]string{"provisioningState": "Succeeded"}, "type": "Wharf/resourceGroups",
			})
		},
	}
	create.Flags().StringVarP(&name, "name", "n", "", "resource group name")
	create.Flags().StringVarP(&location, "location", "l", "local", "location")
	cmd.AddCommand(create)
	return cmd
}
