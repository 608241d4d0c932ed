package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// knownDefaults are the keys `az configure --defaults` takes that Wharf uses.
var knownDefaults = map[string]bool{"workspace": true, "group": true, "location": true}

func (a *app) configureCommand() *cobra.Command {
	var defaults []string
	var list bool
	cmd := &cobra.Command{
		Use:   "configure",
		Short: "Set persistent defaults (az configure --defaults workspace=W group=G)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if list {
				type kv struct {
					Name   string `json:"name"`
					Source string `json:"source"`
					Value  string `json:"value"`
				}
				out := []kv{}
				for _, k := range a.cfg.defaultKeys() {
					out = append(out, kv{Name: k, Source: a.cfg.dir, Value: a.cfg.Defaults[k]})
				}
				return a.print(out)
			}
			if len(defaults) == 0 {
				return usagef("nothing to configure: use --defaults KEY=VALUE [KEY=VALUE ...] or --list-defaults")
			}
			for _, d := range defaults {
				for _, pair := range strings.Fields(d) {
					k, v, ok := strings.Cut(pair, "=")
					if !ok || k == "" {
						return usagef("--defaults takes KEY=VALUE pairs, got %q", pair)
					}
					if !knownDefaults[k] {
						fmt.Fprintf(a.stderr, "WARNING: default %q is stored but not used by wharf\n", k)
					}
					if v == "" {
						delete(a.cfg.Defaults, k)
					} else {
						a.cfg.Defaults[k] = v
					}
				}
			}
			return a.cfg.save()
		},
	}
	cmd.Flags().StringArrayVarP(&defaults, "defaults", "d", nil, "KEY=VALUE defaults (workspace, group); an empty value clears one")
	cmd.Flags().BoolVarP(&list, "list-defaults", "l", false, "list the defaults")
	cmd.Flags().String("scope", "", "accepted for az compatibility")
	return cmd
}

// workspaceName is -w, else the configured default, else a usage error.
func (a *app) workspaceName(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if w := a.cfg.Defaults["workspace"]; w != "" {
		return w, nil
	}
	return "", usagef("the workspace is required: pass --workspace-name/-w or run `wharf configure --defaults workspace=NAME`")
}
