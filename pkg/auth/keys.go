package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"sync"
	"time"
)

// StaticKeys is a fixed key set (the token service verifies with its own).
type StaticKeys map[string]StaticKey

// StaticKey is one public key and its algorithm.
type StaticKey struct {
	Key crypto.PublicKey
	Alg string
}

// PublicKey implements KeySource.
func (s StaticKeys) PublicKey(_ context.Context, kid string) (crypto.PublicKey, string, error) {
	k, ok := s[kid]
	if !ok {
		return nil, "", errors.New("unknown key id")
	}
	return k.Key, k.Alg, nil
}

// RemoteKeys caches a JWK set fetched from the token service (or, for a
// trusted external issuer, from its JWKS URL). An unknown key id triggers a
// refetch, at most once per MinRefresh; the whole set is refreshed after
// TTL. When a refresh fails the keys already known stay in use.
type RemoteKeys struct {
	Fetch      func(ctx context.Context) ([]JWK, error)
	MinRefresh time.Duration
	TTL        time.Duration

	mu      sync.Mutex
	keys    map[string]StaticKey
	fetched time.Time
	failed  bool
}

// retryAfterFailure bounds how often a key set that could not be fetched
// is asked for again while no key is known.
const retryAfterFailure = time.Second

// PublicKey implements KeySource.
func (r *RemoteKeys) PublicKey(ctx context.Context, kid string) (crypto.PublicKey, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	minRefresh, ttl := r.MinRefresh, r.TTL
	if minRefresh == 0 {
		minRefresh = 5 * time.Second
	}
	if ttl == 0 {
		ttl = 5 * time.Minute
	}
	k, ok := r.keys[kid]
	age := time.Since(r.fetched)
	if r.failed && len(r.keys) == 0 {
		minRefresh = min(minRefresh, retryAfterFailure)
	}
	if (!ok && age >= minRefresh) || age >= ttl {
		if err := r.refresh(ctx); err != nil && !ok {
			return nil, "", fmt.Errorf("key set unavailable: %w", err)
		}
		k, ok = r.keys[kid]
	}
	if !ok {
		return nil, "", errors.New("unknown key id")
	}
	return k.Key, k.Alg, nil
}

func (r *RemoteKeys) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	jwks, err := r.Fetch(ctx)
	r.fetched, r.failed = time.Now(), err != nil
	if err != nil {
		return err
	}
	keys := make(map[string]StaticKey, len(jwks))
	for _, j := range jwks {
		pub, err := j.PublicKey()
		if err != nil || j.Kid == "" || (j.Use != "" && j.Use != "sig") {
			continue
		}
		keys[j.Kid] = StaticKey{Key: pub, Alg: j.Alg}
	}
	r.keys = keys
	return nil
}
