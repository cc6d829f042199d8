package token_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/services/token/internal/token"
)

// testKey is one RSA key shared by the tests (generating is slow).
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// memStore is an in-memory token.Store for the domain tests (the real
// store has its own conformance suite in tokendb).
type memStore struct {
	mu      sync.Mutex
	records map[string]token.Record
	// dupes makes the next RecordIssued calls fail with ErrDuplicateID.
	dupes int
	err   error

	keys    []token.StoredKey
	revs    map[string]token.RevocationEntry
	seq     int64
	keysErr error
}

func newMemStore() *memStore {
	return &memStore{records: map[string]token.Record{}, revs: map[string]token.RevocationEntry{}}
}

func (m *memStore) InsertKey(_ context.Context, k token.StoredKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.keys {
		if o.ID == k.ID || o.Generation == k.Generation {
			return token.ErrKeyExists
		}
	}
	m.keys = append(m.keys, k)
	return nil
}

func (m *memStore) ListKeys(context.Context) ([]token.StoredKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keysErr != nil {
		return nil, m.keysErr
	}
	out := append([]token.StoredKey(nil), m.keys...)
	slices.SortFunc(out, func(a, b token.StoredKey) int { return int(a.Generation - b.Generation) })
	return out, nil
}

func (m *memStore) ResealKey(_ context.Context, kid string, sealed []byte, sealKeyID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.keys {
		if m.keys[i].ID == kid {
			m.keys[i].Sealed, m.keys[i].SealKeyID = sealed, sealKeyID
			return nil
		}
	}
	return token.ErrNotFound
}

func (m *memStore) DeleteKey(_ context.Context, kid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = slices.DeleteFunc(m.keys, func(k token.StoredKey) bool { return k.ID == kid })
	return nil
}

func (m *memStore) Revoke(_ context.Context, e token.RevocationEntry) (token.RevocationEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	k := string(e.Kind) + "/" + e.Subject
	if old, ok := m.revs[k]; ok && old.RevokedBefore.After(e.RevokedBefore) {
		e.RevokedBefore = old.RevokedBefore
	}
	e.Seq = m.seq
	m.revs[k] = e
	return e, nil
}

func (m *memStore) RevocationsAfter(_ context.Context, after int64, notBefore time.Time, limit int) ([]token.RevocationEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []token.RevocationEntry
	for _, e := range m.revs {
		if e.Seq > after && !e.RevokedBefore.Before(notBefore) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b token.RevocationEntry) int { return int(a.Seq - b.Seq) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (m *memStore) RevokedBefore(_ context.Context, kind token.Kind, subject string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.revs[string(kind)+"/"+subject]
	if !ok {
		return time.Time{}, token.ErrNotFound
	}
	return e.RevokedBefore, nil
}

func (m *memStore) RevocationEpoch(context.Context) (string, error) { return "mem", nil }

func (m *memStore) PruneRevocations(_ context.Context, before time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for k, e := range m.revs {
		if e.RevokedBefore.Before(before) {
			delete(m.revs, k)
			n++
		}
	}
	return n, nil
}

func (m *memStore) RecordIssued(_ context.Context, r token.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if m.dupes > 0 {
		m.dupes--
		return token.ErrDuplicateID
	}
	if _, ok := m.records[r.ID]; ok {
		return token.ErrDuplicateID
	}
	m.records[r.ID] = r
	return nil
}

func (m *memStore) Get(_ context.Context, id string) (token.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[id]
	if !ok {
		return token.Record{}, token.ErrNotFound
	}
	return r, nil
}

func (m *memStore) DropAll(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.records)
	return nil
}

func (m *memStore) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.records)
}

// fixedNow is the clock of the issuance tests (milliseconds on purpose:
// JWT times are whole seconds).
var fixedNow = time.Date(2026, 3, 26, 10, 0, 0, 567_000_000, time.UTC)

func testConfig() token.Config {
	return token.Config{
		Issuer:            "https://issuer.example/",
		Audience:          "https://audience.example/",
		PatientScopes:     []string{"read:gdm_message", "write:gdm_message"},
		DeviceScopes:      []string{"read:send_entry_identifier", "read:send_device"},
		ClinicianScopes:   []string{"read:send_clinician", "write:send_encounter"},
		PatientLifetime:   900 * time.Second,
		DeviceLifetime:    86400 * time.Second,
		ClinicianLifetime: 900 * time.Second,
		SystemLifetime:    3600 * time.Second,
		Now:               func() time.Time { return fixedNow },
	}
}

// decodeJWT splits a compact JWS into its decoded header and claims.
func decodeJWT(t *testing.T, raw string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
	}
	return header, claims
}
