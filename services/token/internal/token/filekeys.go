package token

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/dhosauth/dhosauth/pkg/auth"
)

// FileKeys are signing keys from configuration: PEM files mounted in a
// folder (SIGNING_KEYS_DIR, for example a Kubernetes secret) or one key
// given as RSA_PRIVATE_KEY / RSA_PRIVATE_KEY_FILE. Every key is published;
// one signs: the one named by its kid or file name (SIGNING_KEY_ID), else
// the file whose name sorts last. Rotating is the operator's job: add the
// new key's file, wait for it to be fetched, then make it the signing key,
// and remove the old file once its tokens have expired. Refresh re-reads
// the folder, so a changed secret takes effect without a restart.
type FileKeys struct {
	dir       string
	signingID string
	cur       atomic.Pointer[fileSet]
}

type fileSet struct {
	keys   []*KeyPair
	names  []string
	signer int
}

// NewFileKeys reads the *.pem files in dir.
func NewFileKeys(dir, signingID string) (*FileKeys, error) {
	f := &FileKeys{dir: dir, signingID: signingID}
	if err := f.Refresh(context.Background()); err != nil {
		return nil, err
	}
	return f, nil
}

// NewFixedKey returns the key set of one configured key.
func NewFixedKey(k *KeyPair) *FileKeys {
	f := &FileKeys{}
	f.cur.Store(&fileSet{keys: []*KeyPair{k}, names: []string{k.ID()}})
	return f
}

// Refresh implements Signer: it re-reads the folder. A folder that no
// longer yields a valid set keeps the previous one (and says why).
func (f *FileKeys) Refresh(context.Context) error {
	if f.dir == "" {
		return nil
	}
	set, err := readKeyDir(f.dir, f.signingID)
	if err != nil {
		return err
	}
	f.cur.Store(set)
	return nil
}

func readKeyDir(dir, signingID string) (*fileSet, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("SIGNING_KEYS_DIR: %w", err)
	}
	set := &fileSet{signer: -1}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".pem") {
			continue // Kubernetes' ..data links, editors' files
		}
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("SIGNING_KEYS_DIR: %s: %w", n, err)
		}
		priv, err := ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("SIGNING_KEYS_DIR: %s: %v", n, err)
		}
		k, err := NewKeyPair(priv)
		if err != nil {
			return nil, fmt.Errorf("SIGNING_KEYS_DIR: %s: %v", n, err)
		}
		base := strings.TrimSuffix(n, ".pem")
		if signingID != "" && (signingID == base || signingID == k.ID()) {
			set.signer = len(set.keys)
		}
		set.keys = append(set.keys, k)
		set.names = append(set.names, base)
	}
	if len(set.keys) == 0 {
		return nil, fmt.Errorf("SIGNING_KEYS_DIR: no *.pem key in %s", dir)
	}
	if set.signer < 0 {
		if signingID != "" {
			return nil, fmt.Errorf("SIGNING_KEY_ID: no key in %s is named %q", dir, signingID)
		}
		set.signer = len(set.keys) - 1
	}
	return set, nil
}

func (f *FileKeys) signing() *KeyPair {
	s := f.cur.Load()
	return s.keys[s.signer]
}

// Sign implements Signer.
func (f *FileKeys) Sign(c Claims) (string, error) { return f.signing().Sign(c) }

// Alg implements Signer.
func (f *FileKeys) Alg() string { return f.signing().Alg }

// PublicKeys implements Signer: every key found.
func (f *FileKeys) PublicKeys() []auth.JWK {
	s := f.cur.Load()
	out := make([]auth.JWK, len(s.keys))
	for i, k := range s.keys {
		out[i] = k.JWK
	}
	return out
}

// PublicKey implements Signer.
func (f *FileKeys) PublicKey(_ context.Context, kid string) (crypto.PublicKey, string, error) {
	for _, k := range f.cur.Load().keys {
		if k.ID() == kid {
			return k.Private.Public(), k.Alg, nil
		}
	}
	return nil, "", errors.New("unknown key id")
}

// Keys implements Signer: the signing key is active; keys sorting before it
// are shown retired, after it next.
func (f *FileKeys) Keys() []KeyInfo {
	s := f.cur.Load()
	out := make([]KeyInfo, len(s.keys))
	for i, k := range s.keys {
		st := StateActive
		switch {
		case i < s.signer:
			st = StateRetired
		case i > s.signer:
			st = StateNext
		}
		out[i] = KeyInfo{ID: k.ID(), Alg: k.Alg, Source: SourceFile, State: st}
	}
	return out
}

// Rotate implements Signer: file keys are rotated by the operator.
func (f *FileKeys) Rotate(context.Context) (KeyInfo, bool, error) {
	return KeyInfo{}, false, ErrRotationUnsupported
}
