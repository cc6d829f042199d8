package edge

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
)

// The fake token service publishes one EC key, cacheable for 15 minutes.
func (fakeToken) GetJWKS(context.Context, *tokenv1.GetJWKSRequest) (*tokenv1.GetJWKSResponse, error) {
	return &tokenv1.GetJWKSResponse{MaxAgeSeconds: 900, Keys: []*tokenv1.JsonWebKey{
		{Kty: "EC", Kid: "k1", Alg: "ES256", Use: "sig", Crv: "P-256", X: "eA", Y: "eQ"},
	}}, nil
}

func (fakeToken) GetIssuer(context.Context, *tokenv1.GetIssuerRequest) (*tokenv1.GetIssuerResponse, error) {
	return &tokenv1.GetIssuerResponse{Issuer: "https://auth.dhos.example/", Audience: "https://auth.dhos.example/", SigningAlgorithms: []string{"ES256"}}, nil
}

func TestJWKSEndpoint(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", JWKSPath, "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %v %s", r.status, r.header, r.body)
	}
	if got := string(r.body); got != `{"keys":[{"kty":"EC","kid":"k1","alg":"ES256","use":"sig","crv":"P-256","x":"eA","y":"eQ"}]}` {
		t.Fatalf("body %s", got)
	}
	if cc := r.header.Get("Cache-Control"); cc != "public, max-age=900" {
		t.Errorf("Cache-Control %q", cc)
	}
	etag := r.header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("ETag %q", etag)
	}
	// An unchanged set costs a 304 without a body.
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag} {
		nm := e.do("GET", JWKSPath, "", "If-None-Match", inm)
		if nm.status != http.StatusNotModified || len(nm.body) != 0 || nm.header.Get("ETag") != etag {
			t.Errorf("If-None-Match %s: %d %q", inm, nm.status, nm.body)
		}
	}
	if r := e.do("GET", JWKSPath, "", "If-None-Match", `"stale"`); r.status != 200 {
		t.Errorf("stale ETag: %d", r.status)
	}
	if r := e.do("HEAD", JWKSPath, ""); r.status != 200 || len(r.body) != 0 {
		t.Errorf("HEAD: %d", r.status)
	}
	if r := e.do("POST", JWKSPath, "{}"); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", r.status)
	}
}

func TestOpenIDConfiguration(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", OpenIDConfigurationPath, "")
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != "https://auth.dhos.example/" || doc["jwks_uri"] != "https://auth.dhos.example/.well-known/jwks.json" {
		t.Errorf("doc %v", doc)
	}
	if algs, _ := doc["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "ES256" {
		t.Errorf("algorithms %v", doc["id_token_signing_alg_values_supported"])
	}
	if r.header.Get("ETag") == "" || !strings.HasPrefix(r.header.Get("Cache-Control"), "public, max-age=") {
		t.Errorf("headers %v", r.header)
	}
}

func TestJWKSURIFromRequest(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://edge.internal:8080/x", nil)
	req.Host = "auth.example:8443"
	if got := jwksURI("dhos-legacy-issuer", req); got != "http://auth.example:8443/.well-known/jwks.json" {
		t.Errorf("got %s", got)
	}
	req.Header.Set("X-Forwarded-Proto", "https")
	if got := jwksURI("dhos-legacy-issuer", req); got != "https://auth.example:8443/.well-known/jwks.json" {
		t.Errorf("got %s", got)
	}
	if got := jwksURI("http://localhost:8080/", req); got != "http://localhost:8080/.well-known/jwks.json" {
		t.Errorf("got %s", got)
	}
}
