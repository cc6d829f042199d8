package token

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dhosauth/dhosauth/pkg/auth"
)

// ManagedConfig configures ManagedKeys.
type ManagedConfig struct {
	// Alg is the algorithm of new keys (SIGNING_ALG).
	Alg string
	// RotationPeriod is how long a key signs before the next one takes
	// over (KEY_ROTATION_PERIOD).
	RotationPeriod time.Duration
	// PropagationPeriod is how long a new key is published before it signs
	// (KEY_PROPAGATION_PERIOD): longer than any verifier caches the key set.
	PropagationPeriod time.Duration
	// Retention is how long a retired key stays published: the longest
	// token lifetime plus the verifiers' leeway.
	Retention time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives rotations and removals (default: discarded).
	Logger *slog.Logger
}

// minReloadGap bounds how often an unknown kid makes ManagedKeys read the
// store again.
const minReloadGap = time.Second

// ManagedKeys are signing keys the service makes itself and keeps in its
// store, sealed (Sealer). Every replica reads the same keys. A key is
// published (next) for PropagationPeriod before it signs (active), signs
// until its successor activates, then stays published (retired) for
// Retention so that every token it signed can still be verified, and is
// then deleted. Rotation is a conditional insert of the next generation:
// when replicas rotate at once, one insert wins and the others read it.
type ManagedKeys struct {
	store  Store
	sealer *Sealer
	cfg    ManagedConfig

	cur atomic.Pointer[ring]

	mu       sync.Mutex // serialises loads and rotations in this process
	opened   map[string]liveKey
	lastLoad time.Time
}

// NewManagedKeys reads the stored keys, making the first one when there is
// none.
func NewManagedKeys(ctx context.Context, store Store, sealer *Sealer, cfg ManagedConfig) (*ManagedKeys, error) {
	if !slices.Contains(ManagedAlgorithms, cfg.Alg) {
		return nil, fmt.Errorf("token: SIGNING_ALG %q is not one of %v", cfg.Alg, ManagedAlgorithms)
	}
	if cfg.RotationPeriod <= cfg.PropagationPeriod {
		return nil, errors.New("token: KEY_ROTATION_PERIOD must be longer than KEY_PROPAGATION_PERIOD")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &ManagedKeys{store: store, sealer: sealer, cfg: cfg, opened: map[string]liveKey{}}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.loadLocked(ctx); err != nil {
		return nil, err
	}
	if len(m.cur.Load().keys) == 0 {
		// Nothing was ever signed: the first key signs at once.
		if _, _, err := m.insertLocked(ctx, 1, m.cfg.Now()); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// loadLocked reads the stored keys, opening those not seen before.
func (m *ManagedKeys) loadLocked(ctx context.Context) error {
	stored, err := m.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("read signing keys: %w", err)
	}
	var keys []liveKey
	var errs []error
	seen := map[string]bool{}
	for _, sk := range stored {
		seen[sk.ID] = true
		if lk, ok := m.opened[sk.ID]; ok {
			keys = append(keys, lk)
			continue
		}
		lk, err := m.open(ctx, sk)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.opened[sk.ID] = lk
		keys = append(keys, lk)
	}
	for kid := range m.opened {
		if !seen[kid] {
			delete(m.opened, kid)
		}
	}
	m.cur.Store(newRing(keys, m.cfg.Retention))
	m.lastLoad = m.cfg.Now()
	return errors.Join(errs...)
}

// open unseals a stored key, sealing it again under the current key
// encryption key when a previous one sealed it.
func (m *ManagedKeys) open(ctx context.Context, sk StoredKey) (liveKey, error) {
	der, err := m.sealer.Open(sk.ID, sk.SealKeyID, sk.Sealed)
	if err != nil {
		return liveKey{}, fmt.Errorf("signing key %s: %w", sk.ID, err)
	}
	priv, err := unmarshalPrivate(der)
	if err != nil {
		return liveKey{}, fmt.Errorf("signing key %s: %w", sk.ID, err)
	}
	pair, err := NewKeyPair(priv)
	if err != nil {
		return liveKey{}, fmt.Errorf("signing key %s: %w", sk.ID, err)
	}
	if pair.ID() != sk.ID || pair.Alg != sk.Alg {
		return liveKey{}, fmt.Errorf("signing key %s: stored kid or algorithm does not match the key", sk.ID)
	}
	if sk.SealKeyID != m.sealer.KeyID() {
		sealed, err := m.sealer.Seal(sk.ID, der)
		if err == nil {
			err = m.store.ResealKey(ctx, sk.ID, sealed, m.sealer.KeyID())
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return liveKey{}, fmt.Errorf("signing key %s: seal under the current KEY_ENCRYPTION_KEY: %w", sk.ID, err)
		}
		m.cfg.Logger.Info("signing key sealed under the current KEY_ENCRYPTION_KEY", "kid", sk.ID)
	}
	return liveKey{pair: pair, generation: sk.Generation, source: SourceStore, createdAt: sk.CreatedAt, activatesAt: sk.ActivatesAt}, nil
}

// insertLocked makes and stores the key of generation gen, signing from
// activates. When another replica stored that generation first, it reads
// the keys again and reports created false.
func (m *ManagedKeys) insertLocked(ctx context.Context, gen int64, activates time.Time) (KeyInfo, bool, error) {
	pair, err := GenerateKeyPair(m.cfg.Alg)
	if err != nil {
		return KeyInfo{}, false, err
	}
	der, err := marshalPrivate(pair.Private)
	if err != nil {
		return KeyInfo{}, false, err
	}
	sealed, err := m.sealer.Seal(pair.ID(), der)
	if err != nil {
		return KeyInfo{}, false, err
	}
	jwk, err := json.Marshal(pair.JWK)
	if err != nil {
		return KeyInfo{}, false, err
	}
	now := m.cfg.Now().UTC().Truncate(time.Millisecond)
	err = m.store.InsertKey(ctx, StoredKey{
		ID: pair.ID(), Alg: pair.Alg, Generation: gen,
		CreatedAt: now, ActivatesAt: activates.UTC().Truncate(time.Millisecond),
		PublicJWK: string(jwk), Sealed: sealed, SealKeyID: m.sealer.KeyID(),
	})
	created := err == nil
	if err != nil && !errors.Is(err, ErrKeyExists) {
		return KeyInfo{}, false, fmt.Errorf("store signing key: %w", err)
	}
	if err := m.loadLocked(ctx); err != nil {
		return KeyInfo{}, false, err
	}
	latest, ok := m.latest()
	if !ok {
		return KeyInfo{}, false, errors.New("token: no signing key after rotation")
	}
	if created {
		m.cfg.Logger.Info("signing key made", "kid", latest.ID, "alg", latest.Alg, "generation", latest.Generation,
			"activates_at", latest.ActivatesAt.Format(time.RFC3339))
	}
	return latest, created, nil
}

// latest describes the newest key (highest generation).
func (m *ManagedKeys) latest() (KeyInfo, bool) {
	r := m.cur.Load()
	best := -1
	for i := range r.keys {
		if best < 0 || r.keys[i].generation > r.keys[best].generation {
			best = i
		}
	}
	if best < 0 {
		return KeyInfo{}, false
	}
	return r.info(best, m.cfg.Now()), true
}

// Rotate implements Signer: a new key, published now, signing after the
// propagation period. When a next key is already published, it is
// returned instead (created false).
func (m *ManagedKeys) Rotate(ctx context.Context) (KeyInfo, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.loadLocked(ctx); err != nil {
		return KeyInfo{}, false, err
	}
	now := m.cfg.Now()
	latest, _ := m.latest()
	if latest.ActivatesAt.After(now) {
		return latest, false, nil
	}
	return m.insertLocked(ctx, latest.Generation+1, now.Add(m.cfg.PropagationPeriod))
}

// Refresh implements Signer: it reads the keys again, starts the scheduled
// rotation when the active key is due to retire within the propagation
// period (or its algorithm is no longer SIGNING_ALG), and deletes keys
// whose tokens have all expired.
func (m *ManagedKeys) Refresh(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.loadLocked(ctx); err != nil {
		return err
	}
	now := m.cfg.Now()
	if latest, ok := m.latest(); ok && !latest.ActivatesAt.After(now) {
		due := latest.ActivatesAt.Add(m.cfg.RotationPeriod)
		reason := ""
		switch {
		case !now.Before(due.Add(-m.cfg.PropagationPeriod)):
			reason = "scheduled (KEY_ROTATION_PERIOD)"
		case latest.Alg != m.cfg.Alg:
			reason = "SIGNING_ALG changed to " + m.cfg.Alg
		}
		if reason != "" {
			next, created, err := m.insertLocked(ctx, latest.Generation+1, now.Add(m.cfg.PropagationPeriod))
			if err != nil {
				return fmt.Errorf("rotate signing key: %w", err)
			}
			if created {
				m.cfg.Logger.Info("signing key rotation started", "reason", reason, "retiring_kid", latest.ID, "next_kid", next.ID,
					"activates_at", next.ActivatesAt.Format(time.RFC3339))
			}
		}
	}
	r := m.cur.Load()
	removed := false
	for i := range r.keys {
		ki := r.info(i, now)
		if ki.RemovedAt.IsZero() || now.Before(ki.RemovedAt) {
			continue
		}
		if err := m.store.DeleteKey(ctx, ki.ID); err != nil {
			return fmt.Errorf("remove signing key %s: %w", ki.ID, err)
		}
		removed = true
		m.cfg.Logger.Info("retired signing key removed: every token it signed has expired", "kid", ki.ID)
	}
	if removed {
		return m.loadLocked(ctx)
	}
	return nil
}

// Sign implements Signer.
func (m *ManagedKeys) Sign(c Claims) (string, error) { return m.cur.Load().sign(c, m.cfg.Now()) }

// Alg implements Signer.
func (m *ManagedKeys) Alg() string {
	if k, ok := m.cur.Load().active(m.cfg.Now()); ok {
		return k.pair.Alg
	}
	return m.cfg.Alg
}

// PublicKeys implements Signer.
func (m *ManagedKeys) PublicKeys() []auth.JWK { return m.cur.Load().jwks(m.cfg.Now()) }

// Keys implements Signer.
func (m *ManagedKeys) Keys() []KeyInfo { return m.cur.Load().infos(m.cfg.Now()) }

// PublicKey implements Signer. An unknown kid reads the store again (at
// most once a second): another replica may have rotated.
func (m *ManagedKeys) PublicKey(ctx context.Context, kid string) (crypto.PublicKey, string, error) {
	if k, ok := m.cur.Load().find(kid, m.cfg.Now()); ok {
		return k.pair.Private.Public(), k.pair.Alg, nil
	}
	m.mu.Lock()
	if m.cfg.Now().Sub(m.lastLoad) >= minReloadGap {
		_ = m.loadLocked(ctx)
	}
	m.mu.Unlock()
	if k, ok := m.cur.Load().find(kid, m.cfg.Now()); ok {
		return k.pair.Private.Public(), k.pair.Alg, nil
	}
	return nil, "", errors.New("unknown key id")
}
