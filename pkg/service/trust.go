package service

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/config"
	"google.golang.org/grpc"
)

// ScopeReadRevocations lets a caller read the revocation list
// (TokenService.ListRevocations).
const ScopeReadRevocations = "read:token_revocations"

// Default token-trust settings.
const (
	// DefaultVerifyCacheSize is how many verified tokens a verifier keeps
	// (VERIFY_CACHE_SIZE).
	DefaultVerifyCacheSize = 10000
	// DefaultJWKSRefresh bounds how often an unknown kid refetches a key
	// set.
	DefaultJWKSRefresh = 5 * time.Second
)

// Trust is how a process verifies tokens beyond the keys: clock leeway,
// trusted external issuers, how often revocations are polled and how many
// verified tokens are cached.
type Trust struct {
	// Leeway (TOKEN_LEEWAY) tolerates clock skew on exp, nbf and iat.
	Leeway time.Duration
	// Trusted (TRUSTED_ISSUERS) are external issuers whose tokens are
	// accepted.
	Trusted []auth.TrustedIssuer
	// RevocationPollInterval (REVOCATION_POLL_INTERVAL) is how often the
	// revocation list is polled: the longest a revoked token is still
	// accepted by another service.
	RevocationPollInterval time.Duration
	// CacheSize (VERIFY_CACHE_SIZE) bounds the cache of verified tokens
	// (0: none).
	CacheSize int
}

// LoadTrust reads TOKEN_LEEWAY, TRUSTED_ISSUERS, REVOCATION_POLL_INTERVAL
// and VERIFY_CACHE_SIZE.
func LoadTrust(l *config.Loader) Trust {
	t := Trust{
		Leeway:                 l.Duration("TOKEN_LEEWAY", auth.DefaultLeeway),
		RevocationPollInterval: l.Duration("REVOCATION_POLL_INTERVAL", auth.DefaultRevocationPollInterval),
		CacheSize:              l.Int("VERIFY_CACHE_SIZE", DefaultVerifyCacheSize, 0, 10_000_000),
	}
	if t.Leeway > 5*time.Minute {
		l.Fail("TOKEN_LEEWAY: at most 5m, got %s", t.Leeway)
	}
	if t.RevocationPollInterval < 100*time.Millisecond || t.RevocationPollInterval > time.Minute {
		l.Fail("REVOCATION_POLL_INTERVAL: want 100ms to 1m, got %s", t.RevocationPollInterval)
	}
	trusted, err := auth.ParseTrustedIssuers(l.String("TRUSTED_ISSUERS", ""), DefaultJWKSRefresh)
	if err != nil {
		l.Fail("TRUSTED_ISSUERS: %v", err)
	}
	t.Trusted = trusted
	return t
}

// verifierOptions builds the verifier configuration over the token
// service's key set (fetched over tok) and revocations (nil: none).
func (c Common) verifierOptions(tok tokenv1.TokenServiceClient, revoked auth.RevocationChecker) auth.VerifierOptions {
	return auth.VerifierOptions{
		Issuer:      c.Issuer,
		Audience:    c.Audience,
		Keys:        &auth.RemoteKeys{Fetch: JWKSFetcher(tok), MinRefresh: DefaultJWKSRefresh},
		HSKey:       c.HSKey,
		HSIssuer:    c.HSIssuer,
		InternalKey: c.InternalKey,
		Trusted:     c.Trust.Trusted,
		Revocations: revoked,
		CacheSize:   c.Trust.CacheSize,
		Leeway:      c.Trust.Leeway,
	}
}

// StartVerifier returns the verifier a service's Guard uses: the token
// service's keys (cached, refetched on an unknown kid), legacy HS512,
// internal tokens, trusted issuers, and the revocation list, read once now
// (best effort: the token service may still be starting) and then polled
// every RevocationPollInterval until ctx ends. It dials the token service
// with the service's own internal credentials; call stop when done.
func (c Common) StartVerifier(ctx context.Context, lg *slog.Logger) (v *auth.Verifier, stop func(), err error) {
	conn, err := Dial(c.Addr.Token, auth.NewInternalCredentials(c.InternalKey, c.Name, ScopeReadRevocations))
	if err != nil {
		return nil, nil, err
	}
	tok := tokenv1.NewTokenServiceClient(conn)
	list := auth.NewRevocationList(RevocationFetcher(tok))
	v = auth.NewVerifier(c.verifierOptions(tok, list))
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		ictx, icancel := context.WithTimeout(pctx, 2*time.Second)
		err := list.Sync(ictx)
		icancel()
		if err != nil && pctx.Err() == nil {
			lg.Info("revocation list: first read failed (the token service may be starting); polling", "error", err.Error())
		}
		list.Run(pctx, c.Trust.RevocationPollInterval, lg)
	}()
	stop = func() {
		cancel()
		<-done
		_ = conn.Close()
	}
	return v, stop, nil
}

// RevocationFetcher reads the token service's revocation list; the
// connection must carry credentials with ScopeReadRevocations.
func RevocationFetcher(tok tokenv1.TokenServiceClient) func(ctx context.Context, cursor string) (auth.RevocationPage, error) {
	return func(ctx context.Context, cursor string) (auth.RevocationPage, error) {
		resp, err := tok.ListRevocations(ctx, &tokenv1.ListRevocationsRequest{Cursor: cursor}, grpc.WaitForReady(true))
		if err != nil {
			return auth.RevocationPage{}, err
		}
		page := auth.RevocationPage{Cursor: resp.GetCursor(), Reset: resp.GetFromStart(), More: resp.GetMore()}
		if s := resp.GetPruneBefore(); s != "" {
			if t, err := time.Parse(apitime.Layout, s); err == nil {
				page.PruneBefore = t
			}
		}
		for _, r := range resp.GetRevocations() {
			t, err := time.Parse(apitime.Layout, r.GetRevokedBefore())
			if err != nil {
				return auth.RevocationPage{}, fmt.Errorf("revocation of %s: revoked_before %q: %w", r.GetPrincipalId(), r.GetRevokedBefore(), err)
			}
			if r.GetKind() == authv1.PrincipalKind_PRINCIPAL_KIND_UNSPECIFIED {
				continue
			}
			page.Revocations = append(page.Revocations, auth.Revocation{Kind: r.GetKind(), ID: r.GetPrincipalId(), RevokedBefore: t})
		}
		return page, nil
	}
}
