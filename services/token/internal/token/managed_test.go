package token_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/service/servicetest"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
)

// clock is a settable test clock.
type clock = servicetest.Clock

func newClock() *clock { return servicetest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) }

var testKEK = []byte("key-encryption-key-of-at-least-32-bytes!")

func managedConfig(c *clock) token.ManagedConfig {
	return token.ManagedConfig{
		Alg:               "ES256",
		RotationPeriod:    30 * 24 * time.Hour,
		PropagationPeriod: time.Hour,
		Retention:         24*time.Hour + 30*time.Second,
		Now:               c.Now,
	}
}

func newManaged(t *testing.T, store token.Store, cfg token.ManagedConfig) *token.ManagedKeys {
	t.Helper()
	sealer, err := token.NewSealer(testKEK)
	if err != nil {
		t.Fatal(err)
	}
	m, err := token.NewManagedKeys(context.Background(), store, sealer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func statesOf(keys []token.KeyInfo) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(string(k.State))
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

// TestManagedKeyLifecycle follows keys from first start through two
// rotations: next is published before it signs, active signs, retired is
// published until its tokens' retention has passed, then removed. A token
// signed by a rotated-out key verifies until it expires, then fails.
func TestManagedKeyLifecycle(t *testing.T) {
	c := newClock()
	store := newMemStore()
	cfg := managedConfig(c)
	m := newManaged(t, store, cfg)
	ctx := context.Background()

	keys := m.Keys()
	if len(keys) != 1 || keys[0].State != token.StateActive || keys[0].Source != token.SourceStore || m.Alg() != "ES256" {
		t.Fatalf("first start: %+v", keys)
	}
	first := keys[0].ID
	if len(store.keys) != 1 || bytes.Contains(store.keys[0].Sealed, []byte("PRIVATE")) || store.keys[0].SealKeyID == "" {
		t.Fatal("key not stored sealed")
	}

	verifier := auth.NewVerifier(auth.VerifierOptions{Issuer: "iss", Audience: "aud", Keys: m, Leeway: 30 * time.Second, Now: c.Now})
	sign := func(lifetime time.Duration) string {
		t.Helper()
		raw, err := m.Sign(token.Claims{Issuer: "iss", Audience: "aud", Subject: "d", ID: "j", IssuedAt: c.Now(), ExpiresAt: c.Now().Add(lifetime),
			Metadata: map[string]string{"device_id": "d"}})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	kidOf := func(raw string) string {
		h, _ := decodeJWT(t, raw)
		return h["kid"].(string)
	}

	// A token signed by the first key, valid for a day.
	old := sign(24 * time.Hour)
	if kidOf(old) != first {
		t.Fatal("not signed by the active key")
	}

	// On demand: a next key, published, not signing yet.
	next, created, err := m.Rotate(ctx)
	if err != nil || !created || next.State != token.StateNext || !next.ActivatesAt.Equal(c.Now().Add(time.Hour)) {
		t.Fatalf("Rotate: %+v %v %v", next, created, err)
	}
	if got := statesOf(m.Keys()); got != "active next" {
		t.Fatalf("states %q", got)
	}
	if len(m.PublicKeys()) != 2 {
		t.Fatal("next key not published")
	}
	if kidOf(sign(time.Minute)) != first {
		t.Fatal("the next key signed before its propagation period")
	}
	// A second request while the rotation is under way changes nothing.
	again, created, err := m.Rotate(ctx)
	if err != nil || created || again.ID != next.ID {
		t.Fatalf("second Rotate: %+v %v %v", again, created, err)
	}

	// After the propagation period the next key signs; the first retires.
	c.Add(time.Hour)
	if kidOf(sign(time.Minute)) != next.ID {
		t.Fatal("the next key does not sign after the propagation period")
	}
	if got := statesOf(m.Keys()); got != "retired active" {
		t.Fatalf("states %q", got)
	}
	if _, err := verifier.Verify(ctx, old); err != nil {
		t.Fatalf("token of the retired key: %v", err)
	}

	// A day later the old token has expired: it fails; the retired key is
	// still published until its retention (one day and the leeway) ends.
	c.Add(23*time.Hour + time.Minute)
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(ctx, old); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("expired token of the retired key: %v", err)
	}
	if len(m.PublicKeys()) != 2 {
		t.Fatal("retired key removed before its retention ended")
	}
	c.Add(time.Hour)
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if len(m.PublicKeys()) != 1 || len(store.keys) != 1 || store.keys[0].ID != next.ID {
		t.Fatalf("retired key not removed after its retention: %d published, %d stored", len(m.PublicKeys()), len(store.keys))
	}

	// Scheduled: once the active key is within the propagation period of
	// KEY_ROTATION_PERIOD, Refresh publishes its successor.
	c.Set(next.ActivatesAt.Add(cfg.RotationPeriod - 2*time.Hour))
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := statesOf(m.Keys()); got != "active" {
		t.Fatalf("rotated early: %q", got)
	}
	c.Add(time.Hour)
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := statesOf(m.Keys()); got != "active next" {
		t.Fatalf("scheduled rotation: %q", got)
	}
	keys = m.Keys()
	if !keys[0].RetiresAt.Equal(keys[1].ActivatesAt) || !keys[0].RemovedAt.Equal(keys[0].RetiresAt.Add(cfg.Retention)) {
		t.Fatalf("retirement times %+v", keys[0])
	}
}

// TestManagedKeysSurviveRestart: a second process on the same store reads
// the same keys (and does not make new ones); another replica sees a
// rotation made by the first after Refresh, or at once on an unknown kid.
func TestManagedKeysAcrossReplicas(t *testing.T) {
	c := newClock()
	store := newMemStore()
	a := newManaged(t, store, managedConfig(c))
	b := newManaged(t, store, managedConfig(c))
	if len(store.keys) != 1 || a.Keys()[0].ID != b.Keys()[0].ID {
		t.Fatal("replicas made different keys")
	}
	next, _, err := a.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.Add(time.Second) // unknown kids read the store at most once a second
	if _, _, err := b.PublicKey(context.Background(), next.ID); err != nil {
		t.Fatalf("replica b does not find the new key: %v", err)
	}
	// b rotating while a's rotation is under way returns a's key.
	got, created, err := b.Rotate(context.Background())
	if err != nil || created || got.ID != next.ID {
		t.Fatalf("b.Rotate: %+v %v %v", got, created, err)
	}
}

// TestManagedKeysAlgChange: a new SIGNING_ALG starts a rotation to a key of
// that algorithm.
func TestManagedKeysAlgChange(t *testing.T) {
	c := newClock()
	store := newMemStore()
	newManaged(t, store, managedConfig(c))
	cfg := managedConfig(c)
	cfg.Alg = "EdDSA"
	m := newManaged(t, store, cfg)
	if m.Alg() != "ES256" {
		t.Fatal("the algorithm changed without propagation")
	}
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	keys := m.Keys()
	if len(keys) != 2 || keys[1].Alg != "EdDSA" || keys[1].State != token.StateNext {
		t.Fatalf("keys %+v", keys)
	}
	c.Add(time.Hour)
	if m.Alg() != "EdDSA" {
		t.Fatal("EdDSA key does not sign after propagation")
	}
}

// TestManagedKeysSealing: a wrong KEY_ENCRYPTION_KEY is refused by name; a
// previous one opens the keys and they are sealed again under the new.
func TestManagedKeysSealing(t *testing.T) {
	c := newClock()
	store := newMemStore()
	newManaged(t, store, managedConfig(c))
	oldID := store.keys[0].SealKeyID

	wrong, _ := token.NewSealer([]byte("another-key-encryption-key-0123456789"))
	_, err := token.NewManagedKeys(context.Background(), store, wrong, managedConfig(c))
	if !errors.Is(err, token.ErrSealKey) {
		t.Fatalf("wrong KEK: %v", err)
	}
	var logs bytes.Buffer
	cfg := managedConfig(c)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	rotated, _ := token.NewSealer([]byte("another-key-encryption-key-0123456789"), testKEK)
	if _, err := token.NewManagedKeys(context.Background(), store, rotated, cfg); err != nil {
		t.Fatalf("with the previous KEK: %v", err)
	}
	if store.keys[0].SealKeyID == oldID || store.keys[0].SealKeyID != rotated.KeyID() {
		t.Fatal("key not sealed again under the current KEK")
	}
	if !strings.Contains(logs.String(), "sealed under the current KEY_ENCRYPTION_KEY") {
		t.Errorf("log: %s", logs.String())
	}
	// Tampering with the sealed key is detected.
	store.keys[0].Sealed[len(store.keys[0].Sealed)-1] ^= 1
	if _, err := token.NewManagedKeys(context.Background(), store, rotated, managedConfig(c)); err == nil {
		t.Fatal("a tampered sealed key was opened")
	}
}

func TestManagedConfigRefused(t *testing.T) {
	c := newClock()
	sealer, _ := token.NewSealer(testKEK)
	cfg := managedConfig(c)
	cfg.Alg = "HS512"
	if _, err := token.NewManagedKeys(context.Background(), newMemStore(), sealer, cfg); err == nil {
		t.Error("managed HS512 keys")
	}
	cfg = managedConfig(c)
	cfg.RotationPeriod = cfg.PropagationPeriod
	if _, err := token.NewManagedKeys(context.Background(), newMemStore(), sealer, cfg); err == nil {
		t.Error("rotation period not longer than propagation")
	}
	if _, err := token.NewSealer([]byte("short")); err == nil {
		t.Error("short KEK")
	}
}

func TestJWKSMaxAge(t *testing.T) {
	for prop, want := range map[time.Duration]time.Duration{
		time.Hour:        15 * time.Minute,
		24 * time.Hour:   time.Hour,
		2 * time.Second:  0,
		10 * time.Second: 2 * time.Second,
	} {
		if got := token.JWKSMaxAge(prop); got != want {
			t.Errorf("JWKSMaxAge(%s) = %s, want %s", prop, got, want)
		}
	}
}
