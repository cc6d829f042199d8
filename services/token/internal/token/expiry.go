package token

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultExpiryWarning is how long before a configured key or secret
// expires a warning is logged (KEY_EXPIRY_WARNING).
const DefaultExpiryWarning = 14 * 24 * time.Hour

// Expiring is a configured key or secret with a known expiry (the
// *_EXPIRES_AT settings): the service cannot renew it, so an operator must
// be told in time.
type Expiring struct {
	// Name is the setting that holds the secret (HS_KEY, SIGNING_KEYS_DIR).
	Name      string
	ExpiresAt time.Time
}

// ExpiryWatch logs a warning well before anything the service signs or
// seals with stops being usable:
//   - a configured secret (HS_KEY, mounted keys, KEY_ENCRYPTION_KEY,
//     INTERNAL_AUTH_KEY) within Warning of its *_EXPIRES_AT: WARN; once
//     past it: ERROR;
//   - a managed signing key near its scheduled retirement without a
//     published successor, when less than half the propagation period is
//     left (the rotation should have started by then: it is failing):
//     WARN. A rotation that is on schedule is logged at INFO when the key
//     enters the warning window, as it needs no one's attention.
//
// Each warning repeats at most once per Every.
type ExpiryWatch struct {
	Secrets           []Expiring
	Warning           time.Duration
	RotationPeriod    time.Duration
	PropagationPeriod time.Duration
	Logger            *slog.Logger
	// Every is how often a standing warning is repeated (default 1h).
	Every time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu   sync.Mutex
	last map[string]time.Time
}

// Check looks at the configured secrets and at keys (the signer's keys)
// and logs what is due.
func (w *ExpiryWatch) Check(ctx context.Context, keys []KeyInfo) {
	now := w.now()
	for _, s := range w.Secrets {
		left := s.ExpiresAt.Sub(now)
		switch {
		case left <= 0:
			w.log(ctx, "expired:"+s.Name, slog.LevelError, "configured secret has EXPIRED: replace it now",
				"setting", s.Name, "expired_at", s.ExpiresAt.UTC().Format(time.RFC3339))
		case left <= w.warning():
			w.log(ctx, "expiring:"+s.Name, slog.LevelWarn, "configured secret expires soon: replace it before then",
				"setting", s.Name, "expires_at", s.ExpiresAt.UTC().Format(time.RFC3339), "expires_in", left.Round(time.Minute).String())
		}
	}
	for _, k := range keys {
		if k.Source != SourceStore || k.State != StateActive || w.RotationPeriod <= 0 {
			continue
		}
		due := k.ActivatesAt.Add(w.RotationPeriod)
		left := due.Sub(now)
		switch {
		case !k.RetiresAt.IsZero():
			// A successor is published: the rotation is under way.
		case left < w.PropagationPeriod/2:
			w.log(ctx, "rotation:"+k.ID, slog.LevelWarn, "signing key is due to retire but no successor is published: key rotation is failing (see earlier errors; dhosctl rotate-keys starts one)",
				"kid", k.ID, "due_at", due.UTC().Format(time.RFC3339), "due_in", left.Round(time.Second).String())
		case left <= w.warning():
			w.logOnce(ctx, "near:"+k.ID, slog.LevelInfo, "signing key nears its scheduled retirement; its successor will be published one propagation period before",
				"kid", k.ID, "due_at", due.UTC().Format(time.RFC3339), "successor_published_at", due.Add(-w.PropagationPeriod).UTC().Format(time.RFC3339))
		}
	}
}

func (w *ExpiryWatch) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *ExpiryWatch) warning() time.Duration {
	if w.Warning > 0 {
		return w.Warning
	}
	return DefaultExpiryWarning
}

// log logs msg unless the same warning was logged less than Every ago.
func (w *ExpiryWatch) log(ctx context.Context, key string, level slog.Level, msg string, args ...any) {
	every := w.Every
	if every <= 0 {
		every = time.Hour
	}
	w.mu.Lock()
	if w.last == nil {
		w.last = map[string]time.Time{}
	}
	now := w.now()
	if t, ok := w.last[key]; ok && now.Sub(t) < every {
		w.mu.Unlock()
		return
	}
	w.last[key] = now
	w.mu.Unlock()
	w.Logger.Log(ctx, level, msg, args...)
}

// logOnce logs msg the first time only.
func (w *ExpiryWatch) logOnce(ctx context.Context, key string, level slog.Level, msg string, args ...any) {
	w.mu.Lock()
	if w.last == nil {
		w.last = map[string]time.Time{}
	}
	if _, ok := w.last[key]; ok {
		w.mu.Unlock()
		return
	}
	w.last[key] = w.now()
	w.mu.Unlock()
	w.Logger.Log(ctx, level, msg, args...)
}
