package apidocs

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestSpecIsTheGeneratedDocument(t *testing.T) {
	var doc struct {
		Swagger string         `json:"swagger"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(Spec(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Swagger != "2.0" || len(doc.Paths) == 0 {
		t.Errorf("swagger %q with %d paths", doc.Swagger, len(doc.Paths))
	}
}

func TestPageCSPAllowsItsOwnScriptOnly(t *testing.T) {
	page := string(Page())
	_, rest, _ := strings.Cut(page, "<script>")
	script, _, _ := strings.Cut(rest, "</script>")
	sum := sha256.Sum256([]byte(script))
	if want := "script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(PageCSP, want) {
		t.Errorf("CSP %q lacks %q", PageCSP, want)
	}
	if strings.Count(page, "<script") != 1 || strings.Count(page, "<style") != 1 {
		t.Error("the page must have exactly one inline script and one style")
	}
	if !strings.Contains(PageCSP, "default-src 'none'") || !strings.Contains(PageCSP, "connect-src 'self'") {
		t.Errorf("CSP %q", PageCSP)
	}
}
