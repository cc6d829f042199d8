package auth

import (
	"context"
	"log/slog"
	"sync"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
)

// DefaultRevocationPollInterval is how often a RevocationList asks for new
// revocations unless told otherwise (REVOCATION_POLL_INTERVAL).
const DefaultRevocationPollInterval = 2 * time.Second

// Revocation says that the tokens of a principal issued before
// RevokedBefore are refused.
type Revocation struct {
	Kind          authv1.PrincipalKind
	ID            string
	RevokedBefore time.Time
}

// RevocationPage is one answer of the token service's ListRevocations.
type RevocationPage struct {
	Revocations []Revocation
	// Cursor continues after this page.
	Cursor string
	// Reset: the cursor was empty or unknown (another store); the page
	// starts from the first revocation.
	Reset bool
	// More: another page follows at once.
	More bool
	// PruneBefore: revocations before this instant no longer matter.
	PruneBefore time.Time
}

type revokedKey struct {
	kind authv1.PrincipalKind
	id   string
}

// RevocationList is a verifier's copy of the revoked principals. It is
// kept current by polling (Sync, Run) and, in the token service itself, by
// Add when a revocation is recorded. It is safe for concurrent use.
type RevocationList struct {
	// Fetch returns the revocations after cursor ("" for all).
	Fetch func(ctx context.Context, cursor string) (RevocationPage, error)

	mu       sync.RWMutex
	m        map[revokedKey]time.Time
	cursor   string
	lastSync time.Time
}

// NewRevocationList returns an empty list filled by fetch.
func NewRevocationList(fetch func(ctx context.Context, cursor string) (RevocationPage, error)) *RevocationList {
	return &RevocationList{Fetch: fetch, m: map[revokedKey]time.Time{}}
}

// Revoked implements RevocationChecker: the principal was revoked after
// the token was issued. A token without iat is refused once its principal
// has any revocation.
func (l *RevocationList) Revoked(kind authv1.PrincipalKind, id string, issuedAt time.Time) bool {
	l.mu.RLock()
	before, ok := l.m[revokedKey{kind, id}]
	l.mu.RUnlock()
	return ok && (issuedAt.IsZero() || issuedAt.Before(before))
}

// Add records revocations at once (a later RevokedBefore wins).
func (l *RevocationList) Add(rs ...Revocation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addLocked(rs)
}

func (l *RevocationList) addLocked(rs []Revocation) {
	for _, r := range rs {
		k := revokedKey{r.Kind, r.ID}
		if cur, ok := l.m[k]; !ok || r.RevokedBefore.After(cur) {
			l.m[k] = r.RevokedBefore
		}
	}
}

// Len is how many principals the list holds.
func (l *RevocationList) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.m)
}

// LastSync is when Sync last completed (zero before the first).
func (l *RevocationList) LastSync() time.Time {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.lastSync
}

// maxPagesPerSync bounds one Sync (a page holds up to a thousand entries).
const maxPagesPerSync = 100

// Sync fetches every revocation recorded since the last Sync.
func (l *RevocationList) Sync(ctx context.Context) error {
	l.mu.RLock()
	cursor := l.cursor
	l.mu.RUnlock()
	for range maxPagesPerSync {
		page, err := l.Fetch(ctx, cursor)
		if err != nil {
			return err
		}
		l.mu.Lock()
		// A reset page (a new store, or a cursor it no longer knows) is
		// merged, not swapped in: what the list holds was revoked, and
		// pruning forgets it once it no longer matters.
		l.addLocked(page.Revocations)
		if !page.PruneBefore.IsZero() {
			for k, before := range l.m {
				if before.Before(page.PruneBefore) {
					delete(l.m, k)
				}
			}
		}
		l.cursor = page.Cursor
		cursor = page.Cursor
		if !page.More {
			l.lastSync = time.Now()
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
	}
	return nil
}

// Run calls Sync every interval until ctx ends. Failures are logged (the
// first of a run of failures at WARN, the rest at DEBUG) and the last
// known list stays in force.
func (l *RevocationList) Run(ctx context.Context, interval time.Duration, lg *slog.Logger) {
	if interval <= 0 {
		interval = DefaultRevocationPollInterval
	}
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		cctx, cancel := context.WithTimeout(ctx, interval+3*time.Second)
		err := l.Sync(cctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			lg.Warn("revocation list: cannot reach the token service; keeping the last known list", "error", err.Error())
		case err != nil:
			lg.Debug("revocation list: still failing", "error", err.Error())
		case failing:
			failing = false
			lg.Info("revocation list: in sync again", "revoked_principals", l.Len())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
