package activationgrpc_test

import (
	"context"
	"fmt"
	"testing"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/perftest"
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/pkg/secret"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/activation/internal/activation"
	"github.com/dhosauth/dhosauth/services/activation/internal/activationdb"
	"github.com/dhosauth/dhosauth/services/activation/internal/activationgrpc"
	"google.golang.org/grpc/metadata"
)

// The floor of make bench (scenario e): the activation service's part of
// the patient and device flows, its handlers called as Go functions on a
// PostgreSQL store, with the default brute-force limits on. The token and
// device services' parts are their own floor benchmarks; here they answer
// at once.

type floorTokens struct{}

func (floorTokens) IssueToken(context.Context, activation.TokenKind, string) (string, error) {
	return "eyJhbGciOiJFUzI1NiJ9.e30.floor", nil
}

type floorDevices struct{}

func (floorDevices) GetDevice(_ context.Context, id string) (activation.Device, error) {
	return activation.Device{ID: id, Active: true}, nil
}

func floorServer(b *testing.B) (*activationgrpc.Server, context.Context) {
	db := storagetest.OpenPostgres(b, activationdb.Migrations())
	hasher, err := secret.NewHasher(testHashKey)
	if err != nil {
		b.Fatal(err)
	}
	cfg := activation.DefaultConfig()
	cfg.Production = false
	svc, err := activation.NewService(cfg, activation.Deps{
		Store: activationdb.New(db), Hasher: hasher, Devices: floorDevices{}, Tokens: floorTokens{},
		Limiter: ratelimit.New(db),
	})
	if err != nil {
		b.Fatal(err)
	}
	admin := auth.WithPrincipal(context.Background(), &auth.Principal{
		Kind: authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM, ID: "bench",
		Scopes: []string{"write:gdm_activation", "read:gdm_activation", "write:send_device", "read:send_device"},
	})
	return activationgrpc.New(svc), admin
}

// floorFrom is a request from client n (its own address, as in make bench).
func floorFrom(ctx context.Context, n int64, kv ...string) context.Context {
	md := metadata.Pairs(append([]string{ratelimit.ClientAddressMetadata, fmt.Sprintf("10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff)}, kv...)...)
	return metadata.NewIncomingContext(ctx, md)
}

func BenchmarkFloorPatientFlow(b *testing.B) {
	srv, admin := floorServer(b)
	run := fmt.Sprint(b.N)
	perftest.Parallel(b, func(ctx context.Context, n int64) error {
		patient := fmt.Sprintf("floor-%s-%d", run, n)
		act, err := srv.CreatePatientActivation(floorFrom(admin, n), &activationv1.CreatePatientActivationRequest{PatientId: patient})
		if err != nil {
			return err
		}
		v, err := srv.ValidateActivation(floorFrom(ctx, n), &activationv1.ValidateActivationRequest{
			ActivationCode: act.GetActivationCode(), Body: &activationv1.ValidateActivationBody{Otp: act.GetOtp()}})
		if err != nil {
			return err
		}
		_, err = srv.GetPatientJwt(floorFrom(ctx, n, activationgrpc.AuthorisationCodeHeader, v.GetAuthorisationCode()), &activationv1.GetPatientJwtRequest{PatientId: patient})
		return err
	})
}

func BenchmarkFloorDeviceFlow(b *testing.B) {
	srv, admin := floorServer(b)
	run := fmt.Sprint(b.N)
	perftest.Parallel(b, func(ctx context.Context, n int64) error {
		device := fmt.Sprintf("floor-%s-%d", run, n)
		act, err := srv.CreateDeviceActivation(floorFrom(admin, n), &activationv1.CreateDeviceActivationRequest{DeviceId: device})
		if err != nil {
			return err
		}
		v, err := srv.ValidateActivation(floorFrom(ctx, n), &activationv1.ValidateActivationRequest{ActivationCode: act.GetCode(), Type: "send_entry"})
		if err != nil {
			return err
		}
		_, err = srv.GetDeviceJwt(floorFrom(ctx, n, activationgrpc.AuthorisationCodeHeader, v.GetAuthorisationCode()), &activationv1.GetDeviceJwtRequest{DeviceId: device})
		return err
	})
}
