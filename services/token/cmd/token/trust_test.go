package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/service/servicetest"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestTrustedIssuerAndRestart: VerifyToken accepts a token of an external
// issuer configured in TRUSTED_ISSUERS (keys from its JWKS URL, served by
// httptest), refuses one with a key it does not publish; a restart on the
// same store keeps the managed key, so tokens issued before still verify.
func TestTrustedIssuerAndRestart(t *testing.T) {
	ext, _ := rsa.GenerateKey(rand.Reader, 2048)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwk, _ := auth.JWKFromPublicKey("ext-1", "RS256", &ext.PublicKey)
	gets := 0
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		gets++
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []auth.JWK{jwk}})
	}))
	defer jwks.Close()
	const extIssuer = "https://tenant.auth0.example/"
	env := map[string]string{
		"ENVIRONMENT":       "TEST",
		"DATA_DIR":          t.TempDir(),
		"TOKEN_GRPC_ADDR":   "127.0.0.1:0",
		"INTERNAL_AUTH_KEY": internalKey,
		"LOG_LEVEL":         "ERROR",
		"OPS_ADDR":          "off",
		"TRUSTED_ISSUERS":   fmt.Sprintf(`[{"issuer":%q,"jwks_uri":%q,"audience":"dhos-api","algorithms":["RS256"]}]`, extIssuer, jwks.URL+"/.well-known/jwks.json"),
	}
	r, conn := servicetest.StartServe(t, env, serve)
	c := tokenv1.NewTokenServiceClient(conn)
	ctx := context.Background()
	sign := func(key *rsa.PrivateKey, kid string) string {
		tk := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"iss": extIssuer, "aud": "dhos-api", "sub": "auth0|42", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
			"scope": "read:gdm_patient", "metadata": map[string]any{"clinician_id": "clin-42"},
		})
		tk.Header["kid"] = kid
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	v, err := c.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: sign(ext, "ext-1"), RequiredScopes: []string{"read:gdm_patient"}})
	if err != nil || v.GetIssuer() != extIssuer || v.GetPrincipalKind() != authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN || v.GetPrincipalId() != "clin-42" {
		t.Fatalf("external token: %v %v", v, err)
	}
	for name, tok := range map[string]string{"unknown kid": sign(other, "ext-2"), "wrong key": sign(other, "ext-1")} {
		_, err := c.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: tok})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: %v", name, err)
		}
	}
	if gets > 2 {
		t.Errorf("the JWKS was fetched %d times", gets)
	}

	creds := grpc.PerRPCCredentials(auth.NewInternalCredentials([]byte(internalKey), "activation", "internal:issue_token"))
	iss, err := c.IssueToken(ctx, &tokenv1.IssueTokenRequest{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT, SubjectId: "p1"}, creds)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := c.GetJWKS(ctx, &tokenv1.GetJWKSRequest{})
	r.Stop()

	r, conn = servicetest.StartServe(t, env, serve)
	defer r.Stop()
	c = tokenv1.NewTokenServiceClient(conn)
	after, err := c.GetJWKS(ctx, &tokenv1.GetJWKSRequest{})
	if err != nil || len(after.GetKeys()) != 1 || after.GetKeys()[0].GetKid() != before.GetKeys()[0].GetKid() {
		t.Fatalf("keys after a restart: %v (before %v) %v", after, before, err)
	}
	if _, err := c.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: iss.GetJwt()}); err != nil {
		t.Fatalf("a token issued before the restart: %v", err)
	}
}
