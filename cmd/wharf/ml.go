package main

import (
	"github.com/spf13/cobra"
)

// mlCommand is the `az ml` tree.
func (a *app) mlCommand() *cobra.Command {
	ml := &cobra.Command{Use: "ml", Short: "Machine learning resources (the az ml command tree)"}
	ml.AddCommand(a.workspaceCommand(), a.computeCommand(), a.datastoreCommand(), a.modelCommand(),
		a.dataCommand(), a.environmentCommand(), a.componentCommand(), a.jobCommand(), a.scheduleCommand(),
		a.onlineEndpointCommand(), a.onlineDeploymentCommand(),
		a.batchEndpointCommand(), a.batchDeploymentCommand())
	return ml
}

// wsFlags are the flags every workspace-scoped az ml command takes.
type wsFlags struct {
	workspace     string
	resourceGroup string
}

func (w *wsFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&w.workspace, "workspace-name", "w", "", "workspace (default: wharf configure --defaults workspace=...)")
	cmd.Flags().StringVarP(&w.resourceGroup, "resource-group", "g", "", "accepted for az compatibility")
}

// listCommand is a workspace's `list` verb: it prints the collection at
// path(ws).
func (a *app) listCommand(short string, path func(ws string) string) *cobra.Command {
	var w wsFlags
	cmd := &cobra.Command{Use: "list", Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
		ws, err := a.workspaceName(w.workspace)
		if err != nil {
			return err
		}
		return a.getAndPrint(cmd, path(ws))
	}}
	w.add(cmd)
	return cmd
}

// showCommand is a workspace's `show` verb: it prints the resource that
// --name/-n (described as what) names, at path(ws, name).
func (a *app) showCommand(short, what string, path func(ws, name string) string) *cobra.Command {
	var w wsFlags
	var name string
	cmd := &cobra.Command{Use: "show", Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
		ws, err := a.workspaceName(w.workspace)
		if err != nil {
			return err
		}
		if name == "" {
			return usagef("--name/-n is required")
		}
		return a.getAndPrint(cmd, path(ws, name))
	}}
	cmd.Flags().StringVarP(&name, "name", "n", "", what)
	w.add(cmd)
	return cmd
}
