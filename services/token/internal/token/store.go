package token

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors a Store returns.
var (
	// ErrNotFound: no token with that id was recorded.
	ErrNotFound = errors.New("token: no such token")
	// ErrDuplicateID: a token with that id is already recorded.
	ErrDuplicateID = errors.New("token: token id already recorded")
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

// Store keeps the record of issued tokens.
type Store interface {
	// RecordIssued stores r; ErrDuplicateID when r.ID is already stored.
	RecordIssued(ctx context.Context, r Record) error
	// Get returns the record of token id; ErrNotFound when there is none.
	Get(ctx context.Context, id string) (Record, error)
	// DropAll deletes every record.
	DropAll(ctx context.Context) error
}
