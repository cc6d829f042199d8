package token_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
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
}

func newMemStore() *memStore { return &memStore{records: map[string]token.Record{}} }

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
