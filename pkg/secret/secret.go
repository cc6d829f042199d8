// Package secret keeps short secrets (OTPs, activation and authorisation
// codes) out of storage: it makes them from a CSPRNG, stores only keyed
// hashes of them (HMAC-SHA256 under a key that is not in the database) and
// compares those hashes in constant time. It also loads such keys.
package secret

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
)

// MinKeyLength is the shortest key accepted from configuration, in bytes.
const MinKeyLength = 32

// Hasher computes keyed hashes of secrets.
type Hasher struct{ key []byte }

// NewHasher returns a Hasher under key.
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < MinKeyLength {
		return nil, fmt.Errorf("secret: hash key must be at least %d bytes", MinKeyLength)
	}
	return &Hasher{key: append([]byte(nil), key...)}, nil
}

// Hash returns HMAC-SHA256(key, purpose || 0 || value). The purpose keeps
// hashes of different kinds of secret (and of different records, when the
// caller puts a record id in it) apart.
func (h *Hasher) Hash(purpose, value string) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return m.Sum(nil)
}

// Derive returns n characters from alphabet derived deterministically from
// (purpose, value) under the key: a secret that can be shown again without
// being stored.
func (h *Hasher) Derive(purpose, value, alphabet string, n int) string {
	sum := new(big.Int).SetBytes(append(h.Hash("derive:"+purpose, value), h.Hash("derive2:"+purpose, value)...))
	base := big.NewInt(int64(len(alphabet)))
	out := make([]byte, n)
	mod := new(big.Int)
	for i := range out {
		sum.DivMod(sum, base, mod)
		out[i] = alphabet[mod.Int64()]
	}
	return string(out)
}

// Equal compares two hashes in constant time.
func Equal(a, b []byte) bool { return hmac.Equal(a, b) }

// Alphabets used by the contract.
const (
	// Upper is A-Z0-9, the activation code alphabet.
	Upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	// OTP is A-Z0-9 without the look-alikes O 0 L 1 I.
	OTP = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
	// Digits is 0-9, the device activation code alphabet.
	Digits = "0123456789"
	// URLSafe is the base64url alphabet, for authorisation codes.
	URLSafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

// Random returns n characters drawn uniformly from alphabet with crypto/rand.
func Random(alphabet string, n int) (string, error) {
	out := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range out {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("secret: random: %w", err)
		}
		out[i] = alphabet[v.Int64()]
	}
	return string(out), nil
}

// LoadKey returns the key configured in value, or, when value is empty and
// generate is allowed (outside production), the key kept in dir/name,
// creating it (32 random bytes, hex, mode 0600) the first time. Several
// processes starting at once agree on one key.
func LoadKey(value, dir, name string, generate bool) ([]byte, error) {
	if value != "" {
		if len(value) < MinKeyLength {
			return nil, fmt.Errorf("key %s must be at least %d characters", name, MinKeyLength)
		}
		return []byte(value), nil
	}
	if !generate {
		return nil, fmt.Errorf("key %s is not configured", name)
	}
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil {
		return []byte(strings.TrimSpace(string(b))), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, name+".tmp*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(hex.EncodeToString(raw) + "\n"); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	// Link fails when another process won the race; then read its key.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return []byte(strings.TrimSpace(string(b))), nil
}
