package main

import (
	"github.com/wharfml/wharf/output"
)

// print renders a command's result with the global -o and --query options.
func (a *app) print(v any) error {
	return output.Write(a.stdout, v, a.output, a.query)
}
