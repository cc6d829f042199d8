package sessiondb_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/audit/audittest"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/session/internal/session"
	"github.com/dhosauth/dhosauth/services/session/internal/sessiondb"
)

// TestConformance runs the session store's conformance suite on every
// backend, each case on an emptied store.
func TestConformance(t *testing.T) {
	storagetest.Suite[session.Store]{
		Migrations: sessiondb.Migrations(),
		Open:       func(db storage.DB) session.Store { return sessiondb.New(db) },
		Reset:      dropAll,
		Cases: []storagetest.Case[session.Store]{
			{Name: "CreateGet", Test: testCreateGet},
			{Name: "CreateConflicts", Test: testCreateConflicts},
			{Name: "GetMissing", Test: testGetMissing},
			{Name: "GetByIdentifier", Test: testGetByIdentifier},
			{Name: "Replace", Test: testReplace},
			{Name: "ReplaceConflictAndMissing", Test: testReplaceConflictAndMissing},
			{Name: "SetLoginActive", Test: testSetLoginActive},
			{Name: "DropAll", Test: testDropAll},
		},
	}.Run(t)
}

var base = time.Date(2026, 3, 26, 10, 0, 0, 456_000_000, time.UTC)

func ptr(s string) *string { return &s }

func mk(id string, ident *string) session.Clinician {
	return session.Clinician{
		ID: id, LoginActive: true,
		Products: []string{"send", "gdm"}, Groups: []string{"send clinician"},
		SendEntryIdentifier: ident, ContractExpiryEODDate: ptr("2027-01-31"),
		Created: base, CreatedBy: "creator", Modified: base, ModifiedBy: "creator",
	}
}

func create(t *testing.T, s session.Store, cs ...session.Clinician) {
	t.Helper()
	for _, c := range cs {
		if err := s.Create(context.Background(), c, ev(audit.TypeClinicianCreated, c.ID)); err != nil {
			t.Fatalf("Create %s: %v", c.ID, err)
		}
	}
}

func equal(t *testing.T, got, want session.Clinician) {
	t.Helper()
	if !got.Created.Equal(want.Created) || !got.Modified.Equal(want.Modified) {
		t.Fatalf("times: got %v/%v, want %v/%v", got.Created, got.Modified, want.Created, want.Modified)
	}
	got.Created, got.Modified = want.Created, want.Modified
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("clinician mismatch:\n got %+v\nwant %+v", got, want)
	}
}

func get(t *testing.T, s session.Store, id string) session.Clinician {
	t.Helper()
	c, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return c
}

func testCreateGet(t *testing.T, s session.Store) {
	full := mk("clin-1", ptr("1234"))
	full.Groups = []string{"send clinician", "ünïcode group, with \"quotes\""}
	empty := mk("clin-2", nil)
	empty.LoginActive = false
	empty.Products = []string{}
	empty.Groups = []string{}
	empty.ContractExpiryEODDate = nil
	create(t, s, full, empty)
	equal(t, get(t, s, "clin-1"), full)
	equal(t, get(t, s, "clin-2"), empty)
	// Several clinicians may have no identifier.
	create(t, s, mk("clin-3", nil))
}

func testCreateConflicts(t *testing.T, s session.Store) {
	ctx := context.Background()
	create(t, s, mk("clin-1", ptr("1234")))
	if err := s.Create(ctx, mk("clin-1", ptr("9999")), ev(audit.TypeClinicianCreated, "c")); !errors.Is(err, session.ErrExists) {
		t.Fatalf("duplicate id: %v, want ErrExists", err)
	}
	if err := s.Create(ctx, mk("clin-1", nil), ev(audit.TypeClinicianCreated, "c")); !errors.Is(err, session.ErrExists) {
		t.Fatalf("duplicate id without identifier: %v, want ErrExists", err)
	}
	if err := s.Create(ctx, mk("clin-2", ptr("1234")), ev(audit.TypeClinicianCreated, "c")); !errors.Is(err, session.ErrIdentifierTaken) {
		t.Fatalf("duplicate identifier: %v, want ErrIdentifierTaken", err)
	}
	if _, err := s.Get(ctx, "clin-2"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("clin-2 stored after conflict: %v", err)
	}
	equal(t, get(t, s, "clin-1"), mk("clin-1", ptr("1234")))
}

func testGetMissing(t *testing.T, s session.Store) {
	if _, err := s.Get(context.Background(), "nope"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
}

func testGetByIdentifier(t *testing.T, s session.Store) {
	ctx := context.Background()
	a, b := mk("clin-a", ptr("1111")), mk("clin-b", ptr("2222"))
	create(t, s, a, b, mk("clin-c", nil))
	got, err := s.GetByIdentifier(ctx, "2222")
	if err != nil {
		t.Fatalf("GetByIdentifier: %v", err)
	}
	equal(t, got, b)
	if _, err := s.GetByIdentifier(ctx, "3333"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("unknown identifier: %v", err)
	}
	if _, err := s.GetByIdentifier(ctx, ""); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("empty identifier: %v", err)
	}
}

func testReplace(t *testing.T, s session.Store) {
	ctx := context.Background()
	orig := mk("clin-1", ptr("1234"))
	other := mk("clin-2", ptr("5678"))
	create(t, s, orig, other)
	later := base.Add(time.Hour)

	// login_active absent: unchanged; the rest replaced, nils become null.
	err := s.Replace(ctx, "clin-1", session.Replacement{
		Products: []string{"gdm"}, Groups: []string{},
		Modified: later, ModifiedBy: "editor",
	}, ev(audit.TypeClinicianUpdated, "clin-1"))
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	want := orig
	want.Products, want.Groups = []string{"gdm"}, []string{}
	want.SendEntryIdentifier, want.ContractExpiryEODDate = nil, nil
	want.Modified, want.ModifiedBy = later, "editor"
	equal(t, get(t, s, "clin-1"), want)

	off := false
	err = s.Replace(ctx, "clin-1", session.Replacement{
		LoginActive: &off, Products: []string{"send"}, Groups: []string{"send superclinician"},
		SendEntryIdentifier: ptr("4321"), ContractExpiryEODDate: ptr("2026-12-31"),
		Modified: later, ModifiedBy: "editor2",
	}, ev(audit.TypeClinicianUpdated, "clin-1"))
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	want.LoginActive, want.Products, want.Groups = false, []string{"send"}, []string{"send superclinician"}
	want.SendEntryIdentifier, want.ContractExpiryEODDate, want.ModifiedBy = ptr("4321"), ptr("2026-12-31"), "editor2"
	equal(t, get(t, s, "clin-1"), want)
	got, err := s.GetByIdentifier(ctx, "4321")
	if err != nil || got.ID != "clin-1" {
		t.Fatalf("new identifier: %+v %v", got, err)
	}
	if _, err := s.GetByIdentifier(ctx, "1234"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("old identifier still found: %v", err)
	}
	// The old identifier is free again; keeping one's own is no conflict.
	err = s.Replace(ctx, "clin-2", session.Replacement{Products: []string{}, Groups: []string{}, SendEntryIdentifier: ptr("1234"), Modified: later, ModifiedBy: "e"}, ev(audit.TypeClinicianUpdated, "clin-2"))
	if err != nil {
		t.Fatalf("take freed identifier: %v", err)
	}
	err = s.Replace(ctx, "clin-2", session.Replacement{Products: []string{}, Groups: []string{}, SendEntryIdentifier: ptr("1234"), Modified: later, ModifiedBy: "e"}, ev(audit.TypeClinicianUpdated, "clin-2"))
	if err != nil {
		t.Fatalf("keep own identifier: %v", err)
	}
	if c := get(t, s, "clin-2"); !c.LoginActive || !c.Created.Equal(base) || c.CreatedBy != "creator" {
		t.Fatalf("clin-2 after replace: %+v", c)
	}
}

func testReplaceConflictAndMissing(t *testing.T, s session.Store) {
	ctx := context.Background()
	create(t, s, mk("clin-1", ptr("1234")), mk("clin-2", ptr("5678")))
	err := s.Replace(ctx, "clin-2", session.Replacement{Products: []string{}, Groups: []string{}, SendEntryIdentifier: ptr("1234"), Modified: base, ModifiedBy: "e"}, ev(audit.TypeClinicianUpdated, "clin-2"))
	if !errors.Is(err, session.ErrIdentifierTaken) {
		t.Fatalf("taken identifier: %v, want ErrIdentifierTaken", err)
	}
	equal(t, get(t, s, "clin-2"), mk("clin-2", ptr("5678")))
	err = s.Replace(ctx, "nope", session.Replacement{Products: []string{}, Groups: []string{}, Modified: base, ModifiedBy: "e"}, ev(audit.TypeClinicianUpdated, "nope"))
	if !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("missing: %v, want ErrNotFound", err)
	}
}

func testSetLoginActive(t *testing.T, s session.Store) {
	ctx := context.Background()
	orig := mk("clin-1", ptr("1234"))
	create(t, s, orig, mk("clin-2", nil))
	later := base.Add(time.Minute)
	if err := s.SetLoginActive(ctx, "clin-1", false, later, "dev-1"); err != nil {
		t.Fatalf("SetLoginActive: %v", err)
	}
	want := orig
	want.LoginActive, want.Modified, want.ModifiedBy = false, later, "dev-1"
	equal(t, get(t, s, "clin-1"), want)
	if err := s.SetLoginActive(ctx, "clin-1", true, later, "admin"); err != nil {
		t.Fatalf("SetLoginActive: %v", err)
	}
	if !get(t, s, "clin-1").LoginActive || !get(t, s, "clin-2").LoginActive {
		t.Fatal("login_active not set back / other clinician touched")
	}
	if err := s.SetLoginActive(ctx, "nope", false, later, "x"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("missing: %v, want ErrNotFound", err)
	}
}

func testDropAll(t *testing.T, s session.Store) {
	ctx := context.Background()
	create(t, s, mk("clin-1", ptr("1234")), mk("clin-2", nil))
	if err := s.DropAll(ctx, ev(audit.TypeDataDropped, "")); err != nil {
		t.Fatalf("DropAll: %v", err)
	}
	if _, err := s.Get(ctx, "clin-1"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("after DropAll: %v", err)
	}
	if _, err := s.GetByIdentifier(ctx, "1234"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("after DropAll: %v", err)
	}
	create(t, s, mk("clin-1", ptr("1234")))
}

// dropAll empties the store before a case.
func dropAll(t *testing.T, s session.Store) {
	if err := s.DropAll(context.Background(), ev(audit.TypeDataDropped, "")); err != nil {
		t.Fatalf("DropAll: %v", err)
	}
}

// ev is an event the session service would record.
func ev(typ, id string) audit.Event {
	return audit.New(context.Background(), "session", typ, id, audit.Data{"clinician_id": id})
}

// TestEventsWithChanges checks that each change is stored with its events
// and that a change that fails stores none.
func TestEventsWithChanges(t *testing.T) {
	storagetest.Each(t, sessiondb.Migrations(), func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		s := sessiondb.New(db)
		c := mk("clin-1", ptr("1234"))
		if err := s.Create(ctx, c, ev(audit.TypeClinicianCreated, "clin-1")); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, c, ev(audit.TypeClinicianCreated, "clin-1")); !errors.Is(err, session.ErrExists) {
			t.Fatalf("second create: %v", err)
		}
		r := session.Replacement{Products: []string{}, Groups: []string{}, Modified: base, ModifiedBy: "e"}
		if err := s.Replace(ctx, "nope", r, ev(audit.TypeClinicianUpdated, "nope")); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("replace missing: %v", err)
		}
		if err := s.Replace(ctx, "clin-1", r, ev(audit.TypeClinicianUpdated, "clin-1")); err != nil {
			t.Fatal(err)
		}
		if err := s.SetLoginActive(ctx, "clin-1", false, base, "d", ev(audit.TypeClinicianUpdated, "clin-1"), ev(audit.TypeLoginFailure, "clin-1")); err != nil {
			t.Fatal(err)
		}
		if err := s.SetLoginActive(ctx, "nope", false, base, "d", ev(audit.TypeLoginFailure, "nope")); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("deactivate missing: %v", err)
		}
		if err := s.Record(ctx, ev(audit.TypeLoginSuccess, "clin-1")); err != nil {
			t.Fatal(err)
		}
		if err := s.DropAll(ctx, ev(audit.TypeDataDropped, "")); err != nil {
			t.Fatal(err)
		}
		got := audittest.TypeSubjects(audittest.Outbox(t, db))
		want := []string{"clinician created clin-1", "clinician updated clin-1", "clinician updated clin-1",
			"SEND entry login failure clin-1", "SEND entry login success clin-1", "data dropped "}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
	})
}
