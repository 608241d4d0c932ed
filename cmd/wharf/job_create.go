package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/scheduler"
	"github.com/wharfml/wharf/yamlfile"
)

func (a *app) jobCreateCommand() *cobra.Command {
	var f createFlags
	var stream bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Submit a command or pipeline job from CLI v2 YAML",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, c, err := f.begin(a)
			if err != nil {
				return err
			}
			// Checked here first, so that mistakes are reported against
			// the file before anything is uploaded; the server checks the
			// document again when it resolves it.
			if _, err := jobspec.LoadJob(f.file, f.overrides(), newAPIResolver(cmd.Context(), c, ws)); err != nil {
				return err
			}
			doc, err := jobspec.JobDocument(f.file, f.overrides(), a.documentUploader(cmd.Context(), c, ws))
			if err != nil {
				return err
			}
			if len(doc.Shown) > 0 {
				fmt.Fprintf(a.stderr, "Submitting the job shown in %s as a new job: %s left out, as the server sets them\n",
					filepath.Base(f.file), strings.Join(append([]string{"name"}, doc.Shown...), ", "))
			}
			created, err := a.sendJobDocument(cmd.Context(), c, ws, doc)
			if err != nil {
				return err
			}
			name, _ := created["name"].(string)
			if !stream {
				return a.print(created)
			}
			if err := a.streamJob(cmd.Context(), c, ws, name); err != nil {
				return err
			}
			var final any
			if err := c.Do(cmd.Context(), "GET", jobsPath(ws)+"/"+name, nil, &final); err != nil {
				return err
			}
			return a.print(final)
		},
	}
	f.add(create)
	create.Flags().BoolVarP(&stream, "stream", "s", false, "follow the job's logs until it ends; fail if it does not complete")
	f.field(create, "experiment-name", "e", "experiment_name", "experiment (overrides the YAML's)")
	f.field(create, "display-name", "", "display_name", "display name (overrides the YAML's)")
	return create
}

// sendJobDocument submits a job document: PUT when it names the job,
// POST when the server is to name it.
func (a *app) sendJobDocument(ctx context.Context, c *wharfhttp.Client, ws string, doc *jobspec.Document) (map[string]any, error) {
	method, path := "POST", jobsPath(ws)
	if doc.Name != "" {
		method, path = "PUT", path+"/"+url.PathEscape(doc.Name)
	}
	id := rand.Text()
	path += "?progress=" + id
	stop := a.showInputReading(ctx, c, ws, id)
	// The server reads the job's container inputs before it answers,
	// which for a large folder may take longer than any other call is
	// allowed: the submission waits as long as that takes, showing how
	// far it is, until it is done or interrupted.
	waiting := *c
	if c.HTTP != nil {
		unbounded := *c.HTTP
		unbounded.Timeout = 0
		waiting.HTTP = &unbounded
	}
	var created map[string]any
	err := waiting.Do(ctx, method, path, json.RawMessage(doc.JSON), &created)
	stop(err == nil)
	if err != nil {
		return nil, documentError(doc, "", err)
	}
	return created, nil
}

// When showing how far the server has read a submission's inputs begins,
// and how often it is asked: a submission that takes longer than
// readProgressAfter shows a line every readProgressEvery.
var (
	readProgressAfter = 2 * time.Second
	readProgressEvery = time.Second
)

// showInputReading shows on stderr, while the submission id is being sent,
// how much of its inputs in azure_blob and s3 containers the server has
// read, of how much, once it takes longer than readProgressAfter. stop
// ends it; ok says the submission was accepted, all of it read.
func (a *app) showInputReading(ctx context.Context, c *wharfhttp.Client, ws, id string) (stop func(ok bool)) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var last wharfhttp.SubmissionProgress
	var prog *progress
	wg.Go(func() {
		wait := time.NewTimer(readProgressAfter)
		defer wait.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-wait.C:
			}
			var now wharfhttp.SubmissionProgress
			// Not found: the server has not begun reading, or has
			// ended; an error here never fails the submission. Nothing
			// to read is shown once a container's listing finds some.
			err := c.Do(ctx, "GET", "/api/v1/workspaces/"+url.PathEscape(ws)+"/job-submissions/"+id, nil, &now)
			if err == nil && ctx.Err() == nil && now.FilesTotal > 0 {
				if prog == nil {
					prog = a.newProgress("Reading inputs", 0)
				}
				prog.total, last = now.BytesTotal, now
				prog.show(now.Bytes, fmt.Sprintf("%d/%d files, ", now.Files, now.FilesTotal))
			}
			wait.Reset(readProgressEvery)
		}
	})
	return func(ok bool) {
		cancel()
		wg.Wait()
		if prog != nil && ok {
			prog.done(last.BytesTotal, fmt.Sprintf("%d/%d files, ", last.FilesTotal, last.FilesTotal))
		}
	}
}

// documentUploader uploads the local content a job file names, once per
// path, and names it as a job document does.
func (a *app) documentUploader(ctx context.Context, c *wharfhttp.Client, ws string) jobspec.Uploader {
	return &docUploader{a: a, ctx: ctx, c: c, ws: ws, done: map[string]uploaded{}}
}

type docUploader struct {
	a    *app
	ctx  context.Context
	c    *wharfhttp.Client
	ws   string
	done map[string]uploaded
}

// uploaded is local content already sent in this submission.
type uploaded struct {
	digest, kind string
}

// Upload implements jobspec.Uploader.
func (u *docUploader) Upload(path, what string) (string, error) {
	up, ok := u.done[path]
	if !ok {
		digest, kind, _, _, err := u.a.uploadLocal(u.ctx, u.c, u.ws, path, what)
		if err != nil {
			return "", errors.New(wharf.ErrorMessage(err))
		}
		up = uploaded{digest, kind}
		u.done[path] = up
	}
	return resolve.UploadURI(up.digest, up.kind, filepath.Base(path)), nil
}

// UploadCode implements jobspec.Uploader.
func (u *docUploader) UploadCode(path string, includes []string) (string, error) {
	key := strings.Join(append([]string{path}, includes...), "\x00")
	up, ok := u.done[key]
	if !ok {
		digest, err := u.a.uploadCode(u.ctx, u.c, u.ws, path, includes)
		if err != nil {
			return "", errors.New(wharf.ErrorMessage(err))
		}
		up = uploaded{digest, scheduler.KindFolder}
		u.done[key] = up
	}
	return resolve.UploadURI(up.digest, up.kind, filepath.Base(path)), nil
}

// documentError points the problems a server found in a job document
// back at the files they were written in; prefix is where the job sits in
// the request (create_job in a schedule).
func documentError(doc *jobspec.Document, prefix string, err error) error {
	var we *wharf.Error
	if !errors.As(err, &we) || we.Code != wharf.EINVALID || (we.Field == "" && len(we.Details) == 0) {
		return err
	}
	details := we.Details
	if len(details) == 0 {
		details = []wharf.Error{*we}
	}
	var list yamlfile.ErrorList
	for _, d := range details {
		field := d.Field
		if prefix != "" {
			field = strings.TrimPrefix(strings.TrimPrefix(field, prefix), ".")
		}
		msg := d.Message
		if d.Field != "" {
			msg = strings.TrimPrefix(msg, d.Field+": ")
		}
		file, line, col := doc.Locate(field)
		list.Errors = append(list.Errors, &yamlfile.Error{File: file, Line: line, Column: col, Field: field, Msg: msg})
	}
	return &list
}
