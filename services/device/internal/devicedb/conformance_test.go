package devicedb_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/audit/audittest"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/device/internal/device"
	"github.com/dhosauth/dhosauth/services/device/internal/devicedb"
)

// TestConformance runs the device store's conformance suite on every
// backend, each case on an emptied store.
func TestConformance(t *testing.T) {
	storagetest.Suite[device.Store]{
		Migrations: devicedb.Migrations(),
		Open:       func(db storage.DB) device.Store { return devicedb.New(db) },
		Reset:      dropAll,
		Cases: []storagetest.Case[device.Store]{
			{Name: "CreateGet", Test: testCreateGet},
			{Name: "CreateConflict", Test: testCreateConflict},
			{Name: "GetMissing", Test: testGetMissing},
			{Name: "ListFilters", Test: testListFilters},
			{Name: "ListOrderAndLimit", Test: testListOrderAndLimit},
			{Name: "Update", Test: testUpdate},
			{Name: "UpdateMissing", Test: testUpdateMissing},
			{Name: "DropAll", Test: testDropAll},
		},
	}.Run(t)
}

var base = time.Date(2026, 3, 26, 10, 0, 0, 123_000_000, time.UTC)

func mk(id, loc string, at time.Time) device.Device {
	return device.Device{
		ID: id, LocationID: loc, Description: "tablet " + id, Type: device.TypeSendEntry, Active: true,
		Created: at, CreatedBy: "creator", Modified: at, ModifiedBy: "creator",
	}
}

func create(t *testing.T, s device.Store, ds ...device.Device) {
	t.Helper()
	for _, d := range ds {
		if err := s.Create(context.Background(), d, ev(audit.TypeDeviceCreated, "x")); err != nil {
			t.Fatalf("Create %s: %v", d.ID, err)
		}
	}
}

func equal(t *testing.T, got, want device.Device) {
	t.Helper()
	if got.ID != want.ID || got.LocationID != want.LocationID || got.Description != want.Description ||
		got.Type != want.Type || got.Active != want.Active || !got.Created.Equal(want.Created) ||
		got.CreatedBy != want.CreatedBy || !got.Modified.Equal(want.Modified) || got.ModifiedBy != want.ModifiedBy {
		t.Fatalf("device mismatch:\n got %+v\nwant %+v", got, want)
	}
	if apitime.Format(got.Created) != apitime.Format(want.Created) {
		t.Fatalf("created %s, want %s", apitime.Format(got.Created), apitime.Format(want.Created))
	}
}

func ids(ds []device.Device) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func sameIDs(t *testing.T, got []device.Device, want ...string) {
	t.Helper()
	g := ids(got)
	if fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("ids %v, want %v", g, want)
	}
}

func testCreateGet(t *testing.T, s device.Store) {
	ctx := context.Background()
	d := mk("dev-1", "ward-a", base)
	d.Description = "Tablet by the nurses' station, ünïcode ✓"
	create(t, s, d)
	got, err := s.Get(ctx, "dev-1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	equal(t, got, d)

	off := mk("dev-2", "ward-a", base)
	off.Active = false
	create(t, s, off)
	got, err = s.Get(ctx, "dev-2")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	equal(t, got, off)
}

func testCreateConflict(t *testing.T, s device.Store) {
	create(t, s, mk("dev-1", "ward-a", base))
	err := s.Create(context.Background(), mk("dev-1", "ward-b", base), ev(audit.TypeDeviceCreated, "dev-1"))
	if !errors.Is(err, device.ErrExists) {
		t.Fatalf("Create duplicate: %v, want ErrExists", err)
	}
	got, err := s.Get(context.Background(), "dev-1")
	if err != nil || got.LocationID != "ward-a" {
		t.Fatalf("after conflict: %+v, %v", got, err)
	}
}

func testGetMissing(t *testing.T, s device.Store) {
	_, err := s.Get(context.Background(), "nope")
	if !errors.Is(err, device.ErrNotFound) {
		t.Fatalf("Get missing: %v, want ErrNotFound", err)
	}
}

func testListFilters(t *testing.T, s device.Store) {
	ctx := context.Background()
	a := mk("a", "ward-1", base)
	b := mk("b", "ward-2", base.Add(time.Second))
	c := mk("c", "ward-3", base.Add(2*time.Second))
	d := mk("d", "ward-1", base.Add(3*time.Second))
	d.Active = false
	e := mk("e", "ward-1", base.Add(4*time.Second))
	e.Type = "other"
	create(t, s, a, b, c, d, e)

	cases := []struct {
		name string
		f    device.Filter
		want []string
	}{
		{"active", device.Filter{Active: true}, []string{"a", "b", "c", "e"}},
		{"inactive", device.Filter{Active: false}, []string{"d"}},
		{"one location", device.Filter{Active: true, LocationIDs: []string{"ward-1"}}, []string{"a", "e"}},
		{"two locations", device.Filter{Active: true, LocationIDs: []string{"ward-3", "ward-2"}}, []string{"b", "c"}},
		{"unknown location", device.Filter{Active: true, LocationIDs: []string{"ward-9"}}, []string{}},
		{"type", device.Filter{Active: true, Type: device.TypeSendEntry}, []string{"a", "b", "c"}},
		{"type and location", device.Filter{Active: true, Type: "other", LocationIDs: []string{"ward-1"}}, []string{"e"}},
		{"inactive location", device.Filter{Active: false, LocationIDs: []string{"ward-2"}}, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.List(ctx, tc.f)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if got == nil {
				t.Fatal("List returned nil, want an empty slice")
			}
			sameIDs(t, got, tc.want...)
		})
	}
	got, err := s.List(ctx, device.Filter{Active: true, LocationIDs: []string{"ward-2"}})
	if err != nil || len(got) != 1 {
		t.Fatalf("List: %v %v", got, err)
	}
	equal(t, got[0], b)
}

func testListOrderAndLimit(t *testing.T, s device.Store) {
	ctx := context.Background()
	// Same created time: ordered by id; earlier created first.
	create(t, s,
		mk("m2", "w", base.Add(time.Minute)),
		mk("m1", "w", base.Add(time.Minute)),
		mk("z0", "w", base),
		mk("m3", "w", base.Add(time.Minute)),
	)
	got, err := s.List(ctx, device.Filter{Active: true})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	sameIDs(t, got, "z0", "m1", "m2", "m3")
	got, err = s.List(ctx, device.Filter{Active: true, Limit: 2})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	sameIDs(t, got, "z0", "m1")
}

func testUpdate(t *testing.T, s device.Store) {
	ctx := context.Background()
	orig := mk("dev-1", "ward-a", base)
	create(t, s, orig, mk("dev-2", "ward-a", base))
	later := base.Add(time.Hour)

	loc := "ward-b"
	got, err := s.Update(ctx, "dev-1", device.Changes{LocationID: &loc}, later, "editor", ev(audit.TypeDeviceUpdate, "dev-1"))
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := orig
	want.LocationID, want.Modified, want.ModifiedBy = "ward-b", later, "editor"
	equal(t, got, want)

	desc, off := "new description", false
	later2 := later.Add(time.Minute)
	got, err = s.Update(ctx, "dev-1", device.Changes{Description: &desc, Active: &off}, later2, "editor2", ev(audit.TypeDeviceUpdate, "dev-1"))
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want.Description, want.Active, want.Modified, want.ModifiedBy = desc, false, later2, "editor2"
	equal(t, got, want)
	stored, err := s.Get(ctx, "dev-1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	equal(t, stored, want)

	on := true
	got, err = s.Update(ctx, "dev-1", device.Changes{Active: &on}, later2, "editor3", ev(audit.TypeDeviceUpdate, "dev-1"))
	if err != nil || !got.Active || got.Description != desc || got.LocationID != "ward-b" {
		t.Fatalf("Update active: %+v %v", got, err)
	}
	// The other device is untouched.
	other, err := s.Get(ctx, "dev-2")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	equal(t, other, mk("dev-2", "ward-a", base))
}

func testUpdateMissing(t *testing.T, s device.Store) {
	loc := "x"
	_, err := s.Update(context.Background(), "nope", device.Changes{LocationID: &loc}, base, "editor", ev(audit.TypeDeviceUpdate, "nope"))
	if !errors.Is(err, device.ErrNotFound) {
		t.Fatalf("Update missing: %v, want ErrNotFound", err)
	}
}

func testDropAll(t *testing.T, s device.Store) {
	ctx := context.Background()
	create(t, s, mk("a", "w", base), mk("b", "w", base))
	if err := s.DropAll(ctx, ev(audit.TypeDataDropped, "")); err != nil {
		t.Fatalf("DropAll: %v", err)
	}
	for _, active := range []bool{true, false} {
		got, err := s.List(ctx, device.Filter{Active: active})
		if err != nil || len(got) != 0 {
			t.Fatalf("List after DropAll: %v %v", got, err)
		}
	}
	// The store still works.
	create(t, s, mk("a", "w", base))
}

// dropAll empties the store before a case.
func dropAll(t *testing.T, s device.Store) {
	if err := s.DropAll(context.Background(), ev(audit.TypeDataDropped, "")); err != nil {
		t.Fatalf("DropAll: %v", err)
	}
}

// ev is an event the device service would record.
func ev(typ, id string) audit.Event {
	return audit.New(context.Background(), "device", typ, id, audit.Data{"device_id": id})
}

// TestEventsWithChanges checks that each change is stored with its event
// and that a change that fails stores none.
func TestEventsWithChanges(t *testing.T) {
	storagetest.Each(t, devicedb.Migrations(), func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		s := devicedb.New(db)
		d := device.Device{ID: "dev-1", LocationID: "l", Description: "d", Type: device.TypeSendEntry, Active: true, Created: base, CreatedBy: "a", Modified: base, ModifiedBy: "a"}
		if err := s.Create(ctx, d, ev(audit.TypeDeviceCreated, "dev-1")); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, d, ev(audit.TypeDeviceCreated, "dev-1")); !errors.Is(err, device.ErrExists) {
			t.Fatalf("second create: %v", err)
		}
		loc := "m"
		if _, err := s.Update(ctx, "dev-1", device.Changes{LocationID: &loc}, base, "b", ev(audit.TypeDeviceUpdate, "dev-1")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Update(ctx, "nope", device.Changes{LocationID: &loc}, base, "b", ev(audit.TypeDeviceUpdate, "nope")); !errors.Is(err, device.ErrNotFound) {
			t.Fatalf("update missing: %v", err)
		}
		// An event that cannot be recorded undoes its change.
		bad := ev(audit.TypeDeviceUpdate, "dev-1")
		bad.Data["otp"] = "x"
		other := "n"
		if _, err := s.Update(ctx, "dev-1", device.Changes{LocationID: &other}, base, "b", bad); !errors.Is(err, audit.ErrSecret) {
			t.Fatalf("update with a bad event: %v", err)
		}
		if got, _ := s.Get(ctx, "dev-1"); got.LocationID != "m" {
			t.Fatalf("the change of a failed event was kept: %+v", got)
		}
		if err := s.DropAll(ctx, ev(audit.TypeDataDropped, "")); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprint([]string{"device created dev-1", "SEND entry device update dev-1", "data dropped "})
		if got := fmt.Sprint(audittest.TypeSubjects(audittest.Outbox(t, db))); got != want {
			t.Fatalf("events %s, want %s", got, want)
		}
	})
}
