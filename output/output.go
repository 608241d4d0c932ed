// Package output renders command results the way the Azure CLI does, so CI
// scripts written against `az ml ... --query ... -o tsv` keep working when
// pointed at wharf: same format names, JMESPath queries and tsv/table rules.
package output

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Formats lists the accepted values of --output, in the order flag help
// should show them.
var Formats = []string{"json", "jsonc", "yaml", "table", "tsv", "none"}

// Write renders v to w in the given output format after applying the
// JMESPath query, if any, mirroring `az ... --query QUERY -o FORMAT`.
//
// v is converted through encoding/json, so struct tags apply. Key order
// follows az: json and yaml sort every object's keys; tsv sorts them too,
// except in objects built by a multiselect hash ({b: x, a: y}), which keep
// the order written in the query; table sorts them without a query and
// otherwise keeps the order of the source (struct field order, or a
// json.RawMessage's own text) or of the hash. Leaf values print as az's
// Python code prints them (True, None, 1.0, 1e-07) wherever az uses str().
// The format is matched case-insensitively and defaults to json. A null
// result prints nothing in any format, because az skips output entirely
// when a command (or its query) yields null. Nothing is written unless
// rendering succeeds.
func Write(w io.Writer, v any, format, query string) error {
	f := strings.ToLower(format)
	switch f {
	case "":
		f = "json"
	case "json", "jsonc", "yaml", "table", "tsv", "none":
	default:
		return fmt.Errorf("unsupported output format %q (allowed: json, jsonc, yaml, table, tsv, none)", format)
	}

	doc, err := toOrdered(v)
	if err != nil {
		return err
	}
	if query != "" {
		// Evaluated even for -o none so a bad query still fails the command.
		if doc, err = applyQuery(doc, query); err != nil {
			return err
		}
	}
	if f == "none" || doc == nil {
		return nil
	}

	var buf bytes.Buffer
	switch f {
	case "json", "jsonc":
		// jsonc only differs by colour on a terminal, which scripts never see.
		writeJSON(&buf, doc, 0)
		buf.WriteByte('\n')
	case "yaml":
		err = writeYAML(&buf, doc)
	case "tsv":
		writeTSV(&buf, doc)
	case "table":
		writeTable(&buf, doc, query == "")
	}
	if err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}
