package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/session/internal/session"
	"github.com/dhosauth/dhosauth/services/session/internal/sessiondb"
	"google.golang.org/grpc/codes"
)

type fakeRevoker struct {
	calls []string
	err   error
}

func (f *fakeRevoker) RevokeClinician(_ context.Context, id, reason string) error {
	f.calls = append(f.calls, id+": "+reason)
	return f.err
}

type activeDevices struct{}

func (activeDevices) DeviceActive(context.Context, string) (bool, error) { return true, nil }

type noTokens struct{}

func (noTokens) IssueClinicianToken(context.Context, string, string) (string, error) {
	return "", errors.New("no token expected")
}

// TestDeactivationRevokes: a patch setting login_active false, or a
// contract end in the past, revokes the clinician's tokens before and
// after the change; a sign-in with an expired contract does too. When the
// token service cannot record it, nothing changes and the caller gets
// UNAVAILABLE.
func TestDeactivationRevokes(t *testing.T) {
	db := storagetest.OpenSQLite(t, sessiondb.Migrations())
	rev := &fakeRevoker{}
	now := time.Date(2026, 3, 26, 12, 0, 0, 0, time.UTC)
	s := session.NewService(sessiondb.New(db), activeDevices{}, noTokens{}, session.Config{Revoker: rev, Now: func() time.Time { return now }})
	ctx := context.Background()
	yes, no := true, false
	ident := "ident-1"
	if err := s.Create(ctx, session.NewClinician{ID: "c1", LoginActive: &yes, Products: []string{"send"}, Groups: []string{"send clinician"}, SendEntryIdentifier: &ident}); err != nil {
		t.Fatal(err)
	}
	patch := func(active *bool, expiry *string) error {
		return s.Update(ctx, "c1", &session.ClinicianPatch{LoginActive: active, Products: []string{"send"}, Groups: []string{"send clinician"}, SendEntryIdentifier: &ident, ContractExpiryEODDate: expiry})
	}
	future, past := "2030-01-01", "2026-03-25"
	if err := patch(&yes, &future); err != nil || len(rev.calls) != 0 {
		t.Fatalf("an active patch revoked: %v %v", rev.calls, err)
	}

	rev.err = apperr.Unavailable(errors.New("down"), "token service unavailable, try again")
	if err := patch(&no, nil); apperr.CodeOf(err) != codes.Unavailable {
		t.Fatalf("revocation failing: %v", err)
	}
	if c, _ := sessiondb.New(db).Get(ctx, "c1"); !c.LoginActive {
		t.Fatal("login deactivated although the tokens were not revoked")
	}
	rev.err, rev.calls = nil, nil
	if err := patch(&no, nil); err != nil || len(rev.calls) != 2 || rev.calls[0] != "c1: clinician login deactivated" {
		t.Fatalf("deactivate: %v %v", rev.calls, err)
	}
	rev.calls = nil
	if err := patch(nil, &past); err != nil || len(rev.calls) != 2 {
		t.Fatalf("contract ended: %v %v", rev.calls, err)
	}
	rev.calls = nil
	if err := s.Update(ctx, "nobody", &session.ClinicianPatch{LoginActive: &no, Products: []string{}, Groups: []string{}}); apperr.CodeOf(err) != codes.NotFound || len(rev.calls) != 0 {
		t.Fatalf("unknown clinician: %v %v", err, rev.calls)
	}

	// Sign-in with an expired contract deactivates the login and revokes.
	if err := patch(&yes, &past); err != nil {
		t.Fatal(err)
	}
	rev.calls = nil
	dev := auth.WithPrincipal(ctx, &auth.Principal{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE, ID: "d1", Metadata: map[string]any{"device_id": "d1"}})
	if _, err := s.ClinicianJWT(dev, ident); apperr.CodeOf(err) != codes.PermissionDenied {
		t.Fatalf("expired contract sign-in: %v", err)
	}
	if len(rev.calls) != 2 || rev.calls[0] != "c1: clinician contract expired" {
		t.Fatalf("revocations %v", rev.calls)
	}
}
