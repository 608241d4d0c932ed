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
