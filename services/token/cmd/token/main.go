package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
	"github.com/dhosauth/dhosauth/services/token/internal/tokendb"
	"github.com/dhosauth/dhosauth/services/token/internal/tokengrpc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "token: %v\n", err)
		os.Exit(1)
	}
}

// run serves until ctx is cancelled, configured from the environment.
func run(ctx context.Context) error {
	return serve(ctx, os.LookupEnv, nil)
}

// serve reads the configuration through lookup, opens the store and serves
// gRPC until ctx is cancelled. listening, when set, is told the bound
// address.
func serve(ctx context.Context, lookup func(string) (string, bool), listening func(net.Addr)) error {
	l := config.NewLoaderFrom(lookup)
	cfg := loadSettings(l)
	lg, logErr := cfg.Common.Logger()
	if logErr != nil {
		l.Fail("%v", logErr)
	}
	if err := l.Err(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	lg.Info("configuration", l.Summary()...)
	lg.Info("token signing", "alg", cfg.Signer.Alg(), "issuer", cfg.Token.Issuer, "audience", cfg.Token.Audience,
		"environment", string(cfg.Common.Environment), "store", cfg.Common.StoreName())
	for _, n := range cfg.Notes {
		lg.Warn(n)
	}

	keys, err := token.VerificationKeys(cfg.Signer)
	if err != nil {
		return err
	}
	verifier := auth.NewVerifier(auth.VerifierOptions{
		Issuer:      cfg.Common.Issuer,
		Audience:    cfg.Common.Audience,
		Keys:        keys,
		HSKey:       cfg.Common.HSKey,
		HSIssuer:    cfg.Common.HSIssuer,
		InternalKey: cfg.Common.InternalKey,
	})
	rules, err := tokengrpc.Rules()
	if err != nil {
		return err
	}

	db, err := storage.Open(ctx, cfg.Common.Storage, tokendb.Migrations())
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer db.Close()

	issuer := token.NewIssuer(cfg.Token, cfg.Signer, tokendb.New(db), verifier)
	srv := tokengrpc.New(issuer)
	return service.Serve(ctx, service.ServerOptions{
		Name:      "token",
		Addr:      cfg.Common.Addr.Token,
		Logger:    lg,
		Guard:     auth.NewGuard(verifier, rules, cfg.Common.Environment.IsProduction()),
		Services:  []string{tokengrpc.ServiceName},
		Register:  srv.Register,
		Ready:     db.Ping,
		Listening: listening,
	})
}
