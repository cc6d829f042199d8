package audit_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
)

// migrations are a store's own (none) with the outbox as its shared set.
var migrations = storage.Migrations{Shared: []storage.NamedMigrations{audit.Migrations()}}

func TestNewFillsTheEvent(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	ctx = auth.WithPrincipal(ctx, &auth.Principal{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM, ID: "admin-1"})
	e := audit.NewFailure(ctx, "device", audit.TypeDeviceAuthFailed, "dev-1", "device inactive", audit.Data{"device_id": "dev-1"})
	if e.ID == "" || e.Time.IsZero() || e.Actor != "admin-1" || e.Subject != "dev-1" || e.Outcome != audit.Failure ||
		e.Reason != "device inactive" || e.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || e.Service != "device" {
		t.Fatalf("event %+v", e)
	}
	if a := audit.New(context.Background(), "device", audit.TypeDeviceUpdate, "d", nil); a.Actor != audit.Anonymous || a.TraceID != "" || a.Outcome != audit.Success {
		t.Fatalf("event without caller or span %+v", a)
	}
}

func TestRecordAndList(t *testing.T) {
	storagetest.Each(t, migrations, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		base := time.Date(2026, 3, 26, 12, 0, 0, 0, time.UTC)
		var ids []string
		for i := range 7 {
			e := audit.New(ctx, "device", audit.TypeDeviceUpdate, fmt.Sprintf("dev-%d", i%2), audit.Data{"device_id": fmt.Sprintf("dev-%d", i%2), "n": i})
			e.Time = base.Add(time.Duration(i/2) * time.Second) // pairs share a time: seq orders them
			e.Actor = "admin"
			if i == 6 {
				e.Type, e.Actor, e.Outcome, e.Reason = audit.TypeDeviceAuthFailed, audit.Anonymous, audit.Failure, "wrong code"
			}
			if err := audit.RecordTx(ctx, db, e); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.ID)
		}

		all, err := audit.List(ctx, db, audit.Query{})
		if err != nil || len(all.Events) != 7 || all.NextPageToken != "" {
			t.Fatalf("list all: %d events, token %q, %v", len(all.Events), all.NextPageToken, err)
		}
		for i, e := range all.Events {
			if e.ID != ids[i] {
				t.Fatalf("event %d is %s, want %s (time, then recording order)", i, e.ID, ids[i])
			}
		}
		last := all.Events[6]
		if last.Type != audit.TypeDeviceAuthFailed || last.Outcome != audit.Failure || last.Reason != "wrong code" ||
			last.Data["reason"] != "wrong code" || last.Data["device_id"] != "dev-0" || last.Service != "device" ||
			!last.Time.Equal(base.Add(3*time.Second)) || last.PublishedAt != nil {
			t.Fatalf("stored event %+v", last)
		}

		// Paging by two, every event once, in order.
		var paged []string
		tok := ""
		for range 10 {
			p, err := audit.List(ctx, db, audit.Query{PageSize: 2, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Events {
				paged = append(paged, e.ID)
			}
			if tok = p.NextPageToken; tok == "" {
				break
			}
		}
		if fmt.Sprint(paged) != fmt.Sprint(ids) {
			t.Fatalf("paged %v, want %v", paged, ids)
		}

		count := func(q audit.Query) int {
			t.Helper()
			p, err := audit.List(ctx, db, q)
			if err != nil {
				t.Fatal(err)
			}
			return len(p.Events)
		}
		if n := count(audit.Query{Principal: "dev-1"}); n != 3 {
			t.Errorf("by subject dev-1: %d, want 3", n)
		}
		if n := count(audit.Query{Principal: "admin"}); n != 6 {
			t.Errorf("by actor admin: %d, want 6", n)
		}
		if n := count(audit.Query{Type: audit.TypeDeviceAuthFailed}); n != 1 {
			t.Errorf("by type: %d, want 1", n)
		}
		if n := count(audit.Query{From: base.Add(time.Second), To: base.Add(3 * time.Second)}); n != 4 {
			t.Errorf("time range: %d, want 4", n)
		}
		if n := count(audit.Query{Principal: "dev-0", Type: audit.TypeDeviceUpdate, From: base.Add(time.Second)}); n != 2 {
			t.Errorf("combined: %d, want 2", n)
		}
		for _, q := range []audit.Query{{PageToken: "nope"}, {PageToken: "a1.!!"}, {PageSize: -1}, {From: base, To: base}} {
			if _, err := audit.List(ctx, db, q); apperr.CodeOf(err) != codes.InvalidArgument {
				t.Errorf("query %+v: %v, want INVALID_ARGUMENT", q, err)
			}
		}
	})
}

// TestRecordIsTransactional checks that events roll back with their change.
func TestRecordIsTransactional(t *testing.T) {
	storagetest.Each(t, migrations, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		boom := errors.New("the change failed")
		err := db.Tx(ctx, func(q storage.Querier) error {
			if err := audit.Record(ctx, q, audit.New(ctx, "device", audit.TypeDeviceUpdate, "d", nil)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if p, _ := audit.List(ctx, db, audit.Query{}); len(p.Events) != 0 {
			t.Fatalf("a rolled-back event was kept: %+v", p.Events)
		}
	})
}

// TestNoSecrets checks that data naming a secret, or holding a JWT, is
// refused, and fails the transaction it is in.
func TestNoSecrets(t *testing.T) {
	storagetest.Each(t, migrations, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		for _, d := range []audit.Data{
			{"otp": "ab12"},
			{"authorisation_code": "x"},
			{"activation_code": "x"},
			{"code": "123456789"},
			{"jwt": "x"},
			{"access_token": "x"},
			{"signing_key": "x"},
			{"code_hash": "x"},
			{"Password": "x"},
			{"note": "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ4In0.c2ln"},
		} {
			err := audit.RecordTx(ctx, db, audit.New(ctx, "activation", audit.TypeAuthorisationCodeIssued, "p", d))
			if !errors.Is(err, audit.ErrSecret) {
				t.Errorf("data %v: %v, want ErrSecret", d, err)
			}
		}
		if p, _ := audit.List(ctx, db, audit.Query{}); len(p.Events) != 0 {
			t.Fatalf("events with secrets were kept: %+v", p.Events)
		}
		ok := audit.Data{"token_id": "jti-1", "key_id": "kid-1", "kind": "device", "device_id": "d"}
		if err := audit.RecordTx(ctx, db, audit.New(ctx, "token", audit.TypeTokenIssued, "d", ok)); err != nil {
			t.Fatalf("ids refused: %v", err)
		}
		for _, bad := range []audit.Event{{Service: "x"}, {Type: "x"}, {Type: "x", Service: "x", ID: "not-a-uuid"}, {Type: "x", Service: "x", Outcome: "maybe"}} {
			if err := audit.RecordTx(ctx, db, bad); err == nil {
				t.Errorf("event %+v accepted", bad)
			}
		}
	})
}

func TestPublishingBookkeeping(t *testing.T) {
	storagetest.Each(t, migrations, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		old := time.Now().UTC().Add(-100 * 24 * time.Hour).Truncate(time.Millisecond)
		var ids []string
		for i := range 5 {
			e := audit.New(ctx, "session", audit.TypeLoginSuccess, "c", nil)
			if i < 3 {
				e.Time = old
			}
			if err := audit.RecordTx(ctx, db, e); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.ID)
		}
		b, err := audit.PendingBacklog(ctx, db)
		if err != nil || b.Depth != 5 || !b.Oldest.Equal(old) {
			t.Fatalf("backlog %+v, %v", b, err)
		}
		p, err := audit.Pending(ctx, db, 2)
		if err != nil || len(p) != 2 || p[0].ID != ids[0] || p[1].ID != ids[1] {
			t.Fatalf("pending %+v, %v", p, err)
		}
		if err := audit.MarkPublished(ctx, db, ids[:2], time.Now()); err != nil {
			t.Fatal(err)
		}
		if b, _ := audit.PendingBacklog(ctx, db); b.Depth != 3 {
			t.Fatalf("backlog after publishing two: %+v", b)
		}
		// Only old published events are pruned.
		n, err := audit.Prune(ctx, db, time.Now().Add(-90*24*time.Hour), false)
		if err != nil || n != 2 {
			t.Fatalf("pruned %d, %v; want 2", n, err)
		}
		n, err = audit.Prune(ctx, db, time.Now().Add(-90*24*time.Hour), true)
		if err != nil || n != 1 {
			t.Fatalf("pruned unpublished %d, %v; want 1", n, err)
		}
		if b, _ := audit.PendingBacklog(ctx, db); b.Depth != 2 {
			t.Fatalf("backlog after pruning: %+v", b)
		}
	})
}

func TestLease(t *testing.T) {
	storagetest.Each(t, migrations, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		now := time.Now()
		if err := audit.AcquireLease(ctx, db, "a", now, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := audit.AcquireLease(ctx, db, "b", now.Add(time.Second), 10*time.Second); !errors.Is(err, audit.ErrLeaseLost) {
			t.Fatalf("b took a held lease: %v", err)
		}
		if err := audit.AcquireLease(ctx, db, "a", now.Add(time.Second), 10*time.Second); err != nil {
			t.Fatalf("a could not renew: %v", err)
		}
		if err := audit.AcquireLease(ctx, db, "b", now.Add(12*time.Second), 10*time.Second); err != nil {
			t.Fatalf("b could not take an expired lease: %v", err)
		}
		if err := audit.ReleaseLease(ctx, db, "b"); err != nil {
			t.Fatal(err)
		}
		if err := audit.AcquireLease(ctx, db, "a", now.Add(13*time.Second), 10*time.Second); err != nil {
			t.Fatalf("a could not take a released lease: %v", err)
		}
	})
}
