// Command device runs the device service: the registry of known devices,
// served over gRPC (dhos.device.v1.DeviceService) on DEVICE_GRPC_ADDR.
package main

import (
	"context"

	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/services/device/internal/device"
	"github.com/dhosauth/dhosauth/services/device/internal/devicedb"
	"github.com/dhosauth/dhosauth/services/device/internal/devicegrpc"
)

func main() { service.Main("device", run) }

// run reads the configuration from the environment and serves until ctx is
// cancelled.
func run(ctx context.Context) error {
	l := config.NewLoader()
	common := service.LoadCommon(l, "device")
	allowDrop := l.Bool("ALLOW_DROP_DATA", false)
	p, err := service.Start(ctx, l, common, service.StartOptions{})
	if err != nil {
		return err
	}
	defer p.Close()
	db, err := p.Open(ctx, devicedb.Migrations())
	if err != nil {
		return err
	}

	// Calls the device service makes on its own behalf: revoking the
	// tokens of a deactivated device.
	tokenConn, err := p.Dial(common.Addr.Token, "internal:revoke")
	if err != nil {
		return err
	}
	verifier, err := p.StartVerifier(ctx)
	if err != nil {
		return err
	}
	svc := device.NewService(devicedb.New(db), device.Config{
		AllowDropData: allowDrop,
		Revoker:       devicegrpc.TokenRevoker{Client: tokenv1.NewTokenServiceClient(tokenConn)},
	})
	return p.Serve(ctx, service.GRPCService{
		Name:     devicev1.DeviceService_ServiceDesc.ServiceName,
		Rules:    devicegrpc.Rules,
		Verifier: verifier,
		Register: devicegrpc.New(svc).Register,
	})
}
