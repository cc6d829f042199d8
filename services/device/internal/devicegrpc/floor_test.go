package devicegrpc_test

import (
	"context"
	"fmt"
	"testing"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/perftest"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/device/internal/device"
	"github.com/dhosauth/dhosauth/services/device/internal/devicedb"
	"github.com/dhosauth/dhosauth/services/device/internal/devicegrpc"
)

// BenchmarkFloorGetDevice is the device service's part of the device and
// clinician flows in the floor of make bench (scenario e): GetDevice called
// as a Go function on a PostgreSQL store, as the activation and session
// services call it over gRPC.
func BenchmarkFloorGetDevice(b *testing.B) {
	db := storagetest.OpenPostgres(b, devicedb.Migrations())
	svc := device.NewService(devicedb.New(db), device.Config{})
	ctx := auth.WithPrincipal(context.Background(), &auth.Principal{
		Kind: authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM, ID: "activation", Scopes: []string{"read:send_device", "write:send_device"}})
	const devices = 1000
	for i := range devices {
		if _, err := svc.Create(ctx, &device.NewDevice{ID: fmt.Sprint("floor-device-", i), LocationID: "floor-ward", Description: "floor"}, ""); err != nil {
			b.Fatal(err)
		}
	}
	srv := devicegrpc.New(svc)
	perftest.Parallel(b, func(_ context.Context, n int64) error {
		_, err := srv.GetDevice(ctx, &devicev1.GetDeviceRequest{DeviceId: fmt.Sprint("floor-device-", n%devices)})
		return err
	})
}
