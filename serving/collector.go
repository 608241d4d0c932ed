package serving

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
	"github.com/wharfml/wharf/scoring"
)

// collectorSpec is a deployment's data_collector section.
type collectorSpec struct {
	SamplingRate *float64 `json:"sampling_rate"`
	RollingRate  string   `json:"rolling_rate"`
	Collections  map[string]struct {
		Enabled any `json:"enabled"`
	} `json:"collections"`
}

// enabled reads Azure's enabled flag, written 'True'/'False' as often as
// true/false.
func enabled(v any) bool {
	switch t := v.(type) {
	case bool:
		return t
	case string:
		return strings.EqualFold(t, "true")
	}
	return false
}

// Collects reports whether a deployment's definition (its Spec) collects
// the named collection (model_inputs or model_outputs; request and
// response count as them).
func Collects(spec json.RawMessage, collection string) bool {
	var def struct {
		DataCollector *collectorSpec `json:"data_collector"`
	}
	if json.Unmarshal(spec, &def) != nil || def.DataCollector == nil {
		return false
	}
	for name, col := range def.DataCollector.Collections {
		n := strings.ToLower(name)
		in := n == "model_inputs" || n == "request"
		out := n == "model_outputs" || n == "response"
		if ((collection == "model_inputs" && in) || (collection == "model_outputs" && out)) && enabled(col.Enabled) {
			return true
		}
	}
	return false
}

// collector writes scored requests and responses as JSON lines in the
// format of Azure ML's data collector (a record per request, its "data"
// the request's rows as objects), one file per collection and hour, and
// files each hour's data in the workspace datastore at
// modelDataCollector/<endpoint>/<deployment>/<collection>/YYYY/MM/DD/HH/
// <instance>.jsonl for drift monitoring, as Azure names its files by
// instance: servers sharing a store each write their own file, never the
// same one. The datastore copy is refreshed on every flush, so it lags by
// at most the flush interval.
type collector struct {
	store      wharf.Store
	blobs      wharf.BlobStore
	dir        string
	workspace  string
	endpoint   string
	deployment string
	// instance names this server's files.
	instance string
	sampling float64
	inputs   bool
	outputs  bool
	logger   *slog.Logger

	// flushing serializes flushes, so that an older copy of an hour is
	// never filed after a newer one.
	flushing sync.Mutex
	mu       sync.Mutex
	hours    map[string]*bytes.Buffer // path in the datastore -> the hour's lines
	dirty    map[string]bool
	stop     chan struct{}
	done     chan struct{}
}

// collectorFlush is how often collected data reaches the datastore.
const collectorFlush = 5 * time.Second

func newCollector(raw json.RawMessage, store wharf.Store, blobs wharf.BlobStore, dir, instance, workspace string, d *wharf.OnlineDeployment, logger *slog.Logger) (*collector, error) {
	var spec struct {
		DataCollector *collectorSpec `json:"data_collector"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil || spec.DataCollector == nil {
		return nil, err
	}
	dc := spec.DataCollector
	if instance == "" {
		instance = "data"
	}
	c := &collector{store: store, blobs: blobs, dir: dir, instance: instance, workspace: workspace, endpoint: d.Endpoint, deployment: d.Name,
		sampling: 1, logger: logger, hours: map[string]*bytes.Buffer{}, dirty: map[string]bool{},
		stop: make(chan struct{}), done: make(chan struct{})}
	if dc.SamplingRate != nil {
		c.sampling = *dc.SamplingRate
	}
	for name, col := range dc.Collections {
		switch strings.ToLower(name) {
		case "model_inputs", "request":
			c.inputs = c.inputs || enabled(col.Enabled)
		case "model_outputs", "response":
			c.outputs = c.outputs || enabled(col.Enabled)
		}
	}
	if !c.inputs && !c.outputs {
		return nil, nil
	}
	go c.loop()
	return c, nil
}

// record adds one scored request; sampling decides whether it is kept.
func (c *collector) record(body, answer []byte, status int, sig *scoring.Signature) {
	if c == nil || (c.sampling < 1 && rand.Float64() >= c.sampling) {
		return
	}
	now := time.Now().UTC()
	id := make([]byte, 8)
	_, _ = crand.Read(id)
	corr := hex.EncodeToString(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := func(collection string, data any) map[string]any {
		eid := make([]byte, 16)
		_, _ = crand.Read(eid)
		return map[string]any{"specversion": "1.0", "id": hex.EncodeToString(eid), "type": "azureml.inference." + collection,
			"datacontenttype": "application/json", "time": now.Format(time.RFC3339Nano), "correlationid": corr,
			"xrequestid": corr, "modelversion": "default", "endpoint": c.endpoint, "deployment": c.deployment, "data": data}
	}
	if c.inputs {
		c.append("model_inputs", now, rec("model_inputs", inputRows(body, sig)))
	}
	if c.outputs {
		r := rec("model_outputs", outputRows(answer))
		r["status"] = status
		c.append("model_outputs", now, r)
	}
}

// inputRows is a scoring request as the data collector records a
// DataFrame: an array of row objects, the columns by name: as the request
// names them, else as the model's signature does, else by position ("0",
// "1", ..., as pandas does). A body that is no table is kept as it came.
func inputRows(body []byte, sig *scoring.Signature) any {
	f, err := scoring.Decode(body)
	if err != nil || f.Rows == 0 {
		return jsonOrString(body)
	}
	if f.Columns == nil && sig != nil {
		// Check names the columns; a request it refuses was not
		// scored.
		_ = scoring.Check(f, sig)
	}
	rows := make([]map[string]any, f.Rows)
	for r := range rows {
		rows[r] = make(map[string]any, len(f.Data))
	}
	for c, col := range f.Data {
		name := strconv.Itoa(c)
		if c < len(f.Columns) {
			name = f.Columns[c]
		}
		for r, v := range col {
			rows[r][name] = v
		}
	}
	return rows
}

// PredictionColumn names the model's output in collected model_outputs
// when it answered a list of values rather than of records.
const PredictionColumn = "prediction"

// outputRows is a scoring answer as rows: a list of predictions (or
// {"predictions": [...]}) becomes one row per prediction, records stay
// records. Anything else is kept as it came.
func outputRows(answer []byte) any {
	var v any
	d := json.NewDecoder(bytes.NewReader(answer))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return jsonOrString(answer)
	}
	if m, ok := v.(map[string]any); ok {
		if p, ok := m["predictions"]; ok {
			v = p
		}
	}
	list, ok := v.([]any)
	if !ok {
		return jsonOrString(answer)
	}
	rows := make([]any, len(list))
	for i, x := range list {
		if rec, ok := x.(map[string]any); ok {
			rows[i] = rec
		} else {
			rows[i] = map[string]any{PredictionColumn: x}
		}
	}
	return rows
}

func (c *collector) append(collection string, t time.Time, rec map[string]any) {
	p := fmt.Sprintf("modelDataCollector/%s/%s/%s/%s/%s.jsonl", c.endpoint, c.deployment, collection, t.Format("2006/01/02/15"), c.instance)
	buf := c.hours[p]
	if buf == nil {
		// An hour may have begun under an earlier version of the
		// deployment or before a restart: go on from what was filed.
		buf = &bytes.Buffer{}
		if prev, err := os.ReadFile(c.localPath(p)); err == nil {
			buf.Write(prev)
		}
		c.hours[p] = buf
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return
	}
	buf.Write(line)
	buf.WriteByte('\n')
	c.dirty[p] = true
}

func jsonOrString(b []byte) any {
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	return string(b)
}

func (c *collector) loop() {
	defer close(c.done)
	t := time.NewTicker(collectorFlush)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			c.flush()
			return
		case <-t.C:
			c.flush()
		}
	}
}

// flush files every hour that gained lines, and forgets hours that are
// over once they are filed.
func (c *collector) flush() {
	c.flushing.Lock()
	defer c.flushing.Unlock()
	c.mu.Lock()
	pending := map[string][]byte{}
	for p := range c.dirty {
		pending[p] = bytes.Clone(c.hours[p].Bytes())
	}
	c.dirty = map[string]bool{}
	current := time.Now().UTC().Format("2006/01/02/15")
	for p := range c.hours {
		if !strings.Contains(p, current) && !c.dirtyLocked(p) {
			delete(c.hours, p)
		}
	}
	c.mu.Unlock()
	ctx := context.Background()
	for p, data := range pending {
		if err := c.file(ctx, p, data); err != nil {
			c.logger.Warn("data collector could not file its data", "path", p, "err", err)
			c.mu.Lock()
			c.dirty[p] = true
			c.mu.Unlock()
		}
	}
}

func (c *collector) localPath(p string) string {
	return filepath.Join(c.dir, "collected", c.workspace, filepath.FromSlash(p))
}

func (c *collector) dirtyLocked(p string) bool { return c.dirty[p] }

func (c *collector) file(ctx context.Context, p string, data []byte) error {
	local := c.localPath(p)
	if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(local, data, 0o600); err != nil {
		return err
	}
	digest, _, err := c.blobs.Put(ctx, bytes.NewReader(data))
	if err != nil {
		return err
	}
	datastore := wharf.DefaultDatastore
	if err := blob.WriteDatastorePath(ctx, c.store, c.blobs, c.workspace, datastore, p, digest, false); err != nil {
		return err
	}
	return c.store.PutDatastoreFile(ctx, &wharf.DatastoreFile{Workspace: c.workspace, Datastore: datastore, Path: p,
		Digest: digest, Kind: "file"})
}

// close files what is left and stops the flusher.
func (c *collector) close() {
	if c == nil {
		return
	}
	close(c.stop)
	<-c.done
}
