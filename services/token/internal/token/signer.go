package token

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
)

// Signer signs the service's tokens and publishes the keys that verify
// them. Three kinds exist: ManagedKeys (made by the service, kept sealed in
// its store, rotated), FileKeys (mounted PEM files, RSA_PRIVATE_KEY) and
// HSSigner (the legacy shared HS512 key).
type Signer interface {
	// Sign returns the compact JWS of c, signed with the key active now.
	Sign(c Claims) (string, error)
	// Alg is the JWS algorithm of the key active now.
	Alg() string
	// PublicKeys are the published keys: next, active and retired ones
	// (none for a shared-secret algorithm).
	PublicKeys() []auth.JWK
	// PublicKey finds a published key by kid (auth.KeySource).
	PublicKey(ctx context.Context, kid string) (crypto.PublicKey, string, error)
	// Keys describes the keys and their states.
	Keys() []KeyInfo
	// Rotate starts a rotation; ErrRotationUnsupported unless the keys
	// are managed.
	Rotate(ctx context.Context) (next KeyInfo, created bool, err error)
	// Refresh re-reads the keys and does what is due: a scheduled
	// rotation, removing keys whose tokens have all expired.
	Refresh(ctx context.Context) error
}

// ErrRotationUnsupported: the keys do not come from the store.
var ErrRotationUnsupported = errors.New("token: keys come from configuration; rotate them there")

// KeyState is where a key is in its life: next (published, not yet
// signing), active (signing), retired (published until its tokens have
// expired).
type KeyState string

// The key states.
const (
	StateNext    KeyState = "next"
	StateActive  KeyState = "active"
	StateRetired KeyState = "retired"
)

// Key sources.
const (
	SourceStore = "store"
	SourceFile  = "file"
)

// KeyInfo describes a key, never its private part.
type KeyInfo struct {
	ID          string
	Alg         string
	Source      string
	State       KeyState
	Generation  int64
	CreatedAt   time.Time
	ActivatesAt time.Time
	// RetiresAt is zero while no successor is published.
	RetiresAt time.Time
	// RemovedAt is zero while RetiresAt is.
	RemovedAt time.Time
}

// liveKey is a usable key in a key ring.
type liveKey struct {
	pair        *KeyPair
	generation  int64
	source      string
	createdAt   time.Time
	activatesAt time.Time
}

// ring is an immutable view of a set of keys, ordered by activation:
// each key retires when the next one activates and is removed retention
// after that.
type ring struct {
	keys      []liveKey
	retention time.Duration
}

func newRing(keys []liveKey, retention time.Duration) *ring {
	keys = slices.Clone(keys)
	slices.SortStableFunc(keys, func(a, b liveKey) int {
		if c := a.activatesAt.Compare(b.activatesAt); c != 0 {
			return c
		}
		return int(a.generation - b.generation)
	})
	return &ring{keys: keys, retention: retention}
}

// active is the key that signs at now: the last one activated.
func (r *ring) active(now time.Time) (*liveKey, bool) {
	for i := len(r.keys) - 1; i >= 0; i-- {
		if !r.keys[i].activatesAt.After(now) {
			return &r.keys[i], true
		}
	}
	return nil, false
}

// info describes key i at now.
func (r *ring) info(i int, now time.Time) KeyInfo {
	k := r.keys[i]
	ki := KeyInfo{ID: k.pair.ID(), Alg: k.pair.Alg, Source: k.source, Generation: k.generation, CreatedAt: k.createdAt, ActivatesAt: k.activatesAt}
	if i+1 < len(r.keys) {
		ki.RetiresAt = r.keys[i+1].activatesAt
		ki.RemovedAt = ki.RetiresAt.Add(r.retention)
	}
	switch {
	case now.Before(k.activatesAt):
		ki.State = StateNext
	case !ki.RetiresAt.IsZero() && !now.Before(ki.RetiresAt):
		ki.State = StateRetired
	default:
		ki.State = StateActive
	}
	return ki
}

// published reports whether key i is in the key set at now.
func (r *ring) published(i int, now time.Time) bool {
	ki := r.info(i, now)
	return ki.RemovedAt.IsZero() || now.Before(ki.RemovedAt)
}

func (r *ring) infos(now time.Time) []KeyInfo {
	out := make([]KeyInfo, 0, len(r.keys))
	for i := range r.keys {
		if r.published(i, now) {
			out = append(out, r.info(i, now))
		}
	}
	return out
}

func (r *ring) jwks(now time.Time) []auth.JWK {
	out := make([]auth.JWK, 0, len(r.keys))
	for i := range r.keys {
		if r.published(i, now) {
			out = append(out, r.keys[i].pair.JWK)
		}
	}
	return out
}

func (r *ring) find(kid string, now time.Time) (*liveKey, bool) {
	for i := range r.keys {
		if r.keys[i].pair.ID() == kid && r.published(i, now) {
			return &r.keys[i], true
		}
	}
	return nil, false
}

func (r *ring) sign(c Claims, now time.Time) (string, error) {
	k, ok := r.active(now)
	if !ok {
		return "", errors.New("token: no active signing key")
	}
	return k.pair.Sign(c)
}

// HSSigner signs HS512 with the legacy shared key (HS_KEY), so that legacy
// Polaris consumers accept the tokens. It publishes nothing.
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
func (s *HSSigner) Alg() string { return AlgHS512 }

// PublicKeys implements Signer: a shared key is never published.
func (s *HSSigner) PublicKeys() []auth.JWK { return nil }

// PublicKey implements Signer: there are none.
func (s *HSSigner) PublicKey(context.Context, string) (crypto.PublicKey, string, error) {
	return nil, "", errors.New("unknown key id")
}

// Keys implements Signer: the shared key is not described.
func (s *HSSigner) Keys() []KeyInfo { return nil }

// Rotate implements Signer.
func (s *HSSigner) Rotate(context.Context) (KeyInfo, bool, error) {
	return KeyInfo{}, false, ErrRotationUnsupported
}

// Refresh implements Signer: nothing to do.
func (s *HSSigner) Refresh(context.Context) error { return nil }

// rotationError is what RotateKeys answers when the keys cannot rotate.
func rotationError(err error) error {
	if errors.Is(err, ErrRotationUnsupported) {
		return &apperr.Error{Code: codes.FailedPrecondition, Msg: "signing keys come from configuration (files or HS_KEY): rotate them there"}
	}
	return fmt.Errorf("rotate keys: %w", err)
}
