package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
	"github.com/dhosauth/dhosauth/services/token/internal/tokendb"
	"github.com/dhosauth/dhosauth/services/token/internal/tokengrpc"
)

// gcPercent is the token service's GOGC unless the environment sets one.
// Every VerifyToken of an unseen token allocates its parse; with the Go
// default (100) the collector's share of that work showed in the tail at
// 5,000 calls a second. 200 measured: unseen p99 at 5,000/s 3.5–5.5 ms
// against 3.8–5.9 ms, unseen throughput 13.9–14.3k against 12.4–13.6k/s
// (make bench, docs/performance.md), for a heap up to three times the
// live data instead of twice.
const gcPercent = 200

func main() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(gcPercent)
	}
	service.Main("token", run)
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
	p, err := service.Start(ctx, l, cfg.Common, service.StartOptions{
		Announce: func(lg *slog.Logger, summary []any) { lg.Info("configuration", summary...) },
		Notes:    cfg.Notes,
	})
	if err != nil {
		return err
	}
	defer p.Close()
	lg := p.Logger

	db, err := p.Open(ctx, tokendb.Migrations())
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	store := tokendb.New(db)

	signer, err := buildSigner(ctx, cfg, store, lg)
	if err != nil {
		return err
	}
	lg.Info("token signing", "keys", cfg.Keys.mode, "alg", signer.Alg(), "issuer", cfg.Token.Issuer, "audience", cfg.Token.Audience,
		"environment", string(cfg.Common.Environment), "store", cfg.Common.StoreName())

	// The service verifies with its own keys; revocations recorded here
	// apply at once, those recorded by other replicas within the poll
	// interval (the list is read from the shared store).
	revoked := auth.NewRevocationList(nil)
	verifier := auth.NewVerifier(auth.VerifierOptions{
		Issuer:      cfg.Token.Issuer,
		Audience:    cfg.Token.Audience,
		Keys:        signer,
		HSKey:       cfg.Common.HSKey,
		HSIssuer:    cfg.Common.HSIssuer,
		InternalKey: cfg.Common.InternalKey,
		Trusted:     cfg.Common.Trust.Trusted,
		Revocations: revoked,
		CacheSize:   cfg.Common.Trust.CacheSize,
		Leeway:      cfg.Common.Trust.Leeway,
	})
	issuer := token.NewIssuer(cfg.Token, signer, store, verifier, revoked)
	revoked.Fetch = issuer.Revocations
	if err := revoked.Sync(ctx); err != nil {
		return fmt.Errorf("read revocations: %w", err)
	}

	unregister, err := token.KeyMetrics{Keys: signer.Keys, Secrets: cfg.Expiring, RotationPeriod: cfg.Keys.managed.RotationPeriod}.Register()
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	p.Defer(func() { _ = unregister() })
	watch := &token.ExpiryWatch{
		Secrets:           cfg.Expiring,
		Warning:           cfg.ExpiryWarning,
		RotationPeriod:    cfg.Keys.managed.RotationPeriod,
		PropagationPeriod: cfg.Keys.managed.PropagationPeriod,
		Logger:            lg,
	}
	watch.Check(ctx, signer.Keys())

	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { revoked.Run(bg, cfg.Common.Trust.RevocationPollInterval, lg) })
	wg.Go(func() { maintain(bg, cfg, signer, issuer, watch, lg) })
	p.Defer(func() { stopBG(); wg.Wait() })

	return p.Serve(ctx, service.GRPCService{
		Name:      tokengrpc.ServiceName,
		Rules:     tokengrpc.Rules,
		Verifier:  verifier,
		Register:  tokengrpc.New(issuer, tokengrpc.Options{JWKSMaxAge: token.JWKSMaxAge(cfg.Keys.propagation)}).Register,
		Listening: listening,
	})
}

// buildSigner makes the signer the configuration chose.
func buildSigner(ctx context.Context, cfg settings, store token.Store, lg *slog.Logger) (token.Signer, error) {
	switch cfg.Keys.mode {
	case modeHS:
		return cfg.Keys.hs, nil
	case modeFiles:
		return cfg.Keys.files, nil
	}
	sealer, err := token.NewSealer(cfg.Keys.kek, cfg.Keys.kekPrev)
	if err != nil {
		return nil, fmt.Errorf("KEY_ENCRYPTION_KEY: %w", err)
	}
	mc := cfg.Keys.managed
	mc.Logger = lg
	keys, err := token.NewManagedKeys(ctx, store, sealer, mc)
	if err != nil {
		return nil, fmt.Errorf("managed signing keys: %w", err)
	}
	return keys, nil
}

// refreshInterval is how often keys are read again and scheduled work is
// done: a quarter of the propagation period (so every replica publishes a
// new key long before it signs), at most 30 seconds.
func refreshInterval(propagation time.Duration) time.Duration {
	d := min(30*time.Second, propagation/4)
	if d < 100*time.Millisecond {
		d = 100 * time.Millisecond
	}
	return d
}

// maintain re-reads the keys and rotates or removes them when due, checks
// expiries, and prunes revocations that no longer matter, until ctx ends.
func maintain(ctx context.Context, cfg settings, signer token.Signer, issuer *token.Issuer, watch *token.ExpiryWatch, lg *slog.Logger) {
	every := 30 * time.Second
	if cfg.Keys.mode == modeManaged {
		every = refreshInterval(cfg.Keys.managed.PropagationPeriod)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := signer.Refresh(ctx); err != nil && ctx.Err() == nil {
			lg.Error("signing keys: refresh failed", "error", err.Error())
		}
		watch.Check(ctx, signer.Keys())
		if time.Since(lastPrune) >= 10*time.Minute {
			lastPrune = time.Now()
			if n, err := issuer.PruneRevocations(ctx); err != nil && ctx.Err() == nil {
				lg.Warn("revocations: prune failed", "error", err.Error())
			} else if n > 0 {
				lg.Info("revocations: pruned those whose tokens have all expired", "count", n)
			}
		}
	}
}
