package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf/pyenv"
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
	var overlay string
	var host hostPythonFlags
	exec := &cobra.Command{
		Use:   "exec",
		Short: "Run the process whose JSON spec (argv, env, dir, mounts) is on standard input in a bwrap sandbox; exits with its status",
		Long: "Run the process whose JSON spec (argv, env, dir, mounts) is on standard input in a bwrap sandbox; exits with its status.\n\n" +
			"With --overlay, first make the step's own layer on --host-python there (as `wharf env build --overlay` makes it " +
			"for a spec that asks for nothing) and run the process in it, writable: one process for a step whose environment " +
			"names no Python of its own, rather than two.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := host.know(); err != nil {
				return err
			}
			spec, err := sandbox.ReadSpec(a.stdin)
			if err != nil {
				return err
			}
			if overlay != "" {
				env, err := pyenv.Overlay(cmd.Context(), overlay, nil, host.python)
				if err != nil {
					return fmt.Errorf("preparing the environment failed: making the step's layer on the environment: %w", err)
				}
				if env != nil {
					// The step installs into its layer: writable, as the
					// sandbox would otherwise mount a virtual environment
					// on PATH read-only.
					spec.Env = env.ApplyTo(spec.Env)
					spec.Mounts = append(spec.Mounts, sandbox.Mount{Path: overlay, Writable: true})
				}
			}
			code, err := sandbox.Run(spec, a.stdout, a.stderr)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitStatus(code)
			}
			return nil
		},
	}
	f := exec.Flags()
	f.StringVar(&overlay, "overlay", "", "folder (not existing) for the step's own layer on --host-python; none when empty")
	host.addFlags(exec, "Python the overlay is made on (python3 on PATH when empty)")
	cmd.AddCommand(exec)
	return cmd
}
