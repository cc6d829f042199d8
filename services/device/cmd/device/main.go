// Command device runs the device service: the registry of known devices,
// served over gRPC (dhos.device.v1.DeviceService) on DEVICE_GRPC_ADDR.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/audit/auditgrpc"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/services/device/internal/device"
	"github.com/dhosauth/dhosauth/services/device/internal/devicedb"
	"github.com/dhosauth/dhosauth/services/device/internal/devicegrpc"
	"google.golang.org/grpc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "device:", err)
		os.Exit(1)
	}
}

// run reads the configuration from the environment and serves until ctx is
// cancelled.
func run(ctx context.Context) error {
	l := config.NewLoader()
	common := service.LoadCommon(l, "device")
	allowDrop := l.Bool("ALLOW_DROP_DATA", false)
	logger, logErr := common.Logger()
	if logErr != nil {
		l.Fail("%v", logErr)
	}
	if err := l.Err(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	logger.Info("starting", append([]any{"store", common.StoreName(), "environment", string(common.Environment)}, l.Summary()...)...)
	ops, err := service.StartOps(ctx, common, logger, "")
	if err != nil {
		return err
	}
	defer ops.Close()

	db, err := storage.Open(ctx, common.Storage, devicedb.Migrations())
	if err != nil {
		return err
	}
	defer db.Close()

	// Calls the device service makes on its own behalf: revoking the
	// tokens of a deactivated device.
	tokenConn, err := service.Dial(common.Addr.Token, auth.NewInternalCredentials(common.InternalKey, "device", "internal:revoke"))
	if err != nil {
		return err
	}
	defer tokenConn.Close()

	rules, err := devicegrpc.Rules()
	if err != nil {
		return err
	}
	verifier, stopVerifier, err := common.StartVerifier(ctx, logger)
	if err != nil {
		return err
	}
	defer stopVerifier()
	guard := auth.NewGuard(verifier, rules, common.Environment.IsProduction())
	svc := device.NewService(devicedb.New(db), device.Config{
		AllowDropData: allowDrop,
		Revoker:       devicegrpc.TokenRevoker{Client: tokenv1.NewTokenServiceClient(tokenConn)},
	})
	stopAudit := common.StartAuditPublisher(ctx, db, logger)
	defer stopAudit()

	return service.Serve(ctx, service.ServerOptions{
		Name:     "device",
		Addr:     common.Serve.GRPCListen,
		Ops:      ops,
		Logger:   logger,
		Guard:    guard,
		Services: []string{devicev1.DeviceService_ServiceDesc.ServiceName, auditgrpc.ServiceName},
		Register: func(g *grpc.Server) {
			devicegrpc.New(svc).Register(g)
			auditgrpc.New(db).Register(g)
		},
		Ready: db.Ping,
	})
}
