package sessiongrpc_test

import (
	"context"
	"fmt"
	"testing"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	sessionv1 "github.com/dhosauth/dhosauth/gen/go/dhos/session/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/perftest"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/session/internal/session"
	"github.com/dhosauth/dhosauth/services/session/internal/sessiondb"
	"github.com/dhosauth/dhosauth/services/session/internal/sessiongrpc"
	"google.golang.org/protobuf/types/known/structpb"
)

type floorDevices struct{}

func (floorDevices) DeviceActive(context.Context, string) (bool, error) { return true, nil }

type floorTokens struct{}

func (floorTokens) IssueClinicianToken(context.Context, string, string) (string, error) {
	return "eyJhbGciOiJFUzI1NiJ9.e30.floor", nil
}

// BenchmarkFloorClinicianSignIn is the session service's part of a
// clinician's sign-in on a tablet in the floor of make bench (scenario e):
// GetClinicianJwt called as a Go function with the tablet's principal, on
// a PostgreSQL store. The device and token services answer at once (their
// parts are their own floor benchmarks).
func BenchmarkFloorClinicianSignIn(b *testing.B) {
	db := storagetest.OpenPostgres(b, sessiondb.Migrations())
	srv := sessiongrpc.New(session.NewService(sessiondb.New(db), floorDevices{}, floorTokens{}, session.Config{}))
	admin := auth.WithPrincipal(context.Background(), &auth.Principal{
		Kind: authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM, ID: "bench", Scopes: []string{"write:send_clinician"}})
	list := func(v ...any) *structpb.ListValue {
		l, err := structpb.NewList(v)
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	const clinicians = 64
	for i := range clinicians {
		ident := fmt.Sprint("floor-ident-", i)
		active := true
		if _, err := srv.CreateClinician(admin, &sessionv1.CreateClinicianRequest{
			ClinicianId: fmt.Sprint("floor-clinician-", i), LoginActive: &active, Products: list("SEND"),
			Groups: list("SEND Clinician"), SendEntryIdentifier: &ident,
		}); err != nil {
			b.Fatal(err)
		}
	}
	tablet := auth.WithPrincipal(context.Background(), &auth.Principal{
		Kind: authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE, ID: "floor-device", Scopes: []string{"read:send_entry_identifier"},
		Metadata: map[string]any{auth.DeviceIDClaim: "floor-device"}})
	perftest.Parallel(b, func(_ context.Context, n int64) error {
		_, err := srv.GetClinicianJwt(tablet, &sessionv1.GetClinicianJwtRequest{SendEntryIdentifier: fmt.Sprint("floor-ident-", n%clinicians)})
		return err
	})
}
