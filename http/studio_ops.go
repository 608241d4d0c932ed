package http

import (
	"fmt"
	"html/template"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// The studio's operations pages: models, online and batch endpoints, data
// assets, environments, components, compute, schedules and the audit log
// of a workspace.

// auditPageAction guards the audit log page. The log shows what every
// principal did; only those who may grant access (Owners) see it, so the
// page asks for the right to write role assignments rather than to read.
const auditPageAction = wharf.ActionRoleAssignmentWrite

// registerStudioOpsRoutes registers the operations pages below
// /workspaces/{workspace}.
func (s *Server) registerStudioOpsRoutes() {
	const ws = "/workspaces/{workspace}"
	s.studioRoute("GET "+ws+"/models", wharf.ActionModelRead, s.pageModels)
	s.studioRoute("GET "+ws+"/models/{name}", wharf.ActionModelRead, s.pageModel)
	s.studioRoute("GET "+ws+"/endpoints", wharf.ActionOnlineEndpointRead, s.pageEndpoints)
	s.studioRoute("GET "+ws+"/endpoints/{name}", wharf.ActionOnlineEndpointRead, s.pageEndpoint)
	s.studioRoute("GET "+ws+"/endpoints/{name}/series", wharf.ActionOnlineEndpointRead, s.pageEndpointSeries)
	s.studioRoute("POST "+ws+"/endpoints/{name}/traffic", wharf.ActionOnlineEndpointWrite, s.pageSetTraffic)
	s.studioRoute("POST "+ws+"/endpoints/{name}/test", wharf.ActionOnlineEndpointScore, s.pageTestEndpoint)
	s.studioRoute("GET "+ws+"/batch-endpoints", wharf.ActionBatchEndpointRead, s.pageBatchEndpoints)
	s.studioRoute("GET "+ws+"/batch-endpoints/{name}", wharf.ActionBatchEndpointRead, s.pageBatchEndpoint)
	s.studioRoute("GET "+ws+"/data", wharf.ActionDataRead, s.pageAssets(wharf.AssetData))
	s.studioRoute("GET "+ws+"/data/{name}", wharf.ActionDataRead, s.pageAsset(wharf.AssetData))
	s.studioRoute("GET "+ws+"/environments", wharf.ActionEnvironmentRead, s.pageAssets(wharf.AssetEnvironment))
	s.studioRoute("GET "+ws+"/environments/{name}", wharf.ActionEnvironmentRead, s.pageAsset(wharf.AssetEnvironment))
	s.studioRoute("GET "+ws+"/components", wharf.ActionComponentRead, s.pageAssets(wharf.AssetComponent))
	s.studioRoute("GET "+ws+"/components/{name}", wharf.ActionComponentRead, s.pageAsset(wharf.AssetComponent))
	s.studioRoute("GET "+ws+"/computes", wharf.ActionComputeRead, s.pageComputes)
	s.studioRoute("GET "+ws+"/schedules", wharf.ActionScheduleRead, s.pageSchedules)
	s.studioRoute("GET "+ws+"/audit", auditPageAction, s.pageAudit)
}

// The operations pages' template helpers join the studio's before any
// template is parsed (studioTemplates parses on first use).
func init() { maps.Copy(studioFuncs, opsFuncs) }

var opsFuncs = template.FuncMap{
	"join":         strings.Join,
	"sortKeys":     sortedKeys,
	"short":        shortDigest,
	"whenPtr":      formatTimePtr,
	"endpointTabs": func() []string { return endpointTabOrder },
	"title":        func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
	"modelName":    func(ref string) string { n, _ := modelRef(ref); return n },
	"modelVersion": func(ref string) string { _, v := modelRef(ref); return v },
	"jobList":      func(ws string, jobs []*wharf.Job) jobListData { return jobListData{Workspace: ws, Jobs: jobs} },
	"f0":           func(v float64) string { return fmt.Sprintf("%.0f", v) },
	"f1":           func(v float64) string { return fmt.Sprintf("%.1f", v) },
}

// jobListData is what a page's job table reads.
type jobListData struct {
	Workspace string
	Jobs      []*wharf.Job
}

// formatTimePtr shows an optional time as the studio's "when" does.
func formatTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func sortedKeys(m any) []string {
	var keys []string
	switch m := m.(type) {
	case map[string]string:
		keys = sortedMapKeys(m)
	case map[string]int:
		keys = sortedMapKeys(m)
	case map[string]float64:
		keys = sortedMapKeys(m)
	}
	return keys
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
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
