package token_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
	"github.com/golang-jwt/jwt/v5"
)

// TestThumbprintRFC7638 checks the example of RFC 7638, section 3.1.
func TestThumbprintRFC7638(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	got, err := token.Thumbprint(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("thumbprint = %s, want %s", got, want)
	}
}

// TestThumbprintRFC8037 checks the Ed25519 example of RFC 8037, A.3.
func TestThumbprintRFC8037(t *testing.T) {
	x, _ := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	got, err := token.Thumbprint(ed25519.PublicKey(x))
	if err != nil {
		t.Fatal(err)
	}
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Errorf("thumbprint = %s, want %s", got, want)
	}
}

// TestKeyPairsSignEveryAlgorithm: generated keys of each algorithm sign
// tokens with their kid that golang-jwt verifies with the public key
// rebuilt from the published JWK.
func TestKeyPairsSignEveryAlgorithm(t *testing.T) {
	for _, alg := range token.ManagedAlgorithms {
		t.Run(alg, func(t *testing.T) {
			k, err := token.GenerateKeyPair(alg)
			if err != nil {
				t.Fatal(err)
			}
			if k.Alg != alg || k.JWK.Alg != alg || k.JWK.Use != "sig" || k.ID() == "" || k.JWK.Kid != k.ID() {
				t.Fatalf("key pair %+v", k.JWK)
			}
			if kid, _ := token.Thumbprint(k.Private.Public()); kid != k.ID() {
				t.Fatalf("kid %s is not the thumbprint %s", k.ID(), kid)
			}
			raw, err := k.Sign(token.Claims{Issuer: "i", Audience: "a", Subject: "s", ID: "j", IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			pub, err := k.JWK.PublicKey()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.Parse(raw, func(tok *jwt.Token) (any, error) {
				if tok.Header["kid"] != k.ID() {
					t.Errorf("kid %v", tok.Header["kid"])
				}
				return pub, nil
			}, jwt.WithValidMethods([]string{alg}))
			if err != nil || !tok.Valid {
				t.Fatalf("golang-jwt: %v", err)
			}
		})
	}
	if _, err := token.GenerateKeyPair("HS256"); err == nil {
		t.Error("made a key for HS256")
	}
}

func TestNewKeyPairRefuses(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, k := range map[string]crypto.Signer{"RSA-1024": small, "P-384": p384} {
		if _, err := token.NewKeyPair(k); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := token.NewHSSigner(nil); err == nil {
		t.Error("an empty HS key was accepted")
	}
}

func pemOf(t *testing.T, k crypto.Signer, typ string) []byte {
	t.Helper()
	var der []byte
	var err error
	switch typ {
	case "PRIVATE KEY":
		der, err = x509.MarshalPKCS8PrivateKey(k)
	case "RSA PRIVATE KEY":
		der = x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey))
	case "EC PRIVATE KEY":
		der, err = x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
	}
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParsePrivateKey(t *testing.T) {
	rk := testKey()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	good := map[string]struct {
		text []byte
		key  crypto.Signer
	}{
		"RSA PKCS#1":     {pemOf(t, rk, "RSA PRIVATE KEY"), rk},
		"RSA PKCS#8":     {pemOf(t, rk, "PRIVATE KEY"), rk},
		"EC SEC 1":       {pemOf(t, ec, "EC PRIVATE KEY"), ec},
		"EC PKCS#8":      {pemOf(t, ec, "PRIVATE KEY"), ec},
		"Ed25519 PKCS#8": {pemOf(t, ed, "PRIVATE KEY"), ed},
		"escaped breaks": {[]byte(strings.ReplaceAll(strings.TrimSpace(string(pemOf(t, rk, "PRIVATE KEY"))), "\n", `\n`)), rk},
	}
	for name, c := range good {
		got, err := token.ParsePrivateKey(c.text)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !got.(interface{ Equal(crypto.PrivateKey) bool }).Equal(c.key) {
			t.Errorf("%s: a different key", name)
		}
	}
	bad := map[string][]byte{
		"empty":      nil,
		"not PEM":    []byte("hello"),
		"public key": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}}),
		"bad PKCS#1": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1, 2}}),
		"bad PKCS#8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}),
	}
	for name, text := range bad {
		if _, err := token.ParsePrivateKey(text); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := token.ParseRSAPrivateKey(pemOf(t, ec, "PRIVATE KEY")); err == nil {
		t.Error("ParseRSAPrivateKey accepted an EC key")
	}
}

// TestFileKeys: every *.pem file in the folder is published, the one that
// sorts last (or SIGNING_KEY_ID) signs, and Refresh picks up a changed
// folder, keeping the previous set when the folder turns bad.
func TestFileKeys(t *testing.T) {
	dir := t.TempDir()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("2026-01.pem", pemOf(t, ec, "EC PRIVATE KEY"))
	write("README", []byte("not a key"))
	write(".hidden.pem", []byte("junk"))
	f, err := token.NewFileKeys(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if f.Alg() != "ES256" || len(f.PublicKeys()) != 1 {
		t.Fatalf("alg %s, %d keys", f.Alg(), len(f.PublicKeys()))
	}
	ecKid := f.PublicKeys()[0].Kid

	// The operator mounts the next key: it sorts last, so it signs.
	write("2026-02.pem", pemOf(t, ed, "PRIVATE KEY"))
	if err := f.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.Alg() != "EdDSA" || len(f.PublicKeys()) != 2 {
		t.Fatalf("after refresh: alg %s, %d keys", f.Alg(), len(f.PublicKeys()))
	}
	states := map[string]token.KeyState{}
	for _, k := range f.Keys() {
		states[k.ID] = k.State
		if k.Source != token.SourceFile {
			t.Errorf("source %q", k.Source)
		}
	}
	if states[ecKid] != token.StateRetired || len(states) != 2 {
		t.Errorf("states %v", states)
	}
	// The old key still verifies what it signed.
	if pub, alg, err := f.PublicKey(context.Background(), ecKid); err != nil || alg != "ES256" || !pub.(*ecdsa.PublicKey).Equal(&ec.PublicKey) {
		t.Errorf("PublicKey(old): %v %v", alg, err)
	}

	// SIGNING_KEY_ID by file name or kid keeps the old key signing.
	for _, id := range []string{"2026-01", ecKid} {
		g, err := token.NewFileKeys(dir, id)
		if err != nil || g.Alg() != "ES256" {
			t.Errorf("SIGNING_KEY_ID %s: %v %v", id, g, err)
		}
	}
	if _, err := token.NewFileKeys(dir, "no-such-key"); err == nil {
		t.Error("an unknown SIGNING_KEY_ID was accepted")
	}

	// A broken file: Refresh fails and the previous set stays.
	write("2026-03.pem", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	if err := f.Refresh(context.Background()); err == nil {
		t.Error("a broken key file was accepted")
	}
	if f.Alg() != "EdDSA" || len(f.PublicKeys()) != 2 {
		t.Error("a failed refresh changed the key set")
	}
	if _, err := token.NewFileKeys(t.TempDir(), ""); err == nil {
		t.Error("an empty folder was accepted")
	}
	if _, _, err := f.Rotate(context.Background()); err == nil {
		t.Error("file keys rotated")
	}
}

// TestHSSigner publishes nothing and cannot rotate.
func TestHSSigner(t *testing.T) {
	s, err := token.NewHSSigner([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Alg() != "HS512" || len(s.PublicKeys()) != 0 || len(s.Keys()) != 0 {
		t.Error("HS signer publishes keys")
	}
	if _, _, err := s.PublicKey(context.Background(), "x"); err == nil {
		t.Error("HS signer found a key")
	}
	if _, _, err := s.Rotate(context.Background()); err == nil {
		t.Error("HS signer rotated")
	}
	var _ auth.KeySource = s
}
