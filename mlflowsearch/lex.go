package mlflowsearch

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind int

const (
	tWord     tokKind = iota // bare identifier or keyword
	tNumber                  // numeric literal, text is the literal
	tString                  // '...' (text is the unescaped content)
	tDQString                // "..." value or quoted key
	tBacktick                // `...` quoted key
	tOp                      // run of comparison characters, validated later
	tLParen
	tRParen
	tComma
	tOther // any other single character; always a syntax error later
)

type token struct {
	kind       tokKind
	text       string
	start, end int // byte offsets into the source, for error messages
}

func (t token) quoted() bool {
	return t.kind == tString || t.kind == tDQString || t.kind == tBacktick
}

// isKeyword reports whether t is the bare word kw in any letter case, as SQL
// keywords are case-insensitive in MLflow's grammar.
func (t token) isKeyword(kw string) bool {
	return t.kind == tWord && strings.EqualFold(t.text, kw)
}

func isOpChar(c byte) bool {
	return c == '<' || c == '>' || c == '=' || c == '!' || c == '~'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isWordStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }

// isWordRune allows the punctuation seen in real metric and tag names
// ("val-loss", "train/acc", "mlflow.runName") to be written unquoted.
func isWordRune(r rune) bool {
	return isWordStart(r) || unicode.IsDigit(r) || r == '.' || r == '-' || r == '/' || r == ':'
}

// lex splits src into tokens. It fails only on an unterminated quote, and
// then returns the offset of the opening quote; everything else is left for
// the parser to reject with a message that names the clause.
func lex(src string) (toks []token, unterminated int) {
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '\'' || c == '"' || c == '`':
			text, end, ok := scanQuoted(src, i)
			if !ok {
				return nil, i
			}
			kind := tString
			if c == '"' {
				kind = tDQString
			} else if c == '`' {
				kind = tBacktick
			}
			toks = append(toks, token{kind, text, i, end})
			i = end
		case startsNumber(src, i):
			end := scanNumber(src, i)
			toks = append(toks, token{tNumber, src[i:end], i, end})
			i = end
		case isOpChar(c):
			j := i
			for j < len(src) && isOpChar(src[j]) {
				j++
			}
			toks = append(toks, token{tOp, src[i:j], i, j})
			i = j
		case c == '(':
			toks = append(toks, token{tLParen, "(", i, i + 1})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, ")", i, i + 1})
			i++
		case c == ',':
			toks = append(toks, token{tComma, ",", i, i + 1})
			i++
		default:
			r, w := utf8.DecodeRuneInString(src[i:])
			if !isWordStart(r) {
				toks = append(toks, token{tOther, src[i : i+w], i, i + w})
				i += w
				continue
			}
			j := i + w
			for j < len(src) {
				r, w := utf8.DecodeRuneInString(src[j:])
				if !isWordRune(r) {
					break
				}
				j += w
			}
			toks = append(toks, token{tWord, src[i:j], i, j})
			i = j
		}
	}
	return toks, -1
}

// scanQuoted reads the quoted literal opening at src[i]. A backslash escapes
// the quote character or itself, and a doubled quote stands for one quote
// (SQL style); any other backslash is kept literally so Windows paths and
// regex-looking values survive unchanged.
func scanQuoted(src string, i int) (text string, end int, ok bool) {
	q := src[i]
	var b strings.Builder
	j := i + 1
	for j < len(src) {
		c := src[j]
		switch {
		case c == '\\' && j+1 < len(src) && (src[j+1] == q || src[j+1] == '\\'):
			b.WriteByte(src[j+1])
			j += 2
		case c == q && j+1 < len(src) && src[j+1] == q:
			b.WriteByte(q)
			j += 2
		case c == q:
			return b.String(), j + 1, true
		default:
			b.WriteByte(c)
			j++
		}
	}
	return "", 0, false
}

func startsNumber(src string, i int) bool {
	c := src[i]
	if isDigit(c) {
		return true
	}
	if c == '-' || c == '+' {
		i++
		if i >= len(src) {
			return false
		}
		c = src[i]
		if isDigit(c) {
			return true
		}
	}
	return c == '.' && i+1 < len(src) && isDigit(src[i+1])
}

// scanNumber returns the end of the numeric literal starting at i, which
// startsNumber has accepted: [+-] digits [. digits] [e [+-] digits].
func scanNumber(src string, i int) int {
	j := i
	if src[j] == '-' || src[j] == '+' {
		j++
	}
	for j < len(src) && isDigit(src[j]) {
		j++
	}
	if j < len(src) && src[j] == '.' {
		j++
		for j < len(src) && isDigit(src[j]) {
			j++
		}
	}
	if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
		k := j + 1
		if k < len(src) && (src[k] == '-' || src[k] == '+') {
			k++
		}
		if k < len(src) && isDigit(src[k]) {
			for k < len(src) && isDigit(src[k]) {
				k++
			}
			j = k
		}
	}
	return j
}
