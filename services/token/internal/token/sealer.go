package token

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Sealer encrypts private keys at rest with AES-256-GCM under a key
// derived from KEY_ENCRYPTION_KEY. The key's id is stored next to each
// sealed key, so that a wrong KEY_ENCRYPTION_KEY is named as such, and a
// previous key (KEY_ENCRYPTION_KEY_PREVIOUS) can still open what it sealed
// while the keys are sealed again under the current one.
type Sealer struct {
	current  sealKey
	previous []sealKey
}

type sealKey struct {
	id   string
	aead cipher.AEAD
}

// ErrSealKey: no configured key encryption key sealed this key.
var ErrSealKey = errors.New("token: the signing key was sealed under another KEY_ENCRYPTION_KEY")

// NewSealer returns a Sealer under current, able to open what previous
// keys sealed.
func NewSealer(current []byte, previous ...[]byte) (*Sealer, error) {
	c, err := newSealKey(current)
	if err != nil {
		return nil, err
	}
	s := &Sealer{current: c}
	for _, p := range previous {
		if len(p) == 0 {
			continue
		}
		k, err := newSealKey(p)
		if err != nil {
			return nil, err
		}
		s.previous = append(s.previous, k)
	}
	return s, nil
}

func newSealKey(kek []byte) (sealKey, error) {
	if len(kek) < 32 {
		return sealKey{}, errors.New("token: a key encryption key must be at least 32 bytes")
	}
	// Derive the AES key, and an id that reveals nothing of it.
	m := hmac.New(sha256.New, kek)
	m.Write([]byte("dhosauth token signing keys v1"))
	aesKey := m.Sum(nil)
	idm := hmac.New(sha256.New, kek)
	idm.Write([]byte("dhosauth token signing keys v1 id"))
	block, err := aes.NewCipher(aesKey)
	if err != nil {
		return sealKey{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealKey{}, err
	}
	return sealKey{id: hex.EncodeToString(idm.Sum(nil)[:8]), aead: aead}, nil
}

// KeyID names the current key encryption key (not secret).
func (s *Sealer) KeyID() string { return s.current.id }

// aad binds a sealed key to its kid: a sealed blob moved to another row
// does not open.
func aad(kid string) []byte { return []byte("dhosauth-signing-key:" + kid) }

// Seal encrypts plaintext (the key kid's PKCS#8 DER) under the current
// key: a random 96-bit nonce followed by the ciphertext and tag.
func (s *Sealer) Seal(kid string, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, s.current.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.current.aead.Seal(nonce, nonce, plaintext, aad(kid)), nil
}

// Open decrypts what Seal made under the key named sealKeyID.
func (s *Sealer) Open(kid, sealKeyID string, sealed []byte) ([]byte, error) {
	for _, k := range append([]sealKey{s.current}, s.previous...) {
		if k.id != sealKeyID {
			continue
		}
		n := k.aead.NonceSize()
		if len(sealed) < n {
			return nil, errors.New("token: sealed key too short")
		}
		out, err := k.aead.Open(nil, sealed[:n], sealed[n:], aad(kid))
		if err != nil {
			return nil, fmt.Errorf("token: sealed key %s does not open (tampered?)", kid)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w (sealed under %s, current %s)", ErrSealKey, sealKeyID, s.current.id)
}
