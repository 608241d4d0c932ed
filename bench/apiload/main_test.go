package main

import (
	"testing"
)

func TestIsWrite(t *testing.T) {
	for _, c := range []struct {
		mix  string
		want int
	}{{mixWrite, 1000}, {mixRead, 0}, {mixMixed, 200}} {
		writes := 0
		for i := range 1000 {
			if isWrite(c.mix, i) {
				writes++
			}
		}
		if writes != c.want {
			t.Errorf("%s: %d writes in 1000 requests, want %d", c.mix, writes, c.want)
		}
	}
}
