package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
)

func jobsPath(ws string) string { return "/api/v1/workspaces/" + url.PathEscape(ws) + "/jobs" }

// jobView is the part of a job the CLI reads back.
type jobView struct {
	Name        string `json:"name"`
	Step        string `json:"step"`
	Type        string `json:"type"`
	DisplayName string `json:"display_name"`
	Status      string `json:"status"`
	Error       string `json:"error"`
	ReusedFrom  string `json:"reused_from"`
	Attempts    []struct {
		Number int `json:"number"`
	} `json:"attempts"`
	Services map[string]map[string]string `json:"services"`
	Steps    []jobView                    `json:"steps"`
}

// streamPoll is how often a followed job is polled.
const streamPoll = 300 * time.Millisecond

// streamJob follows a job to its end: each step's log as it grows, with
// the step's name in front of every line, and a progress line on stderr
// whenever a step changes status. It returns an error when the job does
// not complete, so `job create --stream` fails a CI step as az does.
func (a *app) streamJob(ctx context.Context, c *wharfhttp.Client, ws, name string) error {
	type logState struct {
		attempt int
		offset  int64
		partial string
	}
	logs := map[string]*logState{}
	statuses := map[string]string{}
	fmt.Fprintf(a.stderr, "RunId: %s\n", name)
	for {
		var j jobView
		if err := c.Do(ctx, "GET", jobsPath(ws)+"/"+url.PathEscape(name), nil, &j); err != nil {
			return err
		}
		if ep := j.Services["Studio"]["endpoint"]; ep != "" && len(statuses) == 0 {
			fmt.Fprintf(a.stderr, "Web View: %s\n", ep)
		}
		steps := j.Steps
		parent := j.Type == wharf.JobTypePipeline || j.Type == wharf.JobTypeSweep
		if !parent {
			j.Step = ""
			steps = []jobView{j}
		}
		changed := false
		for _, st := range steps {
			if statuses[st.Name] != st.Status {
				statuses[st.Name] = st.Status
				changed = true
			}
			ls := logs[st.Name]
			if ls == nil {
				ls = &logState{}
				logs[st.Name] = ls
			}
			for ls.attempt <= len(st.Attempts) && len(st.Attempts) > 0 {
				if ls.attempt == 0 {
					ls.attempt = 1
				}
				complete, err := a.pumpLog(ctx, c, ws, st, ls.attempt, &ls.offset, &ls.partial)
				if err != nil {
					return err
				}
				if !complete || ls.attempt == len(st.Attempts) {
					break
				}
				ls.attempt, ls.offset = ls.attempt+1, 0
			}
		}
		if changed && parent {
			a.progressLine(j.Name, steps)
		}
		if wharf.JobTerminal(j.Status) {
			// One more pass picks up the last lines written before the
			// status changed.
			for _, st := range steps {
				ls := logs[st.Name]
				if ls.attempt > 0 {
					if _, err := a.pumpLog(ctx, c, ws, st, ls.attempt, &ls.offset, &ls.partial); err != nil {
						return err
					}
				}
				if ls.partial != "" {
					a.logLine(st, ls.partial)
				}
			}
			fmt.Fprintf(a.stderr, "\nExecution Summary\n=================\nRunId: %s\nStatus: %s\n", j.Name, j.Status)
			for _, st := range j.Steps {
				line := fmt.Sprintf("  %-20s %s", st.Step, st.Status)
				if st.ReusedFrom != "" {
					line += " (reused from " + st.ReusedFrom + ")"
				} else if st.Error != "" && st.Status != wharf.JobCompleted {
					line += ": " + st.Error
				}
				fmt.Fprintln(a.stderr, line)
			}
			if j.Status != wharf.JobCompleted {
				msg := j.Error
				if msg == "" {
					msg = "the job ended " + j.Status
				}
				return wharf.Errorf("JobFailed", "job %s %s: %s", j.Name, strings.ToLower(j.Status), msg)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(streamPoll):
		}
	}
}

// pumpLog prints what an attempt's log gained since offset and reports
// whether the log is complete.
func (a *app) pumpLog(ctx context.Context, c *wharfhttp.Client, ws string, st jobView, attempt int, offset *int64, partial *string) (bool, error) {
	for {
		p := fmt.Sprintf("%s/%s/logs?attempt=%d&offset=%d", jobsPath(ws), url.PathEscape(st.Name), attempt, *offset)
		body, hdr, err := c.Get(ctx, p)
		if err != nil {
			return false, err
		}
		data, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			return false, err
		}
		next, _ := strconv.ParseInt(hdr.Get("X-Wharf-Log-Offset"), 10, 64)
		complete := hdr.Get("X-Wharf-Log-Complete") == "true"
		text := *partial + string(data)
		lines := strings.Split(text, "\n")
		*partial = lines[len(lines)-1]
		for _, l := range lines[:len(lines)-1] {
			a.logLine(st, l)
		}
		*offset = next
		if len(data) == 0 || complete {
			return complete, nil
		}
	}
}

func (a *app) logLine(st jobView, line string) {
	if st.Step != "" {
		fmt.Fprintf(a.stdout, "[%s] %s\n", st.Step, line)
		return
	}
	fmt.Fprintln(a.stdout, line)
}

// progressLine summarizes a pipeline's steps on stderr.
func (a *app) progressLine(name string, steps []jobView) {
	counts := map[string]int{}
	for _, st := range steps {
		counts[st.Status]++
	}
	done := counts[wharf.JobCompleted]
	parts := []string{fmt.Sprintf("%d/%d steps completed", done, len(steps))}
	for _, s := range []string{wharf.JobRunning, wharf.JobPreparing, wharf.JobQueued, wharf.JobFailed, wharf.JobCanceled} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], strings.ToLower(s)))
		}
	}
	fmt.Fprintf(a.stderr, "[%s] %s\n", name, strings.Join(parts, ", "))
}
