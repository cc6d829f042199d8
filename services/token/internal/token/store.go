package token

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors a Store returns.
var (
	// ErrNotFound: no such token, key or revocation.
	ErrNotFound = errors.New("token: not found")
	// ErrDuplicateID: a token with that id is already recorded.
	ErrDuplicateID = errors.New("token: token id already recorded")
	// ErrKeyExists: a key with that kid or generation is already stored
	// (another replica rotated first).
	ErrKeyExists = errors.New("token: key generation already stored")
)

// Record is what the service remembers about a token it issued.
type Record struct {
	// ID is the token's jti.
	ID        string
	Kind      Kind
	Subject   string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// StoredKey is a managed signing key as the store keeps it: the private
// key only sealed (Sealer).
type StoredKey struct {
	ID  string
	Alg string
	// Generation numbers rotations: unique, so that of replicas rotating
	// at once exactly one inserts the next generation.
	Generation  int64
	CreatedAt   time.Time
	ActivatesAt time.Time
	// PublicJWK is the public key as JSON.
	PublicJWK string
	// Sealed is the PKCS#8 private key sealed under the key SealKeyID names.
	Sealed    []byte
	SealKeyID string
}

// RevocationEntry is a revoked principal as the store keeps it.
type RevocationEntry struct {
	Kind    Kind
	Subject string
	// RevokedBefore: tokens of the principal issued before it are refused.
	RevokedBefore time.Time
	// Seq orders revocations by when they were recorded (committed): a
	// reader that has seen seq n has seen every revocation up to n.
	Seq        int64
	RecordedAt time.Time
	Reason     string
}

// Store keeps the record of issued tokens, the managed signing keys and
// the revocations.
type Store interface {
	// RecordIssued stores r; ErrDuplicateID when r.ID is already stored.
	RecordIssued(ctx context.Context, r Record) error
	// Get returns the record of token id; ErrNotFound when there is none.
	Get(ctx context.Context, id string) (Record, error)
	// DropAll deletes every record of issued tokens (keys and revocations
	// stay).
	DropAll(ctx context.Context) error

	// InsertKey stores k; ErrKeyExists when its generation or kid is taken.
	InsertKey(ctx context.Context, k StoredKey) error
	// ListKeys returns every stored key, by generation.
	ListKeys(ctx context.Context) ([]StoredKey, error)
	// ResealKey replaces a key's sealed private part (a new
	// KEY_ENCRYPTION_KEY); ErrNotFound when there is no such key.
	ResealKey(ctx context.Context, kid string, sealed []byte, sealKeyID string) error
	// DeleteKey removes a key; no error when it is already gone.
	DeleteKey(ctx context.Context, kid string) error

	// Revoke records that the principal's tokens issued before
	// e.RevokedBefore are refused (a later cut-off already recorded
	// stays) and gives the revocation the next sequence number, in
	// commit order. It returns the entry as stored.
	Revoke(ctx context.Context, e RevocationEntry) (RevocationEntry, error)
	// RevocationsAfter returns up to limit revocations with Seq > after
	// and RevokedBefore >= notBefore, by Seq.
	RevocationsAfter(ctx context.Context, after int64, notBefore time.Time, limit int) ([]RevocationEntry, error)
	// RevokedBefore returns the principal's cut-off; ErrNotFound when it
	// was never revoked.
	RevokedBefore(ctx context.Context, kind Kind, subject string) (time.Time, error)
	// RevocationEpoch names this store's revocation sequence: it changes
	// only when the store is made afresh, so a cursor from another store
	// is recognised.
	RevocationEpoch(ctx context.Context) (string, error)
	// PruneRevocations deletes revocations whose cut-off is before t.
	PruneRevocations(ctx context.Context, before time.Time) (int64, error)
}
