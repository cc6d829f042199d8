package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/golang-jwt/jwt/v5"
)

// MinRSABits is the smallest RSA key the service signs with.
const MinRSABits = 2048

// The signature algorithms the service signs with.
const (
	AlgES256 = auth.AlgES256
	AlgEdDSA = auth.AlgEdDSA
	AlgRS256 = auth.AlgRS256
	AlgHS512 = auth.AlgHS512
)

// ManagedAlgorithms are the algorithms of keys the service makes itself.
var ManagedAlgorithms = []string{AlgES256, AlgEdDSA, AlgRS256}

// KeyPair is a private signing key with its public JWK; the kid is the
// key's RFC 7638 thumbprint.
type KeyPair struct {
	Alg     string
	Private crypto.Signer
	JWK     auth.JWK
	method  jwt.SigningMethod
}

// ID is the key's kid.
func (k *KeyPair) ID() string { return k.JWK.Kid }

// Sign returns the compact JWS of c with the key's kid in the header.
func (k *KeyPair) Sign(c Claims) (string, error) {
	t := jwt.NewWithClaims(k.method, c.JWT())
	t.Header["kid"] = k.JWK.Kid
	if c.Type != "" {
		t.Header["typ"] = c.Type
	}
	return t.SignedString(k.Private)
}

// GenerateKeyPair makes a new key for alg: P-256 for ES256, Ed25519 for
// EdDSA, RSA-3072 for RS256.
func GenerateKeyPair(alg string) (*KeyPair, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 3072)
	default:
		return nil, fmt.Errorf("token: cannot make keys for algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("token: generate %s key: %w", alg, err)
	}
	return NewKeyPair(priv)
}

// NewKeyPair wraps a private key; its algorithm follows from its type
// (RSA: RS256, P-256: ES256, Ed25519: EdDSA).
func NewKeyPair(priv crypto.Signer) (*KeyPair, error) {
	var alg string
	var method jwt.SigningMethod
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < MinRSABits {
			return nil, fmt.Errorf("token: RSA key has %d bits, want at least %d", bits, MinRSABits)
		}
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("token: RSA key: %w", err)
		}
		alg, method = AlgRS256, jwt.SigningMethodRS256
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("token: only P-256 EC keys are supported")
		}
		alg, method = AlgES256, jwt.SigningMethodES256
	case ed25519.PrivateKey:
		alg, method = AlgEdDSA, jwt.SigningMethodEdDSA
	default:
		return nil, fmt.Errorf("token: unsupported private key type %T", priv)
	}
	kid, err := Thumbprint(priv.Public())
	if err != nil {
		return nil, err
	}
	jwk, err := auth.JWKFromPublicKey(kid, alg, priv.Public())
	if err != nil {
		return nil, err
	}
	return &KeyPair{Alg: alg, Private: priv, JWK: jwk, method: method}, nil
}

// Thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url) of a
// public key: the hash of its required members in lexical order, without
// white space (RFC 8037 for Ed25519).
func Thumbprint(pub crypto.PublicKey) (string, error) {
	jwk, err := auth.JWKFromPublicKey("", "", pub)
	if err != nil {
		return "", err
	}
	// Every member is base64url or a fixed name: no JSON escaping needed.
	var canonical string
	switch jwk.Kty {
	case "RSA":
		canonical = `{"e":"` + jwk.E + `","kty":"RSA","n":"` + jwk.N + `"}`
	case "EC":
		canonical = `{"crv":"` + jwk.Crv + `","kty":"EC","x":"` + jwk.X + `","y":"` + jwk.Y + `"}`
	case "OKP":
		canonical = `{"crv":"` + jwk.Crv + `","kty":"OKP","x":"` + jwk.X + `"}`
	default:
		return "", fmt.Errorf("token: no thumbprint for key type %q", jwk.Kty)
	}
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// ParsePrivateKey decodes a PEM private key: PKCS#8 ("PRIVATE KEY": RSA,
// P-256 or Ed25519), PKCS#1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE
// KEY"). Literal "\n" sequences, as environment variables often carry
// them, are read as line breaks.
func ParsePrivateKey(text []byte) (crypto.Signer, error) {
	s := strings.TrimSpace(string(text))
	if !strings.Contains(s, "\n") && strings.Contains(s, `\n`) {
		s = strings.ReplaceAll(s, `\n`, "\n")
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not a PEM private key")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("not a valid PKCS#1 RSA private key")
		}
		return k, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("not a valid SEC 1 EC private key")
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("not a valid PKCS#8 private key")
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("PKCS#8 key of type %T cannot sign", k)
		}
		return s, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
}

// ParseRSAPrivateKey decodes a PEM RSA private key (PKCS#1 or PKCS#8), as
// RSA_PRIVATE_KEY holds.
func ParseRSAPrivateKey(text []byte) (*rsa.PrivateKey, error) {
	k, err := ParsePrivateKey(text)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the key is %T, want an RSA key", k)
	}
	return rk, nil
}

// marshalPrivate encodes a private key as PKCS#8 DER (what the store keeps,
// sealed).
func marshalPrivate(k crypto.Signer) ([]byte, error) { return x509.MarshalPKCS8PrivateKey(k) }

// unmarshalPrivate decodes PKCS#8 DER.
func unmarshalPrivate(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", k)
	}
	return s, nil
}
