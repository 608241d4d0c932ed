package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/snapshot"
)

func (a *app) jobCommand() *cobra.Command {
	job := &cobra.Command{Use: "job", Short: "Jobs and pipelines"}
	job.AddCommand(a.jobCreateCommand())

	var sw wsFlags
	var name string
	var web bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Show a job, with its steps and whether each was reused",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(sw.workspace)
			if err != nil {
				return err
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			var j map[string]any
			if err := c.Do(cmd.Context(), "GET", jobsPath(ws)+"/"+url.PathEscape(name), nil, &j); err != nil {
				return err
			}
			if web {
				// Headless machines have no browser to open: the URL is
				// printed, as az does when it cannot open one.
				if svc, ok := j["services"].(map[string]any); ok {
					if st, ok := svc["Studio"].(map[string]any); ok {
						fmt.Fprintf(a.stderr, "Job URL: %v\n", st["endpoint"])
					}
				}
			}
			return a.print(j)
		},
	}
	show.Flags().StringVarP(&name, "name", "n", "", "job name")
	show.Flags().BoolVar(&web, "web", false, "print the job's web page URL")
	_ = show.MarkFlagRequired("name")
	sw.add(show)

	var lw wsFlags
	var max int
	list := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(lw.workspace)
			if err != nil {
				return err
			}
			p := jobsPath(ws)
			if max > 0 {
				p += "?max_results=" + strconv.Itoa(max)
			}
			return a.getAndPrint(cmd, p)
		},
	}
	list.Flags().IntVarP(&max, "max-results", "r", 50, "at most this many jobs")
	lw.add(list)

	var stw wsFlags
	var sname string
	stream := &cobra.Command{
		Use:   "stream",
		Short: "Follow a job's logs until it ends",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(stw.workspace)
			if err != nil {
				return err
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			return a.streamJob(cmd.Context(), c, ws, sname)
		},
	}
	stream.Flags().StringVarP(&sname, "name", "n", "", "job name")
	_ = stream.MarkFlagRequired("name")
	stw.add(stream)

	var cw wsFlags
	var cname string
	cancel := &cobra.Command{
		Use:   "cancel",
		Short: "Cancel a job: running steps are stopped, the rest never start",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(cw.workspace)
			if err != nil {
				return err
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			var out any
			if err := c.Do(cmd.Context(), "POST", jobsPath(ws)+"/"+url.PathEscape(cname)+"/cancel", struct{}{}, &out); err != nil {
				return err
			}
			return a.print(out)
		},
	}
	cancel.Flags().StringVarP(&cname, "name", "n", "", "job name")
	_ = cancel.MarkFlagRequired("name")
	cw.add(cancel)

	var dw wsFlags
	var dname, outputName, downloadPath string
	var all bool
	download := &cobra.Command{
		Use:   "download",
		Short: "Download a job's outputs into DOWNLOAD_PATH/named-outputs/NAME",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(dw.workspace)
			if err != nil {
				return err
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			// A job shown with its document has the outputs it produced
			// under resolution; its own outputs are the document's.
			var j struct {
				Status     string                     `json:"status"`
				Outputs    map[string]wharf.JobOutput `json:"outputs"`
				Resolution *struct {
					Outputs map[string]wharf.JobOutput `json:"outputs"`
				} `json:"resolution"`
			}
			if err := c.Do(cmd.Context(), "GET", jobsPath(ws)+"/"+url.PathEscape(dname), nil, &j); err != nil {
				return err
			}
			if j.Resolution != nil {
				j.Outputs = j.Resolution.Outputs
			}
			names := []string{}
			switch {
			case all:
				for n := range j.Outputs {
					names = append(names, n)
				}
				sort.Strings(names)
			case outputName != "":
				if _, ok := j.Outputs[outputName]; !ok {
					return wharf.Errorf(wharf.ENOTFOUND, "job %s (%s) has no output %q", dname, j.Status, outputName)
				}
				names = []string{outputName}
			default:
				return usagef("--output-name or --all is required")
			}
			blobs := &wharfhttp.BlobClient{Client: c, Workspace: ws}
			for _, n := range names {
				dest := filepath.Join(downloadPath, "named-outputs", n)
				if err := os.RemoveAll(dest); err != nil {
					return err
				}
				if err := snapshot.Materialize(cmd.Context(), j.Outputs[n].Digest, blobs, dest); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "Downloaded output %s (%d files, %s) to %s\n", n, j.Outputs[n].Files, humanBytes(j.Outputs[n].Size), dest)
			}
			return nil
		},
	}
	download.Flags().StringVarP(&dname, "name", "n", "", "job name")
	download.Flags().StringVar(&outputName, "output-name", "", "the output to download")
	download.Flags().BoolVar(&all, "all", false, "download every output")
	download.Flags().StringVarP(&downloadPath, "download-path", "p", ".", "where to download")
	_ = download.MarkFlagRequired("name")
	dw.add(download)

	var rw wsFlags
	var rname string
	var fromFailed, rstream bool
	rerun := &cobra.Command{
		Use:   "rerun",
		Short: "Run a finished job again; --from-failed keeps the steps that completed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(rw.workspace)
			if err != nil {
				return err
			}
			c, _, err := a.client()
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.Do(cmd.Context(), "POST", jobsPath(ws)+"/"+url.PathEscape(rname)+"/rerun",
				map[string]bool{"from_failed": fromFailed}, &out); err != nil {
				return err
			}
			if rstream {
				name, _ := out["name"].(string)
				if err := a.streamJob(cmd.Context(), c, ws, name); err != nil {
					return err
				}
			}
			return a.print(out)
		},
	}
	rerun.Flags().StringVarP(&rname, "name", "n", "", "the job to run again")
	rerun.Flags().BoolVar(&fromFailed, "from-failed", false, "keep completed steps; run the failed and canceled ones and what depends on them")
	rerun.Flags().BoolVarP(&rstream, "stream", "s", false, "follow the new job until it ends")
	_ = rerun.MarkFlagRequired("name")
	rw.add(rerun)

	job.AddCommand(show, list, stream, cancel, download, rerun)
	return job
}
