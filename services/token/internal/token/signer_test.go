package token_test

import (
	"crypto/ecdsa"
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
	"sync"
	"testing"

	"github.com/dhosauth/dhosauth/services/token/internal/token"
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

func TestRSASignerPublishesItsKey(t *testing.T) {
	s, err := token.NewRSASigner(testKey())
	if err != nil {
		t.Fatal(err)
	}
	keys := s.PublicKeys()
	if len(keys) != 1 {
		t.Fatalf("%d keys", len(keys))
	}
	k := keys[0]
	if k.Kty != "RSA" || k.Alg != "RS256" || k.Use != "sig" || k.Kid != s.KeyID() || k.Kid == "" {
		t.Errorf("jwk = %+v", k)
	}
	vk, err := token.VerificationKeys(s)
	if err != nil || len(vk) != 1 || vk[k.Kid].Alg != "RS256" {
		t.Errorf("verification keys = %v, %v", vk, err)
	}
}

func TestRSASignerRefusesSmallKey(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := token.NewRSASigner(small); err == nil {
		t.Error("a 1024-bit key was accepted")
	}
	if _, err := token.NewHSSigner(nil); err == nil {
		t.Error("an empty HS key was accepted")
	}
}

func TestParseRSAPrivateKey(t *testing.T) {
	k := testKey()
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	der8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der8})
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	good := map[string][]byte{
		"PKCS#1":         pkcs1,
		"PKCS#8":         pkcs8,
		"escaped breaks": []byte(strings.ReplaceAll(strings.TrimSpace(string(pkcs8)), "\n", `\n`)),
	}
	for name, text := range good {
		got, err := token.ParseRSAPrivateKey(text)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !got.Equal(k) {
			t.Errorf("%s: a different key", name)
		}
	}
	bad := map[string][]byte{
		"empty":      nil,
		"not PEM":    []byte("hello"),
		"EC PKCS#8":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}),
		"public key": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}}),
		"bad PKCS#1": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1, 2}}),
	}
	for name, text := range bad {
		if _, err := token.ParseRSAPrivateKey(text); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLoadOrCreateRSAKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := token.LoadOrCreateRSAKey(dir, token.SigningKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, token.SigningKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if k1.N.BitLen() != 2048 {
		t.Errorf("generated %d bits", k1.N.BitLen())
	}
	k2, err := token.LoadOrCreateRSAKey(dir, token.SigningKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Error("the second load generated a new key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data folder holds %d files, want only the key", len(entries))
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.pem"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := token.LoadOrCreateRSAKey(dir, "broken.pem"); err == nil {
		t.Error("a broken key file was replaced or accepted")
	}
}

// TestLoadOrCreateRSAKeyRace: processes starting together agree on one key.
func TestLoadOrCreateRSAKeyRace(t *testing.T) {
	dir := t.TempDir()
	const n = 6
	keys := make([]*rsa.PrivateKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = token.LoadOrCreateRSAKey(dir, token.SigningKeyFile) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("loader %d: %v", i, errs[i])
		}
		if !keys[i].Equal(keys[0]) {
			t.Fatalf("loader %d got a different key", i)
		}
	}
}
