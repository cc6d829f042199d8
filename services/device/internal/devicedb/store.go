package devicedb

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/services/device/internal/device"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationFiles embed.FS

// Migrations returns the embedded migrations of both backends, after the
// audit outbox's.
func Migrations() storage.Migrations {
	return storage.EmbeddedMigrations(migrationFiles, audit.Migrations())
}

// Store implements device.Store.
type Store struct {
	db storage.DB
}

var _ device.Store = (*Store)(nil)

// New returns a Store over a migrated database.
func New(db storage.DB) *Store { return &Store{db: db} }

const columns = "uuid, location_id, description, type, active, created, created_by, modified, modified_by"

// Create implements device.Store.
func (s *Store) Create(ctx context.Context, d device.Device, ev audit.Event) error {
	err := s.db.Tx(ctx, func(q storage.Querier) error {
		if _, err := q.Exec(ctx,
			"INSERT INTO devices ("+columns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
			d.ID, d.LocationID, d.Description, d.Type, d.Active, d.Created, d.CreatedBy, d.Modified, d.ModifiedBy); err != nil {
			return err
		}
		return audit.Record(ctx, q, ev)
	})
	if errors.Is(err, storage.ErrConflict) {
		return device.ErrExists
	}
	return err
}

// Get implements device.Store.
func (s *Store) Get(ctx context.Context, id string) (device.Device, error) {
	d, err := scan(s.db.QueryRow(ctx, "SELECT "+columns+" FROM devices WHERE uuid = $1", id))
	if errors.Is(err, storage.ErrNotFound) {
		return device.Device{}, device.ErrNotFound
	}
	return d, err
}

// List implements device.Store.
func (s *Store) List(ctx context.Context, f device.Filter) ([]device.Device, error) {
	var b strings.Builder
	args := []any{f.Active}
	b.WriteString("SELECT " + columns + " FROM devices WHERE active = $1")
	if len(f.LocationIDs) > 0 {
		b.WriteString(" AND location_id IN (")
		for i, id := range f.LocationIDs {
			if i > 0 {
				b.WriteString(", ")
			}
			args = append(args, id)
			b.WriteString("$" + strconv.Itoa(len(args)))
		}
		b.WriteString(")")
	}
	if f.Type != "" {
		args = append(args, f.Type)
		b.WriteString(" AND type = $" + strconv.Itoa(len(args)))
	}
	limit := f.Limit
	if limit <= 0 || limit > device.MaxListResults {
		limit = device.MaxListResults
	}
	args = append(args, limit)
	b.WriteString(" ORDER BY created, uuid LIMIT $" + strconv.Itoa(len(args)))
	rows, err := s.db.Query(ctx, b.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []device.Device{}
	for rows.Next() {
		d, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Update implements device.Store.
func (s *Store) Update(ctx context.Context, id string, c device.Changes, modified time.Time, modifiedBy string, ev audit.Event) (device.Device, error) {
	var d device.Device
	err := s.db.Tx(ctx, func(q storage.Querier) error {
		var err error
		d, err = s.update(ctx, q, id, c, modified, modifiedBy)
		if err != nil {
			return err
		}
		return audit.Record(ctx, q, ev)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return device.Device{}, device.ErrNotFound
	}
	return d, err
}

func (s *Store) update(ctx context.Context, q storage.Querier, id string, c device.Changes, modified time.Time, modifiedBy string) (device.Device, error) {
	return scan(q.QueryRow(ctx,
		`UPDATE devices SET
			location_id = COALESCE($2, location_id),
			description = COALESCE($3, description),
			active = COALESCE($4, active),
			modified = $5,
			modified_by = $6
		WHERE uuid = $1
		RETURNING `+columns,
		id, nullable(c.LocationID), nullable(c.Description), nullable(c.Active), modified, modifiedBy))
}

// DropAll implements device.Store.
func (s *Store) DropAll(ctx context.Context, ev audit.Event) error {
	return s.db.Tx(ctx, func(q storage.Querier) error {
		if _, err := q.Exec(ctx, "DELETE FROM devices"); err != nil {
			return err
		}
		return audit.Record(ctx, q, ev)
	})
}

func scan(r storage.Row) (device.Device, error) {
	var d device.Device
	err := r.Scan(&d.ID, &d.LocationID, &d.Description, &d.Type, &d.Active, &d.Created, &d.CreatedBy, &d.Modified, &d.ModifiedBy)
	if err != nil {
		return device.Device{}, fmt.Errorf("devicedb: %w", err)
	}
	return d, nil
}

// nullable passes a pointer's value, or NULL when it is nil.
func nullable[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
