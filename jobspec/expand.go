package jobspec

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// scheduleExpr matches the expressions a schedule's job may hold, which
// each firing replaces: ${{name}} and ${{creation_context.trigger_time}}.
var scheduleExpr = regexp.MustCompile(`\$\{\{\s*(name|creation_context\.trigger_time)\s*\}\}`)

// TriggerTimeFormat is how ${{creation_context.trigger_time}} is written:
// ISO 8601 in UTC, to the second.
const TriggerTimeFormat = "2006-01-02T15:04:05Z"

// ExpandScheduleExpressions returns a schedule's job document with the
// expressions Azure resolves at each firing replaced:
// ${{creation_context.trigger_time}} by the time the schedule fired,
// wherever a text holds it, and ${{name}} by the name of the job the
// firing submits, everywhere but below an "outputs" mapping. An output's
// path keeps ${{name}}, which names the job (or pipeline step) that
// writes it when the output is saved, as in any job.
func ExpandScheduleExpressions(doc json.RawMessage, jobName string, trigger time.Time) (json.RawMessage, error) {
	if !scheduleExpr.Match(doc) {
		return doc, nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	when := trigger.UTC().Format(TriggerTimeFormat)
	v = expandValue(v, jobName, when, false)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimSpace(buf.Bytes())), nil
}

func expandValue(v any, jobName, when string, inOutputs bool) any {
	switch x := v.(type) {
	case string:
		return scheduleExpr.ReplaceAllStringFunc(x, func(m string) string {
			if strings.Contains(m, "trigger_time") {
				return when
			}
			if inOutputs {
				return m
			}
			return jobName
		})
	case map[string]any:
		for k, e := range x {
			x[k] = expandValue(e, jobName, when, inOutputs || k == "outputs")
		}
	case []any:
		for i, e := range x {
			x[i] = expandValue(e, jobName, when, inOutputs)
		}
	}
	return v
}

// expandScheduleNodes replaces a schedule job's expressions in the YAML
// below n, as ExpandScheduleExpressions does in its document, with
// stand-ins: a schedule is checked when it is created, and its firings'
// names and times are not known then.
func expandScheduleNodes(n *yaml.Node, inOutputs bool) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		n.Value = scheduleExpr.ReplaceAllStringFunc(n.Value, func(m string) string {
			switch {
			case strings.Contains(m, "trigger_time"):
				return scheduleCheckTime.Format(TriggerTimeFormat)
			case inOutputs:
				return m
			}
			return scheduleCheckName
		})
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandScheduleNodes(n.Content[i+1], inOutputs || n.Content[i].Value == "outputs")
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			expandScheduleNodes(c, inOutputs)
		}
	}
}

// The stand-ins for a firing's job name and time when a schedule is
// checked: any valid name and time serve.
const scheduleCheckName = "scheduled_job"

var scheduleCheckTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
