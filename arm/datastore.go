package arm

import (
	"net/http"
	"time"

	"github.com/wharfml/wharf"
)

// The datastores of a workspace as the SDK reads them: every one an
// Azure Blob container of Wharf's own account (see storage.go), whose
// secret is a shared access signature Wharf issues, never a key.

// datastoreJSON is a datastore in ARM's shape.
func (h *Handler) datastoreJSON(r *http.Request, d *wharf.Datastore) armVersion {
	tags := d.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return armVersion{
		ID:   workspaceID(r, d.Workspace) + "/datastores/" + d.Name,
		Name: d.Name, Type: "Microsoft.MachineLearningServices/workspaces/datastores",
		Properties: map[string]any{
			"datastoreType": "AzureBlob", "accountName": Account, "containerName": containerName(d.Workspace, d.Name),
			"endpoint": h.storageSuffix(), "protocol": "https", "isDefault": d.IsDefault,
			"credentials":                   map[string]string{"credentialsType": "Sas"},
			"serviceDataAccessAuthIdentity": "None",
			"description":                   d.Description, "tags": tags, "properties": map[string]string{},
		},
		SystemData: systemData("", d.CreatedAt),
	}
}

func (h *Handler) getDatastore(w http.ResponseWriter, r *http.Request) {
	d, err := h.Store.FindDatastore(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.datastoreJSON(r, d))
}

func (h *Handler) listDatastores(w http.ResponseWriter, r *http.Request) {
	list, err := h.Store.ListDatastores(r.Context(), r.PathValue("workspace"))
	if err == nil && r.URL.Query().Get("isDefault") == "true" {
		var defaults []*wharf.Datastore
		for _, d := range list {
			if d.IsDefault {
				defaults = append(defaults, d)
			}
		}
		list = defaults
	}
	writeList(h, w, r, list, err, h.datastoreJSON)
}

// maxSecretLifetime bounds how long a datastore's signature lasts,
// whatever the caller asks.
const maxSecretLifetime = 24 * time.Hour

// listSecrets answers a datastore's secret: a signature that may read,
// add, create, write and list anywhere in its container, for the hours
// the request asks (one by default, at most a day).
func (h *Handler) listSecrets(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ExpireAfterHours int `json:"expireAfterHours"`
	}
	if r.ContentLength != 0 {
		if err := decodeBody(r, &body); err != nil {
			h.WriteError(w, r, err)
			return
		}
	}
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	if _, err := h.Store.FindDatastore(r.Context(), ws, name); err != nil {
		h.WriteError(w, r, err)
		return
	}
	life := time.Hour
	if body.ExpireAfterHours > 0 {
		life = min(time.Duration(body.ExpireAfterHours)*time.Hour, maxSecretLifetime)
	}
	token, err := h.sasKeys().sign(r.Context(), sas{Permissions: "racwl", Expiry: time.Now().Add(life).Truncate(time.Second),
		Resource: containerName(ws, name), ObjectID: callerID(r)})
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"secretsType": "Sas", "sasToken": token})
}

// callerID is the principal a request authenticated as.
func callerID(r *http.Request) string {
	if c := wharf.CallerFromContext(r.Context()); c != nil {
		return c.PrincipalID
	}
	return ""
}
