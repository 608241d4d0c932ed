package jobspec

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf/yamlfile"
)

// Input and output types.
const (
	TypeString  = "string"
	TypeInteger = "integer"
	TypeNumber  = "number"
	TypeBoolean = "boolean"

	TypeURIFile     = "uri_file"
	TypeURIFolder   = "uri_folder"
	TypeMLTable     = "mltable"
	TypeMLflowModel = "mlflow_model"
	TypeCustomModel = "custom_model"
	TypeTritonModel = "triton_model"
)

// Input and output modes.
const (
	ModeROMount      = "ro_mount"
	ModeDownload     = "download"
	ModeDirect       = "direct"
	ModeEvalMount    = "eval_mount"
	ModeEvalDownload = "eval_download"
	ModeRWMount      = "rw_mount"
	ModeUpload       = "upload"
)

// IsLiteralType reports whether t is one of string, integer, number, boolean.
func IsLiteralType(t string) bool {
	switch t {
	case TypeString, TypeInteger, TypeNumber, TypeBoolean:
		return true
	}
	return false
}

// IsDataType reports whether t is a data (file, folder, table or model) type.
func IsDataType(t string) bool {
	switch t {
	case TypeURIFile, TypeURIFolder, TypeMLTable, TypeMLflowModel, TypeCustomModel, TypeTritonModel:
		return true
	}
	return false
}

// normalizeType maps the legacy "path" type onto uri_folder, which is what
// it meant.
func normalizeType(t string) string {
	if t == "path" {
		return TypeURIFolder
	}
	return t
}

// Value is a typed literal input value.
type Value struct {
	// Type is string, integer, number or boolean.
	Type string
	// Raw is the text as written in the YAML (for strings, the string).
	Raw   string
	Int   int64
	Float float64
	Bool  bool
}

// String returns the literal text form, see LiteralText.
func (v Value) String() string { return LiteralText(v) }

// LiteralText returns the text a value takes when substituted into a
// command: booleans as True/False (what Azure ML passes), integers in
// decimal, numbers as written when that is a plain decimal, strings as is.
func LiteralText(v Value) string {
	switch v.Type {
	case TypeBoolean:
		if v.Bool {
			return "True"
		}
		return "False"
	case TypeInteger:
		return strconv.FormatInt(v.Int, 10)
	case TypeNumber:
		if v.Raw != "" {
			if f, err := strconv.ParseFloat(v.Raw, 64); err == nil && f == v.Float {
				return v.Raw
			}
		}
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	}
	return v.Raw
}

// StringValue returns a string-typed Value.
func StringValue(s string) Value { return Value{Type: TypeString, Raw: s} }

// literalFromNode types a YAML scalar the way YAML does: quoted text is a
// string even when it looks like a number.
func literalFromNode(n *yaml.Node) (Value, error) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return Value{}, fmt.Errorf("expected a literal value")
	}
	switch n.ShortTag() {
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return Value{}, fmt.Errorf("integer %s is out of range", n.Value)
		}
		return Value{Type: TypeInteger, Raw: n.Value, Int: i}, nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return Value{}, fmt.Errorf("invalid number %q", n.Value)
		}
		return Value{Type: TypeNumber, Raw: n.Value, Float: f}, nil
	case "!!bool":
		b, ok := yamlfile.ParseBool(n.Value)
		if !ok {
			return Value{}, fmt.Errorf("invalid boolean %q", n.Value)
		}
		return Value{Type: TypeBoolean, Raw: n.Value, Bool: b}, nil
	case "!!null":
		return Value{}, fmt.Errorf("value is empty")
	}
	return StringValue(n.Value), nil
}

// coerce converts v into an input of type to. strict refuses strings for
// integer, number and boolean inputs, which is the rule for literals written
// directly against an input; values coming from a pipeline input are strings
// by the time they reach a step, so for them (and for defaults) the text is
// parsed instead.
func coerce(v Value, to string, strict bool) (Value, error) {
	switch to {
	case TypeString:
		return StringValue(LiteralText(v)), nil
	case TypeInteger:
		switch v.Type {
		case TypeInteger:
			return v, nil
		case TypeNumber:
			return Value{}, fmt.Errorf("expected an integer, got the number %s", LiteralText(v))
		case TypeString:
			if !strict {
				if i, err := strconv.ParseInt(strings.TrimSpace(v.Raw), 10, 64); err == nil {
					return Value{Type: TypeInteger, Raw: v.Raw, Int: i}, nil
				}
				return Value{}, fmt.Errorf("expected an integer, got %q", v.Raw)
			}
		}
	case TypeNumber:
		switch v.Type {
		case TypeNumber:
			return v, nil
		case TypeInteger:
			return Value{Type: TypeNumber, Raw: v.Raw, Float: float64(v.Int)}, nil
		case TypeString:
			if !strict {
				f, err := strconv.ParseFloat(strings.TrimSpace(v.Raw), 64)
				if err == nil && !math.IsNaN(f) {
					return Value{Type: TypeNumber, Raw: strings.TrimSpace(v.Raw), Float: f}, nil
				}
				return Value{}, fmt.Errorf("expected a number, got %q", v.Raw)
			}
		}
	case TypeBoolean:
		switch v.Type {
		case TypeBoolean:
			return v, nil
		case TypeString:
			if !strict {
				if b, ok := yamlfile.ParseBool(v.Raw); ok {
					return Value{Type: TypeBoolean, Raw: v.Raw, Bool: b}, nil
				}
				return Value{}, fmt.Errorf("expected a boolean, got %q", v.Raw)
			}
		}
	default:
		return Value{}, fmt.Errorf("a literal cannot be bound to an input of type %s", to)
	}
	if v.Type == TypeString {
		return Value{}, fmt.Errorf("type mismatch: a string literal (%q) cannot be bound to %s input; write it unquoted", v.Raw, to)
	}
	return Value{}, fmt.Errorf("type mismatch: a %s literal (%s) cannot be bound to %s input", v.Type, LiteralText(v), to)
}

// checkRange applies an input definition's min, max and enum to v.
func checkRange(v Value, in *InputSpec) error {
	switch v.Type {
	case TypeInteger, TypeNumber:
		f := v.Float
		if v.Type == TypeInteger {
			f = float64(v.Int)
		}
		if in.Min != nil && f < *in.Min {
			return fmt.Errorf("value %s is below the minimum %s", LiteralText(v), formatNumber(*in.Min))
		}
		if in.Max != nil && f > *in.Max {
			return fmt.Errorf("value %s is above the maximum %s", LiteralText(v), formatNumber(*in.Max))
		}
	case TypeString:
		if len(in.Enum) > 0 {
			for _, e := range in.Enum {
				if e == v.Raw {
					return nil
				}
			}
			return fmt.Errorf("value %q is not one of %s", v.Raw, strings.Join(quoteAll(in.Enum), ", "))
		}
	}
	return nil
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = strconv.Quote(x)
	}
	return out
}
