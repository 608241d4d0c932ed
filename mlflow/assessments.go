package mlflow

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/wharfml/wharf"
)

// Assessments (feedback and expectations) of a trace. Each is kept as the
// JSON object the client sent, with the ids, times and validity the
// server owns filled in; its value is any JSON and is never interpreted.

// newAssessment builds the assessment o describes, of trace traceID, with
// a fresh id unless it names one.
func newAssessment(o *args, ws, traceID string, now int64) (*wharf.Assessment, error) {
	name := o.required("assessment_name")
	id := o.str("assessment_id")
	created, ok := o.timestamp("create_time")
	if !ok {
		created = now
	}
	updated, ok := o.timestamp("last_update_time")
	if !ok {
		updated = created
	}
	if err := o.Err(); err != nil {
		return nil, err
	}
	if id == "" {
		hex, err := randomHex()
		if err != nil {
			return nil, err
		}
		id = "a-" + hex
	}
	doc := make(map[string]any, len(o.body)+4)
	for k, v := range o.body {
		doc[k] = v
	}
	doc["assessment_id"], doc["trace_id"] = id, traceID
	doc["create_time"], doc["last_update_time"] = timestampJSON(created), timestampJSON(updated)
	if _, ok := doc["valid"]; !ok {
		doc["valid"] = true
	}
	a := &wharf.Assessment{Workspace: ws, TraceID: traceID, ID: id, Name: name, CreateTime: created, LastUpdateTime: updated}
	return a, encodeAssessment(a, doc)
}

func encodeAssessment(a *wharf.Assessment, doc map[string]any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return wharf.Errorf(wharf.EINVALID, "assessment is not valid JSON: %s", err.Error())
	}
	a.Document = b
	return nil
}

// assessmentDoc decodes a stored assessment, numbers kept exact.
func assessmentDoc(a *wharf.Assessment) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(a.Document))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// findAssessment returns the assessment the request's path names.
func (h *Handler) findAssessment(r *http.Request, ws string) (*wharf.Assessment, error) {
	traceID, err := traceIDFromPath(r, "trace_id")
	if err != nil {
		return nil, err
	}
	id, err := traceIDFromPath(r, "assessment_id")
	if err != nil {
		return nil, err
	}
	return h.Store.FindAssessment(r.Context(), ws, traceID, id)
}

// assessmentResponse is the answer of every call that returns one.
func assessmentResponse(a *wharf.Assessment) any {
	return map[string]json.RawMessage{"assessment": a.Document}
}

// setValid marks an assessment valid or not: one that another overrides
// is no longer valid, and valid again when the override is deleted.
func (h *Handler) setValid(r *http.Request, ws, traceID, id string, valid bool) error {
	a, err := h.Store.FindAssessment(r.Context(), ws, traceID, id)
	if err != nil {
		return err
	}
	doc, err := assessmentDoc(a)
	if err != nil {
		return err
	}
	doc["valid"] = valid
	if err := encodeAssessment(a, doc); err != nil {
		return err
	}
	return h.Store.PutAssessment(r.Context(), a)
}

func (h *Handler) createAssessment(r *http.Request, ws string, a *args) (any, error) {
	traceID, err := traceIDFromPath(r, "trace_id")
	if err != nil {
		return nil, err
	}
	o, err := a.path("assessment")
	if err != nil {
		return nil, err
	}
	if given := o.str("trace_id"); given != "" && given != traceID {
		a.check(wharf.Errorf(wharf.EINVALID, "assessment.trace_id %q differs from the trace %q in the path", given, traceID).WithField("assessment.trace_id"))
	}
	overrides := o.str("overrides")
	o.body["assessment_id"] = nil // the server chooses it
	as, err := newAssessment(o, ws, traceID, nowMillis())
	if err != nil {
		return nil, err
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	if overrides != "" {
		if err := h.setValid(r, ws, traceID, overrides, false); err != nil {
			return nil, err
		}
	}
	if err := h.Store.PutAssessment(r.Context(), as); err != nil {
		return nil, err
	}
	return assessmentResponse(as), nil
}

func (h *Handler) getAssessment(r *http.Request, ws string, a *args) (any, error) {
	as, err := h.findAssessment(r, ws)
	if err != nil {
		return nil, err
	}
	return assessmentResponse(as), nil
}

// updateMaskPaths reads a FieldMask: protobuf's JSON form is one string of
// comma-separated lowerCamelCase paths; an object with a paths list is
// accepted too.
func (a *args) updateMaskPaths(name string) []string {
	if v, ok := a.scalar(name); ok {
		if s, isStr := v.(string); isStr {
			var out []string
			for _, p := range strings.Split(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, snakeCase(p))
				}
			}
			return out
		}
	}
	if o := a.object(name); o != nil {
		return o.strs("paths")
	}
	return nil
}

func snakeCase(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= 'A' && c <= 'Z' {
			b.WriteByte('_')
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}

// updateAssessment changes the fields the update mask names: the name,
// the value (of the same kind), the rationale, or metadata, merged.
func (h *Handler) updateAssessment(r *http.Request, ws string, a *args) (any, error) {
	o, err := a.path("assessment")
	if err != nil {
		return nil, err
	}
	paths := a.updateMaskPaths("update_mask")
	if err := a.Err(); err != nil {
		return nil, err
	}
	as, err := h.findAssessment(r, ws)
	if err != nil {
		return nil, err
	}
	doc, err := assessmentDoc(as)
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		switch p {
		case "assessment_name":
			as.Name = o.required("assessment_name")
			doc[p] = as.Name
		case "feedback", "expectation":
			if _, ok := doc[p]; !ok {
				return nil, wharf.Errorf(wharf.EINVALID, "Cannot update the %s of an assessment that has none: an assessment keeps its kind", p).WithField("assessment." + p)
			}
			v := o.object(p)
			if v == nil && a.Err() == nil {
				a.check(missingParam("assessment." + p))
			}
			if v != nil {
				doc[p] = v.body
			}
		case "rationale":
			doc[p] = o.str(p)
		case "metadata":
			merged, _ := doc[p].(map[string]any)
			if merged == nil {
				merged = map[string]any{}
			}
			for k, v := range o.stringMap(p) {
				merged[k] = v
			}
			doc[p] = merged
		default:
			a.check(wharf.Errorf(wharf.EINVALID, "Updating the field %q of an assessment is not supported; the mask may name assessment_name, feedback, expectation, rationale and metadata", p).WithField("update_mask"))
		}
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	as.LastUpdateTime = nowMillis()
	doc["last_update_time"] = timestampJSON(as.LastUpdateTime)
	if err := encodeAssessment(as, doc); err != nil {
		return nil, err
	}
	if err := h.Store.PutAssessment(r.Context(), as); err != nil {
		return nil, err
	}
	return assessmentResponse(as), nil
}

// deleteAssessment deletes an assessment; one it overrode is valid again.
func (h *Handler) deleteAssessment(r *http.Request, ws string, a *args) (any, error) {
	as, err := h.findAssessment(r, ws)
	if err != nil {
		return nil, err
	}
	traceID := as.TraceID
	if err := h.Store.DeleteAssessment(r.Context(), ws, traceID, as.ID); err != nil {
		return nil, err
	}
	if doc, err := assessmentDoc(as); err == nil {
		if overridden, _ := doc["overrides"].(string); overridden != "" {
			if err := h.setValid(r, ws, traceID, overridden, true); err != nil && !wharf.IsNotFound(err) {
				return nil, err
			}
		}
	}
	return nil, nil
}
