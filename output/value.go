package output

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
)

// object is a JSON object that remembers the order its keys were written in.
// Go maps forget it, and az's renderers need it: tsv keeps the written order
// of multiselect-hash objects and table keeps source order under a query.
type object struct {
	members []member
	// hash marks an object built by a JMESPath multiselect hash, which az
	// (knack) creates as an OrderedDict rather than a plain dict; tsv keeps
	// such objects in written order and sorts all others.
	hash bool
}

type member struct {
	key string
	val any
}

// get returns the value stored under key and whether it exists.
func (o *object) get(key string) (any, bool) {
	for _, m := range o.members {
		if m.key == key {
			return m.val, true
		}
	}
	return nil, false
}

// sorted returns the members in key order, as Python's sorted() orders
// str keys (by code point, which is UTF-8 byte order).
func (o *object) sorted() []member {
	out := append([]member(nil), o.members...)
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// set appends key, or replaces its value in place so a repeated key keeps its
// first position but the last value, as JSON decoders conventionally do.
func (o *object) set(key string, val any) {
	for i := range o.members {
		if o.members[i].key == key {
			o.members[i].val = val
			return
		}
	}
	o.members = append(o.members, member{key, val})
}

// toOrdered converts any Go value to the generic ordered form: nil, bool,
// string, json.Number, []any or *object. Going through encoding/json means
// struct tags, omitempty and custom marshalers are honoured exactly as they
// are for the JSON API.
func toOrdered(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding result: %w", err)
	}
	return decodeOrdered(raw)
}

// decodeOrdered parses one JSON document into the ordered form.
func decodeOrdered(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep number text so 64-bit IDs survive untouched
	v, err := decodeValue(dec)
	if err != nil {
		return nil, fmt.Errorf("decoding result: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decoding result: trailing data after JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := &object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("unexpected object key %v", kt)
				}
				val, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				obj.set(key, val)
			}
			if _, err := dec.Token(); err != nil { // closing '}'
				return nil, err
			}
			return obj, nil
		case '[':
			list := []any{}
			for dec.More() {
				val, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, val)
			}
			if _, err := dec.Token(); err != nil { // closing ']'
				return nil, err
			}
			return list, nil
		}
		return nil, fmt.Errorf("unexpected delimiter %v", t)
	default:
		// nil, bool, string or json.Number.
		return tok, nil
	}
}

// isScalar reports whether v is a leaf value rather than an object or list.
func isScalar(v any) bool {
	switch v.(type) {
	case *object, []any:
		return false
	}
	return true
}

// Bytes writes a size in the largest binary unit it holds at least one
// of: "512 B", "1.5 KiB", "3.2 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
