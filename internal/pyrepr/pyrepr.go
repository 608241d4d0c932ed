// Package pyrepr writes values as Python writes them, for text that must
// match what a Python program (az, MLflow's server) prints byte for byte.
package pyrepr

import (
	"fmt"
	"strings"
	"unicode"
)

// Quote is repr() of a str: single quotes unless the text holds a single
// quote and no double quote, and escapes for the unprintable.
func Quote(s string) string {
	quote := '\''
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		quote = '"'
	}
	var b strings.Builder
	b.WriteRune(quote)
	for _, r := range s {
		switch {
		case r == quote || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x7f || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteRune(quote)
	return b.String()
}

// StrList is repr() of a list of str: ['a', 'b'].
func StrList(list []string) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = Quote(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
