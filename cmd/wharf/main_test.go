package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestMain lets this test binary stand in for wharf when it runs under
// that name: a server started in the test process serves its own
// executable, this binary, to Ray nodes, which cache it as .../wharf and
// run steps' $WHARF and `wharf env build` with it.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "wharf" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
