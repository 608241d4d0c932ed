package http

import (
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// The studio's operations pages: models, online and batch endpoints, data
// assets, environments, components, compute, schedules and the audit log
// of a workspace. They are rendered on the server and need no script;
// each is a route of the request pipeline, so the caller's session (or
// token) is authorized for the page's action before its handler runs.

//go:embed studio/templates/ops/*.html
var opsTemplateFS embed.FS

var opsPages = template.Must(template.New("ops").Funcs(template.FuncMap{
	"since":        humanSince,
	"when":         formatWhen,
	"millis":       func(ms int64) string { return formatWhen(time.UnixMilli(ms)) },
	"join":         strings.Join,
	"sortKeys":     sortedKeys,
	"pct":          func(v float64) string { return fmt.Sprintf("%.0f%%", v*100) },
	"short":        shortDigest,
	"pathq":        url.PathEscape,
	"navEntries":   func() []navEntry { return opsNav },
	"tabNames":     func() []string { return []string{"details", "test", "logs", "monitoring"} },
	"title":        func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
	"modelName":    func(ref string) string { n, _ := modelRef(ref); return n },
	"modelVersion": func(ref string) string { _, v := modelRef(ref); return v },
	"jobList":      func(ws string, jobs []*wharf.Job) jobListData { return jobListData{Workspace: ws, Jobs: jobs} },
}).ParseFS(opsTemplateFS, "studio/templates/ops/*.html"))

// navEntry is a link of the workspace navigation.
type navEntry struct{ Path, Label string }

// opsNav lists the operations pages in the order the navigation shows.
var opsNav = []navEntry{
	{"models", "Models"}, {"onlineEndpoints", "Endpoints"}, {"batchEndpoints", "Batch endpoints"},
	{"data", "Data"}, {"environments", "Environments"}, {"components", "Components"},
	{"computes", "Compute"}, {"schedules", "Schedules"}, {"audit", "Audit log"},
}

// jobListData is what the job table of a page reads.
type jobListData struct {
	Workspace string
	Jobs      []*wharf.Job
}

// auditPageAction guards the audit log page. The log shows what every
// principal did; only those who may grant access (Owners) see it, so the
// page asks for the right to write role assignments rather than to read.
const auditPageAction = wharf.ActionRoleAssignmentWrite

// registerStudioOpsRoutes registers the operations pages below
// /workspaces/{workspace}.
func (s *Server) registerStudioOpsRoutes() {
	g := s.Group("/workspaces/{workspace}", s.writePageError)
	g.Route("GET /models", wharf.ActionModelRead, s.pageModels)
	g.Route("GET /models/{name}", wharf.ActionModelRead, s.pageModel)
	g.Route("GET /onlineEndpoints", wharf.ActionOnlineEndpointRead, s.pageEndpoints)
	g.Route("GET /onlineEndpoints/{name}", wharf.ActionOnlineEndpointRead, s.pageEndpoint)
	g.Route("POST /onlineEndpoints/{name}/traffic", wharf.ActionOnlineEndpointWrite, s.pageSetTraffic)
	g.Route("POST /onlineEndpoints/{name}/test", wharf.ActionOnlineEndpointScore, s.pageTestEndpoint)
	g.Route("GET /batchEndpoints", wharf.ActionBatchEndpointRead, s.pageBatchEndpoints)
	g.Route("GET /batchEndpoints/{name}", wharf.ActionBatchEndpointRead, s.pageBatchEndpoint)
	g.Route("GET /data", wharf.ActionDataRead, s.pageAssets(wharf.AssetData))
	g.Route("GET /data/{name}", wharf.ActionDataRead, s.pageAsset(wharf.AssetData))
	g.Route("GET /environments", wharf.ActionEnvironmentRead, s.pageAssets(wharf.AssetEnvironment))
	g.Route("GET /environments/{name}", wharf.ActionEnvironmentRead, s.pageAsset(wharf.AssetEnvironment))
	g.Route("GET /components", wharf.ActionComponentRead, s.pageAssets(wharf.AssetComponent))
	g.Route("GET /components/{name}", wharf.ActionComponentRead, s.pageAsset(wharf.AssetComponent))
	g.Route("GET /computes", wharf.ActionComputeRead, s.pageComputes)
	g.Route("GET /schedules", wharf.ActionScheduleRead, s.pageSchedules)
	g.Route("GET /audit", auditPageAction, s.pageAudit)
}

// opsPage is what every operations page template reads.
type opsPage struct {
	Title     string
	Workspace string
	// Nav is the navigation entry the page belongs to.
	Nav  string
	CSRF string
	// May holds the actions the caller may perform in the workspace, so a
	// page shows only the controls that would work.
	May            map[string]bool
	Error, Message string
	Data           any
}

// newOpsPage starts a page for the request's workspace; may lists the
// actions whose controls the page may show.
func (s *Server) newOpsPage(r *http.Request, title, nav string, may ...string) (*opsPage, error) {
	p := &opsPage{Title: title, Workspace: r.PathValue("workspace"), Nav: nav, May: map[string]bool{}}
	if ck, err := r.Cookie(SessionCookieName); err == nil && ck.Value != "" {
		p.CSRF = csrfToken(ck.Value)
	}
	if len(may) == 0 {
		return p, nil
	}
	c := wharf.CallerFromContext(r.Context())
	if c == nil {
		return p, nil
	}
	as, err := s.Store.ListRoleAssignments(r.Context(), wharf.RoleAssignmentFilter{PrincipalID: c.PrincipalID})
	if err != nil {
		return nil, err
	}
	for _, a := range may {
		p.May[a] = wharf.AuthorizeCaller(c, as, a, scopeOf(r))
	}
	return p, nil
}

// renderOps writes an operations page with the security headers of every
// page: no framing, no caching, nothing loaded from elsewhere.
func (s *Server) renderOps(w http.ResponseWriter, status int, name string, p *opsPage) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := opsPages.ExecuteTemplate(w, name, p); err != nil {
		s.Logger.Error("page render failed", "page", name, "err", err)
	}
}

// writePageError answers a page request's error as a page: a caller that
// is not signed in gets a link to the sign-in page that brings it back.
func (s *Server) writePageError(w http.ResponseWriter, r *http.Request, err error) {
	code := wharf.ErrorCode(err)
	if code == wharf.EINTERNAL {
		s.Logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r.Context()), "err", err)
	}
	p := &opsPage{Title: http.StatusText(ErrorStatus(code)), Workspace: r.PathValue("workspace"), Error: wharf.ErrorMessage(err)}
	if code == wharf.EUNAUTHENTICATED {
		p.Title = "Sign in"
		p.Data = "/signin?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	s.renderOps(w, ErrorStatus(code), "error", p)
}

func humanSince(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "in " + (-d).Round(time.Second).String()
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func formatWhen(v any) string {
	switch t := v.(type) {
	case time.Time:
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	case *time.Time:
		if t == nil {
			return ""
		}
		return formatWhen(*t)
	}
	return ""
}

func sortedKeys(m any) []string {
	var keys []string
	switch m := m.(type) {
	case map[string]string:
		for k := range m {
			keys = append(keys, k)
		}
	case map[string]int:
		for k := range m {
			keys = append(keys, k)
		}
	case map[string]float64:
		for k := range m {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// shortDigest shows a content digest by its first hex digits, as image
// ids are shown.
func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
