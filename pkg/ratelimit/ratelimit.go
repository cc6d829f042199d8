package ratelimit

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dhosauth/dhosauth/pkg/storage"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationFiles embed.FS

// MigrationSetName names the counters' migration set: it is tracked in
// schema_migrations_ratelimit of the service's schema.
const MigrationSetName = "ratelimit"

// Migrations returns the counters' migrations, to be listed in a service
// store's storage.Migrations.Shared.
func Migrations() storage.NamedMigrations {
	return storage.EmbeddedNamedMigrations(MigrationSetName, migrationFiles)
}

// Limit is at most Max counted attempts per Window (sliding). A Limit
// with Max 0 is off.
type Limit struct {
	// Name labels the refusal metric and is the bucket's prefix: a
	// constant, never anything a caller sent.
	Name   string
	Max    int
	Window time.Duration
}

// Off reports whether the limit counts nothing.
func (l Limit) Off() bool { return l.Max <= 0 || l.Window <= 0 }

// String is the limit as configured ("30/15m0s", or "off").
func (l Limit) String() string {
	if l.Off() {
		return "off"
	}
	return strconv.Itoa(l.Max) + "/" + l.Window.String()
}

// ParseLimit reads "N/duration" (e.g. "30/15m"), or "off" or "0" for a
// limit that is off.
func ParseLimit(name, v string) (Limit, error) {
	v = strings.TrimSpace(v)
	if v == "off" || v == "0" {
		return Limit{Name: name}, nil
	}
	n, d, ok := strings.Cut(v, "/")
	if !ok {
		return Limit{}, fmt.Errorf("want N/duration (e.g. 30/15m) or off, got %q", v)
	}
	max, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || max < 0 || max > 1_000_000 {
		return Limit{}, fmt.Errorf("want a count from 0 to 1000000 before the slash, got %q", n)
	}
	w, err := time.ParseDuration(strings.TrimSpace(d))
	if err != nil || w < time.Second || w > 24*time.Hour {
		return Limit{}, fmt.Errorf("want a window from 1s to 24h after the slash, got %q", d)
	}
	return Limit{Name: name, Max: max, Window: w}, nil
}

// Bucket is one thing a limit counts: Key names it (a client address, a
// code's hash, a principal's id); Keys are hashed before they are stored,
// so a secret never reaches the table in clear and every key has the same
// size.
type Bucket struct {
	Limit Limit
	Key   string
}

// id is the bucket's primary key: the limit's name and the key's hash.
func (b Bucket) id() string {
	h := sha256.Sum256([]byte(b.Key))
	return b.Limit.Name + ":" + hex.EncodeToString(h[:16])
}

// Reservation is what Take counted, to Return it when the attempt turns
// out not to count (a success, when only failures are limited).
type Reservation struct {
	// Allowed is false when a bucket was full: nothing was counted.
	Allowed bool
	// RetryAfter (when refused) is how long until the full bucket takes
	// another attempt.
	RetryAfter time.Duration
	// Refused names the limit that refused.
	Refused string
	taken   []taken
}

type taken struct {
	id          string
	windowStart int64
	window      int64
}

// Store keeps the counters in a service's database (either backend), so
// that every replica of the service, and every replica of the edge in
// front of it, counts against the same numbers.
type Store struct {
	db        storage.DB
	now       func() time.Time
	lastPrune atomic.Int64
}

// New returns a Store on db, whose migrations must include Migrations().
// Counts are written with relaxed durability (storage.Relaxed): a
// database crash may forget the last moments' counts, which costs an
// attacker's budget a few attempts at most, and spares every attempt a
// WAL flush while it holds its buckets' rows.
func New(db storage.DB) *Store { return &Store{db: storage.Relaxed(db), now: time.Now} }

// WithClock returns s with another clock (tests).
func (s *Store) WithClock(now func() time.Time) *Store { s.now = now; return s }

// pruneEvery is how often a process deletes expired counters.
const pruneEvery = time.Minute

// upsertRow is one bucket's row in upsert: id, window start, expiry (two
// windows on: the window is half the span from the start to the expiry).
const upsertRow = "($%d, $%d, 1, 0, $%d)"

// upsert counts one hit in each bucket of its VALUES, in one statement,
// rolling a bucket's windows forward when its current one has passed. A
// replica whose clock is behind counts into the newer window already
// stored instead of moving it back. Rows are locked in VALUES order.
const upsert = `INSERT INTO rate_limit (bucket, window_start, hits, prev_hits, expires_at)
VALUES %s
ON CONFLICT (bucket) DO UPDATE SET
  prev_hits = CASE WHEN rate_limit.window_start >= excluded.window_start THEN rate_limit.prev_hits
                   WHEN rate_limit.window_start = excluded.window_start - (excluded.expires_at - excluded.window_start) / 2 THEN rate_limit.hits
                   ELSE 0 END,
  hits = CASE WHEN rate_limit.window_start >= excluded.window_start THEN rate_limit.hits + 1 ELSE 1 END,
  window_start = CASE WHEN rate_limit.window_start >= excluded.window_start THEN rate_limit.window_start ELSE excluded.window_start END,
  expires_at = CASE WHEN rate_limit.window_start >= excluded.window_start THEN rate_limit.expires_at ELSE excluded.expires_at END
RETURNING bucket, hits, prev_hits, window_start`

// upserts are the statements for one to four buckets (the callers count
// an attempt in at most three).
var upserts = func() []string {
	out := []string{""}
	for n := 1; n <= 4; n++ {
		rows := make([]string, n)
		for i := range rows {
			rows[i] = fmt.Sprintf(upsertRow, 3*i+1, 3*i+2, 3*i+3)
		}
		out = append(out, fmt.Sprintf(upsert, strings.Join(rows, ", ")))
	}
	return out
}()

// Take counts one attempt in each bucket (limits that are off are
// skipped) with one statement: either every bucket counts it or none does.
// When one of them is full the count is given back at once and the
// reservation is not Allowed (meanwhile concurrent attempts see it, which
// errs on the safe side). Buckets are locked in a fixed order, so
// concurrent Takes never deadlock.
func (s *Store) Take(ctx context.Context, buckets ...Bucket) (Reservation, error) {
	now := s.now()
	nowMS := now.UnixMilli()
	type item struct {
		b  Bucket
		id string
	}
	items := make([]item, 0, len(buckets))
	for _, b := range buckets {
		if !b.Limit.Off() {
			items = append(items, item{b, b.id()})
		}
	}
	if len(items) == 0 {
		return Reservation{Allowed: true}, nil
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.id, b.id) })
	items = slices.CompactFunc(items, func(a, b item) bool { return a.id == b.id })
	if len(items) >= len(upserts) {
		return Reservation{}, fmt.Errorf("ratelimit: at most %d buckets per attempt", len(upserts)-1)
	}
	args := make([]any, 0, 3*len(items))
	for _, it := range items {
		w := it.b.Limit.Window.Milliseconds()
		ws := nowMS - nowMS%w
		args = append(args, it.id, ws, ws+2*w)
	}
	type counted struct {
		hits, prev int
		ws         int64
	}
	got := make(map[string]counted, len(items))
	rows, err := s.db.Query(ctx, upserts[len(items)], args...)
	if err != nil {
		return Reservation{}, fmt.Errorf("ratelimit: %w", err)
	}
	for rows.Next() {
		var id string
		var c counted
		if err := rows.Scan(&id, &c.hits, &c.prev, &c.ws); err != nil {
			rows.Close()
			return Reservation{}, fmt.Errorf("ratelimit: %w", err)
		}
		got[id] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Reservation{}, fmt.Errorf("ratelimit: %w", err)
	}
	res := Reservation{Allowed: true}
	for _, it := range items {
		c, ok := got[it.id]
		if !ok {
			return Reservation{}, fmt.Errorf("ratelimit: bucket %s not counted", it.b.Limit.Name)
		}
		res.taken = append(res.taken, taken{id: it.id, windowStart: c.ws, window: it.b.Limit.Window.Milliseconds()})
		if wait, full := over(it.b.Limit, c.hits, c.prev, c.ws, nowMS); full && res.Allowed {
			res.Allowed, res.RetryAfter, res.Refused = false, wait, it.b.Limit.Name
		}
	}
	if !res.Allowed {
		// Nothing counts a refused attempt.
		if err := s.giveBack(ctx, res.taken); err != nil {
			return Reservation{}, err
		}
		res.taken = nil
		return res, nil
	}
	s.maybePrune(ctx, now)
	return res, nil
}

// over reports whether hits in the current window (this attempt
// included) and prev in the previous one exceed the limit, weighing the
// previous window by how much of it the sliding window still covers, and
// if so how long until an attempt would be taken.
func over(l Limit, hits, prev int, windowStart, nowMS int64) (time.Duration, bool) {
	w := float64(l.Window.Milliseconds())
	elapsed := math.Min(math.Max(float64(nowMS-windowStart), 0), w)
	weight := 1 - elapsed/w
	if float64(prev)*weight+float64(hits) <= float64(l.Max) {
		return 0, false
	}
	max := float64(l.Max)
	var at float64 // ms after windowStart when the next attempt fits
	if float64(hits) <= max {
		// The previous window's share must shrink first.
		at = w * (1 - (max-float64(hits))/float64(prev))
	} else {
		// Only the next window can take it: there, the attempts counted
		// now (hits-1: this one is not kept) weigh as the previous window.
		at = w
		if counted := float64(hits - 1); counted > 0 && max-1 < counted {
			at += w * (1 - (max-1)/counted)
		}
	}
	wait := time.Duration(at-float64(nowMS-windowStart)) * time.Millisecond
	// Whole seconds, rounded up: Retry-After is in seconds.
	wait = (wait + time.Second - 1).Truncate(time.Second)
	if wait < time.Second {
		wait = time.Second
	}
	return wait, true
}

// Return gives back what r counted, when the attempt it was taken for
// must not count (for limits on failures: it succeeded). Counts that have
// moved to the previous window since are given back there.
func (s *Store) Return(ctx context.Context, r Reservation) error {
	if !r.Allowed || len(r.taken) == 0 {
		return nil
	}
	return s.giveBack(ctx, r.taken)
}

// giveBack uncounts what was taken, in one transaction (one round trip).
func (s *Store) giveBack(ctx context.Context, taken []taken) error {
	err := s.db.Tx(ctx, func(q storage.Querier) error {
		for _, t := range taken {
			if err := storage.Defer(ctx, q,
				`UPDATE rate_limit SET
				   hits = CASE WHEN window_start = $2 AND hits > 0 THEN hits - 1 ELSE hits END,
				   prev_hits = CASE WHEN window_start = $2 + $3 AND prev_hits > 0 THEN prev_hits - 1 ELSE prev_hits END
				 WHERE bucket = $1`, t.id, t.windowStart, t.window); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ratelimit: return: %w", err)
	}
	return nil
}

// maybePrune deletes expired counters, at most once per pruneEvery per
// process; a failure is left for the next time.
func (s *Store) maybePrune(ctx context.Context, now time.Time) {
	last := s.lastPrune.Load()
	if now.UnixMilli()-last < pruneEvery.Milliseconds() || !s.lastPrune.CompareAndSwap(last, now.UnixMilli()) {
		return
	}
	_, _ = s.db.Exec(ctx, `DELETE FROM rate_limit WHERE expires_at < $1`, now.UnixMilli())
}

// Count returns the stored counts of a bucket (tests and diagnostics):
// hits in its current window and in the previous one.
func (s *Store) Count(ctx context.Context, b Bucket) (hits, prev int, err error) {
	err = s.db.QueryRow(ctx, `SELECT hits, prev_hits FROM rate_limit WHERE bucket = $1`, b.id()).Scan(&hits, &prev)
	if err != nil {
		return 0, 0, err
	}
	return hits, prev, nil
}

// Rows returns how many counters are stored (tests: pruning).
func (s *Store) Rows(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM rate_limit`).Scan(&n)
	return n, err
}
