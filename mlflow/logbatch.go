package mlflow

import (
	"bytes"
	"io"
	"net/http"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/wharfml/wharf"
)

// logBatchBody is a runs/log-batch request as decodeLogBatch reads it.
type logBatchBody struct {
	runID   string
	metrics []*wharf.Metric
	params  []*wharf.Param
	tags    map[string]string
}

// decodeLogBatch reads a runs/log-batch body in the form MLflow's clients
// send (one JSON object of run_id, run_uuid, and lists of metrics, params
// and tags, each an object of known fields with values of the expected
// types) straight into metrics, params and tags, and checks them as the
// general parser and logBatch would. A 1,000-metric body decoded through
// map[string]any costs about 26,000 allocations; this costs about one per
// metric.
//
// It answers ok only for a body that the general path would accept with the
// same result. Anything else (an unknown field, a null, a number given as a
// string, the bare NaN token, a key too long, a list over its limit, a
// duplicate name) is left to the general path, which also words its error,
// so a client sees the same answer either way.
func decodeLogBatch(body []byte) (b *logBatchBody, ok bool) {
	d := batchDecoder{dec: jsontext.NewDecoder(bytes.NewBuffer(body)), keys: map[string]string{}}
	if !d.open('{') {
		return nil, false
	}
	b = &logBatchBody{}
	var runUUID string
	var tagObjects int
	for d.dec.PeekKind() == '"' {
		name, _ := d.str()
		switch name {
		case "run_id":
			b.runID, ok = d.str()
		case "run_uuid":
			runUUID, ok = d.str()
		case "metrics":
			ok = d.list(func() bool {
				m, ok := d.metric()
				b.metrics = append(b.metrics, m)
				return ok && len(b.metrics) <= maxBatchMetrics
			})
		case "params":
			ok = d.list(func() bool {
				p, ok := d.param()
				b.params = append(b.params, p)
				return ok && len(b.params) <= maxBatchParams
			})
		case "tags":
			if b.tags == nil {
				b.tags = map[string]string{}
			}
			ok = d.list(func() bool {
				k, v, ok := d.tag()
				b.tags[k] = v // the last value of a key wins, as in MLflow
				tagObjects++
				return ok && tagObjects <= maxBatchTags
			})
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	if !d.close('}') {
		return nil, false
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return nil, false // more than one value
	}
	if b.runID == "" {
		b.runID = runUUID
	}
	if b.runID == "" || len(b.metrics)+len(b.params)+tagObjects > maxBatchItems {
		return nil, false
	}
	if len(b.tags) == 0 {
		b.tags = nil
	}
	// A key twice with one value is one param; with two values the batch
	// contradicts itself, which the general path reports.
	seen := make(map[string]string, len(b.params))
	params := b.params[:0]
	for _, p := range b.params {
		if v, dup := seen[p.Key]; dup {
			if v != p.Value {
				return nil, false
			}
			continue
		}
		seen[p.Key] = p.Value
		params = append(params, p)
	}
	b.params = params
	for _, m := range b.metrics {
		m.RunID = b.runID
	}
	return b, true
}

// batchDecoder reads the parts of a log-batch body. Each reader reports
// false for anything decodeLogBatch leaves to the general path.
type batchDecoder struct {
	dec *jsontext.Decoder
	// keys holds each metric key once: a batch repeats a few keys many
	// times.
	keys map[string]string
}

func (d *batchDecoder) open(kind jsontext.Kind) bool {
	t, err := d.dec.ReadToken()
	return err == nil && t.Kind() == kind
}

func (d *batchDecoder) close(kind jsontext.Kind) bool {
	return d.dec.PeekKind() == kind && d.open(kind)
}

// list reads a JSON array of objects, calling item for each; item reads
// the object's members.
func (d *batchDecoder) list(item func() bool) bool {
	if !d.open('[') {
		return false
	}
	for d.dec.PeekKind() == '{' {
		if !d.open('{') || !item() || !d.close('}') {
			return false
		}
	}
	return d.close(']')
}

// raw reads a value of the given kind and returns its text.
func (d *batchDecoder) raw(kind jsontext.Kind) ([]byte, bool) {
	v, err := d.dec.ReadValue()
	if err != nil || v.Kind() != kind {
		return nil, false
	}
	return v, true
}

// str reads a JSON string.
func (d *batchDecoder) str() (string, bool) {
	v, ok := d.raw('"')
	if !ok {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	u, err := jsontext.AppendUnquote(nil, v)
	return string(u), err == nil
}

// key reads a metric key, keeping one copy of each.
func (d *batchDecoder) key() (string, bool) {
	v, ok := d.raw('"')
	if !ok {
		return "", false
	}
	if bytes.IndexByte(v, '\\') >= 0 {
		u, err := jsontext.AppendUnquote(nil, v)
		return string(u), err == nil
	}
	v = v[1 : len(v)-1]
	if k, ok := d.keys[string(v)]; ok {
		return k, true
	}
	k := string(v)
	d.keys[k] = k
	return k, true
}

// number reads a JSON number's text; numbers are short, and the
// conversion to string for strconv stays on the stack.
func (d *batchDecoder) number() ([]byte, bool) {
	return d.raw('0')
}

// metric reads the members of a metric object, as readMetric would.
func (d *batchDecoder) metric() (*wharf.Metric, bool) {
	m := &wharf.Metric{}
	var hasValue, hasTimestamp, ok bool
	for d.dec.PeekKind() == '"' {
		name, _ := d.str()
		var n []byte
		switch name {
		case "key":
			m.Key, ok = d.key()
		case "value":
			if n, ok = d.number(); ok {
				m.Value, ok = parseFloat(string(n))
				hasValue = true
			}
		case "timestamp":
			if n, ok = d.number(); ok {
				m.Timestamp, ok = parseInt64(string(n))
				hasTimestamp = true
			}
		case "step":
			if n, ok = d.number(); ok {
				m.Step, ok = parseInt64(string(n))
			}
		case "model_id":
			m.ModelID, ok = d.str()
		case "dataset_name":
			m.DatasetName, ok = d.str()
		case "dataset_digest":
			m.DatasetDigest, ok = d.str()
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	ok = m.Key != "" && hasValue && hasTimestamp && checkKey("", m.Key) == nil
	return m, ok
}

// param reads the members of a param object, as readParam would.
func (d *batchDecoder) param() (*wharf.Param, bool) {
	k, v, ok := d.keyValue()
	if !ok || checkValue("", v, maxParamValue) != nil {
		return nil, false
	}
	return &wharf.Param{Key: k, Value: v}, true
}

// tag reads the members of a tag object, as readTag would.
func (d *batchDecoder) tag() (key, value string, ok bool) {
	key, value, ok = d.keyValue()
	return key, value, ok && checkValue("", value, maxTagValue) == nil
}

// keyValue reads an object of a required key and a value that must be
// given but may be empty.
func (d *batchDecoder) keyValue() (key, value string, ok bool) {
	hasValue := false
	for d.dec.PeekKind() == '"' {
		name, _ := d.str()
		switch name {
		case "key":
			key, ok = d.str()
		case "value":
			value, ok = d.str()
			hasValue = true
		default:
			ok = false
		}
		if !ok {
			return "", "", false
		}
	}
	return key, value, key != "" && hasValue && checkKey("", key) == nil
}

// serveLogBatch answers runs/log-batch. A body decodeLogBatch reads goes
// from its bytes to the store; any other goes through the general parser
// as every call does.
func (h *Handler) serveLogBatch(r *http.Request, ws string, body []byte) (out any, handled bool, err error) {
	b, ok := decodeLogBatch(body)
	if !ok {
		return nil, false, nil
	}
	if err := h.checkJobRunWrite(r, ws, "", b.runID); err != nil {
		return nil, true, h.notFoundIn(r, err)
	}
	return nil, true, h.notFoundIn(r, h.writeLogBatch(r, ws, b.runID, b.metrics, b.params, b.tags))
}

// writeLogBatch stores a checked batch. A job's token may not set the job
// tag through a batch's tags any more than through runs/set-tag: the tag is
// what keeps a job to its own runs.
func (h *Handler) writeLogBatch(r *http.Request, ws, runID string, metrics []*wharf.Metric, params []*wharf.Param, tags map[string]string) error {
	if _, ok := tags[jobTag]; ok {
		if err := h.checkJobRunWrite(r, ws, jobTag, ""); err != nil {
			return err
		}
	}
	if len(metrics) == 0 && len(params) == 0 && len(tags) == 0 {
		// Nothing to write, but the run must exist.
		_, err := h.Store.FindRun(r.Context(), ws, runID)
		return err
	}
	// The batch is the call's one write: its audit record goes with it.
	return h.Store.LogBatch(wharf.ArmAudit(r.Context(), http.StatusOK), ws, runID, metrics, params, tags)
}
