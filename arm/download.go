package arm

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/jobspec"
)

// jobs.download finds a job's outputs in two lookups before it downloads
// them through the Blob API: the run's data, whose outputs name an asset
// id each, and the datastore URI of each data asset id. Wharf's asset id
// of an output is its datastore URI, which the second lookup returns as
// it is.

// DataPrefix is where the data plane of data assets is served.
const DataPrefix = "/data/v1.0"

// registerDownloads registers the two lookups.
func (h *Handler) registerDownloads(group func(prefix string) Group) {
	group(HistoryPrefix+Workspaces).Route("POST /{workspace}/rundata", wharf.ActionJobRead, h.runData)
	group(DataPrefix+Workspaces).Route("POST /{workspace}/dataversion/batchGetResolvedUris", wharf.ActionDataRead, h.resolvedURIs)
}

// runData answers a run's metadata with its outputs: each a folder or a
// file at its datastore path, where the job wrote it.
func (h *Handler) runData(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RunID string `json:"runId"`
	}
	err := decodeBody(r, &body)
	if err == nil && body.RunID == "" {
		err = wharf.Errorf(wharf.EINVALID, "runId is required").WithField("runId")
	}
	var j *wharf.Job
	if err == nil {
		j, err = h.Store.FindJob(r.Context(), r.PathValue("workspace"), body.RunID)
	}
	var datastore string
	if err == nil {
		datastore, err = h.defaultDatastore(r)
	}
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	var doc struct {
		Outputs map[string]struct {
			Path string `json:"path"`
		} `json:"outputs"`
	}
	_ = json.Unmarshal(j.Document, &doc) // a job stored without a document has default paths
	outputs := map[string]any{}
	for name, o := range j.Outputs {
		uri := "azureml://datastores/" + datastore + "/paths/azureml/" + j.Name + "/" + name
		if p := doc.Outputs[name].Path; p != "" && !strings.Contains(p, "${{") {
			if _, err := jobspec.ParseDatastoreURI(p); err == nil {
				uri = strings.TrimRight(p, "/")
			}
		}
		typ := "uri_folder"
		if o.Kind == "file" {
			typ = "uri_file"
		}
		outputs[name] = map[string]string{"assetId": uri, "type": typ}
	}
	writeJSON(w, http.StatusOK, map[string]any{"runMetadata": map[string]any{
		"runId": j.Name, "runUuid": j.Name, "status": j.Status, "outputs": outputs,
	}})
}

// resolvedURIs answers the datastore URI of each asset id asked for: the
// ids runData gives are those URIs.
func (h *Handler) resolvedURIs(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Values []string `json:"values"`
	}
	if err := decodeBody(r, &body); err != nil {
		h.WriteError(w, r, err)
		return
	}
	out := map[string]any{}
	for i, id := range body.Values {
		if _, err := jobspec.ParseDatastoreURI(id); err != nil {
			h.WriteError(w, r, wharf.Errorf(wharf.EINVALID, "values[%d]: %q is not a job output's datastore URI", i, id).WithField("values"))
			return
		}
		out[id] = map[string]string{"uri": id, "type": "UriFolder"}
	}
	writeJSON(w, http.StatusOK, map[string]any{"values": out})
}
