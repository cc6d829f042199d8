// Command gateway is the suite's REST edge: it serves the /dhos/v1
// contract over HTTP and forwards each call to the activation, device and
// session services over gRPC.
//
// Configuration (environment): HTTP_HOST (default 0.0.0.0), HTTP_PORT
// (8080), OPS_ADDR (127.0.0.1:9190), SHUTDOWN_TIMEOUT (10s),
// SHUTDOWN_DELAY (0s), the OTEL_* variables, ALLOW_DROP_DATA (false),
// TRUSTED_PROXIES (none: X-Forwarded-For is ignored), ENVIRONMENT,
// LOG_FORMAT, LOG_LEVEL, ACTIVATION_GRPC_ADDR, DEVICE_GRPC_ADDR,
// TOKEN_GRPC_ADDR, SESSION_GRPC_ADDR, SESSION_HTTP_ADDR (the session
// service's browser sign-in endpoints, forwarded), and VERSION, BUILD_NUMBER, GIT_HASH
// when the build did not set them.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/dhosauth/dhosauth/gateway/internal/edge"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/pkg/service"
	"google.golang.org/grpc/grpclog"
)

// Set at build time with -ldflags "-X main.version=... -X main.build=...
// -X main.hash=...".
var (
	version string
	build   string
	hash    string
)

func main() { service.Main("gateway", run) }

// DefaultSessionHTTPAddr is the session service's HTTP listener (its
// default SESSION_HTTP_ADDR).
const DefaultSessionHTTPAddr = "127.0.0.1:9095"

// settings is the gateway's configuration.
type settings struct {
	common          service.Common
	addr            string
	allowDropData   bool
	trustedProxies  []netip.Prefix
	sessionHTTP     string
	shutdownTimeout time.Duration
	version         edge.VersionInfo
}

// load reads the configuration and checks it, reporting every problem.
func load(l *config.Loader) (settings, error) {
	s := settings{common: service.LoadCommon(l, "gateway")}
	host := l.String("HTTP_HOST", "0.0.0.0")
	port := l.Int("HTTP_PORT", 8080, 0, 65535)
	s.addr = net.JoinHostPort(host, strconv.Itoa(port))
	s.allowDropData = l.Bool("ALLOW_DROP_DATA", false)
	tp, err := ratelimit.ParsePrefixes(l.String("TRUSTED_PROXIES", ""))
	if err != nil {
		l.Fail("TRUSTED_PROXIES: want a comma-separated list of addresses and CIDR prefixes: %v", err)
	}
	s.trustedProxies = tp
	// The session service's browser-facing endpoints ("off": none).
	if s.sessionHTTP = l.String("SESSION_HTTP_ADDR", DefaultSessionHTTPAddr); s.sessionHTTP == "off" {
		s.sessionHTTP = ""
	}
	s.shutdownTimeout = s.common.Serve.ShutdownTimeout
	s.version = edge.VersionInfo{
		Version: firstOf(version, l.String("VERSION", ""), "dev"),
		Build:   firstOf(build, l.String("BUILD_NUMBER", ""), "0"),
		Hash:    firstOf(hash, l.String("GIT_HASH", ""), "unknown"),
	}
	return s, l.Err()
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func run(ctx context.Context) error {
	l := config.NewLoader()
	s, err := load(l)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	lg, err := s.common.Logger()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	slog.SetDefault(lg)
	grpclog.SetLoggerV2(edge.GRPCLogger(lg))
	if s.allowDropData && s.common.Environment.IsProduction() {
		lg.Warn("ALLOW_DROP_DATA is ignored in PRODUCTION: /drop_data and /reset_test_data are not served")
	}
	lg.Info("starting", append([]any{"environment", string(s.common.Environment), "version", s.version.Version, "build", s.version.Build, "hash", s.version.Hash}, l.Summary()...)...)

	ops, err := service.StartOps(ctx, s.common, lg, s.version.Version)
	if err != nil {
		return err
	}
	defer ops.Close()

	conns, err := edge.Dial(s.common.Addr)
	if err != nil {
		return err
	}
	defer conns.Close()
	for _, c := range edge.HealthChecks(conns) {
		ops.AddCheck(c)
	}

	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	h, err := edge.Handler(hctx, edge.Options{
		Environment:    s.common.Environment,
		AllowDropData:  s.allowDropData,
		Version:        s.version,
		Conns:          conns,
		Logger:         lg,
		TrustedProxies: s.trustedProxies,
		SessionHTTP:    s.sessionHTTP,
	})
	if err != nil {
		return err
	}
	err = edge.Serve(ctx, edge.ServeOptions{
		Addr:            s.addr,
		Handler:         h,
		Logger:          lg,
		ShutdownTimeout: s.shutdownTimeout,
		ShutdownDelay:   s.common.Serve.ShutdownDelay,
		Ops:             ops,
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	lg.Info("stopped")
	return nil
}
