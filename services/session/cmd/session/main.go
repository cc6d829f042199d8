// Command session runs the session service: clinicians' login details and
// clinician sign-in on SEND entry devices, served over gRPC
// (dhos.session.v1.SessionService) on SESSION_GRPC_ADDR, and browser
// sign-in (upstream OpenID Connect providers, local passwords, sessions,
// the OpenID provider of the client apps) over HTTP on SESSION_HTTP_ADDR,
// which the edge forwards. It calls the device service (DEVICE_GRPC_ADDR)
// and the token service (TOKEN_GRPC_ADDR). See docs/sessions.md.
package main

import (
	"context"
	"log/slog"
	"strings"

	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	sessionv1 "github.com/dhosauth/dhosauth/gen/go/dhos/session/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/services/session/internal/session"
	"github.com/dhosauth/dhosauth/services/session/internal/sessiondb"
	"github.com/dhosauth/dhosauth/services/session/internal/sessiongrpc"
	"github.com/dhosauth/dhosauth/services/session/internal/sso"
	"github.com/dhosauth/dhosauth/services/session/internal/ssohttp"
	"github.com/dhosauth/dhosauth/services/session/internal/upstream"
)

func main() { service.Main("session", run) }

// run reads the configuration from the environment and serves until ctx is
// cancelled.
func run(ctx context.Context) error {
	l := config.NewLoader()
	common := service.LoadCommon(l, "session")
	allowDrop := l.Bool("ALLOW_DROP_DATA", false)
	browser := loadSSO(l, common)
	p, err := service.Start(ctx, l, common, service.StartOptions{Notes: browser.Notes})
	if err != nil {
		return err
	}
	defer p.Close()
	db, err := p.Open(ctx, sessiondb.Migrations())
	if err != nil {
		return err
	}

	// Verifying callers' tokens: the token service's public keys and its
	// revocation list, polled.
	verifier, err := p.StartVerifier(ctx)
	if err != nil {
		return err
	}

	// Calls the session service makes on its own behalf.
	scopes := []string{"read:send_device", "internal:issue_token", "internal:revoke"}
	deviceConn, err := p.Dial(common.Addr.Device, scopes...)
	if err != nil {
		return err
	}
	tokenConn, err := p.Dial(common.Addr.Token, scopes...)
	if err != nil {
		return err
	}

	svc := session.NewService(
		sessiondb.New(db),
		sessiongrpc.NewDeviceClient(devicev1.NewDeviceServiceClient(deviceConn)),
		sessiongrpc.NewTokenClient(tokenv1.NewTokenServiceClient(tokenConn)),
		session.Config{AllowDropData: allowDrop, Revoker: sessiongrpc.TokenRevoker{Client: tokenv1.NewTokenServiceClient(tokenConn)}},
	)

	// Browser sign-in: upstream providers, sessions, the OpenID provider
	// of the client apps, on its own HTTP listener.
	rctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var browserSvc *sso.Service
	httpDone := make(chan error, 1)
	if browser.HTTPListen != "off" {
		browserSvc, err = startBrowser(rctx, common, browser, db, svc, tokenv1.NewTokenServiceClient(tokenConn), verifier, p.Logger, httpDone, stopAll)
		if err != nil {
			return err
		}
	}

	err = p.Serve(rctx, service.GRPCService{
		Name:     sessionv1.SessionService_ServiceDesc.ServiceName,
		Rules:    sessiongrpc.Rules,
		Verifier: verifier,
		Register: sessiongrpc.New(svc).WithSSO(browserSvc).Register,
	})
	stopAll()
	if browserSvc != nil {
		if herr := <-httpDone; herr != nil && err == nil {
			err = herr
		}
	}
	return err
}

// startBrowser builds browser sign-in and serves its HTTP listener until
// ctx ends (a listener failure stops the whole service through stop). It
// returns nil, nil when the issuer is not an http(s) URL: browser sign-in
// needs the edge's public address.
func startBrowser(ctx context.Context, common service.Common, b ssoSettings, db storage.DB, clinicians *session.Service,
	tok tokenv1.TokenServiceClient, verifier *auth.Verifier, logger *slog.Logger, done chan<- error, stop func()) (*sso.Service, error) {
	if !strings.HasPrefix(common.Issuer, "https://") && !strings.HasPrefix(common.Issuer, "http://") {
		logger.Warn("browser sign-in is off: TOKEN_ISSUER is not an http(s) URL (set it to the edge's public address)")
		return nil, nil
	}
	providers := make([]sso.Upstream, 0, len(b.Providers))
	for _, pc := range b.Providers {
		p, err := upstream.New(pc, upstream.Options{Leeway: common.Trust.Leeway})
		if err != nil {
			return nil, err
		}
		providers = append(providers, p)
	}
	svc, err := sso.New(sso.Config{
		Issuer:          common.Issuer,
		Providers:       providers,
		Clients:         b.Clients,
		LocalLogin:      b.LocalLogin,
		RoleScopes:      b.RoleScopes,
		IdleTimeout:     b.Idle,
		AbsoluteTimeout: b.Absolute,
		StateKey:        stateKey(common.InternalKey),
		SuiteKeys:       &auth.RemoteKeys{Fetch: service.JWKSFetcher(tok), MinRefresh: service.DefaultJWKSRefresh},
		AccessVerifier:  verifier,
		Leeway:          common.Trust.Leeway,
		Limits:          b.Limits,
		Limiter:         ratelimit.New(db),
		Logger:          logger,
	}, sessiondb.New(db), clinicians, sessiongrpc.SSOTokens{Client: tok})
	if err != nil {
		return nil, err
	}
	go svc.RunDeliveries(ctx, nil)
	go func() {
		err := ssohttp.Serve(ctx, ssohttp.ServeOptions{
			Addr: b.HTTPListen, Handler: ssohttp.New(svc, logger), Logger: logger, ShutdownTimeout: common.Serve.ShutdownTimeout,
		})
		if err != nil {
			logger.Error("browser sign-in listener failed", "error", err.Error())
			stop()
		}
		done <- err
	}()
	logger.Info("browser sign-in", "providers", len(providers), "clients", len(b.Clients), "local_login", b.LocalLogin,
		"limit_per_address", b.Limits.PerAddress.String(), "limit_per_principal", b.Limits.PerPrincipal.String())
	return svc, nil
}
