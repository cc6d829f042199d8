package device_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/device/internal/device"
	"github.com/dhosauth/dhosauth/services/device/internal/devicedb"
	"google.golang.org/grpc/codes"
)

func newService(t *testing.T) (*device.Service, storage.DB) {
	t.Helper()
	db := storagetest.OpenSQLite(t, devicedb.Migrations())
	now := time.Date(2026, 3, 26, 12, 0, 0, 0, time.UTC)
	return device.NewService(devicedb.New(db), device.Config{Now: func() time.Time { return now }}), db
}

// events lists the audit events recorded in db.
func events(t *testing.T, db storage.DB) []audit.Stored {
	t.Helper()
	p, err := audit.List(context.Background(), db, audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Events
}

// TestInvalidUTF8 covers input gRPC itself cannot carry (proto3 strings
// must be UTF-8), in case another transport hands it to the domain.
func TestInvalidUTF8(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	bad := "ward\xff"
	check := func(name string, err error, field string) {
		t.Helper()
		if apperr.CodeOf(err) != codes.InvalidArgument || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v, want INVALID_ARGUMENT naming %s", name, err, field)
		}
	}
	_, err := s.Create(ctx, &device.NewDevice{LocationID: bad, Description: "d"}, "")
	check("create location", err, "location_id")
	_, err = s.Create(ctx, &device.NewDevice{LocationID: "l", Description: bad}, "")
	check("create description", err, "description")
	_, err = s.Create(ctx, &device.NewDevice{ID: bad, LocationID: "l", Description: "d"}, "")
	check("create uuid", err, "uuid")
	_, err = s.List(ctx, device.ListQuery{LocationID: bad})
	check("list location", err, "location_id")
	_, err = s.List(ctx, device.ListQuery{Type: bad})
	check("list type", err, "type")
	_, err = s.Get(ctx, bad)
	check("get", err, "device_id")
	_, err = s.Update(ctx, "x", &device.Changes{Description: &bad})
	check("update description", err, "description")
}

// TestUpdateAudit checks the event an update records and that failed
// updates record none.
func TestUpdateAudit(t *testing.T) {
	s, db := newService(t)
	ctx := context.Background()
	d, err := s.Create(ctx, &device.NewDevice{ID: "dev-1", LocationID: "l", Description: "d"}, "send_entry")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if d.CreatedBy != device.ServiceName || d.Type != device.TypeSendEntry {
		t.Fatalf("device %+v", d)
	}
	if _, err := s.Update(ctx, "missing", &device.Changes{Description: new("x")}); apperr.CodeOf(err) != codes.NotFound {
		t.Fatalf("Update missing: %v", err)
	}
	if evs := events(t, db); len(evs) != 1 || evs[0].Type != audit.TypeDeviceCreated || evs[0].Subject != "dev-1" {
		t.Fatalf("events after a create and a failed update: %+v", evs)
	}
	if _, err := s.Update(ctx, "dev-1", &device.Changes{Description: new("new")}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	evs := events(t, db)
	if len(evs) != 2 {
		t.Fatalf("events %+v", evs)
	}
	ev := evs[1]
	if ev.Type != "SEND entry device update" || ev.Data["device_id"] != "dev-1" || ev.Data["modified_by"] != device.ServiceName ||
		ev.Actor != audit.Anonymous || ev.Subject != "dev-1" || ev.Service != "device" || ev.Outcome != audit.Success {
		t.Errorf("event %+v", ev)
	}
	if _, ok := ev.Data["description"]; ok {
		t.Errorf("event carries the description: %+v", ev)
	}
}
