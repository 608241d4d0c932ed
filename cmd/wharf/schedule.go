package main

import (
	"encoding/json"
	"net/url"

	"github.com/spf13/cobra"

	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/jobspec"
)

func schedulesPath(ws string) string {
	return "/api/v1/workspaces/" + url.PathEscape(ws) + "/schedules"
}

func (a *app) scheduleCommand() *cobra.Command {
	sched := &cobra.Command{Use: "schedule", Short: "Schedules that submit jobs on a trigger"}
	var f createFlags
	var disabled bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create or replace a schedule from CLI v2 schedule YAML; its job's local files are uploaded now, its references resolved at every firing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, c, err := f.begin(a)
			if err != nil {
				return err
			}
			spec, err := jobspec.LoadSchedule(f.file, f.overrides(), newAPIResolver(cmd.Context(), c, ws))
			if err != nil {
				return err
			}
			enabled := !disabled
			if spec.Monitor != nil {
				// A model monitor: the server computes its signals
				// at every firing.
				body := map[string]any{"display_name": spec.DisplayName, "description": spec.Description, "tags": spec.Tags,
					"is_enabled": enabled, "trigger": spec.Trigger, "create_monitor": spec.Monitor}
				var out any
				if err := c.Do(cmd.Context(), "PUT", schedulesPath(ws)+"/"+url.PathEscape(spec.Name), body, &out); err != nil {
					return err
				}
				return a.print(out)
			}
			// The schedule keeps the job's document, which the server
			// resolves again at every firing: @latest and datastore
			// folders are read then, not now.
			doc, err := jobspec.ScheduleJobDocument(f.file, f.overrides(), a.documentUploader(cmd.Context(), c, ws))
			if err != nil {
				return err
			}
			body := map[string]any{"display_name": spec.DisplayName, "description": spec.Description, "tags": spec.Tags,
				"is_enabled": enabled, "trigger": spec.Trigger, "create_job": json.RawMessage(doc.JSON)}
			var out any
			if err := c.Do(cmd.Context(), "PUT", schedulesPath(ws)+"/"+url.PathEscape(spec.Name), body, &out); err != nil {
				return documentError(doc, "create_job", err)
			}
			return a.print(out)
		},
	}
	f.add(create)
	create.Flags().BoolVar(&disabled, "no-enable", false, "create the schedule disabled")

	var sw wsFlags
	var name, signal string
	show := &cobra.Command{
		Use:   "show",
		Short: "Show a schedule with its next and last runs; a model monitor's with its last results (of one signal with --signal)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(sw.workspace)
			if err != nil {
				return err
			}
			p := schedulesPath(ws) + "/" + url.PathEscape(name)
			if signal != "" {
				p += "?signal=" + url.QueryEscape(signal)
			}
			return a.getAndPrint(cmd, p)
		},
	}
	show.Flags().StringVarP(&name, "name", "n", "", "schedule name")
	show.Flags().StringVar(&signal, "signal", "", "a model monitor's signal: show that signal's results only")
	_ = show.MarkFlagRequired("name")
	sw.add(show)

	list := a.listCommand("List schedules", schedulesPath)

	var dw wsFlags
	var dname string
	var yes bool
	del := a.clientCommand(&dw, "delete", "Delete a schedule (jobs it submitted are kept)", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return c.Do(cmd.Context(), "DELETE", schedulesPath(ws)+"/"+url.PathEscape(dname), nil, nil)
	})
	del.Flags().StringVarP(&dname, "name", "n", "", "schedule name")
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not prompt (accepted for az compatibility)")
	_ = del.MarkFlagRequired("name")

	// update is create under az's other name: the schedule is replaced
	// by the file's.
	update := &cobra.Command{Use: "update", Short: "Replace a schedule with the one a CLI v2 schedule YAML describes", Args: cobra.NoArgs, RunE: create.RunE}
	f.add(update)
	update.Flags().BoolVar(&disabled, "no-enable", false, "leave the schedule disabled")

	sched.AddCommand(create, update, show, list, del,
		a.schedulePost("enable", "Enable a schedule: it fires next at its trigger's next time", "enable"),
		a.schedulePost("disable", "Disable a schedule: it submits nothing until enabled", "disable"),
		a.schedulePost("trigger", "Submit a schedule's job once, now, and print the job", "trigger"))
	return sched
}

// schedulePost is a verb that POSTs to one schedule's action and prints
// the answer.
func (a *app) schedulePost(use, short, action string) *cobra.Command {
	var w wsFlags
	var name string
	cmd := a.clientCommand(&w, use, short, func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		var out any
		if err := c.Do(cmd.Context(), "POST", schedulesPath(ws)+"/"+url.PathEscape(name)+"/"+action, nil, &out); err != nil {
			return err
		}
		return a.print(out)
	})
	cmd.Flags().StringVarP(&name, "name", "n", "", "schedule name")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}
