package arm

import (
	"net/http"
	"strconv"

	"github.com/wharfml/wharf"
)

// Compute targets as the SDK reads them: it checks that a pipeline's
// compute exists before submitting it.

// computeTypes are Azure's computeType for Wharf's compute types; any
// other is shown as AmlCompute, which is how jobs use it.
var computeTypes = map[string]string{wharf.ComputeTypeAML: "AmlCompute"}

// computeJSON is a compute target in ARM's shape.
func (h *Handler) computeJSON(r *http.Request, c *wharf.Compute) armVersion {
	typ := computeTypes[c.Type]
	if typ == "" {
		typ = "AmlCompute"
	}
	tags := c.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	state := c.ProvisioningState
	if state == "" {
		state = "Succeeded"
	}
	return armVersion{
		ID: workspaceID(r, c.Workspace) + "/computes/" + c.Name, Name: c.Name, Type: "Microsoft.MachineLearningServices/workspaces/computes",
		Properties: map[string]any{
			"computeType": typ, "computeLocation": c.Location, "provisioningState": state, "description": c.Description,
			"isAttachedCompute": false,
			"properties": map[string]any{
				"vmSize": c.Size, "vmPriority": "Dedicated",
				"scaleSettings": map[string]any{"minNodeCount": c.MinInstances, "maxNodeCount": c.MaxInstances,
					"nodeIdleTimeBeforeScaleDown": "PT" + strconv.Itoa(c.IdleTimeBeforeScaleDown) + "S"},
			},
		},
		SystemData: systemData("", c.CreatedAt),
	}
}

func (h *Handler) getCompute(w http.ResponseWriter, r *http.Request) {
	c, err := h.Store.FindCompute(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.computeJSON(r, c))
}

func (h *Handler) listComputes(w http.ResponseWriter, r *http.Request) {
	list, err := h.Store.ListComputes(r.Context(), r.PathValue("workspace"))
	writeList(h, w, r, list, err, h.computeJSON)
}
