package tokendb

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrations embed.FS

// Migrations returns the store's embedded migrations for both backends,
// after the audit outbox's.
func Migrations() storage.Migrations {
	return storage.EmbeddedMigrations(migrations, audit.Migrations())
}

// Store implements token.Store on a storage.DB.
type Store struct{ db storage.DB }

// New returns a Store on db, which must carry Migrations.
func New(db storage.DB) *Store { return &Store{db: db} }

var _ token.Store = (*Store)(nil)

// ServiceName is the service the store's audit events name.
const ServiceName = "token"

// RecordIssued implements token.Store. The record and its audit event
// ("token issued": kind, token id and expiry, never the token) are written
// in one transaction; the event is wholly determined by the record, so the
// store makes it (the caller in ctx is its actor).
func (s *Store) RecordIssued(ctx context.Context, r token.Record) error {
	// One pipeline: the record and its event go with the commit.
	err := s.db.Tx(ctx, func(q storage.Querier) error {
		if err := storage.Defer(ctx, q,
			`INSERT INTO issued_tokens (jti, kind, subject, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			r.ID, string(r.Kind), r.Subject, r.IssuedAt.UTC(), r.ExpiresAt.UTC()); err != nil {
			return err
		}
		return audit.Record(ctx, q, audit.New(ctx, ServiceName, audit.TypeTokenIssued, r.Subject, audit.Data{
			"kind": string(r.Kind), "token_id": r.ID, "subject": r.Subject, "expires_at": apitime.Format(r.ExpiresAt),
		}))
	})
	if errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("%w: %s", token.ErrDuplicateID, r.ID)
	}
	return err
}

// Get implements token.Store.
func (s *Store) Get(ctx context.Context, id string) (token.Record, error) {
	var r token.Record
	var kind string
	err := s.db.QueryRow(ctx,
		`SELECT jti, kind, subject, issued_at, expires_at FROM issued_tokens WHERE jti = $1`, id,
	).Scan(&r.ID, &kind, &r.Subject, &r.IssuedAt, &r.ExpiresAt)
	if errors.Is(err, storage.ErrNotFound) {
		return token.Record{}, token.ErrNotFound
	}
	if err != nil {
		return token.Record{}, err
	}
	r.Kind = token.Kind(kind)
	r.IssuedAt, r.ExpiresAt = r.IssuedAt.UTC(), r.ExpiresAt.UTC()
	return r, nil
}

// DropAll implements token.Store, recording "data dropped" with the
// change. Audit events are kept.
func (s *Store) DropAll(ctx context.Context) error {
	return s.db.Tx(ctx, func(q storage.Querier) error {
		if _, err := q.Exec(ctx, `DELETE FROM issued_tokens`); err != nil {
			return err
		}
		return audit.Record(ctx, q, audit.New(ctx, ServiceName, audit.TypeDataDropped, "", nil))
	})
}

// RecordEvents writes audit events in a transaction of their own. A change
// that has its own transaction (a key rotation, a revocation) records its
// events there instead, with audit.Record on the transaction's Querier:
//
//	audit.Record(ctx, q, audit.New(ctx, tokendb.ServiceName, audit.TypeKeyRotated, kid,
//		audit.Data{"key_id": kid, "generation": gen}))
func (s *Store) RecordEvents(ctx context.Context, evs ...audit.Event) error {
	return audit.RecordTx(ctx, s.db, evs...)
}
