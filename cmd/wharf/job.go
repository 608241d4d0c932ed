package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/output"
	"github.com/wharfml/wharf/scheduler"
	"github.com/wharfml/wharf/snapshot"
)

func (a *app) jobCommand() *cobra.Command {
	job := &cobra.Command{Use: "job", Short: "Jobs and pipelines"}
	job.AddCommand(a.jobCreateCommand())

	var sw wsFlags
	var name string
	var web bool
	show := a.clientCommand(&sw, "show", "Show a job, with its steps and whether each was reused", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
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
	})
	show.Flags().StringVarP(&name, "name", "n", "", "job name")
	show.Flags().BoolVar(&web, "web", false, "print the job's web page URL")
	_ = show.MarkFlagRequired("name")

	var lw wsFlags
	var max int
	var parent string
	list := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := a.workspaceName(lw.workspace)
			if err != nil {
				return err
			}
			q := url.Values{}
			if max > 0 {
				q.Set("max_results", strconv.Itoa(max))
			}
			if parent != "" {
				q.Set("parent_job_name", parent)
			}
			p := jobsPath(ws)
			if len(q) > 0 {
				p += "?" + q.Encode()
			}
			return a.getAndPrint(cmd, p)
		},
	}
	list.Flags().IntVarP(&max, "max-results", "r", 50, "at most this many jobs")
	list.Flags().StringVarP(&parent, "parent-job-name", "p", "", "list the children of this job: a pipeline's steps or a sweep's trials")
	lw.add(list)

	var stw wsFlags
	var sname string
	stream := a.clientCommand(&stw, "stream", "Follow a job's logs until it ends", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		return a.streamJob(cmd.Context(), c, ws, sname)
	})
	stream.Flags().StringVarP(&sname, "name", "n", "", "job name")
	_ = stream.MarkFlagRequired("name")

	var cw wsFlags
	var cname string
	cancel := a.clientCommand(&cw, "cancel", "Cancel a job: running steps are stopped, the rest never start", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		var out any
		if err := c.Do(cmd.Context(), "POST", jobsPath(ws)+"/"+url.PathEscape(cname)+"/cancel", struct{}{}, &out); err != nil {
			return err
		}
		return a.print(out)
	})
	cancel.Flags().StringVarP(&cname, "name", "n", "", "job name")
	_ = cancel.MarkFlagRequired("name")

	var dw wsFlags
	var dname, outputName, downloadPath string
	var all bool
	download := a.clientCommand(&dw, "download", "Download a job's default artifacts into DOWNLOAD_PATH/artifacts, its outputs into DOWNLOAD_PATH/named-outputs/NAME", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
		// A job shown with its document has the outputs it produced
		// under resolution; its own outputs are the document's.
		var j struct {
			Status     string                     `json:"status"`
			Outputs    map[string]wharf.JobOutput `json:"outputs"`
			Artifacts  *wharf.JobOutput           `json:"artifacts"`
			Resolution *struct {
				Outputs   map[string]wharf.JobOutput `json:"outputs"`
				Artifacts *wharf.JobOutput           `json:"artifacts"`
			} `json:"resolution"`
		}
		if err := c.Do(cmd.Context(), "GET", jobsPath(ws)+"/"+url.PathEscape(dname), nil, &j); err != nil {
			return err
		}
		if j.Resolution != nil {
			j.Outputs, j.Artifacts = j.Resolution.Outputs, j.Resolution.Artifacts
		}
		names := []string{}
		// The default artifacts, what the job left in ./outputs and
		// ./logs, go to DOWNLOAD_PATH/artifacts, as az puts them: with
		// --all, and without --output-name.
		artifacts := j.Artifacts != nil && outputName == ""
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
		case j.Artifacts == nil:
			return wharf.Errorf(wharf.ENOTFOUND, "job %s (%s) has no default artifacts (it left nothing in ./outputs or ./logs); name an output with --output-name, or use --all", dname, j.Status)
		}
		blobs := &wharfhttp.BlobClient{Client: c, Workspace: ws}
		if artifacts {
			dest := filepath.Join(downloadPath, "artifacts")
			if err := os.RemoveAll(dest); err != nil {
				return err
			}
			if err := snapshot.Materialize(cmd.Context(), j.Artifacts.Digest, blobs, dest); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "Downloaded the default artifacts (%d files, %s) to %s\n", j.Artifacts.Files, output.Bytes(j.Artifacts.Size), dest)
		}
		for _, n := range names {
			o := j.Outputs[n]
			dest := filepath.Join(downloadPath, "named-outputs", n)
			if err := os.RemoveAll(dest); err != nil {
				return err
			}
			var err error
			if o.Kind == scheduler.KindFile {
				// A uri_file output is its one file, in the output's folder.
				err = downloadBlob(cmd, blobs, o.Digest, filepath.Join(dest, n))
			} else {
				err = snapshot.Materialize(cmd.Context(), o.Digest, blobs, dest)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "Downloaded output %s (%d files, %s) to %s\n", n, o.Files, output.Bytes(o.Size), dest)
		}
		return nil
	})
	download.Flags().StringVarP(&dname, "name", "n", "", "job name")
	download.Flags().StringVar(&outputName, "output-name", "", "the output to download")
	download.Flags().BoolVar(&all, "all", false, "download every output and the default artifacts")
	download.Flags().StringVarP(&downloadPath, "download-path", "p", ".", "where to download")
	_ = download.MarkFlagRequired("name")

	var rw wsFlags
	var rname string
	var fromFailed, rstream bool
	rerun := a.clientCommand(&rw, "rerun", "Run a finished job again; --from-failed keeps the steps that completed", func(cmd *cobra.Command, ws string, c *wharfhttp.Client) error {
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
	})
	rerun.Flags().StringVarP(&rname, "name", "n", "", "the job to run again")
	rerun.Flags().BoolVar(&fromFailed, "from-failed", false, "keep completed steps; run the failed and canceled ones and what depends on them")
	rerun.Flags().BoolVarP(&rstream, "stream", "s", false, "follow the new job until it ends")
	_ = rerun.MarkFlagRequired("name")

	job.AddCommand(show, list, stream, cancel, download, rerun)
	return job
}

// downloadBlob writes one stored file to target, and keeps it only when
// its content has the digest it was asked for.
func downloadBlob(cmd *cobra.Command, blobs *wharfhttp.BlobClient, digest, target string) error {
	body, _, err := blobs.Open(cmd.Context(), digest)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.Create(target)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && "sha256:"+hex.EncodeToString(h.Sum(nil)) != digest {
		err = fmt.Errorf("the downloaded content does not match %s", digest)
	}
	if err != nil {
		os.Remove(target)
		return fmt.Errorf("download %s: %w", filepath.Base(target), err)
	}
	return nil
}
