package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// generated writes v as protoc-gen-openapiv2 does (json.Encoder, two
// spaces; keys sorted here, which the test cases do not depend on).
func generated(t *testing.T, v string) []byte {
	t.Helper()
	var x any
	if err := json.Unmarshal([]byte(v), &x); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(x); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestNothingToChangeKeepsTheBytes(t *testing.T) {
	// Key order that is not sorted, escapes, unicode: kept as written.
	in := []byte("{\n  \"swagger\": \"2.0\",\n  \"paths\": {\n    \"/b\": {\n      \"get\": {\n        \"summary\": \"a \\u003cb\\u003e é\",\n" +
		"        \"responses\": {\n          \"200\": {\n            \"description\": \"A successful response.\",\n" +
		"            \"schema\": {\n              \"$ref\": \"#/definitions/v1Full\"\n            }\n          }\n        },\n" +
		"        \"parameters\": [],\n        \"tags\": [\n          \"S\"\n        ]\n      }\n    }\n  },\n" +
		"  \"definitions\": {\n    \"v1Full\": {\n      \"type\": \"object\",\n      \"properties\": {\n        \"a\": {\n          \"type\": \"string\"\n        }\n      }\n    }\n  }\n}\n")
	out, err := fix(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, out) {
		t.Errorf("changed:\n%s", out)
	}
}

func TestDeclaredStatusReplacesTheDefault(t *testing.T) {
	in := generated(t, `{
	  "swagger": "2.0",
	  "paths": {
	    "/create": {"post": {"responses": {
	      "200": {"description": "A successful response.", "schema": {"$ref": "#/definitions/v1CreateResponse"}},
	      "201": {"description": "Created.", "schema": {}}}}},
	    "/make": {"post": {"responses": {
	      "200": {"description": "A successful response.", "schema": {"$ref": "#/definitions/v1Thing"}},
	      "202": {"description": "Accepted."}}}},
	    "/patch": {"patch": {"responses": {
	      "200": {"description": "A successful response.", "schema": {"$ref": "#/definitions/v1PatchResponse"}}}}},
	    "/get": {"get": {"responses": {
	      "200": {"description": "A successful response.", "schema": {"$ref": "#/definitions/v1Thing"}}}}}
	  },
	  "definitions": {
	    "v1CreateResponse": {"type": "object", "description": "empty"},
	    "v1PatchResponse": {"type": "object"},
	    "v1Thing": {"type": "object", "properties": {"a": {"type": "string"}}}
	  }
	}`)
	out, err := fix(in)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths       map[string]map[string]struct{ Responses map[string]map[string]any }
		Definitions map[string]any
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	resp := func(path, method string) map[string]map[string]any { return doc.Paths[path][method].Responses }
	if r := resp("/create", "post"); len(r) != 1 || r["201"] == nil || r["201"]["schema"] != nil || r["201"]["description"] != "Created." {
		t.Errorf("/create: %v (want only 201, no body)", r)
	}
	if r := resp("/make", "post"); len(r) != 1 || r["202"] == nil || r["202"]["schema"] == nil {
		t.Errorf("/make: %v (want only 202, with the default's schema)", r)
	}
	if r := resp("/patch", "patch"); r["200"] == nil || r["200"]["schema"] != nil {
		t.Errorf("/patch: %v (want 200 without a body)", r)
	}
	if r := resp("/get", "get"); r["200"]["schema"] == nil {
		t.Errorf("/get: %v (want 200 with its schema)", r)
	}
	if doc.Definitions["v1CreateResponse"] != nil || doc.Definitions["v1PatchResponse"] != nil || doc.Definitions["v1Thing"] == nil {
		t.Errorf("definitions %v: want the unused empty ones gone, the rest kept", doc.Definitions)
	}
	again, err := fix(out)
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("not idempotent: %v\n%s", err, again)
	}
}

func TestSeveralSuccessStatusesAreAnError(t *testing.T) {
	in := generated(t, `{"paths": {"/x": {"post": {"responses": {"200": {}, "201": {}, "204": {}}}}}, "definitions": {}}`)
	if _, err := fix(in); err == nil || !strings.Contains(err.Error(), "POST /x") {
		t.Fatalf("err %v", err)
	}
}

// TestCommittedDocumentIsFinished: make generate ran this on the
// committed document.
func TestCommittedDocumentIsFinished(t *testing.T) {
	path := filepath.Join("..", "dhos.swagger.json")
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := fix(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, out) {
		t.Error("dhos.swagger.json is not what make generate leaves: run make generate")
	}
}

func TestRunRewritesInPlace(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "doc.json")
	in := generated(t, `{"paths": {"/p": {"patch": {"responses": {"200": {"schema": {"$ref": "#/definitions/v1E"}}}}}}, "definitions": {"v1E": {"type": "object"}}}`)
	if err := os.WriteFile(f, in, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{f}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(f)
	if bytes.Contains(got, []byte("v1E")) {
		t.Errorf("not rewritten:\n%s", got)
	}
	if err := run(nil); err == nil {
		t.Error("no argument accepted")
	}
}
