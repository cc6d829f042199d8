package edge

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/dhosauth/dhosauth/pkg/service"
)

// Timeouts and limits of the HTTP server (the suite's, in pkg/service).
const (
	ReadHeaderTimeout = service.HTTPReadHeaderTimeout
	MaxHeaderBytes    = service.HTTPMaxHeaderBytes
)

// newHTTPServer is the edge's HTTP server: every timeout and the header
// size bounded.
func newHTTPServer(ctx context.Context, h http.Handler, lg *slog.Logger) *http.Server {
	return service.NewHTTPServer(ctx, h, lg)
}

// ServeOptions describe the HTTP listener.
type ServeOptions struct {
	// Addr is host:port to listen on.
	Addr    string
	Handler http.Handler
	Logger  *slog.Logger
	// ShutdownTimeout bounds draining on shutdown (default 10s).
	ShutdownTimeout time.Duration
	// ShutdownDelay: how long to go on serving, reported not ready,
	// before draining (so load balancers stop sending requests first).
	ShutdownDelay time.Duration
	// Ops, when set, is told when the edge serves and when it starts to
	// stop; its /readyz follows.
	Ops *service.Ops
	// Listening, when set, is told the bound address (tests use port 0).
	Listening func(net.Addr)
}

// Serve runs the HTTP server until ctx is cancelled, then reports not
// ready, goes on serving for ShutdownDelay, stops accepting connections
// and lets in-flight requests finish within ShutdownTimeout.
func Serve(ctx context.Context, o ServeOptions) error {
	return service.ServeHTTP(ctx, service.HTTPServeOptions{
		Name: "edge", Addr: o.Addr, Server: newHTTPServer(ctx, o.Handler, o.Logger), Logger: o.Logger,
		ShutdownTimeout: o.ShutdownTimeout, ShutdownDelay: o.ShutdownDelay, Ops: o.Ops, Listening: o.Listening,
	})
}
