package edge

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dhosauth/dhosauth/gateway/internal/apidocs"
)

// openAPIOperation is what the check below reads of an operation of the
// published document.
type openAPIOperation struct {
	OperationID string `json:"operationId"`
	Responses   map[string]struct {
		Schema json.RawMessage `json:"schema"`
	} `json:"responses"`
	Parameters []openAPIParameter `json:"parameters"`
}

type openAPIParameter struct {
	In string `json:"in"`
}

// openAPIBodies are request bodies the fakes answer with success, by
// operation id; other operations with a body get "{}".
var openAPIBodies = map[string]string{
	"ActivationService_ValidateActivation": `{"otp":"abcd"}`,
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// TestOpenAPISuccessMatchesTheEdge calls every operation of the published
// OpenAPI document through the edge, against fakes that answer with
// success, and checks that the edge answers the document's one success
// status, with an empty body exactly when the document gives that
// response no schema. The document and the edge's successStatus (and
// its empty bodies for field-less messages) cannot drift apart.
func TestOpenAPISuccessMatchesTheEdge(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(apidocs.Spec(), &doc); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, devOptions)
	checked := 0
	for path, item := range doc.Paths {
		for method, raw := range item {
			if method == "parameters" {
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			name := strings.ToUpper(method) + " " + path
			var success []string
			for code := range op.Responses {
				if n, err := strconv.Atoi(code); err == nil && n >= 200 && n < 300 {
					success = append(success, code)
				}
			}
			if len(success) != 1 {
				t.Errorf("%s (%s): success responses %v in the document, want exactly one", name, op.OperationID, success)
				continue
			}
			body := ""
			if slices.ContainsFunc(op.Parameters, func(p openAPIParameter) bool { return p.In == "body" }) {
				body = "{}"
				if b, ok := openAPIBodies[op.OperationID]; ok {
					body = b
				}
			}
			url := pathParam.ReplaceAllString(path, "x")
			r := e.do(strings.ToUpper(method), url, body, "Authorization", "Bearer t", "X-Authorisation-Code", "code")
			if got := strconv.Itoa(r.status); got != success[0] {
				t.Errorf("%s (%s): the edge answers %d (%s), the document says %s", name, op.OperationID, r.status, r.body, success[0])
				continue
			}
			schema := op.Responses[success[0]].Schema
			if noSchema := len(schema) == 0; noSchema != (len(r.body) == 0) {
				t.Errorf("%s (%s): body %q, document schema %s", name, op.OperationID, r.body, schema)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Error("no operation checked")
	}
	// The statuses the edge sets other than 200 are all in the document.
	for msg, st := range successStatus {
		if !strings.Contains(string(apidocs.Spec()), `"`+strconv.Itoa(st)+`": {`) {
			t.Errorf("%s: the edge answers %d, which no operation of the document has", msg, st)
		}
	}
}
