package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteDB is the embedded backend: one database file per service, WAL
// journal, writers serialised by SQLite (BEGIN IMMEDIATE, busy timeout).
// Times are stored as integer microseconds since the epoch.
type sqliteDB struct {
	db          *sql.DB
	schema      string
	stopMetrics func()
}

func openSQLite(ctx context.Context, cfg Config, m Migrations) (DB, error) {
	dir := cfg.DataDir
	if dir == "" {
		dir = "data"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: DATA_DIR: %w", err)
	}
	path := filepath.Join(dir, cfg.Schema+".db")
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", sqliteURI(path, q))
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	s := &sqliteDB{db: db, schema: cfg.Schema}
	if err := s.migrate(ctx, m); err != nil {
		db.Close()
		return nil, err
	}
	s.stopMetrics = registerPoolMetrics(cfg.Schema, sqlPoolStats(db))
	return s, nil
}

// sqliteURI is the file: URI of path with the query q. The path is made
// absolute and escaped: SQLite reads a URI's path with %HH escapes, and a
// '#', '?' or '%' left as it is in DATA_DIR would cut the path short or
// change it.
func sqliteURI(path string, q url.Values) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

func (s *sqliteDB) migrate(ctx context.Context, m Migrations) error {
	sets, err := m.sets(SQLite)
	if err != nil {
		return err
	}
	// BEGIN IMMEDIATE takes the write lock, so processes sharing the file
	// apply each migration once.
	return s.Tx(ctx, func(q Querier) error {
		for _, set := range sets {
			ms, err := readMigrations(set.fsys)
			if err != nil {
				return err
			}
			if _, err := q.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+set.table+" (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"); err != nil {
				return err
			}
			for _, m := range ms {
				var n int
				if err := q.QueryRow(ctx, "SELECT count(*) FROM "+set.table+" WHERE version = $1", m.version).Scan(&n); err != nil {
					return err
				}
				if n > 0 {
					continue
				}
				if _, err := q.Exec(ctx, m.sql); err != nil {
					return fmt.Errorf("storage: migration %s (%s): %w", m.name, set.table, err)
				}
				if _, err := q.Exec(ctx, "INSERT INTO "+set.table+" (version, name, applied_at) VALUES ($1, $2, $3)", m.version, m.name, time.Now()); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func (s *sqliteDB) Dialect() Dialect { return SQLite }
func (s *sqliteDB) Close() {
	if s.stopMetrics != nil {
		s.stopMetrics()
	}
	s.db.Close()
}
func (s *sqliteDB) Ping(ctx context.Context) error { return translateSQLite(s.db.PingContext(ctx)) }

type sqlConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *sqliteDB) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return sqlExec(ctx, s.schema, s.db, q, args)
}
func (s *sqliteDB) Query(ctx context.Context, q string, args ...any) (Rows, error) {
	return sqlQuery(ctx, s.schema, s.db, q, args)
}
func (s *sqliteDB) QueryRow(ctx context.Context, q string, args ...any) Row {
	return sqlQueryRow(ctx, s.schema, s.db, q, args)
}

// Tx runs fn in one transaction; inside a trace, BEGIN and COMMIT get
// spans of their own, like every statement.
func (s *sqliteDB) Tx(ctx context.Context, fn func(q Querier) error) error {
	sctx, span := startSpan(ctx, SQLite, s.schema, "BEGIN IMMEDIATE")
	tx, err := s.db.BeginTx(sctx, nil)
	endSpan(span, err)
	if err != nil {
		return translateSQLite(err)
	}
	if err := fn(sqlTx{tx: tx, schema: s.schema}); err != nil {
		_ = tx.Rollback()
		return err
	}
	_, span = startSpan(ctx, SQLite, s.schema, "COMMIT")
	err = tx.Commit()
	endSpan(span, err)
	return translateSQLite(err)
}

type sqlTx struct {
	tx     *sql.Tx
	schema string
}

func (t sqlTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return sqlExec(ctx, t.schema, t.tx, q, args)
}
func (t sqlTx) Query(ctx context.Context, q string, args ...any) (Rows, error) {
	return sqlQuery(ctx, t.schema, t.tx, q, args)
}
func (t sqlTx) QueryRow(ctx context.Context, q string, args ...any) Row {
	return sqlQueryRow(ctx, t.schema, t.tx, q, args)
}

func sqlExec(ctx context.Context, schema string, c sqlConn, q string, args []any) (int64, error) {
	ctx, span := startSpan(ctx, SQLite, schema, q)
	res, err := c.ExecContext(ctx, q, convertArgs(args)...)
	if err != nil {
		endSpan(span, err)
		return 0, translateSQLite(err)
	}
	n, err := res.RowsAffected()
	endSpan(span, err)
	return n, translateSQLite(err)
}

func sqlQuery(ctx context.Context, schema string, c sqlConn, q string, args []any) (Rows, error) {
	ctx, span := startSpan(ctx, SQLite, schema, q)
	rows, err := c.QueryContext(ctx, q, convertArgs(args)...)
	endSpan(span, err)
	if err != nil {
		return nil, translateSQLite(err)
	}
	return sqlRows{rows}, nil
}

// sqlQueryRow runs the statement at once (database/sql does); the span
// covers the execution, the error comes with Scan.
func sqlQueryRow(ctx context.Context, schema string, c sqlConn, q string, args []any) Row {
	ctx, span := startSpan(ctx, SQLite, schema, q)
	row := c.QueryRowContext(ctx, q, convertArgs(args)...)
	endSpan(span, row.Err())
	return sqlRow{row}
}

type sqlRow struct{ row *sql.Row }

func (r sqlRow) Scan(dest ...any) error {
	conv, finish := convertDest(dest)
	if err := r.row.Scan(conv...); err != nil {
		return translateSQLite(err)
	}
	finish()
	return nil
}

type sqlRows struct{ rows *sql.Rows }

func (r sqlRows) Next() bool { return r.rows.Next() }
func (r sqlRows) Scan(dest ...any) error {
	conv, finish := convertDest(dest)
	if err := r.rows.Scan(conv...); err != nil {
		return translateSQLite(err)
	}
	finish()
	return nil
}
func (r sqlRows) Err() error { return translateSQLite(r.rows.Err()) }
func (r sqlRows) Close()     { r.rows.Close() }

// convertArgs stores times as integer microseconds.
func convertArgs(args []any) []any {
	out := args
	for i, a := range args {
		var v any
		switch t := a.(type) {
		case time.Time:
			v = t.UnixMicro()
		case *time.Time:
			if t == nil {
				v = nil
			} else {
				v = t.UnixMicro()
			}
		default:
			continue
		}
		if &out[0] == &args[0] {
			out = append([]any(nil), args...)
		}
		out[i] = v
	}
	return out
}

// convertDest scans integer microseconds into *time.Time and **time.Time.
func convertDest(dest []any) ([]any, func()) {
	var fixes []func()
	out := dest
	for i, d := range dest {
		switch t := d.(type) {
		case *time.Time:
			var n int64
			fixes = append(fixes, func() { *t = time.UnixMicro(n).UTC() })
			out = replaceAt(out, dest, i, &n)
		case **time.Time:
			var n sql.NullInt64
			fixes = append(fixes, func() {
				if n.Valid {
					v := time.UnixMicro(n.Int64).UTC()
					*t = &v
				} else {
					*t = nil
				}
			})
			out = replaceAt(out, dest, i, &n)
		}
	}
	return out, func() {
		for _, f := range fixes {
			f()
		}
	}
}

func replaceAt(out, orig []any, i int, v any) []any {
	if len(out) > 0 && &out[0] == &orig[0] {
		out = append([]any(nil), orig...)
	}
	out[i] = v
	return out
}

func translateSQLite(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %s", ErrConflict, se.Error())
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	return err
}
