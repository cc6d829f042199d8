// Command successstatus finishes the OpenAPI document that
// protoc-gen-openapiv2 writes (make generate runs it right after buf
// generate) where the generator cannot describe what the edge does:
//
//   - an operation that declares a success status other than 200 in its
//     openapiv2_operation annotation (CreateClinician: 201) loses the
//     generator's default 200 response, which the generator adds to every
//     operation and cannot be told to leave out of one; the declared
//     response takes the default's schema unless it has its own;
//   - a success response whose schema is a message without fields loses
//     the schema: the edge answers such a message with an empty body.
//
// Definitions that no longer have a reference are removed. Everything
// else is kept as the generator wrote it, key order and formatting
// included, so the document stays byte-for-byte reproducible.
//
//	go run ./gateway/internal/apidocs/successstatus gateway/internal/apidocs/dhos.swagger.json
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "successstatus:", err)
		os.Exit(1)
	}
}

// run rewrites the document named by the one argument in place.
func run(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: successstatus <file.swagger.json>")
	}
	in, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	out, err := fix(in)
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	if bytes.Equal(in, out) {
		return nil
	}
	return os.WriteFile(args[0], out, 0o644)
}

// member is one key of a JSON object with its value as written.
type member struct {
	key   string
	value json.RawMessage
}

// object is a JSON object that keeps its keys' order.
type object []member

func parseObject(raw json.RawMessage) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("want a JSON object, got %.40q", raw)
	}
	var o object
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o = append(o, member{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return o, nil
}

func (o object) get(key string) json.RawMessage {
	for _, m := range o {
		if m.key == key {
			return m.value
		}
	}
	return nil
}

// set replaces key's value, or adds key after the key named after (at
// the end when after is not there).
func (o object) set(key string, v json.RawMessage, after string) object {
	for i := range o {
		if o[i].key == key {
			o[i].value = v
			return o
		}
	}
	for i := range o {
		if o[i].key == after {
			return slices.Insert(o, i+1, member{key, v})
		}
	}
	return append(o, member{key, v})
}

// without returns a copy of o without key.
func (o object) without(key string) object {
	return slices.DeleteFunc(slices.Clone(o), func(m member) bool { return m.key == key })
}

func (o object) marshal() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// isSuccess reports whether a response key is a 2xx status.
func isSuccess(code string) bool {
	return len(code) == 3 && code[0] == '2' && strings.Trim(code[1:], "0123456789") == ""
}

const refPrefix = "#/definitions/"

// fix applies the rules of the package comment to a whole document.
func fix(doc []byte) ([]byte, error) {
	top, err := parseObject(doc)
	if err != nil {
		return nil, err
	}
	defs, err := parseObject(top.get("definitions"))
	if err != nil {
		return nil, fmt.Errorf("definitions: %w", err)
	}
	empty := map[string]bool{}
	for _, d := range defs {
		var def map[string]json.RawMessage
		if err := json.Unmarshal(d.value, &def); err != nil {
			return nil, fmt.Errorf("definition %s: %w", d.key, err)
		}
		if string(def["type"]) == `"object"` && def["properties"] == nil && def["additionalProperties"] == nil && def["allOf"] == nil {
			empty[d.key] = true
		}
	}
	paths, err := parseObject(top.get("paths"))
	if err != nil {
		return nil, fmt.Errorf("paths: %w", err)
	}
	dropped := map[string]bool{}
	for i, p := range paths {
		item, err := parseObject(p.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.key, err)
		}
		for j, op := range item {
			if op.key == "parameters" || strings.HasPrefix(op.key, "x-") {
				continue
			}
			fixed, err := fixOperation(op.value, empty, dropped)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", strings.ToUpper(op.key), p.key, err)
			}
			item[j].value = fixed
		}
		paths[i].value = item.marshal()
	}
	top = top.set("paths", paths.marshal(), "")
	// A definition only the dropped schemas used goes too.
	if len(dropped) > 0 {
		rest := top.without("definitions").marshal()
		for _, d := range defs {
			if dropped[d.key] && !referenced(rest, defs, d.key) {
				defs = defs.without(d.key)
			}
		}
		top = top.set("definitions", defs.marshal(), "")
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact(top.marshal()), "", "  "); err != nil {
		return nil, err
	}
	// json.Encoder, which the generator writes with, ends with a newline.
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// referenced reports whether anything outside the definition itself
// refers to it.
func referenced(rest []byte, defs object, name string) bool {
	ref := []byte(`"` + refPrefix + name + `"`)
	if bytes.Contains(rest, ref) {
		return true
	}
	for _, d := range defs {
		if d.key != name && bytes.Contains(d.value, ref) {
			return true
		}
	}
	return false
}

func compact(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return b
	}
	return out.Bytes()
}

// fixOperation applies the rules to one operation's responses; the
// definitions whose references it dropped are added to dropped.
func fixOperation(raw json.RawMessage, empty, dropped map[string]bool) (json.RawMessage, error) {
	op, err := parseObject(raw)
	if err != nil {
		return nil, err
	}
	rawResponses := op.get("responses")
	if rawResponses == nil {
		return raw, nil
	}
	responses, err := parseObject(rawResponses)
	if err != nil {
		return nil, fmt.Errorf("responses: %w", err)
	}
	var declared []string
	for _, r := range responses {
		if isSuccess(r.key) && r.key != "200" {
			declared = append(declared, r.key)
		}
	}
	if len(declared) > 1 {
		return nil, fmt.Errorf("declares several success statuses (%s): the edge answers one", strings.Join(declared, ", "))
	}
	if len(declared) == 1 && responses.get("200") != nil {
		def, err := parseObject(responses.get("200"))
		if err != nil {
			return nil, err
		}
		own, err := parseObject(responses.get(declared[0]))
		if err != nil {
			return nil, err
		}
		if s := own.get("schema"); (s == nil || string(compact(s)) == "{}") && def.get("schema") != nil {
			own = own.set("schema", def.get("schema"), "description")
		}
		responses = responses.set(declared[0], own.marshal(), "").without("200")
	}
	for i, r := range responses {
		if !isSuccess(r.key) {
			continue
		}
		resp, err := parseObject(r.value)
		if err != nil {
			return nil, err
		}
		s := resp.get("schema")
		if s == nil {
			continue
		}
		var schema map[string]json.RawMessage
		if err := json.Unmarshal(s, &schema); err != nil {
			return nil, fmt.Errorf("response %s: %w", r.key, err)
		}
		var ref string
		_ = json.Unmarshal(schema["$ref"], &ref)
		name, isRef := strings.CutPrefix(ref, refPrefix)
		switch {
		case len(schema) == 0:
			// The generator's placeholder for "no schema given".
		case len(schema) == 1 && isRef && empty[name]:
			dropped[name] = true
		default:
			continue
		}
		responses[i].value = resp.without("schema").marshal()
	}
	return op.set("responses", responses.marshal(), "").marshal(), nil
}
