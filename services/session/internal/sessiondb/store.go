package sessiondb

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/services/session/internal/session"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationFiles embed.FS

// Migrations returns the embedded migrations of both backends, after the
// audit outbox's and the rate-limit counters' of browser sign-in
// (ratelimit.Migrations: a migration set of their own, tracked apart from
// the session's).
func Migrations() storage.Migrations {
	return storage.EmbeddedMigrations(migrationFiles, audit.Migrations(), ratelimit.Migrations())
}

// Store implements session.Store.
type Store struct {
	db storage.DB
}

var _ session.Store = (*Store)(nil)

// New returns a Store over a migrated database.
func New(db storage.DB) *Store { return &Store{db: db} }

const columns = `clinician_id, login_active, products, "groups", send_entry_identifier, contract_expiry_eod_date, created, created_by, modified, modified_by`

// Create implements session.Store.
func (s *Store) Create(ctx context.Context, c session.Clinician, ev audit.Event) error {
	products, groups, err := encodeLists(c.Products, c.Groups)
	if err != nil {
		return err
	}
	err = s.db.Tx(ctx, func(q storage.Querier) error {
		if _, err := q.Exec(ctx,
			"INSERT INTO clinicians ("+columns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
			c.ID, c.LoginActive, products, groups, nullable(c.SendEntryIdentifier), nullable(c.ContractExpiryEODDate),
			c.Created, c.CreatedBy, c.Modified, c.ModifiedBy); err != nil {
			return err
		}
		return audit.Record(ctx, q, ev)
	})
	if errors.Is(err, storage.ErrConflict) {
		// Two unique keys: tell which one was taken.
		if _, gerr := s.Get(ctx, c.ID); gerr == nil {
			return session.ErrExists
		}
		return session.ErrIdentifierTaken
	}
	return err
}

// Get implements session.Store.
func (s *Store) Get(ctx context.Context, id string) (session.Clinician, error) {
	return scan(s.db.QueryRow(ctx, "SELECT "+columns+" FROM clinicians WHERE clinician_id = $1", id))
}

// GetByIdentifier implements session.Store.
func (s *Store) GetByIdentifier(ctx context.Context, identifier string) (session.Clinician, error) {
	return scan(s.db.QueryRow(ctx, "SELECT "+columns+" FROM clinicians WHERE send_entry_identifier = $1", identifier))
}

// Replace implements session.Store.
func (s *Store) Replace(ctx context.Context, id string, r session.Replacement, ev audit.Event) error {
	products, groups, err := encodeLists(r.Products, r.Groups)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, func(q storage.Querier) error {
		return replace(ctx, q, id, r, products, groups, ev)
	})
}

func replace(ctx context.Context, q storage.Querier, id string, r session.Replacement, products, groups string, ev audit.Event) error {
	n, err := q.Exec(ctx,
		`UPDATE clinicians SET
			login_active = COALESCE($2, login_active),
			products = $3,
			"groups" = $4,
			send_entry_identifier = $5,
			contract_expiry_eod_date = $6,
			modified = $7,
			modified_by = $8
		WHERE clinician_id = $1`,
		id, nullable(r.LoginActive), products, groups, nullable(r.SendEntryIdentifier), nullable(r.ContractExpiryEODDate),
		r.Modified, r.ModifiedBy)
	switch {
	case errors.Is(err, storage.ErrConflict):
		return session.ErrIdentifierTaken
	case err != nil:
		return err
	case n == 0:
		return session.ErrNotFound
	}
	return audit.Record(ctx, q, ev)
}

// SetLoginActive implements session.Store.
func (s *Store) SetLoginActive(ctx context.Context, id string, active bool, modified time.Time, modifiedBy string, evs ...audit.Event) error {
	return s.db.Tx(ctx, func(q storage.Querier) error {
		n, err := q.Exec(ctx,
			"UPDATE clinicians SET login_active = $2, modified = $3, modified_by = $4 WHERE clinician_id = $1",
			id, active, modified, modifiedBy)
		if err != nil {
			return err
		}
		if n == 0 {
			return session.ErrNotFound
		}
		return audit.Record(ctx, q, evs...)
	})
}

// DropAll implements session.Store.
func (s *Store) DropAll(ctx context.Context, ev audit.Event) error {
	return s.db.Tx(ctx, func(q storage.Querier) error {
		for _, t := range []string{"clinicians", "browser_sessions", "session_clients", "login_states", "authorization_codes", "seen_jtis", "local_passwords", "logout_deliveries"} {
			if _, err := q.Exec(ctx, "DELETE FROM "+t); err != nil {
				return err
			}
		}
		return audit.Record(ctx, q, ev)
	})
}

// Record implements session.Store.
func (s *Store) Record(ctx context.Context, evs ...audit.Event) error {
	return audit.RecordTx(ctx, s.db, evs...)
}

func scan(r storage.Row) (session.Clinician, error) {
	var (
		c                session.Clinician
		products, groups string
	)
	err := r.Scan(&c.ID, &c.LoginActive, &products, &groups, &c.SendEntryIdentifier, &c.ContractExpiryEODDate,
		&c.Created, &c.CreatedBy, &c.Modified, &c.ModifiedBy)
	if errors.Is(err, storage.ErrNotFound) {
		return session.Clinician{}, session.ErrNotFound
	}
	if err != nil {
		return session.Clinician{}, fmt.Errorf("sessiondb: %w", err)
	}
	if err := json.Unmarshal([]byte(products), &c.Products); err != nil {
		return session.Clinician{}, fmt.Errorf("sessiondb: products of %s: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(groups), &c.Groups); err != nil {
		return session.Clinician{}, fmt.Errorf("sessiondb: groups of %s: %w", c.ID, err)
	}
	if c.Products == nil {
		c.Products = []string{}
	}
	if c.Groups == nil {
		c.Groups = []string{}
	}
	return c, nil
}

// encodeLists renders the lists as JSON arrays (never null).
func encodeLists(products, groups []string) (string, string, error) {
	if products == nil {
		products = []string{}
	}
	if groups == nil {
		groups = []string{}
	}
	p, err := json.Marshal(products)
	if err != nil {
		return "", "", err
	}
	g, err := json.Marshal(groups)
	if err != nil {
		return "", "", err
	}
	return string(p), string(g), nil
}

// nullable passes a pointer's value, or NULL when it is nil.
func nullable[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
