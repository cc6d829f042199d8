package tokendb_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/audit/audittest"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
	"github.com/dhosauth/dhosauth/services/token/internal/tokendb"
)

// TestConformance runs the token.Store suite on every backend, each case
// on a fresh database.
func TestConformance(t *testing.T) {
	storagetest.Suite[token.Store]{
		Migrations:    tokendb.Migrations(),
		Open:          open,
		FreshDatabase: true,
		Cases: []storagetest.Case[token.Store]{
			{Name: "RecordAndGet", Test: testRecordAndGet},
			{Name: "EveryKind", Test: testEveryKind},
			{Name: "GetUnknown", Test: testGetUnknown},
			{Name: "DuplicateID", Test: testDuplicateID},
			{Name: "SameSubjectManyTokens", Test: testSameSubject},
			{Name: "DropAll", Test: testDropAll},
			{Name: "DropAllEmpty", Test: testDropAllEmpty},
		},
	}.Run(t)
}

// open is the store the suites test.
func open(db storage.DB) token.Store { return tokendb.New(db) }

func record(id string, kind token.Kind, subject string) token.Record {
	now := time.Now().UTC().Truncate(time.Second)
	return token.Record{ID: id, Kind: kind, Subject: subject, IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
}

func mustRecord(t *testing.T, s token.Store, r token.Record) {
	t.Helper()
	if err := s.RecordIssued(context.Background(), r); err != nil {
		t.Fatalf("RecordIssued(%s): %v", r.ID, err)
	}
}

func sameRecord(t *testing.T, got, want token.Record) {
	t.Helper()
	if got.ID != want.ID || got.Kind != want.Kind || got.Subject != want.Subject ||
		!got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got.IssuedAt.Location() != time.UTC || got.ExpiresAt.Location() != time.UTC {
		t.Fatalf("times not in UTC: %v %v", got.IssuedAt, got.ExpiresAt)
	}
}

func testRecordAndGet(t *testing.T, s token.Store) {
	ctx := context.Background()
	// Millisecond precision survives the round trip.
	issued := time.Date(2026, 3, 26, 10, 11, 12, 345_000_000, time.UTC)
	want := token.Record{
		ID:        "7d3c6a4e-2b0f-4c8e-9a51-0f6f7a0b1c2d",
		Kind:      token.KindClinician,
		Subject:   "clinician-ü-1",
		IssuedAt:  issued,
		ExpiresAt: issued.Add(900 * time.Second),
	}
	mustRecord(t, s, want)
	got, err := s.Get(ctx, want.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	sameRecord(t, got, want)

	// A time in another zone is stored as the same instant.
	loc := time.FixedZone("UTC+5", 5*3600)
	other := token.Record{ID: "other-zone", Kind: token.KindPatient, Subject: "p", IssuedAt: issued.In(loc), ExpiresAt: issued.Add(time.Hour).In(loc)}
	mustRecord(t, s, other)
	got, err = s.Get(ctx, other.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	sameRecord(t, got, other)
}

func testEveryKind(t *testing.T, s token.Store) {
	for _, k := range []token.Kind{token.KindPatient, token.KindDevice, token.KindClinician, token.KindSystem} {
		r := record("id-"+string(k), k, "subject-"+string(k))
		mustRecord(t, s, r)
		got, err := s.Get(context.Background(), r.ID)
		if err != nil {
			t.Fatalf("Get(%s): %v", r.ID, err)
		}
		sameRecord(t, got, r)
	}
}

func testGetUnknown(t *testing.T, s token.Store) {
	_, err := s.Get(context.Background(), "no-such-token")
	if !errors.Is(err, token.ErrNotFound) {
		t.Fatalf("Get unknown: got %v, want token.ErrNotFound", err)
	}
}

func testDuplicateID(t *testing.T, s token.Store) {
	ctx := context.Background()
	first := record("dup", token.KindPatient, "patient-1")
	mustRecord(t, s, first)
	second := record("dup", token.KindDevice, "device-9")
	second.ExpiresAt = second.ExpiresAt.Add(time.Hour)
	err := s.RecordIssued(ctx, second)
	if !errors.Is(err, token.ErrDuplicateID) {
		t.Fatalf("duplicate jti: got %v, want token.ErrDuplicateID", err)
	}
	if errors.Is(err, storage.ErrConflict) {
		t.Fatalf("duplicate jti: storage error leaked untranslated: %v", err)
	}
	got, err := s.Get(ctx, "dup")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	sameRecord(t, got, first)
}

func testSameSubject(t *testing.T, s token.Store) {
	for i := range 5 {
		mustRecord(t, s, record(fmt.Sprintf("tok-%d", i), token.KindDevice, "device-1"))
	}
	for i := range 5 {
		if _, err := s.Get(context.Background(), fmt.Sprintf("tok-%d", i)); err != nil {
			t.Fatalf("Get tok-%d: %v", i, err)
		}
	}
}

func testDropAll(t *testing.T, s token.Store) {
	ctx := context.Background()
	for i := range 3 {
		mustRecord(t, s, record(fmt.Sprintf("drop-%d", i), token.KindSystem, "gateway"))
	}
	if err := s.DropAll(ctx); err != nil {
		t.Fatalf("DropAll: %v", err)
	}
	for i := range 3 {
		if _, err := s.Get(ctx, fmt.Sprintf("drop-%d", i)); !errors.Is(err, token.ErrNotFound) {
			t.Fatalf("after DropAll, Get drop-%d: got %v, want ErrNotFound", i, err)
		}
	}
	// The store works as before after being emptied.
	r := record("drop-0", token.KindPatient, "patient-2")
	mustRecord(t, s, r)
	got, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatalf("Get after re-record: %v", err)
	}
	sameRecord(t, got, r)
}

func testDropAllEmpty(t *testing.T, s token.Store) {
	if err := s.DropAll(context.Background()); err != nil {
		t.Fatalf("DropAll on an empty store: %v", err)
	}
}

// TestEventsWithRecords checks that an issued token is recorded with its
// "token issued" event (no token in it), a duplicate with none, and that
// dropping data records "data dropped" and keeps the events.
func TestEventsWithRecords(t *testing.T) {
	storagetest.Each(t, tokendb.Migrations(), func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		s := tokendb.New(db)
		r := record("jti-1", token.KindDevice, "dev-1")
		mustRecord(t, s, r)
		if err := s.RecordIssued(ctx, r); !errors.Is(err, token.ErrDuplicateID) {
			t.Fatalf("duplicate: %v", err)
		}
		if err := s.DropAll(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordEvents(ctx, audit.New(ctx, tokendb.ServiceName, audit.TypeKeyRotated, "kid-2", audit.Data{"key_id": "kid-2"})); err != nil {
			t.Fatal(err)
		}
		events := audittest.Outbox(t, db)
		got := audittest.TypeSubjects(events)
		if want := "[token issued dev-1 data dropped  signing key rotated kid-2]"; fmt.Sprint(got) != want {
			t.Fatalf("events %v, want %s", got, want)
		}
		if d := events[0].Data; d["kind"] != string(token.KindDevice) || d["token_id"] != "jti-1" || d["expires_at"] == nil || events[0].Service != "token" {
			t.Fatalf("token issued event %+v", events[0])
		}
	})
}

// TestEventsWithKeysAndRevocations checks that a stored key generation is
// recorded as "signing key rotated" and a revocation as "token revoked",
// in their transactions, without key material.
func TestEventsWithKeysAndRevocations(t *testing.T) {
	storagetest.Each(t, tokendb.Migrations(), func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		s := tokendb.New(db)
		now := time.Now().UTC().Truncate(time.Second)
		k := token.StoredKey{ID: "kid-1", Alg: "ES256", Generation: 1, CreatedAt: now, ActivatesAt: now, PublicJWK: "{}", Sealed: []byte("sealed"), SealKeyID: "seal-1"}
		if err := s.InsertKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertKey(ctx, k); !errors.Is(err, token.ErrKeyExists) {
			t.Fatalf("second insert: %v", err)
		}
		if _, err := s.Revoke(ctx, token.RevocationEntry{Kind: token.KindDevice, Subject: "dev-1", RevokedBefore: now, RecordedAt: now, Reason: "lost"}); err != nil {
			t.Fatal(err)
		}
		events := audittest.Outbox(t, db)
		if len(events) != 2 || events[0].Type != audit.TypeKeyRotated || events[0].Subject != "kid-1" ||
			events[1].Type != audit.TypeTokenRevoked || events[1].Subject != "dev-1" || events[1].Data["revocation_reason"] != "lost" {
			t.Fatalf("events %+v", events)
		}
		if _, ok := events[0].Data["sealed"]; ok {
			t.Fatalf("key event carries key material: %v", events[0].Data)
		}
	})
}
