package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	auditv1 "github.com/dhosauth/dhosauth/gen/go/dhos/audit/v1"
	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	sessionv1 "github.com/dhosauth/dhosauth/gen/go/dhos/session/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
)

// DefaultMaxBodyBytes bounds a request body (1 MiB); larger ones get 413.
const DefaultMaxBodyBytes = 1 << 20

// VersionInfo is what GET /version reports.
type VersionInfo struct {
	Version string `json:"version"`
	Build   string `json:"build"`
	Hash    string `json:"hash"`
}

// Conns are the client connections to the four services.
type Conns struct {
	Activation, Device, Token, Session *grpc.ClientConn
}

// Dial opens client connections to the services at addr. The connections
// carry no credentials of their own: every call forwards the caller's
// Authorization header, and each service verifies it.
func Dial(addr service.Addresses) (Conns, error) {
	var c Conns
	var err error
	dial := func(dst **grpc.ClientConn, name, a string) {
		if err != nil {
			return
		}
		*dst, err = service.Dial(a, nil)
		if err != nil {
			err = fmt.Errorf("%s service: %w", name, err)
		}
	}
	dial(&c.Activation, "activation", addr.Activation)
	dial(&c.Device, "device", addr.Device)
	dial(&c.Token, "token", addr.Token)
	dial(&c.Session, "session", addr.Session)
	if err != nil {
		_ = c.Close()
		return Conns{}, err
	}
	return c, nil
}

// Close closes every open connection.
func (c Conns) Close() error {
	var errs []error
	for _, cc := range []*grpc.ClientConn{c.Activation, c.Device, c.Token, c.Session} {
		if cc != nil {
			errs = append(errs, cc.Close())
		}
	}
	return errors.Join(errs...)
}

// Options configure the edge handler.
type Options struct {
	// Environment: outside PRODUCTION the edge also serves /docs,
	// /drop_data and /reset_test_data.
	Environment config.Environment
	// AllowDropData must be true for /drop_data and /reset_test_data to do
	// anything (ALLOW_DROP_DATA); otherwise they answer 403.
	AllowDropData bool
	// Version is reported by GET /version.
	Version VersionInfo
	// Conns reach the services; all four are required.
	Conns Conns
	// Logger receives 5xx errors and, at DEBUG, one line per request.
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// TrustedProxies are the addresses (TRUSTED_PROXIES) whose
	// X-Forwarded-For names the client; from any other peer the header is
	// ignored and the peer is the client.
	TrustedProxies []netip.Prefix
	// SessionHTTP is the session service's HTTP listener (host:port,
	// SESSION_HTTP_ADDR): the browser-facing sign-in endpoints are
	// forwarded there and the discovery document lists them. Empty: not
	// served.
	SessionHTTP string
}

// Handler builds the edge: middleware in front of the plain endpoints and
// the grpc-gateway mux with every service's REST routes. ctx bounds the
// registrations (cancel it when the handler is no longer used).
func Handler(ctx context.Context, o Options) (http.Handler, error) {
	if o.Conns.Activation == nil || o.Conns.Device == nil || o.Conns.Token == nil || o.Conns.Session == nil {
		return nil, errors.New("edge: a connection to each of the four services is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Environment == "" {
		o.Environment = config.Production
	}
	errs := &errorWriter{log: o.Logger}
	mux := newServeMux(errs, o.TrustedProxies)
	regs := []struct {
		name string
		fn   func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
		cc   *grpc.ClientConn
	}{
		{"activation", activationv1.RegisterActivationServiceHandler, o.Conns.Activation},
		{"device", devicev1.RegisterDeviceServiceHandler, o.Conns.Device},
		{"session", sessionv1.RegisterSessionServiceHandler, o.Conns.Session},
	}
	for _, r := range regs {
		if err := r.fn(ctx, mux, r.cc); err != nil {
			return nil, fmt.Errorf("edge: register %s routes: %w", r.name, err)
		}
	}

	rt := newRoutes(mux, errs)
	rt.handle(http.MethodGet, "/running", handleRunning)
	rt.handle(http.MethodHead, "/running", handleRunning)
	rt.handle(http.MethodGet, "/version", versionHandler(o.Version))
	rt.handle(http.MethodGet, "/openapi.json", handleOpenAPI)
	wk := &wellKnown{errs: errs, token: tokenv1.NewTokenServiceClient(o.Conns.Token), provider: o.SessionHTTP != ""}
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		rt.handle(m, JWKSPath, wk.jwks)
		rt.handle(m, OpenIDConfigurationPath, wk.openIDConfiguration)
	}
	aq := &auditQuery{errs: errs, sources: []auditSource{
		{"activation", auditv1.NewAuditServiceClient(o.Conns.Activation)},
		{"device", auditv1.NewAuditServiceClient(o.Conns.Device)},
		{"session", auditv1.NewAuditServiceClient(o.Conns.Session)},
		{"token", auditv1.NewAuditServiceClient(o.Conns.Token)},
	}}
	rt.handle(http.MethodGet, AuditEventsPath, aq.list)
	if !o.Environment.IsProduction() {
		rt.handle(http.MethodGet, "/docs", handleDocs)
		td := &testData{
			allow:      o.AllowDropData,
			errs:       errs,
			log:        o.Logger,
			activation: activationv1.NewActivationServiceClient(o.Conns.Activation),
			device:     devicev1.NewDeviceServiceClient(o.Conns.Device),
			token:      tokenv1.NewTokenServiceClient(o.Conns.Token),
			session:    sessionv1.NewSessionServiceClient(o.Conns.Session),
		}
		rt.handle(http.MethodPost, "/drop_data", td.dropData)
		rt.handle(http.MethodPost, "/reset_test_data", td.resetTestData)
	}
	front := middleware(rt, errs, o.Logger, o.MaxBodyBytes)
	if o.SessionHTTP != "" {
		front = sessionProxy(o.SessionHTTP, front, errs, o.MaxBodyBytes, o.TrustedProxies)
	}
	return traced(front), nil
}

// routes serves the plain endpoints by exact path and hands everything
// else to the gateway mux. A known path with another method is a 405.
type routes struct {
	next  http.Handler
	errs  *errorWriter
	paths map[string]map[string]http.HandlerFunc
}

func newRoutes(next http.Handler, errs *errorWriter) *routes {
	return &routes{next: next, errs: errs, paths: map[string]map[string]http.HandlerFunc{}}
}

func (rt *routes) handle(method, path string, h http.HandlerFunc) {
	if rt.paths[path] == nil {
		rt.paths[path] = map[string]http.HandlerFunc{}
	}
	rt.paths[path][method] = h
}

func (rt *routes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	methods, ok := rt.paths[r.URL.Path]
	if !ok {
		rt.next.ServeHTTP(w, r)
		return
	}
	if ri := routeInfoOf(r); ri != nil {
		ri.path = r.URL.Path
	}
	h, ok := methods[r.Method]
	if !ok {
		rt.errs.routingError(w, r, http.StatusMethodNotAllowed)
		return
	}
	h(w, r)
}
