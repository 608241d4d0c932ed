package main

import (
	"github.com/wharfml/wharf/yamlfile"
)

// loadYAML reads a resource file, applies --set overrides in order, and
// decodes it strictly into v: unknown keys and type mismatches come back
// naming file, line and field.
func loadYAML(file string, sets []string, v any) (*yamlfile.Document, error) {
	doc, err := yamlfile.Load(file)
	if err != nil {
		return nil, err
	}
	for _, s := range sets {
		if err := doc.Set(s); err != nil {
			return nil, err
		}
	}
	if err := yamlfile.Decode(doc, v); err != nil {
		return nil, err
	}
	return doc, nil
}
