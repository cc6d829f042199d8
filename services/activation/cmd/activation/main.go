// Command activation runs the activation service: patients' and devices'
// activations and the authorisation codes they hand out, over gRPC.
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
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/pkg/secret"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/services/activation/internal/activation"
	"github.com/dhosauth/dhosauth/services/activation/internal/activationdb"
	"github.com/dhosauth/dhosauth/services/activation/internal/activationgrpc"
	"google.golang.org/grpc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "activation:", err)
		os.Exit(1)
	}
}

// run reads the configuration, opens the store, connects to the token and
// device services and serves gRPC until ctx is cancelled.
func run(ctx context.Context) error {
	l := config.NewLoader()
	st := loadSettings(l)
	logger, lerr := st.Common.Logger()
	if lerr != nil {
		l.Fail("%v", lerr)
	}
	if err := l.Err(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	logger.Info("configuration", l.Summary()...)
	logger.Info("starting", "environment", string(st.Common.Environment), "store", st.Common.StoreName(),
		"addr", st.Common.Addr.Activation)
	ops, err := service.StartOps(ctx, st.Common, logger, "")
	if err != nil {
		return err
	}
	defer ops.Close()

	hasher, err := secret.NewHasher(st.CodeHashKey)
	if err != nil {
		return fmt.Errorf("CODE_HASH_KEY: %w", err)
	}
	db, err := storage.Open(ctx, st.Common.Storage, activationdb.Migrations())
	if err != nil {
		return err
	}
	defer db.Close()

	creds := auth.NewInternalCredentials(st.Common.InternalKey, activation.ServiceName, "internal:issue_token", "internal:revoke", "read:send_device")
	tokenConn, err := service.Dial(st.Common.Addr.Token, creds)
	if err != nil {
		return err
	}
	defer tokenConn.Close()
	deviceConn, err := service.Dial(st.Common.Addr.Device, creds)
	if err != nil {
		return err
	}
	defer deviceConn.Close()
	tokenClient := tokenv1.NewTokenServiceClient(tokenConn)

	rules, err := activationgrpc.Rules()
	if err != nil {
		return err
	}
	production := st.Common.Environment.IsProduction()
	svc, err := activation.NewService(st.Rules, activation.Deps{
		Store:   activationdb.New(db),
		Hasher:  hasher,
		Devices: activationgrpc.DeviceClient{Client: devicev1.NewDeviceServiceClient(deviceConn)},
		Tokens:  activationgrpc.TokenClient{Client: tokenClient},
		Revoker: activationgrpc.TokenRevoker{Client: tokenClient},
		Limiter: ratelimit.New(db),
	})
	if err != nil {
		return err
	}
	verifier, stopVerifier, err := st.Common.StartVerifier(ctx, logger)
	if err != nil {
		return err
	}
	defer stopVerifier()
	stopAudit := st.Common.StartAuditPublisher(ctx, db, logger)
	defer stopAudit()
	return service.Serve(ctx, service.ServerOptions{
		Name:     activation.ServiceName,
		Addr:     st.Common.Serve.GRPCListen,
		Ops:      ops,
		Logger:   logger,
		Guard:    auth.NewGuard(verifier, rules, production),
		Services: []string{activationgrpc.ServiceName, auditgrpc.ServiceName},
		Register: func(s *grpc.Server) {
			activationgrpc.Register(s, svc)
			auditgrpc.New(db).Register(s)
		},
		Ready: db.Ping,
	})
}
