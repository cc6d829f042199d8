// Command session runs the session service: clinicians' login details and
// clinician sign-in on SEND entry devices, served over gRPC
// (dhos.session.v1.SessionService) on SESSION_GRPC_ADDR. It calls the
// device service (DEVICE_GRPC_ADDR) and the token service
// (TOKEN_GRPC_ADDR).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	sessionv1 "github.com/dhosauth/dhosauth/gen/go/dhos/session/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/audit/auditgrpc"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/services/session/internal/session"
	"github.com/dhosauth/dhosauth/services/session/internal/sessiondb"
	"github.com/dhosauth/dhosauth/services/session/internal/sessiongrpc"
	"google.golang.org/grpc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "session:", err)
		os.Exit(1)
	}
}

// run reads the configuration from the environment and serves until ctx is
// cancelled.
func run(ctx context.Context) error {
	l := config.NewLoader()
	common := service.LoadCommon(l, "session")
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

	db, err := storage.Open(ctx, common.Storage, sessiondb.Migrations())
	if err != nil {
		return err
	}
	defer db.Close()

	// Verifying callers' tokens: the token service's public keys and its
	// revocation list, polled.
	verifier, stopVerifier, err := common.StartVerifier(ctx, logger)
	if err != nil {
		return err
	}
	defer stopVerifier()

	// Calls the session service makes on its own behalf.
	creds := auth.NewInternalCredentials(common.InternalKey, "session", "read:send_device", "internal:issue_token", "internal:revoke")
	deviceConn, err := service.Dial(common.Addr.Device, creds)
	if err != nil {
		return err
	}
	defer deviceConn.Close()
	tokenConn, err := service.Dial(common.Addr.Token, creds)
	if err != nil {
		return err
	}
	defer tokenConn.Close()

	rules, err := sessiongrpc.Rules()
	if err != nil {
		return err
	}
	guard := auth.NewGuard(verifier, rules, common.Environment.IsProduction())
	svc := session.NewService(
		sessiondb.New(db),
		sessiongrpc.NewDeviceClient(devicev1.NewDeviceServiceClient(deviceConn)),
		sessiongrpc.NewTokenClient(tokenv1.NewTokenServiceClient(tokenConn)),
		session.Config{AllowDropData: allowDrop, Revoker: sessiongrpc.TokenRevoker{Client: tokenv1.NewTokenServiceClient(tokenConn)}},
	)

	stopAudit := common.StartAuditPublisher(ctx, db, logger)
	defer stopAudit()

	return service.Serve(ctx, service.ServerOptions{
		Name:     "session",
		Addr:     common.Serve.GRPCListen,
		Ops:      ops,
		Logger:   logger,
		Guard:    guard,
		Services: []string{sessionv1.SessionService_ServiceDesc.ServiceName, auditgrpc.ServiceName},
		Register: func(g *grpc.Server) {
			sessiongrpc.New(svc).Register(g)
			auditgrpc.New(db).Register(g)
		},
		Ready: db.Ping,
	})
}
