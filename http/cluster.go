package http

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
	"github.com/wharfml/wharf/ray"
)

// ComputeAudience is the audience of a Ray-backed cluster's compute
// token, which its driver holds: it opens only the driver's routes of
// that one compute.
const ComputeAudience = "api://wharf/compute"

// maxPollWait bounds a driver's long poll.
const maxPollWait = 30 * time.Second

// clusterRoutes registers the routes of Ray-backed clusters: the driver
// program, the driver's poll and reports (compute token), and each
// task's files, log and outputs (the job's own token).
func (s *Server) clusterRoutes() {
	s.public("GET /api/v1/ray/driver.py", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/x-python; charset=utf-8")
		_, _ = w.Write(ray.DriverSource)
	})
	s.register("GET "+ray.ExecutablePath, AccessClusterNode, "", s.serveExecutable)
	base := "/api/v1/workspaces/{workspace}/computes/{name}"
	// A new driver has no credential yet: it proves itself with the
	// one-time code its Ray job was submitted with.
	s.public("POST "+base+"/driver/register", s.atScheduler(jsonAPI(s, s.registerDriver)))
	s.register("POST "+base+"/driver/poll", AccessCompute, "", s.atScheduler(jsonAPI(s, s.pollCluster)))
	s.register("POST "+base+"/driver/attempts/{attempt}", AccessCompute, "", s.atScheduler(jsonAPI(s, s.reportCluster)))
	s.authenticated("GET "+base+"/attempts/{attempt}/files", s.atScheduler(s.clusterFiles))
	s.authenticated("POST "+base+"/attempts/{attempt}/log", s.atScheduler(s.clusterLog))
	s.register("PUT "+base+"/attempts/{attempt}/outputs", AccessAuthenticated, "", s.atScheduler(s.clusterOutputs)).RawBody = true
}

// atScheduler answers a Ray driver's or task's request on the server that
// runs the scheduler: the attempts it hands out and follows are in its
// memory, their folders on its disk. Another server sharing the store
// passes the request on to it, so that a cluster may reach the servers
// through one load balancer, and keeps reaching the scheduler when it
// moves to another server.
func (s *Server) atScheduler(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.SchedulerPeer == nil || r.Header.Get(forwardedHeader) != "" {
			h(w, r)
			return
		}
		peer, err := s.SchedulerPeer(r.Context())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if peer == "" {
			h(w, r)
			return
		}
		target, err := url.Parse(peer)
		if err != nil {
			s.writeError(w, r, wharf.Errorf(wharf.EUNAVAILABLE, "the scheduler's server has no usable URL %q: %v", peer, err))
			return
		}
		proxy := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Header.Set(forwardedHeader, "1")
			},
			// A log or a poll's answer is passed on as it comes.
			FlushInterval: -1,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				s.writeError(w, r, wharf.Errorf(wharf.EUNAVAILABLE, "the server that runs the scheduler (%s) does not answer; send again: %v", peer, err))
			},
		}
		proxy.ServeHTTP(w, r)
	}
}

// pollRequest is a driver's poll.
type pollRequest struct {
	Driver string `json:"driver"`
	WaitMS int    `json:"wait_ms"`
}

// rayCompute returns the request's compute, which must be Ray-backed,
// and the cluster service.
func (s *Server) rayCompute(r *http.Request) (*wharf.Compute, wharf.ClusterDriverService, error) {
	if s.Clusters == nil {
		return nil, nil, wharf.Errorf(wharf.EUNAVAILABLE, "this server runs no Ray-backed clusters")
	}
	c, err := s.Store.FindCompute(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		return nil, nil, err
	}
	if c.Type != wharf.ComputeTypeRay {
		return nil, nil, wharf.Errorf(wharf.ENOTFOUND, "compute %s is not a ray cluster", c.Name)
	}
	return c, s.Clusters, nil
}

func (s *Server) pollCluster(r *http.Request, req *pollRequest) (int, *wharf.ClusterPoll, error) {
	c, svc, err := s.rayCompute(r)
	if err != nil {
		return 0, nil, err
	}
	if req.Driver == "" {
		return 0, nil, wharf.Errorf(wharf.EINVALID, "driver is required: the driver's Ray submission id").WithField("driver")
	}
	wait := min(time.Duration(req.WaitMS)*time.Millisecond, maxPollWait)
	p, err := svc.Poll(r.Context(), c, req.Driver, wait)
	return http.StatusOK, p, err
}

// registerRequest is a new driver's registration.
type registerRequest struct {
	Driver string `json:"driver"`
	Code   string `json:"code"`
}

// registerResponse carries the compute token a driver registered for.
type registerResponse struct {
	Token string `json:"token"`
}

func (s *Server) registerDriver(r *http.Request, req *registerRequest) (int, *registerResponse, error) {
	c, svc, err := s.rayCompute(r)
	if err != nil {
		return 0, nil, err
	}
	switch {
	case req.Driver == "":
		return 0, nil, wharf.Errorf(wharf.EINVALID, "driver is required: the driver's Ray submission id").WithField("driver")
	case req.Code == "":
		return 0, nil, wharf.Errorf(wharf.EINVALID, "code is required: the driver's one-time registration code").WithField("code")
	}
	tok, err := svc.Register(r.Context(), c, req.Driver, req.Code)
	if err != nil {
		s.Logger.Warn("driver registration refused", "workspace", c.Workspace, "compute", c.Name, "driver", req.Driver, "ip", clientIP(r))
		return 0, nil, err
	}
	return http.StatusOK, &registerResponse{Token: tok}, nil
}

func (s *Server) reportCluster(r *http.Request, rep *wharf.ClusterReport) (int, map[string]bool, error) {
	c, svc, err := s.rayCompute(r)
	if err != nil {
		return 0, nil, err
	}
	err = svc.Report(r.Context(), c, r.PathValue("attempt"), rep)
	return http.StatusOK, map[string]bool{"acknowledged": err == nil}, err
}

// attemptCaller checks that the caller is the job token of a job in the
// request's workspace, and returns that job: a task reaches only its own
// attempt's files.
func (s *Server) attemptCaller(r *http.Request) (string, error) {
	c := wharf.CallerFromContext(r.Context())
	if c == nil || c.Job == "" || c.JobWorkspace != r.PathValue("workspace") {
		return "", wharf.Errorf(wharf.EFORBIDDEN, "only a step's own job token reaches its attempt's files")
	}
	if s.Clusters == nil {
		return "", wharf.Errorf(wharf.EUNAVAILABLE, "this server runs no Ray-backed clusters")
	}
	return c.Job, nil
}

func (s *Server) clusterFiles(w http.ResponseWriter, r *http.Request) {
	job, err := s.attemptCaller(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	// The tar is written as it is read from disk; an error half way
	// through cuts the stream, which the task's tar reader notices.
	pw := &pendingWriter{w: w}
	if err := s.Clusters.Files(r.Context(), r.PathValue("workspace"), job, r.PathValue("attempt"), pw); err != nil && !pw.wrote {
		s.writeError(w, r, err)
	}
}

// pendingWriter remembers whether anything was written, so that an error
// before the first byte can still be answered as one.
type pendingWriter struct {
	w     http.ResponseWriter
	wrote bool
}

func (p *pendingWriter) Write(b []byte) (int, error) {
	p.wrote = true
	return p.w.Write(b)
}

func (s *Server) clusterLog(w http.ResponseWriter, r *http.Request) {
	job, err := s.attemptCaller(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	offset, err := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	if err != nil || offset < 0 {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "offset must be where the log's last chunk ended, a number").WithField("offset"))
		return
	}
	end, err := s.Clusters.AppendLog(r.Context(), r.PathValue("workspace"), job, r.PathValue("attempt"), offset, r.Body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"end": end})
}

func (s *Server) clusterOutputs(w http.ResponseWriter, r *http.Request) {
	job, err := s.attemptCaller(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Clusters.PutOutputs(r.Context(), r.PathValue("workspace"), job, r.PathValue("attempt"), r.Body); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// authenticateCompute checks a compute token for the request's compute.
// An ordinary token is refused as forbidden: it is valid, but these
// routes are the driver's alone.
func (s *Server) authenticateCompute(r *http.Request) (*wharf.Caller, error) {
	tok, ok := bearerToken(r)
	if !ok {
		return nil, wharf.Errorf(wharf.EUNAUTHENTICATED, "authentication required: the compute's driver sends its compute token")
	}
	claims, err := s.Tokens.Verify(tok, ComputeAudience)
	if err != nil {
		if _, other := s.Tokens.VerifyAny(tok, APIAudience, JobAudience); other == nil {
			return nil, wharf.Errorf(wharf.EFORBIDDEN, "only the driver of compute %s, with its compute token, may call this", r.PathValue("name"))
		}
		return nil, wharf.Errorf(wharf.EUNAUTHENTICATED, "the access token is invalid or expired")
	}
	if claims.AppID != auth.ComputeAppID || claims.Workspace != r.PathValue("workspace") || claims.Compute != r.PathValue("name") {
		return nil, wharf.Errorf(wharf.EFORBIDDEN, "this compute token is for compute %s in workspace %s", claims.Compute, claims.Workspace)
	}
	return &wharf.Caller{PrincipalID: claims.Subject, DisplayName: "driver of compute " + claims.Workspace + "/" + claims.Compute}, nil
}

// authenticateClusterNode accepts any compute's token, which drivers
// hold, or a job token, which each step's task holds: on a node the task
// is what fetches the server's executable, and it holds no other
// credential. A step on local compute runs that same program, so a job
// token learns nothing by it.
func (s *Server) authenticateClusterNode(r *http.Request) (*wharf.Caller, error) {
	if tok, ok := bearerToken(r); ok {
		if claims, err := s.Tokens.Verify(tok, ComputeAudience); err == nil && claims.AppID == auth.ComputeAppID {
			return &wharf.Caller{PrincipalID: claims.Subject, DisplayName: "driver of compute " + claims.Workspace + "/" + claims.Compute}, nil
		}
	}
	c, _, err := s.authenticate(r)
	if err != nil {
		return nil, err
	}
	if c.Job == "" {
		return nil, wharf.Errorf(wharf.EFORBIDDEN, "only a Ray-backed cluster's driver or a step's task fetches the server's executable")
	}
	return c, nil
}

// serveExecutable streams the server's own executable to a Ray node, with
// its digest and platform in headers so that the node checks what it got
// and refuses a program it cannot run.
func (s *Server) serveExecutable(w http.ResponseWriter, r *http.Request) {
	if s.Clusters == nil {
		s.writeError(w, r, wharf.Errorf(wharf.EUNAVAILABLE, "this server runs no Ray-backed clusters"))
		return
	}
	f, info, err := s.Clusters.OpenExecutable()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set(HeaderExecutableSHA256, info.SHA256)
	h.Set(HeaderExecutablePlatform, info.GOOS+"/"+info.GOARCH)
	h.Set("ETag", `"`+info.SHA256+`"`)
	http.ServeContent(w, r, "", time.Time{}, f)
}

// Headers of the server's executable as Ray nodes fetch it.
const (
	// HeaderExecutableSHA256 is the hex SHA-256 digest of the body.
	HeaderExecutableSHA256 = "X-Wharf-Sha256"
	// HeaderExecutablePlatform is GOOS/GOARCH of the program.
	HeaderExecutablePlatform = "X-Wharf-Platform"
)

// IssueComputeToken returns the credential of a Ray-backed compute's
// driver, valid for ttl.
func (s *Server) IssueComputeToken(workspace, compute string, ttl time.Duration) (string, error) {
	tok, _, err := s.Tokens.IssueCompute(s.TenantID, ComputeAudience, workspace, compute, ttl)
	return tok, err
}
