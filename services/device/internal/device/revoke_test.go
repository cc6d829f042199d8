package device_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/device/internal/device"
	"github.com/dhosauth/dhosauth/services/device/internal/devicedb"
	"google.golang.org/grpc/codes"
)

// fakeRevoker records revocations; err makes them fail.
type fakeRevoker struct {
	calls []string
	err   error
}

func (f *fakeRevoker) RevokeDevice(_ context.Context, id, reason string) error {
	f.calls = append(f.calls, id+": "+reason)
	return f.err
}

// TestDeactivationRevokes: deactivating a device revokes its tokens before
// and after the change; when the token service cannot record the
// revocation, the device stays active and the caller gets UNAVAILABLE.
func TestDeactivationRevokes(t *testing.T) {
	db := storagetest.OpenSQLite(t, devicedb.Migrations())
	rev := &fakeRevoker{}
	s := device.NewService(devicedb.New(db), device.Config{Revoker: rev, Now: func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }})
	ctx := context.Background()
	d, err := s.Create(ctx, &device.NewDevice{LocationID: "ward", Description: "tablet"}, "")
	if err != nil {
		t.Fatal(err)
	}
	yes, no, desc := true, false, "renamed"

	// Other changes revoke nothing.
	for _, c := range []*device.Changes{{Description: &desc}, {Active: &yes}} {
		if _, err := s.Update(ctx, d.ID, c); err != nil {
			t.Fatal(err)
		}
	}
	if len(rev.calls) != 0 {
		t.Fatalf("revoked on %v", rev.calls)
	}

	rev.err = apperr.Unavailable(errors.New("down"), "token service down")
	_, err = s.Update(ctx, d.ID, &device.Changes{Active: &no})
	if apperr.CodeOf(err) != codes.Unavailable {
		t.Fatalf("revocation failing: %v, want UNAVAILABLE", err)
	}
	if got, _ := s.Get(ctx, d.ID); !got.Active {
		t.Fatal("device deactivated although its tokens were not revoked")
	}

	rev.err, rev.calls = nil, nil
	got, err := s.Update(ctx, d.ID, &device.Changes{Active: &no})
	if err != nil || got.Active {
		t.Fatalf("deactivate: %+v %v", got, err)
	}
	if len(rev.calls) != 2 || rev.calls[0] != d.ID+": device deactivated" {
		t.Fatalf("revocations %v, want one before and one after the change", rev.calls)
	}

	// An unknown device is a 404 and revokes nothing.
	rev.calls = nil
	if _, err := s.Update(ctx, "no-such-device", &device.Changes{Active: &no}); apperr.CodeOf(err) != codes.NotFound || len(rev.calls) != 0 {
		t.Fatalf("unknown device: %v, %v", err, rev.calls)
	}
}
