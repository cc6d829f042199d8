package audit

import (
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/storage"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationFiles embed.FS

// MigrationSetName names the outbox's migration set: it is tracked in
// schema_migrations_audit of each service's schema.
const MigrationSetName = "audit"

// Migrations returns the outbox's migrations, to be listed in a service
// store's storage.Migrations.Shared so that the outbox lives in the
// service's own schema (or file) next to the tables its events describe.
func Migrations() storage.NamedMigrations {
	return storage.EmbeddedNamedMigrations(MigrationSetName, migrationFiles)
}

// Record writes events into the outbox through q. Called with the
// transaction that makes the change the events describe, they exist if and
// only if the change does. Missing ids and times are filled in; an event
// without a type or service, or whose data would carry a secret, is an
// error (and so fails the transaction).
func Record(ctx context.Context, q storage.Querier, evs ...Event) error {
	for _, ev := range evs {
		ev, data, err := prepare(ev)
		if err != nil {
			return err
		}
		// Deferred: on PostgreSQL the event travels with the COMMIT; a
		// failure to write it still fails the transaction.
		if err := storage.Defer(ctx, q,
			`INSERT INTO audit_outbox (id, occurred_at, event_type, actor, subject, outcome, reason, trace_id, service, event_data)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			ev.ID, ev.Time, ev.Type, ev.Actor, ev.Subject, string(ev.Outcome), ev.Reason, ev.TraceID, ev.Service, string(data)); err != nil {
			return fmt.Errorf("audit: record %s: %w", ev.Type, err)
		}
	}
	return nil
}

// RecordTx writes events in a transaction of their own: for refusals and
// other decisions that change nothing else.
func RecordTx(ctx context.Context, db storage.DB, evs ...Event) error {
	if len(evs) == 0 {
		return nil
	}
	return db.Tx(ctx, func(q storage.Querier) error { return Record(ctx, q, evs...) })
}

// Page sizes of List.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Query selects events for List. Empty fields select everything.
type Query struct {
	// Principal keeps events whose actor or subject is this id.
	Principal string
	// Type keeps events of this type.
	Type string
	// From (inclusive) and To (exclusive) bound the events' time.
	From, To time.Time
	// PageSize is at most MaxPageSize; 0 means DefaultPageSize.
	PageSize int
	// PageToken continues a previous List (its NextPageToken, or a
	// Stored.Cursor).
	PageToken string
}

// Stored is an event as the outbox keeps it.
type Stored struct {
	Event
	// Cursor is the page token that continues after this event.
	Cursor string
	// PublishedAt is when the broker confirmed the event; nil while it
	// waits.
	PublishedAt *time.Time
	seq         int64
}

// Page is one page of List.
type Page struct {
	Events []Stored
	// NextPageToken continues the list; empty at its end.
	NextPageToken string
}

// cursor is a position in the outbox's order (time, then seq).
type cursor struct {
	time time.Time
	seq  int64
}

const cursorPrefix = "a1."

func (c cursor) String() string {
	return cursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.time.UnixMicro(), 10)+":"+strconv.FormatInt(c.seq, 10)))
}

func parseCursor(s string) (cursor, error) {
	bad := apperr.InvalidArgument("page_token is not valid")
	rest, ok := strings.CutPrefix(s, cursorPrefix)
	if !ok {
		return cursor{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return cursor{}, bad
	}
	ts, sq, ok := strings.Cut(string(b), ":")
	us, err1 := strconv.ParseInt(ts, 10, 64)
	seq, err2 := strconv.ParseInt(sq, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return cursor{}, bad
	}
	return cursor{time: time.UnixMicro(us).UTC(), seq: seq}, nil
}

const storedColumns = `seq, id, occurred_at, event_type, actor, subject, outcome, reason, trace_id, service, event_data, published_at`

func scanStored(r storage.Row) (Stored, error) {
	var (
		s       Stored
		outcome string
		data    string
	)
	if err := r.Scan(&s.seq, &s.ID, &s.Time, &s.Type, &s.Actor, &s.Subject, &outcome, &s.Reason, &s.TraceID, &s.Service, &data, &s.PublishedAt); err != nil {
		return Stored{}, err
	}
	s.Outcome = Outcome(outcome)
	s.Time = s.Time.UTC()
	if s.PublishedAt != nil {
		t := s.PublishedAt.UTC()
		s.PublishedAt = &t
	}
	if err := json.Unmarshal([]byte(data), &s.Data); err != nil {
		return Stored{}, fmt.Errorf("audit: event %s data: %w", s.ID, err)
	}
	s.Cursor = cursor{time: s.Time, seq: s.seq}.String()
	return s, nil
}

// List pages through the outbox's events, oldest first (by time, then by
// the order they were recorded in).
func List(ctx context.Context, q storage.Querier, qu Query) (Page, error) {
	size := qu.PageSize
	switch {
	case size < 0:
		return Page{}, apperr.InvalidArgument("page_size must not be negative")
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	if !qu.From.IsZero() && !qu.To.IsZero() && !qu.From.Before(qu.To) {
		return Page{}, apperr.InvalidArgument("from must be before to")
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if qu.Principal != "" {
		p := arg(qu.Principal)
		where = append(where, "(actor = "+p+" OR subject = "+p+")")
	}
	if qu.Type != "" {
		where = append(where, "event_type = "+arg(qu.Type))
	}
	if !qu.From.IsZero() {
		where = append(where, "occurred_at >= "+arg(qu.From.UTC()))
	}
	if !qu.To.IsZero() {
		where = append(where, "occurred_at < "+arg(qu.To.UTC()))
	}
	if qu.PageToken != "" {
		c, err := parseCursor(qu.PageToken)
		if err != nil {
			return Page{}, err
		}
		t := arg(c.time)
		where = append(where, "(occurred_at > "+t+" OR (occurred_at = "+t+" AND seq > "+arg(c.seq)+"))")
	}
	sql := "SELECT " + storedColumns + " FROM audit_outbox"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY occurred_at, seq LIMIT " + arg(size+1)
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return Page{}, fmt.Errorf("audit: list: %w", err)
	}
	defer rows.Close()
	var p Page
	for rows.Next() {
		s, err := scanStored(rows)
		if err != nil {
			return Page{}, err
		}
		p.Events = append(p.Events, s)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("audit: list: %w", err)
	}
	if len(p.Events) > size {
		p.Events = p.Events[:size]
		p.NextPageToken = p.Events[size-1].Cursor
	}
	return p, nil
}

// Pending returns up to limit events the broker has not confirmed, in the
// order they are to be published.
func Pending(ctx context.Context, q storage.Querier, limit int) ([]Stored, error) {
	rows, err := q.Query(ctx, "SELECT "+storedColumns+" FROM audit_outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1", limit)
	if err != nil {
		return nil, fmt.Errorf("audit: pending: %w", err)
	}
	defer rows.Close()
	var out []Stored
	for rows.Next() {
		s, err := scanStored(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// MarkPublished records that the broker confirmed the events with these ids.
func MarkPublished(ctx context.Context, q storage.Querier, ids []string, at time.Time) error {
	for start := 0; start < len(ids); start += 100 {
		chunk := ids[start:min(start+100, len(ids))]
		args := []any{at}
		marks := make([]string, len(chunk))
		for i, id := range chunk {
			args = append(args, id)
			marks[i] = "$" + strconv.Itoa(i+2)
		}
		if _, err := q.Exec(ctx, "UPDATE audit_outbox SET published_at = $1 WHERE published_at IS NULL AND id IN ("+strings.Join(marks, ", ")+")", args...); err != nil {
			return fmt.Errorf("audit: mark published: %w", err)
		}
	}
	return nil
}

// Backlog is what waits in the outbox.
type Backlog struct {
	// Depth counts the events not yet confirmed by the broker.
	Depth int64
	// Oldest is the time of the oldest of them (zero when Depth is 0).
	Oldest time.Time
}

// PendingBacklog measures the outbox's backlog.
func PendingBacklog(ctx context.Context, q storage.Querier) (Backlog, error) {
	var (
		b      Backlog
		oldest *time.Time
	)
	if err := q.QueryRow(ctx, "SELECT count(*), min(occurred_at) FROM audit_outbox WHERE published_at IS NULL").Scan(&b.Depth, &oldest); err != nil {
		return Backlog{}, fmt.Errorf("audit: backlog: %w", err)
	}
	if oldest != nil {
		b.Oldest = oldest.UTC()
	}
	return b, nil
}

// Prune deletes the events older than before that the broker confirmed,
// or, when all is set (nothing publishes), every event older than before.
func Prune(ctx context.Context, q storage.Querier, before time.Time, all bool) (int64, error) {
	sql := "DELETE FROM audit_outbox WHERE occurred_at < $1 AND published_at IS NOT NULL"
	if all {
		sql = "DELETE FROM audit_outbox WHERE occurred_at < $1"
	}
	n, err := q.Exec(ctx, sql, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("audit: prune: %w", err)
	}
	return n, nil
}

// ErrLeaseLost: another publisher holds the lease.
var ErrLeaseLost = errors.New("audit: the publisher lease is held by another process")

// AcquireLease takes or renews the publisher lease for holder until now+ttl.
// It returns ErrLeaseLost while another holder's lease has not expired.
func AcquireLease(ctx context.Context, q storage.Querier, holder string, now time.Time, ttl time.Duration) error {
	n, err := q.Exec(ctx,
		"UPDATE audit_lease SET holder = $1, expires_at = $2 WHERE name = 'publisher' AND (holder = $1 OR expires_at < $3)",
		holder, now.Add(ttl).UTC(), now.UTC())
	if err != nil {
		return fmt.Errorf("audit: lease: %w", err)
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// ReleaseLease gives the lease up, so another replica can take it at once.
func ReleaseLease(ctx context.Context, q storage.Querier, holder string) error {
	_, err := q.Exec(ctx, "UPDATE audit_lease SET expires_at = $2 WHERE name = 'publisher' AND holder = $1", holder, time.Unix(0, 0).UTC())
	if err != nil {
		return fmt.Errorf("audit: release lease: %w", err)
	}
	return nil
}
