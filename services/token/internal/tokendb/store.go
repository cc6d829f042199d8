package tokendb

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrations embed.FS

// Migrations returns the store's embedded migrations for both backends.
func Migrations() storage.Migrations {
	return storage.Migrations{Postgres: sub("migrations/postgres"), SQLite: sub("migrations/sqlite")}
}

func sub(dir string) fs.FS {
	f, err := fs.Sub(migrations, dir)
	if err != nil {
		// The folders are embedded above; this cannot happen.
		panic(err)
	}
	return f
}

// Store implements token.Store on a storage.DB.
type Store struct{ db storage.DB }

// New returns a Store on db, which must carry Migrations.
func New(db storage.DB) *Store { return &Store{db: db} }

var _ token.Store = (*Store)(nil)

// RecordIssued implements token.Store.
func (s *Store) RecordIssued(ctx context.Context, r token.Record) error {
	_, err := s.db.Exec(ctx,
		`INSERT INTO issued_tokens (jti, kind, subject, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		r.ID, string(r.Kind), r.Subject, r.IssuedAt.UTC(), r.ExpiresAt.UTC())
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

// DropAll implements token.Store.
func (s *Store) DropAll(ctx context.Context) error {
	_, err := s.db.Exec(ctx, `DELETE FROM issued_tokens`)
	return err
}
