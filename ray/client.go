// Package ray runs job steps on a Ray cluster. Client speaks Ray's Jobs
// REST API (the dashboard's /api/jobs/); Executor keeps one long-lived
// driver job per Ray-backed compute cluster, which runs each step attempt
// as a Ray task and reports back to the server over HTTP (see driver.py).
package ray

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wharfml/wharf/internal/jsoncall"
)

// Ray job statuses, as the Jobs API reports them.
const (
	StatusPending   = "PENDING"
	StatusRunning   = "RUNNING"
	StatusStopped   = "STOPPED"
	StatusSucceeded = "SUCCEEDED"
	StatusFailed    = "FAILED"
)

// Terminal reports whether a Ray job status is final.
func Terminal(status string) bool {
	return status == StatusStopped || status == StatusSucceeded || status == StatusFailed
}

// Client calls one Ray cluster's Jobs API.
type Client struct {
	// Address is the dashboard's URL, e.g. http://head:8265.
	Address string
	// HTTP is the client requests go through; nil means one with a 30 s
	// timeout.
	HTTP *http.Client
}

// JobRequest is the body of POST /api/jobs/.
type JobRequest struct {
	Entrypoint   string            `json:"entrypoint"`
	SubmissionID string            `json:"submission_id,omitempty"`
	RuntimeEnv   map[string]any    `json:"runtime_env,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	// EntrypointNumCPUs reserves CPUs for the driver itself.
	EntrypointNumCPUs float64 `json:"entrypoint_num_cpus,omitempty"`
}

// JobDetails is what GET /api/jobs/{id} returns, the fields Wharf reads.
type JobDetails struct {
	SubmissionID string            `json:"submission_id"`
	Status       string            `json:"status"`
	Message      string            `json:"message"`
	ErrorType    string            `json:"error_type"`
	Metadata     map[string]string `json:"metadata"`
	StartTime    int64             `json:"start_time"`
}

var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

// Version returns the cluster's Ray version, a check that the address
// is a Ray dashboard with the Jobs API.
func (c *Client) Version(ctx context.Context) (string, error) {
	var v struct {
		RayVersion string `json:"ray_version"`
	}
	if err := c.do(ctx, "GET", "/api/version", nil, &v); err != nil {
		return "", err
	}
	return v.RayVersion, nil
}

// Submit submits a job and returns its submission id.
func (c *Client) Submit(ctx context.Context, req *JobRequest) (string, error) {
	var resp struct {
		SubmissionID string `json:"submission_id"`
		JobID        string `json:"job_id"`
	}
	if err := c.do(ctx, "POST", "/api/jobs/", req, &resp); err != nil {
		return "", err
	}
	if resp.SubmissionID == "" {
		resp.SubmissionID = resp.JobID
	}
	return resp.SubmissionID, nil
}

// Job returns a job's details.
func (c *Client) Job(ctx context.Context, id string) (*JobDetails, error) {
	var d JobDetails
	if err := c.do(ctx, "GET", "/api/jobs/"+url.PathEscape(id), nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// Jobs lists the cluster's jobs.
func (c *Client) Jobs(ctx context.Context) ([]JobDetails, error) {
	var ds []JobDetails
	if err := c.do(ctx, "GET", "/api/jobs/", nil, &ds); err != nil {
		return nil, err
	}
	return ds, nil
}

// Stop asks for a job to stop.
func (c *Client) Stop(ctx context.Context, id string) error {
	return c.do(ctx, "POST", "/api/jobs/"+url.PathEscape(id)+"/stop", nil, nil)
}

// Logs returns a job's driver log.
func (c *Client) Logs(ctx context.Context, id string) (string, error) {
	var l struct {
		Logs string `json:"logs"`
	}
	err := c.do(ctx, "GET", "/api/jobs/"+url.PathEscape(id)+"/logs", nil, &l)
	return l.Logs, err
}

// HTTPError is a Jobs API answer with an error status.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("Ray Jobs API answered %d: %s", e.Status, e.Body)
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	api := jsoncall.Call{
		Client:      c.http(),
		Unreachable: func(err error) error { return fmt.Errorf("Ray cluster at %s: %w", c.Address, err) },
		Failed: func(resp *http.Response) error {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
			return &HTTPError{Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
		},
		MaxAnswer: 4 << 20,
	}
	return api.Do(ctx, method, strings.TrimRight(c.Address, "/")+path, body, out)
}
