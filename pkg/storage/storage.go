// Package storage gives every service one small database interface over two
// backends: PostgreSQL through pgx/v5 (production) and embedded SQLite
// (the default on a laptop: one file per service, no server to install).
//
// Stores write their SQL once, in the common subset: $n placeholders,
// RETURNING, ON CONFLICT. Driver errors are translated into this package's
// sentinel errors, so a store never looks at a driver type.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"time"
)

// Sentinel errors every backend translates driver errors into.
var (
	// ErrNotFound: a query that must return one row returned none.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: a unique or primary key constraint was violated.
	ErrConflict = errors.New("storage: conflict")
	// ErrUnavailable: the database did not answer (connection refused,
	// reset, shutting down). The request may be retried.
	ErrUnavailable = errors.New("storage: database unavailable")
)

// Querier runs SQL. Times passed as arguments and scanned into *time.Time
// or **time.Time round-trip on both backends.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (int64, error)
	Query(ctx context.Context, sql string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) Row
}

// Rows is a result set.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is a single-row result; Scan returns ErrNotFound when there was none.
type Row interface {
	Scan(dest ...any) error
}

// Dialect names a backend.
type Dialect string

// The backends.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is a database handle.
type DB interface {
	Querier
	// Tx runs fn in one transaction, committed when fn returns nil.
	Tx(ctx context.Context, fn func(q Querier) error) error
	Ping(ctx context.Context) error
	Dialect() Dialect
	Close()
}

// Migrations holds a service's embedded migrations: files named
// NNNN_description.sql, one folder per dialect.
type Migrations struct {
	Postgres fs.FS
	SQLite   fs.FS
	// Shared are named sets of migrations that several services carry in
	// their own schema (such as the audit outbox of pkg/audit). They are
	// applied before the service's own, each set numbered on its own and
	// tracked in its own table, schema_migrations_<name>.
	Shared []NamedMigrations
}

// NamedMigrations is a set of migrations shared by several services.
type NamedMigrations struct {
	// Name is a plain identifier (lower case, digits, underscore).
	Name     string
	Postgres fs.FS
	SQLite   fs.FS
}

// migrationSet is one set to apply, in the dialect at hand.
type migrationSet struct {
	table string
	fsys  fs.FS
}

// sets lists the migration sets of a dialect in the order they apply:
// the shared ones, then the service's own (tracked in schema_migrations).
func (m Migrations) sets(d Dialect) ([]migrationSet, error) {
	var out []migrationSet
	for _, n := range m.Shared {
		if !identRe.MatchString(n.Name) {
			return nil, fmt.Errorf("storage: migration set name %q is not a plain identifier", n.Name)
		}
		f := n.Postgres
		if d == SQLite {
			f = n.SQLite
		}
		out = append(out, migrationSet{table: "schema_migrations_" + n.Name, fsys: f})
	}
	f := m.Postgres
	if d == SQLite {
		f = m.SQLite
	}
	return append(out, migrationSet{table: "schema_migrations", fsys: f}), nil
}

// Config says which backend to open.
type Config struct {
	// Service names the schema (PostgreSQL) or file (SQLite).
	Service string
	// URL is a PostgreSQL connection string; empty means SQLite.
	URL string
	// Schema overrides the PostgreSQL schema (default: Service).
	Schema string
	// DataDir holds the SQLite files.
	DataDir string
	// MaxConns bounds the pool.
	MaxConns int
	// ConnectTimeout bounds each connection attempt.
	ConnectTimeout time.Duration
}

var identRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open opens the configured backend and applies its migrations.
func Open(ctx context.Context, cfg Config, m Migrations) (DB, error) {
	if cfg.Schema == "" {
		cfg.Schema = cfg.Service
	}
	if !identRe.MatchString(cfg.Schema) {
		return nil, fmt.Errorf("storage: schema name %q is not a plain identifier", cfg.Schema)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 10
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.URL != "" {
		return openPostgres(ctx, cfg, m)
	}
	return openSQLite(ctx, cfg, m)
}

// deferrer is a transaction that can send a statement later, with others.
type deferrer interface {
	deferExec(sql string, args []any)
}

// Defer runs a statement whose result the caller does not need (an audit
// event, a row nothing reads back in the transaction) as part of q. In a
// PostgreSQL transaction it is sent with the COMMIT, saving a round trip;
// its failure (a conflict, say) then fails the commit, and so Tx, like any
// other failed statement. Elsewhere it runs at once.
func Defer(ctx context.Context, q Querier, sql string, args ...any) error {
	if d, ok := q.(deferrer); ok {
		d.deferExec(sql, args)
		return nil
	}
	_, err := q.Exec(ctx, sql, args...)
	return err
}

// Relaxed returns a view of db (sharing its connections; Close it or not,
// db stays open) whose writes may be lost in a database crash, the last
// moments before it: PostgreSQL commits them without waiting for the
// write-ahead log to reach the disk (synchronous_commit off for those
// transactions only), so a commit costs no flush and row locks are held
// for less time. For counters and other state that is cheap to lose, never
// for records. The embedded SQLite store is returned as is.
func Relaxed(db DB) DB {
	if r, ok := db.(interface{ relax() DB }); ok {
		return r.relax()
	}
	return db
}
