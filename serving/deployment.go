package serving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/scoring"
)

// Protocol is the scoring protocol of a request, from its route.
type Protocol int

// Scoring protocols.
const (
	// ProtocolScore is POST .../score: Azure ML and MLflow bodies, or the
	// raw body for a score.py.
	ProtocolScore Protocol = iota
	// ProtocolV2 is the Open Inference Protocol's infer route.
	ProtocolV2
)

// Runtime scores requests for one deployment.
type Runtime interface {
	// Score answers a request body.
	Score(ctx context.Context, body []byte, p Protocol) ([]byte, error)
	// Platform names the runtime for model metadata ("wharf_native",
	// "mlflow_pyfunc", "score_py").
	Platform() string
	// Restarts counts worker restarts, for metrics; 0 for in-process ones.
	Restarts() int
	Close() error
}

// RuntimeFactory starts the runtime of a deployment. Starting may take a
// while (materializing the model, building an environment, loading).
type RuntimeFactory interface {
	Start(ctx context.Context, workspace string, d *wharf.OnlineDeployment) (Runtime, error)
}

// RequestError is a request the model cannot take; it is answered 400.
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }

// UserError is an error raised by the user's model or scoring code; it is
// answered 424, as Azure ML answers a container's failure.
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

// deploymentSettings are the parts of a deployment's spec the router
// enforces.
type deploymentSettings struct {
	InstanceCount   int `json:"instance_count"`
	RequestSettings struct {
		RequestTimeoutMS                 int `json:"request_timeout_ms"`
		MaxConcurrentRequestsPerInstance int `json:"max_concurrent_requests_per_instance"`
	} `json:"request_settings"`
}

// deploymentState is one deployment's runtime and limits. A changed
// deployment gets a new state; the previous one serves until the new one
// is ready, then drains and stops.
type deploymentState struct {
	def       *wharf.OnlineDeployment
	workspace string
	timeout   time.Duration
	slots     chan struct{}
	metrics   *metrics

	readyCh chan struct{}
	rt      Runtime
	err     error
	// collector keeps requests and answers when data_collector is on.
	collector *collector

	mu       sync.Mutex
	prev     *deploymentState
	inflight sync.WaitGroup
	retired  bool
}

func newDeploymentState(d *wharf.OnlineDeployment, m *metrics, workspace string) (*deploymentState, error) {
	var s deploymentSettings
	if len(d.Spec) > 0 {
		if err := json.Unmarshal(d.Spec, &s); err != nil {
			return nil, fmt.Errorf("deployment %s: %w", d.Name, err)
		}
	}
	instances := max(s.InstanceCount, 1)
	perInstance := max(s.RequestSettings.MaxConcurrentRequestsPerInstance, 1)
	timeout := time.Duration(s.RequestSettings.RequestTimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &deploymentState{def: d, workspace: workspace, timeout: timeout, metrics: m,
		slots: make(chan struct{}, instances*perInstance), readyCh: make(chan struct{})}, nil
}

// start starts the runtime in the background; prev, the state it
// replaces, keeps serving until then.
func (d *deploymentState) start(rt *Router, prev *deploymentState) {
	d.prev = prev
	go func() {
		r, err := rt.Runtimes.Start(context.Background(), d.workspace, d.def)
		d.rt, d.err = r, err
		close(d.readyCh)
		if err != nil {
			rt.Logger.Error("deployment failed to start", "endpoint", d.def.Endpoint, "deployment", d.def.Name, "err", err)
			return
		}
		d.mu.Lock()
		old := d.prev
		d.prev = nil
		d.mu.Unlock()
		if old != nil {
			old.retire()
		}
	}()
}

// ready reports whether the runtime has started successfully.
func (d *deploymentState) ready() bool {
	select {
	case <-d.readyCh:
		return d.err == nil
	default:
		return false
	}
}

// Status is "Creating" while the runtime starts, then "Succeeded" or
// "Failed" with the reason.
func (d *deploymentState) status() (string, error) {
	select {
	case <-d.readyCh:
		if d.err != nil {
			return "Failed", d.err
		}
		return "Succeeded", nil
	default:
		return "Creating", nil
	}
}

func (d *deploymentState) platform() string {
	if d.ready() {
		return d.rt.Platform()
	}
	return ""
}

// retire stops the runtime once the requests it is serving are done.
func (d *deploymentState) retire() {
	d.mu.Lock()
	if d.retired {
		d.mu.Unlock()
		return
	}
	d.retired = true
	d.mu.Unlock()
	go func() {
		<-d.readyCh
		d.inflight.Wait()
		if d.rt != nil {
			_ = d.rt.Close()
		}
		d.collector.close()
	}()
}

// serve runs one request through the deployment and returns the status
// it answered with.
func (d *deploymentState) serve(ctx context.Context, w http.ResponseWriter, body []byte, path string) int {
	if !d.ready() {
		d.mu.Lock()
		prev := d.prev
		d.mu.Unlock()
		if prev != nil && prev.ready() {
			return prev.serve(ctx, w, body, path)
		}
		if status, _ := d.status(); status == "Failed" {
			return writeError(w, http.StatusServiceUnavailable, "deployment %s failed to start: %s", d.def.Name, d.err)
		}
		return writeError(w, http.StatusServiceUnavailable, "deployment %s is not ready yet", d.def.Name)
	}
	select {
	case d.slots <- struct{}{}:
	default:
		return writeError(w, http.StatusTooManyRequests,
			"deployment %s is at its limit of %d concurrent requests (max_concurrent_requests_per_instance x instance_count)",
			d.def.Name, cap(d.slots))
	}
	d.inflight.Add(1)
	defer func() {
		<-d.slots
		d.inflight.Done()
	}()
	d.metrics.inflight.WithLabelValues(d.workspace, d.def.Endpoint, d.def.Name).Inc()
	defer d.metrics.inflight.WithLabelValues(d.workspace, d.def.Endpoint, d.def.Name).Dec()
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	proto := ProtocolScore
	if strings.HasSuffix(path, "/infer") {
		proto = ProtocolV2
	}
	out, err := d.rt.Score(ctx, body, proto)
	d.metrics.restarts.WithLabelValues(d.workspace, d.def.Endpoint, d.def.Name).Set(float64(d.rt.Restarts()))
	var reqErr *RequestError
	var userErr *UserError
	switch {
	case err == nil:
		var sig *scoring.Signature
		if s, ok := d.rt.(interface{ Signature() *scoring.Signature }); ok {
			sig = s.Signature()
		}
		d.collector.record(body, out, http.StatusOK, sig)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(DeploymentHeader, d.def.Name)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
		return http.StatusOK
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		return writeError(w, http.StatusRequestTimeout, "request exceeded request_timeout_ms (%d ms)", d.timeout.Milliseconds())
	case errors.As(err, &reqErr):
		return writeError(w, http.StatusBadRequest, "%s", reqErr.Msg)
	case errors.As(err, &userErr):
		return writeError(w, http.StatusFailedDependency, "the model failed: %s", userErr.Msg)
	case errors.Is(err, context.Canceled):
		return writeError(w, 499, "the client went away")
	}
	return writeError(w, http.StatusBadGateway, "deployment %s could not answer: %s", d.def.Name, err)
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) int {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
	return status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func sortedNames(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// DeploymentStatus reports a deployment's provisioning state as the router
// sees it, starting the deployment if nothing has asked for it yet.
func (rt *Router) DeploymentStatus(ctx context.Context, workspace, endpoint, name string) (string, error) {
	st, err := rt.state(ctx, workspace, endpoint)
	if err != nil {
		return "", err
	}
	d := st.deployments[name]
	if d == nil {
		return "", wharf.Errorf(wharf.ENOTFOUND, "deployment %q not found in online endpoint %q", name, endpoint)
	}
	return d.status()
}
