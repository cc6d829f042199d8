package token

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/golang-jwt/jwt/v5"
)

// Signer signs the service's tokens. It is deliberately small so that
// managed, rotating keys can replace the signers below.
type Signer interface {
	// Sign returns the compact JWS of c.
	Sign(c Claims) (string, error)
	// Alg is the JWS algorithm ("HS512", "RS256").
	Alg() string
	// PublicKeys are the keys that verify what Sign produces (none for a
	// shared-secret algorithm).
	PublicKeys() []auth.JWK
}

// MinRSABits is the smallest RSA key the service signs with.
const MinRSABits = 2048

// HSSigner signs HS512 with the legacy shared key (HS_KEY), so that legacy
// Polaris consumers accept the tokens.
type HSSigner struct{ key []byte }

// NewHSSigner returns an HS512 signer under key.
func NewHSSigner(key []byte) (*HSSigner, error) {
	if len(key) == 0 {
		return nil, errors.New("token: empty HS512 key")
	}
	return &HSSigner{key: append([]byte(nil), key...)}, nil
}

// Sign implements Signer.
func (s *HSSigner) Sign(c Claims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS512, c.JWT()).SignedString(s.key)
}

// Alg implements Signer.
func (s *HSSigner) Alg() string { return jwt.SigningMethodHS512.Alg() }

// PublicKeys implements Signer: a shared key is never published.
func (s *HSSigner) PublicKeys() []auth.JWK { return nil }

// RSASigner signs RS256 with one RSA key; the token header's kid is the
// key's RFC 7638 JWK thumbprint.
type RSASigner struct {
	key *rsa.PrivateKey
	jwk auth.JWK
}

// NewRSASigner returns an RS256 signer under key (at least MinRSABits).
func NewRSASigner(key *rsa.PrivateKey) (*RSASigner, error) {
	if key == nil {
		return nil, errors.New("token: no RSA key")
	}
	if bits := key.N.BitLen(); bits < MinRSABits {
		return nil, fmt.Errorf("token: RSA key has %d bits, want at least %d", bits, MinRSABits)
	}
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("token: RSA key: %w", err)
	}
	kid, err := Thumbprint(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	jwk, err := auth.JWKFromPublicKey(kid, jwt.SigningMethodRS256.Alg(), &key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &RSASigner{key: key, jwk: jwk}, nil
}

// Sign implements Signer.
func (s *RSASigner) Sign(c Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c.JWT())
	t.Header["kid"] = s.jwk.Kid
	return t.SignedString(s.key)
}

// Alg implements Signer.
func (s *RSASigner) Alg() string { return jwt.SigningMethodRS256.Alg() }

// KeyID is the kid the signer puts in token headers.
func (s *RSASigner) KeyID() string { return s.jwk.Kid }

// PublicKeys implements Signer.
func (s *RSASigner) PublicKeys() []auth.JWK { return []auth.JWK{s.jwk} }

// Thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA
// public key: the hash of its required members e, kty, n in that order,
// without whitespace.
func Thumbprint(pub *rsa.PublicKey) (string, error) {
	jwk, err := auth.JWKFromPublicKey("", "", pub)
	if err != nil {
		return "", err
	}
	// e and n are base64url, so they need no JSON escaping.
	canonical := `{"e":"` + jwk.E + `","kty":"RSA","n":"` + jwk.N + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// VerificationKeys turns a signer's public keys into the key set the
// suite's verifier uses.
func VerificationKeys(s Signer) (auth.StaticKeys, error) {
	keys := auth.StaticKeys{}
	for _, j := range s.PublicKeys() {
		pub, err := j.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("token: key %s: %w", j.Kid, err)
		}
		keys[j.Kid] = auth.StaticKey{Key: pub, Alg: j.Alg}
	}
	return keys, nil
}
