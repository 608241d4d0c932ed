package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestProgressInALogIsAFewLines: off a terminal, a transfer reported in
// thousands of small steps writes its first line and its last, not a line
// (or a carriage return) per step.
func TestProgressInALogIsAFewLines(t *testing.T) {
	var errb bytes.Buffer
	a := newApp(strings.NewReader(""), &bytes.Buffer{}, &errb)
	p := a.newProgress("Uploading data", 1<<30)
	var done int64
	for range 4096 {
		done += 1 << 18
		p.update(done, "")
	}
	p.done(done, "")
	lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
	if len(lines) != 2 || strings.Contains(errb.String(), "\r") {
		t.Fatalf("progress wrote %d lines:\n%q", len(lines), errb.String())
	}
	if lines[0] != "Uploading data: 256.0 KiB/1.0 GiB (0%)" || lines[1] != "Uploading data: 1.0 GiB/1.0 GiB (100%)" {
		t.Errorf("lines %q", lines)
	}

	// A file that grew while it was sent shows what was sent, not a
	// count past its total.
	errb.Reset()
	p = a.newProgress("Uploading data", 1000)
	p.done(1500, "")
	if got := strings.TrimSpace(errb.String()); got != "Uploading data: 1.5 KiB" {
		t.Errorf("grown file: %q", got)
	}
}
