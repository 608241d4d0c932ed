package main

import (
	"github.com/spf13/cobra"

	"github.com/wharfml/wharf/sandbox"
)

// sandboxCommand is `wharf sandbox exec`, which a Ray node's task runs a
// step through: the process's spec comes on standard input.
func (a *app) sandboxCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:    "sandbox",
		Short:  "Run user code isolated as steps are (what steps on Ray-backed compute run through)",
		Hidden: true,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "exec",
		Short: "Run the process whose JSON spec (argv, env, dir, mounts) is on standard input in a bwrap sandbox; exits with its status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := sandbox.Exec(a.stdin, a.stdout, a.stderr)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitStatus(code)
			}
			return nil
		},
	})
	return cmd
}
