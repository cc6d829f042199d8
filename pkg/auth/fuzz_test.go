package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The fuzz seeds' iat and exp.
var (
	fuzzIssuedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fuzzExpires  = time.Date(2076, 1, 1, 0, 0, 0, 0, time.UTC)
)

// fuzzVerifier accepts ES256 tokens of the suite's issuer (key "k1"),
// legacy HS512 tokens and internal tokens, and returns one valid token of
// each kind as seeds.
func fuzzVerifier(f *testing.F) (*Verifier, []string) {
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	v := NewVerifier(VerifierOptions{
		Issuer: suiteIssuer, Audience: suiteIssuer,
		Keys:  StaticKeys{"k1": {Key: &ek.PublicKey, Alg: "ES256"}},
		HSKey: hsKey, HSIssuer: hsIssuer, InternalKey: internalKey,
	})
	mk := func(m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
		tok := jwt.NewWithClaims(m, c)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(key)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	// Fixed times, valid for decades: with -fuzz every worker process runs
	// this set-up again, and an HS512 seed made a second later elsewhere
	// (same key, other iat) would verify without being in that worker's
	// list of signed tokens. Fixed claims make the HS512 seed the same
	// token in every process.
	fixed := func(iss string, md map[string]any, scope string) jwt.MapClaims {
		return jwt.MapClaims{"iss": iss, "aud": iss, "iat": fuzzIssuedAt.Unix(), "exp": fuzzExpires.Unix(), "jti": "j1", "sub": "s", "scope": scope, "metadata": md}
	}
	return v, []string{
		mk(jwt.SigningMethodES256, ek, fixed(suiteIssuer, map[string]any{"patient_id": "p1"}, "read:gdm_message"), "k1"),
		mk(jwt.SigningMethodHS512, hsKey, fixed(hsIssuer, map[string]any{"system_id": "polaris"}, "write:send_device"), ""),
	}
}

// FuzzVerify feeds the verifier arbitrary strings and mutations of valid
// tokens. It must never panic, and whatever it accepts must carry the
// signed header and payload of a token that was really issued: a mutation
// may only survive in the signature's encoding (base64 padding bits),
// never in what the signature covers.
func FuzzVerify(f *testing.F) {
	v, valid := fuzzVerifier(f)
	signed := map[string]bool{}
	for _, tok := range valid {
		f.Add(tok)
		signed[tok[:strings.LastIndexByte(tok, '.')]] = true
	}
	for _, s := range []string{
		"", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.",
		"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30.AAAA",
		"Bearer x", strings.Repeat("A", MaxTokenLength+1),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := v.Verify(context.Background(), raw)
		if err != nil {
			if p != nil {
				t.Fatalf("a principal with an error: %+v, %v", p, err)
			}
			return
		}
		i := strings.LastIndexByte(raw, '.')
		if i < 0 || !signed[raw[:i]] {
			t.Fatalf("accepted a token whose signed part was never signed: %q", raw)
		}
	})
}

// FuzzParseUnverified: the non-production security-info endpoint decodes
// any token a client sends without verifying it; it must never panic and
// return claims only for three dot-separated parts.
func FuzzParseUnverified(f *testing.F) {
	_, valid := fuzzVerifier(f)
	for _, tok := range valid {
		f.Add(tok)
	}
	f.Add("e30.e30.")
	f.Add("eyJhIjpbXX0.bnVsbA.x")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := ParseUnverified(raw)
		if err == nil && strings.Count(raw, ".") != 2 {
			t.Fatalf("claims %v from %q", c, raw)
		}
	})
}
