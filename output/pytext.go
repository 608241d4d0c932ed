package output

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/wharfml/wharf/internal/pyrepr"
)

// az is written in Python and prints values with str(), repr() and the json
// module, so the text renderers spell leaf values as Python would spell the
// value json.loads gives for the same JSON.

// pyStr returns str(v) for the Python value v stands for: strings bare,
// True/False, None, numbers as Python prints them, containers as repr.
func pyStr(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return pyNumber(string(t))
	case bool:
		if t {
			return "True"
		}
		return "False"
	case nil:
		return "None"
	}
	return pyRepr(v)
}

// pyRepr returns repr(v); tabulate prints nested values in a table cell
// this way.
func pyRepr(v any) string {
	switch t := v.(type) {
	case string:
		return pyQuote(t)
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *object:
		parts := make([]string, len(t.members))
		for i, m := range t.members {
			parts[i] = pyQuote(m.key) + ": " + pyRepr(m.val)
		}
		body := "{" + strings.Join(parts, ", ") + "}"
		if t.hash {
			// A multiselect hash is an OrderedDict in az; this is its repr
			// from Python 3.12 on, which current az releases ship with.
			if len(parts) == 0 {
				return "OrderedDict()"
			}
			return "OrderedDict(" + body + ")"
		}
		return body
	}
	return pyStr(v)
}

// pyQuote is repr() of a str.
func pyQuote(s string) string { return pyrepr.Quote(s) }

// pyNumber spells JSON number text as Python's str() spells the int or float
// json.loads makes of it: "3" stays "3", "1.50" becomes "1.5", "1e-7"
// becomes "1e-07". NaN and the infinities (json.Number texts only a query's
// arithmetic produces) become nan, inf and -inf.
func pyNumber(text string) string {
	switch text {
	case "NaN":
		return "nan"
	case "Infinity":
		return "inf"
	case "-Infinity":
		return "-inf"
	case "-0":
		return "0" // an int, and Python ints have no negative zero
	}
	if !strings.ContainsAny(text, ".eE") {
		return text
	}
	f, _ := strconv.ParseFloat(text, 64) // out of range gives ±Inf, as in Python
	return pyFloat(f)
}

// pyFloat is Python's repr() of a float: the shortest round-tripping digits,
// in positional form with at least one decimal when the decimal exponent is
// in [-4, 16), otherwise as d.ddde±XX.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	sign := ""
	if math.Signbit(f) {
		sign, f = "-", -f
	}
	if f == 0 {
		return sign + "0.0"
	}
	mant, exp, _ := strings.Cut(strconv.FormatFloat(f, 'e', -1, 64), "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	if point := x + 1; point > -4 && point <= 16 {
		switch {
		case point <= 0:
			return sign + "0." + strings.Repeat("0", -point) + digits
		case point >= len(digits):
			return sign + digits + strings.Repeat("0", point-len(digits)) + ".0"
		default:
			return sign + digits[:point] + "." + digits[point:]
		}
	}
	m := digits[:1]
	if len(digits) > 1 {
		m += "." + digits[1:]
	}
	esign := "+"
	if x < 0 {
		esign, x = "-", -x
	}
	return fmt.Sprintf("%s%se%s%02d", sign, m, esign, x)
}

// isPySpace reports what Python's str.isspace() calls whitespace, which
// adds the ASCII separators U+001C..U+001F to Go's unicode.IsSpace.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}
