package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestFetchJSON: a GET for application/json with the bearer token when
// given; 200 and plain JSON of at most MaxJSONBytes only.
func TestFetchJSON(t *testing.T) {
	var gotAuth, gotAccept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotAccept = r.Header.Get("Authorization"), r.Header.Get("Accept")
		switch r.URL.Path {
		case "/doc":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"issuer":"https://idp.example"}`))
		case "/missing":
			http.NotFound(w, r)
		case "/large":
			_, _ = w.Write([]byte(`{"x":"` + strings.Repeat("a", MaxJSONBytes) + `"}`))
		case "/signed":
			w.Header().Set("Content-Type", "application/jwt")
			_, _ = w.Write([]byte(`eyJhbGciOiJSUzI1NiJ9.e30.c2ln`))
		case "/jwks":
			_, _ = w.Write([]byte(`{"keys":[{"kty":"EC","kid":"k1"}]}`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	var doc struct{ Issuer string }
	if err := FetchJSON(ctx, nil, srv.URL+"/doc", "", &doc); err != nil || doc.Issuer != "https://idp.example" {
		t.Fatalf("document: %+v %v", doc, err)
	}
	if gotAccept != "application/json" || gotAuth != "" {
		t.Fatalf("headers without a token: Accept %q, Authorization %q", gotAccept, gotAuth)
	}
	if err := FetchJSON(ctx, srv.Client(), srv.URL+"/doc", "at-1", &doc); err != nil || gotAuth != "Bearer at-1" {
		t.Fatalf("with a token: Authorization %q, %v", gotAuth, err)
	}
	for path, want := range map[string]string{
		"/missing": "HTTP 404",
		"/large":   "document too large",
		"/signed":  "signed (application/jwt) responses are not supported",
	} {
		err := FetchJSON(ctx, nil, srv.URL+path, "at-1", &doc)
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "at-1") {
			t.Errorf("%s: the error names the token: %v", path, err)
		}
	}

	keys, err := HTTPJWKS(srv.URL+"/jwks", nil)(ctx)
	if err != nil || len(keys) != 1 || keys[0].Kid != "k1" {
		t.Fatalf("JWKS: %+v %v", keys, err)
	}
	if _, err := HTTPJWKS(srv.URL+"/missing", nil)(ctx); err == nil || err.Error() != "fetch JWKS: HTTP 404" {
		t.Fatalf("JWKS missing: %v", err)
	}
}

func TestCheckSecureURL(t *testing.T) {
	for _, tc := range []struct {
		uri        string
		allowQuery bool
		want       string // "" accepted
	}{
		{"https://idp.example/jwks", false, ""},
		{"https://idp.example/jwks?tenant=a", true, ""},
		{"http://127.0.0.1:8080/jwks", false, ""},
		{"http://[::1]/jwks", false, ""},
		{"http://localhost/jwks", false, ""},
		{"https://idp.example/jwks?tenant=a", false, `u "https://idp.example/jwks?tenant=a" is not an absolute URL without query`},
		{"https://idp.example/jwks#k", false, `u "https://idp.example/jwks#k" is not an absolute URL without query`},
		{"/jwks", true, `u "/jwks" is not an absolute URL`},
		{"/jwks", false, `u "/jwks" is not an absolute URL without query`},
		{"http://idp.example/jwks", true, `u "http://idp.example/jwks" must be https (http only on a loopback address)`},
		{"ftp://idp.example/jwks", false, `u "ftp://idp.example/jwks" must be https (http only on a loopback address)`},
	} {
		err := CheckSecureURL("u", tc.uri, tc.allowQuery)
		if got := errString(err); got != tc.want {
			t.Errorf("%s (query %v): %q, want %q", tc.uri, tc.allowQuery, got, tc.want)
		}
	}
}

// TestKeyFunc: the key the token names, with its algorithm pinned.
func TestKeyFunc(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys := StaticKeys{"k1": {Key: &ec.PublicKey, Alg: AlgES256}}
	c := claims("https://idp.example", "app", nil, "", time.Minute)
	parse := func(raw string, allowed []string) error {
		_, err := jwt.NewParser().Parse(raw, KeyFunc(context.Background(), keys, allowed))
		return err
	}
	if err := parse(sign(t, jwt.SigningMethodES256, ec, c, "k1"), AsymmetricAlgorithms); err != nil {
		t.Fatalf("the key's own token: %v", err)
	}
	for name, tc := range map[string]struct {
		raw     string
		allowed []string
	}{
		"no kid":               {sign(t, jwt.SigningMethodES256, ec, c, ""), AsymmetricAlgorithms},
		"unknown kid":          {sign(t, jwt.SigningMethodES256, ec, c, "k2"), AsymmetricAlgorithms},
		"another key":          {sign(t, jwt.SigningMethodES256, other, c, "k1"), AsymmetricAlgorithms},
		"algorithm not listed": {sign(t, jwt.SigningMethodES256, ec, c, "k1"), []string{AlgRS256}},
		"HMAC with the key":    {sign(t, jwt.SigningMethodHS256, []byte("secret"), c, "k1"), []string{"HS256"}},
	} {
		if err := parse(tc.raw, tc.allowed); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
