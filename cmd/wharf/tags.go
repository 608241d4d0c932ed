package main

import (
	"strconv"
	"strings"
)

// parseTags reads az-style KEY=VALUE tags; nil means none were given.
func parseTags(tags []string) (map[string]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, t := range tags {
		for _, pair := range strings.Fields(t) {
			k, v, _ := strings.Cut(pair, "=")
			if k == "" {
				return nil, usagef("--tags takes KEY=VALUE pairs, got %q", pair)
			}
			out[k] = v
		}
	}
	return out, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
