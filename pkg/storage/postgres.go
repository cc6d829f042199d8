package storage

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

type pgDB struct {
	pool        *pgxpool.Pool
	stopMetrics func()
	// relaxed: commits do not wait for the WAL flush (Relaxed).
	relaxed bool
}

// relaxedCommit, run in a transaction, makes its commit return before the
// WAL is flushed (for that transaction only).
const relaxedCommit = "SELECT set_config('synchronous_commit', 'off', true)"

// relax returns a copy of d whose transactions commit without waiting for
// the WAL flush; it shares d's pool, and Close stays d's.
func (d *pgDB) relax() DB { return &pgDB{pool: d.pool, relaxed: true} }

func openPostgres(ctx context.Context, cfg Config, m Migrations) (DB, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("storage: DATABASE_URL: %w", err)
	}
	pc.MaxConns = int32(cfg.MaxConns)
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	pc.ConnConfig.RuntimeParams["search_path"] = cfg.Schema
	pc.ConnConfig.Tracer = pgTracer{schema: cfg.Schema}
	if pc.ConnConfig.RuntimeParams["application_name"] == "" {
		pc.ConnConfig.RuntimeParams["application_name"] = "dhosauth-" + cfg.Service
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("storage: connect: %w", err)
	}
	db := &pgDB{pool: pool}
	if err := db.migrate(ctx, cfg.Schema, m); err != nil {
		pool.Close()
		return nil, err
	}
	db.stopMetrics = registerPoolMetrics(cfg.Schema, pgxPoolStats(pool))
	return db, nil
}

// migrate creates the schema and applies pending migrations (the shared
// sets, then the service's own) while holding a session advisory lock, so
// replicas that start together apply each migration exactly once.
func (d *pgDB) migrate(ctx context.Context, schema string, m Migrations) error {
	sets, err := m.sets(Postgres)
	if err != nil {
		return err
	}
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("storage: connect: %w", translatePG(err))
	}
	defer conn.Release()
	h := fnv.New64a()
	h.Write([]byte("dhosauth-migrate:" + schema))
	lock := int64(h.Sum64())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lock); err != nil {
		return fmt.Errorf("storage: migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lock) //nolint:errcheck
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		return fmt.Errorf("storage: prepare schema %s: %w", schema, err)
	}
	for _, set := range sets {
		if err := applyPG(ctx, conn.Conn(), schema, set); err != nil {
			return err
		}
	}
	return nil
}

// applyPG applies the pending migrations of one set, each in its own
// transaction with its record in the set's table.
func applyPG(ctx context.Context, conn *pgx.Conn, schema string, set migrationSet) error {
	ms, err := readMigrations(set.fsys)
	if err != nil {
		return err
	}
	table := schema + "." + set.table
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+table+" (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
		return fmt.Errorf("storage: prepare schema %s: %w", schema, err)
	}
	for _, m := range ms {
		var done bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+table+" WHERE version = $1)", m.version).Scan(&done); err != nil {
			return fmt.Errorf("storage: read migrations: %w", err)
		}
		if done {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+schema); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+table+" (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("storage: migration %s (%s): %w", m.name, set.table, err)
		}
	}
	return nil
}

func (d *pgDB) Dialect() Dialect { return Postgres }
func (d *pgDB) Close() {
	if d.relaxed {
		return // a view of another pgDB, which owns the pool
	}
	if d.stopMetrics != nil {
		d.stopMetrics()
	}
	d.pool.Close()
}

// Pool exposes the pgx pool for metrics.
func (d *pgDB) Pool() *pgxpool.Pool { return d.pool }

func (d *pgDB) Ping(ctx context.Context) error { return translatePG(d.pool.Ping(ctx)) }

func (d *pgDB) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	if d.relaxed {
		br := d.relaxedBatch(ctx, sql, args)
		_, err := br.Exec()
		var tag pgconn.CommandTag
		if err == nil {
			tag, err = br.Exec()
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		return tag.RowsAffected(), translatePG(err)
	}
	return pgExec(ctx, d.pool, sql, args)
}

// relaxedBatch sends a statement after relaxedCommit, in one pipeline: one
// implicit transaction.
func (d *pgDB) relaxedBatch(ctx context.Context, sql string, args []any) pgx.BatchResults {
	b := &pgx.Batch{}
	b.Queue(relaxedCommit)
	b.Queue(sql, args...)
	return d.pool.SendBatch(ctx, b)
}

func (d *pgDB) Query(ctx context.Context, sql string, args ...any) (Rows, error) {
	if d.relaxed {
		// A write that returns rows (an upsert with RETURNING).
		br := d.relaxedBatch(ctx, sql, args)
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, translatePG(err)
		}
		rows, err := br.Query()
		if err != nil {
			_ = br.Close()
			return nil, translatePG(err)
		}
		return &batchRows{pgRows: pgRows{rows}, br: br}, nil
	}
	return pgQuery(ctx, d.pool, sql, args)
}

// batchRows are rows read from a pipeline, which closes with them.
type batchRows struct {
	pgRows
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.pgRows.Close()
	r.err = r.br.Close()
}

func (r *batchRows) Err() error {
	if err := r.pgRows.Err(); err != nil {
		return err
	}
	return translatePG(r.err)
}

func (d *pgDB) QueryRow(ctx context.Context, sql string, args ...any) Row {
	if d.relaxed {
		br := d.relaxedBatch(ctx, sql, args)
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return errRow{translatePG(err)}
		}
		return &batchRow{row: br.QueryRow(), br: br}
	}
	return pgRow{d.pool.QueryRow(ctx, sql, args...)}
}

// Tx runs fn in a transaction on one pooled connection, with as few
// round trips as the statements allow: BEGIN travels with the first
// statement fn runs, and statements fn defers (Defer: audit events and
// other writes whose result nothing reads) travel with the COMMIT. A
// transaction of deferred statements only is one round trip: a pipeline
// PostgreSQL runs as one implicit transaction.
func (d *pgDB) Tx(ctx context.Context, fn func(q Querier) error) error {
	c, err := d.pool.Acquire(ctx)
	if err != nil {
		return translatePG(err)
	}
	// A connection released in the middle of a transaction (a panic in
	// fn) is closed by the pool, never reused.
	defer c.Release()
	t := &pgTx{conn: c.Conn(), relaxed: d.relaxed}
	if err := fn(t); err != nil {
		t.rollback(ctx)
		return translatePG(err)
	}
	return translatePG(t.commit(ctx))
}

type pgConn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func pgExec(ctx context.Context, c pgConn, sql string, args []any) (int64, error) {
	tag, err := c.Exec(ctx, sql, args...)
	if err != nil {
		return 0, translatePG(err)
	}
	return tag.RowsAffected(), nil
}

func pgQuery(ctx context.Context, c pgConn, sql string, args []any) (Rows, error) {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return nil, translatePG(err)
	}
	return pgRows{rows}, nil
}

// pgTx is a transaction that starts with its first statement (pipelined
// with BEGIN) and sends its deferred statements with its COMMIT.
type pgTx struct {
	conn     *pgx.Conn
	begun    bool
	relaxed  bool
	deferred []deferredStmt
}

type deferredStmt struct {
	sql  string
	args []any
}

// begin runs the first statement of the transaction together with BEGIN.
func (t *pgTx) begin(ctx context.Context, sql string, args []any) pgx.BatchResults {
	t.begun = true
	b := &pgx.Batch{}
	b.Queue("begin")
	if t.relaxed {
		b.Queue(relaxedCommit)
	}
	b.Queue(sql, args...)
	return t.conn.SendBatch(ctx, b)
}

// began reads the results of what begin sent before the statement.
func (t *pgTx) began(br pgx.BatchResults) error {
	_, err := br.Exec()
	if err == nil && t.relaxed {
		_, err = br.Exec()
	}
	return err
}

func (t *pgTx) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	if t.begun {
		return pgExec(ctx, t.conn, sql, args)
	}
	br := t.begin(ctx, sql, args)
	var tag pgconn.CommandTag
	err := t.began(br)
	if err == nil {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, translatePG(err)
	}
	return tag.RowsAffected(), nil
}

func (t *pgTx) Query(ctx context.Context, sql string, args ...any) (Rows, error) {
	if !t.begun {
		t.begun = true
		if _, err := t.conn.Exec(ctx, "begin"); err != nil {
			return nil, translatePG(err)
		}
		if t.relaxed {
			if _, err := t.conn.Exec(ctx, relaxedCommit); err != nil {
				return nil, translatePG(err)
			}
		}
	}
	return pgQuery(ctx, t.conn, sql, args)
}

func (t *pgTx) QueryRow(ctx context.Context, sql string, args ...any) Row {
	if t.begun {
		return pgRow{t.conn.QueryRow(ctx, sql, args...)}
	}
	br := t.begin(ctx, sql, args)
	if err := t.began(br); err != nil {
		_ = br.Close()
		return errRow{translatePG(err)}
	}
	return &batchRow{row: br.QueryRow(), br: br}
}

// deferExec implements Defer.
func (t *pgTx) deferExec(sql string, args []any) {
	t.deferred = append(t.deferred, deferredStmt{sql, args})
}

// commit sends the deferred statements and COMMIT in one round trip; with
// no statement run yet, the deferred ones alone, as an implicit
// transaction.
func (t *pgTx) commit(ctx context.Context) error {
	if !t.begun && len(t.deferred) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	if t.relaxed && !t.begun {
		b.Queue(relaxedCommit)
	}
	for _, s := range t.deferred {
		b.Queue(s.sql, s.args...)
	}
	if t.begun {
		b.Queue("commit")
	}
	br := t.conn.SendBatch(ctx, b)
	var err error
	for range b.Len() {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil && t.begun {
		// A failed statement leaves the transaction aborted, and the
		// COMMIT queued after it was skipped.
		t.rollback(ctx)
	}
	return err
}

func (t *pgTx) rollback(ctx context.Context) {
	if t.begun {
		_, _ = t.conn.Exec(context.WithoutCancel(ctx), "rollback")
	}
}

// batchRow is the first row of a transaction, read from the pipeline that
// began it.
type batchRow struct {
	row pgx.Row
	br  pgx.BatchResults
}

func (r *batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return translatePG(err)
}

// errRow is a row that failed before it was read.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type pgRow struct{ row pgx.Row }

func (r pgRow) Scan(dest ...any) error { return translatePG(r.row.Scan(dest...)) }

type pgRows struct{ rows pgx.Rows }

func (r pgRows) Next() bool             { return r.rows.Next() }
func (r pgRows) Scan(dest ...any) error { return translatePG(r.rows.Scan(dest...)) }
func (r pgRows) Err() error             { return translatePG(r.rows.Err()) }
func (r pgRows) Close()                 { r.rows.Close() }

// translatePG maps pgx errors onto the package's sentinels.
func translatePG(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505":
			return fmt.Errorf("%w: %s", ErrConflict, pe.ConstraintName)
		case pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || pe.Code[:2] == "08":
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || pgconn.SafeToRetry(err) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}
