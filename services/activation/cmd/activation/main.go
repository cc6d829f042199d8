// Command activation runs the activation service: patients' and devices'
// activations and the authorisation codes they hand out, over gRPC.
package main

import (
	"context"
	"fmt"
	"log/slog"

	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/pkg/secret"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/services/activation/internal/activation"
	"github.com/dhosauth/dhosauth/services/activation/internal/activationdb"
	"github.com/dhosauth/dhosauth/services/activation/internal/activationgrpc"
	"google.golang.org/grpc"
)

func main() { service.Main("activation", run) }

// run reads the configuration, opens the store, connects to the token and
// device services and serves gRPC until ctx is cancelled.
func run(ctx context.Context) error {
	l := config.NewLoader()
	st := loadSettings(l)
	p, err := service.Start(ctx, l, st.Common, service.StartOptions{Announce: func(lg *slog.Logger, summary []any) {
		lg.Info("configuration", summary...)
		lg.Info("starting", "environment", string(st.Common.Environment), "store", st.Common.StoreName(),
			"addr", st.Common.Addr.Activation)
	}})
	if err != nil {
		return err
	}
	defer p.Close()

	hasher, err := secret.NewHasher(st.CodeHashKey)
	if err != nil {
		return fmt.Errorf("CODE_HASH_KEY: %w", err)
	}
	db, err := p.Open(ctx, activationdb.Migrations())
	if err != nil {
		return err
	}

	scopes := []string{"internal:issue_token", "internal:revoke", "read:send_device"}
	tokenConn, err := p.Dial(st.Common.Addr.Token, scopes...)
	if err != nil {
		return err
	}
	deviceConn, err := p.Dial(st.Common.Addr.Device, scopes...)
	if err != nil {
		return err
	}
	tokenClient := tokenv1.NewTokenServiceClient(tokenConn)

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
	verifier, err := p.StartVerifier(ctx)
	if err != nil {
		return err
	}
	return p.Serve(ctx, service.GRPCService{
		Name:     activationgrpc.ServiceName,
		Rules:    activationgrpc.Rules,
		Verifier: verifier,
		Register: func(s *grpc.Server) { activationgrpc.Register(s, svc) },
	})
}
