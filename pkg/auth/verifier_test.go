package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	"github.com/golang-jwt/jwt/v5"
)

var (
	hsKey       = []byte("legacy-hs512-key-of-at-least-thirty-two-bytes")
	internalKey = []byte("internal-key-of-at-least-thirty-two-bytes!!")
)

const (
	hsIssuer    = "https://legacy.example/"
	suiteIssuer = "https://auth.example/"
)

func claims(iss, aud string, md map[string]any, scope string, exp time.Duration) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": iss, "aud": aud, "iat": now.Unix(), "exp": now.Add(exp).Unix(), "jti": "j1", "sub": "s", "scope": scope, "metadata": md}
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestVerifier(t *testing.T) (*Verifier, *rsa.PrivateKey) {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(VerifierOptions{
		Issuer: suiteIssuer, Audience: suiteIssuer,
		Keys:  StaticKeys{"k1": {Key: &rk.PublicKey, Alg: "RS256"}},
		HSKey: hsKey, HSIssuer: hsIssuer, InternalKey: internalKey,
	})
	return v, rk
}

func TestVerifyAccepts(t *testing.T) {
	v, rk := newTestVerifier(t)
	ctx := context.Background()
	legacy := sign(t, jwt.SigningMethodHS512, hsKey, claims(hsIssuer, hsIssuer, map[string]any{"device_id": "d1"}, "read:send_device a", time.Minute), "")
	p, err := v.Verify(ctx, legacy)
	if err != nil {
		t.Fatalf("legacy HS512: %v", err)
	}
	if p.Kind != authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE || p.ID != "d1" || !p.HasScope("read:send_device") || p.HasScope("write:x") {
		t.Fatalf("principal = %+v", p)
	}
	suite := sign(t, jwt.SigningMethodRS256, rk, claims(suiteIssuer, suiteIssuer, map[string]any{"clinician_id": "c1", "referring_device_id": "d1"}, "x", time.Minute), "k1")
	p, err = v.Verify(ctx, suite)
	if err != nil {
		t.Fatalf("suite RS256: %v", err)
	}
	if p.Kind != authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN || p.ID != "c1" || p.MetadataString("referring_device_id") != "d1" {
		t.Fatalf("principal = %+v", p)
	}
	tok, err := NewInternalCredentials(internalKey, "activation", "internal:issue_token").Token()
	if err != nil {
		t.Fatal(err)
	}
	p, err = v.Verify(ctx, tok)
	if err != nil || p.Kind != authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM || p.ID != "activation" || !p.HasScope("internal:issue_token") {
		t.Fatalf("internal: %+v %v", p, err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	v, rk := newTestVerifier(t)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	md := map[string]any{"patient_id": "p1"}
	good := sign(t, jwt.SigningMethodRS256, rk, claims(suiteIssuer, suiteIssuer, md, "x", time.Minute), "k1")
	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(hsIssuer, hsIssuer, md, "x", time.Minute)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2]
	cases := map[string]string{
		"empty":               "",
		"garbage":             "not.a.jwt",
		"alg none":            noneTok,
		"tampered":            tampered,
		"expired":             sign(t, jwt.SigningMethodHS512, hsKey, claims(hsIssuer, hsIssuer, md, "x", -time.Hour), ""),
		"wrong hs key":        sign(t, jwt.SigningMethodHS512, []byte("another-key-another-key-another-key!!"), claims(hsIssuer, hsIssuer, md, "x", time.Minute), ""),
		"legacy wrong aud":    sign(t, jwt.SigningMethodHS512, hsKey, claims(hsIssuer, "someone-else", md, "x", time.Minute), ""),
		"suite wrong aud":     sign(t, jwt.SigningMethodRS256, rk, claims(suiteIssuer, "someone-else", md, "x", time.Minute), "k1"),
		"foreign issuer":      sign(t, jwt.SigningMethodRS256, other, claims("https://evil.example/", "https://evil.example/", md, "x", time.Minute), "k1"),
		"foreign key":         sign(t, jwt.SigningMethodRS256, other, claims(suiteIssuer, suiteIssuer, md, "x", time.Minute), "k1"),
		"unknown kid":         sign(t, jwt.SigningMethodRS256, rk, claims(suiteIssuer, suiteIssuer, md, "x", time.Minute), "k2"),
		"no kid":              sign(t, jwt.SigningMethodRS256, rk, claims(suiteIssuer, suiteIssuer, md, "x", time.Minute), ""),
		"alg mismatch ES256":  sign(t, jwt.SigningMethodES256, ec, claims(suiteIssuer, suiteIssuer, md, "x", time.Minute), "k1"),
		"RS256 for hs issuer": sign(t, jwt.SigningMethodRS256, rk, claims(hsIssuer, hsIssuer, md, "x", time.Minute), "k1"),
		"HS confusion":        sign(t, jwt.SigningMethodHS256, hsKey, claims(hsIssuer, hsIssuer, md, "x", time.Minute), ""),
		"internal wrong aud":  sign(t, jwt.SigningMethodHS512, internalKey, claims(InternalIssuer, suiteIssuer, md, "x", time.Minute), ""),
		"future iat":          sign(t, jwt.SigningMethodHS512, hsKey, jwt.MapClaims{"iss": hsIssuer, "aud": hsIssuer, "iat": time.Now().Add(time.Hour).Unix(), "exp": time.Now().Add(2 * time.Hour).Unix()}, ""),
		"no exp":              sign(t, jwt.SigningMethodHS512, hsKey, jwt.MapClaims{"iss": hsIssuer, "aud": hsIssuer}, ""),
		"too long":            strings.Repeat("a", MaxTokenLength+1),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestLeeway(t *testing.T) {
	v, _ := newTestVerifier(t)
	tok := sign(t, jwt.SigningMethodHS512, hsKey, claims(hsIssuer, hsIssuer, map[string]any{}, "", -10*time.Second), "")
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("a token expired 10s ago is within the 30s leeway: %v", err)
	}
}

func TestJWKRoundTrip(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		alg string
		pub any
	}{{"RS256", &rk.PublicKey}, {"ES256", &ec.PublicKey}} {
		j, err := JWKFromPublicKey("kid", tc.alg, tc.pub)
		if err != nil {
			t.Fatal(err)
		}
		back, err := j.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if eq, ok := back.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(tc.pub) {
			t.Fatalf("%s: key did not round-trip", tc.alg)
		}
	}
}

func TestRemoteKeysRefetchesUnknownKidAtBoundedRate(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	j, _ := JWKFromPublicKey("k1", "RS256", &rk.PublicKey)
	calls := 0
	r := &RemoteKeys{MinRefresh: time.Hour, Fetch: func(context.Context) ([]JWK, error) { calls++; return []JWK{j}, nil }}
	ctx := context.Background()
	if _, alg, err := r.PublicKey(ctx, "k1"); err != nil || alg != "RS256" {
		t.Fatalf("k1: %v %v", alg, err)
	}
	for i := 0; i < 5; i++ {
		if _, _, err := r.PublicKey(ctx, "unknown"); err == nil {
			t.Fatal("unknown kid accepted")
		}
	}
	if calls != 1 {
		t.Fatalf("fetched %d times; unknown kids must not refetch within MinRefresh", calls)
	}
}
