package jobspec

import (
	"fmt"
	"regexp"
	"strings"
)

// placeholder is one ${{inputs.x}} or ${{outputs.y}} in a command.
type placeholder struct {
	port     string // "inputs" or "outputs"
	name     string
	optional bool // inside $[[ ]]
}

// segment is a piece of a parsed command: literal text, a placeholder, or an
// optional fragment made of both.
type segment struct {
	text     string
	ph       *placeholder
	fragment []segment
}

var placeholderRe = regexp.MustCompile(`^\s*(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\s*$`)

// parseCommand splits a command into text, placeholders and $[[ ]] fragments.
func parseCommand(cmd string) ([]segment, error) {
	segs, _, err := parseSegments(cmd, false)
	return segs, err
}

// parseSegments reads until the end of s or, inside a fragment, until the
// closing "]]", returning what follows it. Outside a fragment "]]" is plain
// text (shell tests such as [[ -f x ]] use it).
func parseSegments(s string, inFragment bool) ([]segment, string, error) {
	var out []segment
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			out = append(out, segment{text: text.String()})
			text.Reset()
		}
	}
	for len(s) > 0 {
		switch {
		case strings.HasPrefix(s, "${{"):
			end := strings.Index(s, "}}")
			if end < 0 {
				return nil, "", fmt.Errorf("unclosed \"${{\" in command")
			}
			expr := s[3:end]
			m := placeholderRe.FindStringSubmatch(expr)
			if m == nil {
				return nil, "", fmt.Errorf("unsupported expression \"${{%s}}\" in command (expected ${{inputs.<name>}} or ${{outputs.<name>}})", expr)
			}
			flush()
			out = append(out, segment{ph: &placeholder{port: m[1], name: m[2], optional: inFragment}})
			s = s[end+2:]
		case strings.HasPrefix(s, "$[["):
			if inFragment {
				return nil, "", fmt.Errorf("\"$[[\" fragments cannot be nested")
			}
			frag, rest, err := parseSegments(s[3:], true)
			if err != nil {
				return nil, "", err
			}
			flush()
			out = append(out, segment{fragment: frag})
			s = rest
		case inFragment && strings.HasPrefix(s, "]]"):
			flush()
			return out, s[2:], nil
		default:
			text.WriteByte(s[0])
			s = s[1:]
		}
	}
	if inFragment {
		return nil, "", fmt.Errorf("unclosed \"$[[\" in command")
	}
	flush()
	return out, "", nil
}

// placeholders lists every placeholder in parsed order.
func placeholders(segs []segment) []placeholder {
	var out []placeholder
	for _, s := range segs {
		switch {
		case s.ph != nil:
			out = append(out, *s.ph)
		case s.fragment != nil:
			out = append(out, placeholders(s.fragment)...)
		}
	}
	return out
}

// RenderCommand substitutes a command's placeholders. inputs holds the text
// of every input that is set (literal text or the local path of a data
// input); outputs the local path of every output. A $[[ ]] fragment is
// dropped when any input inside it is unset, and otherwise kept without its
// brackets. A placeholder outside a fragment naming an unset input or an
// unknown output is an error.
func RenderCommand(command string, inputs map[string]string, outputs map[string]string) (string, error) {
	segs, err := parseCommand(command)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, s := range segs {
		switch {
		case s.ph != nil:
			v, err := lookupPlaceholder(*s.ph, inputs, outputs)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
		case s.fragment != nil:
			b.WriteString(renderFragment(s.fragment, inputs, outputs))
		default:
			b.WriteString(s.text)
		}
	}
	return b.String(), nil
}

func renderFragment(frag []segment, inputs, outputs map[string]string) string {
	var b strings.Builder
	for _, s := range frag {
		if s.ph == nil {
			b.WriteString(s.text)
			continue
		}
		v, err := lookupPlaceholder(*s.ph, inputs, outputs)
		if err != nil {
			return ""
		}
		b.WriteString(v)
	}
	return b.String()
}

func lookupPlaceholder(p placeholder, inputs, outputs map[string]string) (string, error) {
	if p.port == "inputs" {
		if v, ok := inputs[p.name]; ok {
			return v, nil
		}
		return "", fmt.Errorf("command uses ${{inputs.%s}} but that input is not set", p.name)
	}
	if v, ok := outputs[p.name]; ok {
		return v, nil
	}
	return "", fmt.Errorf("command uses ${{outputs.%s}} but that output is not defined", p.name)
}

// checkCommand verifies every placeholder names a declared input or output
// and that $[[ ]] fragments hold only optional inputs.
func checkCommand(cmd string, inputs map[string]*InputSpec, outputs map[string]*OutputSpec) []string {
	segs, err := parseCommand(cmd)
	if err != nil {
		return []string{err.Error()}
	}
	var msgs []string
	for _, s := range segs {
		if s.fragment != nil {
			hasInput := false
			for _, p := range placeholders(s.fragment) {
				if p.port == "inputs" {
					hasInput = true
				}
			}
			if !hasInput {
				msgs = append(msgs, "a $[[ ]] fragment must contain an optional input")
			}
		}
	}
	for _, p := range placeholders(segs) {
		switch p.port {
		case "inputs":
			in, ok := inputs[p.name]
			switch {
			case !ok:
				msgs = append(msgs, fmt.Sprintf("command uses ${{inputs.%s}} but no input %q is declared", p.name, p.name))
			case p.optional && !in.Optional:
				msgs = append(msgs, fmt.Sprintf("input %q inside $[[ ]] must be optional", p.name))
			case !p.optional && in.Optional:
				msgs = append(msgs, fmt.Sprintf("optional input %q must be wrapped in $[[ ]]", p.name))
			}
		case "outputs":
			if _, ok := outputs[p.name]; !ok {
				msgs = append(msgs, fmt.Sprintf("command uses ${{outputs.%s}} but no output %q is declared", p.name, p.name))
			}
			if p.optional {
				msgs = append(msgs, fmt.Sprintf("output %q cannot appear inside $[[ ]]; only optional inputs may", p.name))
			}
		}
	}
	return msgs
}
