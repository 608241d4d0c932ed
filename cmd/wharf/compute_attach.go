package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/wharfml/wharf"
)

// computeAttachCommand is `wharf ml compute attach`: az attaches compute
// that exists elsewhere (Kubernetes, a VM) by resource id; Wharf attaches
// a running Ray cluster by its dashboard's address.
func (a *app) computeAttachCommand() *cobra.Command {
	var w wsFlags
	var name, typ, address, description string
	var maxI int
	var sandboxed bool
	var tags, readOnly []string
	attach := &cobra.Command{
		Use:   "attach",
		Short: "Attach a running Ray cluster as a compute cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(w.workspace)
			if err != nil {
				return err
			}
			if !strings.EqualFold(typ, wharf.ComputeTypeRay) {
				return usagef("--type %q cannot be attached (allowed: ray)", typ)
			}
			if name == "" {
				return usagef("--name/-n is required")
			}
			if address == "" {
				return usagef("--address is required: the Ray dashboard's URL, e.g. http://head:8265")
			}
			spec := computeSpec{Name: name, Type: wharf.ComputeTypeRay, Address: address, Description: description, Sandbox: &sandboxed,
				SandboxReadOnlyPaths: readOnly}
			if cmd.Flags().Changed("max-instances") {
				spec.MaxInstances = &maxI
			}
			if spec.Tags, err = parseTags(tags); err != nil {
				return err
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			var out any
			if err := c.Do(cmd.Context(), "PUT", computePath(ws, name), spec.request(), &out); err != nil {
				return err
			}
			return a.print(out)
		},
	}
	f := attach.Flags()
	f.StringVarP(&name, "name", "n", "", "cluster name")
	f.StringVarP(&typ, "type", "t", "", "ray")
	f.StringVar(&address, "address", "", "the Ray dashboard's URL, e.g. http://head:8265")
	f.IntVar(&maxI, "max-instances", wharf.DefaultRaySteps, "steps handed to the Ray cluster at once")
	f.BoolVar(&sandboxed, "sandbox", true, "run steps sandboxed on the nodes (bwrap on every node); --sandbox=false runs them as the Ray worker's user")
	f.StringArrayVar(&readOnly, "sandbox-ro-path", nil, "a folder of the nodes (a shared dataset folder, say) that sandboxed steps see read-only (repeatable)")
	f.StringVar(&description, "description", "", "description")
	f.StringArrayVar(&tags, "tags", nil, "tags KEY=VALUE")
	f.Bool("no-wait", false, "accepted for az compatibility")
	w.add(attach)
	return attach
}
