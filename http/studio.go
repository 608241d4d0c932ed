package http

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/http/studio"
	"github.com/wharfml/wharf/output"
)

// The studio is the web UI under /workspaces/{workspace}/...: pages
// rendered here from the templates of package studio, which work without
// JavaScript; scripts only add live updates and charts. A page route is
// registered with studioRoute, so it passes the same pipeline as the API
// (authentication by session cookie or bearer token, the route's action
// authorized at the workspace, mutating calls audited), and its errors are
// HTML: a signed-out browser is sent to the sign-in page.
//
// A page shows an action (a Cancel button, an edit form) only where
// studioPage.Can says the caller's roles grant it; the POST it sends is a
// route of its own, authorized again by the pipeline.

// studioSections are the navigation's entries, in order: the label and
// the path below /workspaces/{workspace}.
var studioSections = []struct{ Key, Label, Path string }{
	{"home", "Home", ""},
	{"jobs", "Jobs", "/jobs"},
	{"experiments", "Experiments", "/experiments"},
	{"models", "Models", "/models"},
	{"endpoints", "Endpoints", "/endpoints"},
	{"batch-endpoints", "Batch endpoints", "/batch-endpoints"},
	{"data", "Data", "/data"},
	{"environments", "Environments", "/environments"},
	{"components", "Components", "/components"},
	{"computes", "Compute", "/computes"},
	{"schedules", "Schedules", "/schedules"},
	{"audit", "Audit", "/audit"},
}

// studioPage is what every studio template reads.
type studioPage struct {
	// Title is the page's heading and the start of its <title>.
	Title string
	// Workspace is the workspace the page belongs to, "" outside one.
	Workspace string
	// Section is the key of the navigation entry to mark current.
	Section string
	// Caller is who is signed in (or holds the bearer token).
	Caller *wharf.Caller
	// CSRF is the session's token for the forms of the page; "" when the
	// caller came with a bearer token, which needs none.
	CSRF string
	// Workspaces are those the caller may read, for the picker.
	Workspaces []string
	// Data is the page's own content.
	Data any

	assignments []*wharf.RoleAssignment
}

// Can reports whether the caller's roles grant action in the page's
// workspace (at the server scope outside one). Templates call it to show
// a control only to those who may use it: {{if .Can "workspaces/jobs/cancel/action"}}.
func (p *studioPage) Can(action string) bool {
	scope := wharf.ServerScope
	if p.Workspace != "" {
		scope = wharf.WorkspaceScope(p.Workspace)
	}
	return wharf.AuthorizeCaller(p.Caller, p.assignments, action, scope)
}

// Sections is the navigation of the page's workspace; the audit log shows
// only to those who may read it.
func (p *studioPage) Sections() []studioNavItem {
	out := make([]studioNavItem, 0, len(studioSections))
	for _, sec := range studioSections {
		if sec.Key == "audit" && !p.Can(auditPageAction) {
			continue
		}
		out = append(out, studioNavItem{Label: sec.Label, Href: "/workspaces/" + p.Workspace + sec.Path, Current: sec.Key == p.Section})
	}
	return out
}

// studioNavItem is one navigation link.
type studioNavItem struct {
	Label, Href string
	Current     bool
}

// newStudioPage starts the page of a request that passed the pipeline:
// its caller, CSRF token, the workspaces for the picker and the role
// assignments that Can reads.
func (s *Server) newStudioPage(r *http.Request, title, section string) (*studioPage, error) {
	c := wharf.CallerFromContext(r.Context())
	if c == nil {
		return nil, wharf.Errorf(wharf.EUNAUTHENTICATED, "sign in first")
	}
	p := &studioPage{Title: title, Section: section, Caller: c, Workspace: r.PathValue("workspace")}
	if _, ok := bearerToken(r); !ok {
		if ck, err := r.Cookie(SessionCookieName); err == nil {
			p.CSRF = csrfToken(ck.Value) // the pipeline checked the session
		}
	}
	var err error
	p.assignments, err = s.Store.ListRoleAssignments(r.Context(), wharf.RoleAssignmentFilter{PrincipalID: c.PrincipalID})
	if err != nil {
		return nil, err
	}
	all, err := s.Store.ListWorkspaces(r.Context())
	if err != nil {
		return nil, err
	}
	for _, ws := range all {
		if wharf.AuthorizeCaller(c, p.assignments, wharf.ActionWorkspaceRead, wharf.WorkspaceScope(ws.Name)) {
			p.Workspaces = append(p.Workspaces, ws.Name)
		}
	}
	return p, nil
}

// studioRoute registers a studio page or form target: authorized like an
// API route, answering errors as HTML pages.
func (s *Server) studioRoute(pattern, action string, h http.HandlerFunc) {
	s.registerWith(s.writeStudioError, pattern, AccessScoped, action, h).Page = true
}

// studioTemplates maps a page name to its template, parsed with the layout.
var studioTemplates = sync.OnceValue(func() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(studioFuncs).ParseFS(studio.Templates, "templates/layout.html", "templates/_*.html"))
	names, err := fs.Glob(studio.Templates, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" || strings.HasPrefix(name, "_") {
			continue
		}
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(studio.Templates, n))
	}
	return out
})

var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// studioCSP lets pages load scripts, styles and images from this server
// only: no inline script or style can run, whatever a page displays.
const studioCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// setStudioHeaders sets the security headers of every studio answer.
func setStudioHeaders(h http.Header) {
	h.Set("Content-Security-Policy", studioCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}

// renderStudio renders page name with p into a buffer first, so that a
// template error answers 500 instead of half a page.
func (s *Server) renderStudio(w http.ResponseWriter, r *http.Request, status int, name string, p *studioPage) {
	t, ok := studioTemplates()[name]
	if !ok {
		s.writeStudioError(w, r, fmt.Errorf("no studio template %q", name))
		return
	}
	buf := renderBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer renderBuffers.Put(buf)
	if err := t.ExecuteTemplate(buf, "layout", p); err != nil {
		s.writeStudioError(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	h := w.Header()
	setStudioHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeStudioError answers a page's error: a signed-out browser asking
// for a page goes to the sign-in page and comes back after; any other
// error is a page that says what went wrong.
func (s *Server) writeStudioError(w http.ResponseWriter, r *http.Request, err error) {
	code := wharf.ErrorCode(err)
	if code == wharf.EUNAUTHENTICATED && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Del("WWW-Authenticate")
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	if code == wharf.EINTERNAL {
		s.Logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r.Context()), "err", err)
	}
	status := ErrorStatus(code)
	p := &studioPage{Title: http.StatusText(status), Data: wharf.ErrorMessage(err), Caller: wharf.CallerFromContext(r.Context())}
	buf := renderBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer renderBuffers.Put(buf)
	h := w.Header()
	setStudioHeaders(h)
	h.Set("Cache-Control", "no-store")
	if err := studioTemplates()["error"].ExecuteTemplate(buf, "layout", p); err != nil {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(wharf.ErrorMessage(err)))
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// staticFile is one embedded static file and its content hash.
type staticFile struct {
	data  []byte
	hash  string
	ctype string
}

var staticFiles = sync.OnceValue(func() map[string]*staticFile {
	out := map[string]*staticFile{}
	err := fs.WalkDir(studio.Static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(studio.Static, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		out[strings.TrimPrefix(p, "static/")] = &staticFile{data: data, hash: hex.EncodeToString(sum[:6]), ctype: ctype}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return out
})

// staticURL is the address of a static file with its content hash, which
// lets browsers cache it for good: a new build changes the address.
func staticURL(name string) (string, error) {
	f, ok := staticFiles()[name]
	if !ok {
		return "", fmt.Errorf("no static file %q", name)
	}
	return "/static/" + name + "?v=" + f.hash, nil
}

func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := staticFiles()[r.PathValue("path")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Query().Get("v") == f.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}

// handleWorkspacePicker is the target of the picker's form: it goes to
// the chosen workspace's home.
func (s *Server) handleWorkspacePicker(w http.ResponseWriter, r *http.Request) {
	ws := r.URL.Query().Get("workspace")
	if wharf.ValidateName("workspace", ws) != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/workspaces/"+ws, http.StatusSeeOther)
}

func (s *Server) registerStudioRoutes() {
	s.public("GET /static/{path...}", s.handleStatic)
	s.registerWith(s.writeStudioError, "GET /workspaces", AccessAuthenticated, "", s.handleWorkspacePicker).Page = true
	s.studioRoute("GET /workspaces/{workspace}", wharf.ActionWorkspaceRead, s.handleStudioHome)
	const ws = "/workspaces/{workspace}"
	s.studioRoute("GET "+ws+"/jobs", wharf.ActionJobRead, s.handleStudioJobs)
	s.studioRoute("GET "+ws+"/jobs/{name}", wharf.ActionJobRead, s.handleStudioJob)
	s.studioRoute("GET "+ws+"/jobs/{name}/graph", wharf.ActionJobRead, s.handleStudioJobGraph)
	s.studioRoute("POST "+ws+"/jobs/{name}/cancel", wharf.ActionJobCancel, s.handleStudioCancelJob)
	s.studioRoute("POST "+ws+"/jobs/{name}/rerun", wharf.ActionJobWrite, s.handleStudioRerunJob)
	s.studioRoute("GET "+ws+"/experiments", wharf.ActionExperimentRead, s.handleStudioExperiments)
	s.studioRoute("GET "+ws+"/experiments/{id}", wharf.ActionExperimentRead, s.handleStudioRuns)
	s.studioRoute("GET "+ws+"/runs/{id}", wharf.ActionExperimentRead, s.handleStudioRun)
	s.studioRoute("GET "+ws+"/runs/{id}/artifact", wharf.ActionArtifactRead, s.handleStudioArtifactFile)
	s.studioRoute("GET "+ws+"/compare", wharf.ActionExperimentRead, s.handleStudioCompare)
	s.studioRoute("GET "+ws+"/metric-history", wharf.ActionExperimentRead, s.handleStudioMetricHistory)
}

// studioFuncs are the helpers templates may call.
var studioFuncs = template.FuncMap{
	"static": staticURL,
	// status names the CSS class of a job status.
	"statusClass": func(status string) string { return "st-" + strings.ToLower(status) },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"ago": func(t time.Time) string { return ago(time.Since(t)) },
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// chartOf and compareChartOf address the history of a metric key
	// for the "chart" template: of one run, or of the runs of a
	// comparison (a query of run= values).
	"chartOf": func(ws, runID, key string) studioChart {
		return studioChart{Key: key, Src: "/workspaces/" + ws + "/metric-history?" + url.Values{"run": {runID}, "key": {key}}.Encode()}
	},
	"compareChartOf": func(ws, runsQuery, key string) studioChart {
		return studioChart{Key: key, Src: "/workspaces/" + ws + "/metric-history?" + runsQuery + "&" + url.Values{"key": {key}}.Encode()}
	},
	"bytes": output.Bytes,
	"base":  path.Base,
	// ms formats MLflow's milliseconds since the epoch.
	"ms": func(ms int64) string {
		if ms == 0 {
			return ""
		}
		return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05Z")
	},
}

// studioChart is one metric chart: its key and where its data is.
type studioChart struct{ Key, Src string }

// ago says how long ago something happened, to the largest whole unit.
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	default:
		return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
	}
}
