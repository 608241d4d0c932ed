package main

import "strings"

// multiValueFlags take several values after one flag in az (argparse
// nargs='+'), as in `--set a=1 b=2` or `--defaults workspace=W group=G`.
// Cobra takes one value per occurrence, so the extra values are rewritten
// into repeated occurrences before parsing.
var multiValueFlags = map[string]bool{
	"--set": true, "--defaults": true, "-d": true, "--scopes": true, "--tags": true, "--ids": true,
}

func expandMultiValueFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		out = append(out, a)
		if !multiValueFlags[a] || i+1 >= len(args) {
			continue
		}
		i++
		out = append(out, args[i])
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++
			out = append(out, a, args[i])
		}
	}
	return out
}
