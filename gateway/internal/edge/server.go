package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/dhosauth/dhosauth/pkg/service"
)

// Timeouts and limits of the HTTP server.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 64 << 10
)

// newHTTPServer is the edge's HTTP server: every timeout and the header
// size bounded.
func newHTTPServer(ctx context.Context, h http.Handler, lg *slog.Logger) *http.Server {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(lg.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
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
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	lg := o.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lis, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.Addr, err)
	}
	if o.Listening != nil {
		o.Listening(lis.Addr())
	}
	srv := newHTTPServer(ctx, o.Handler, lg)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	lg.Info("edge listening", "url", "http://"+lis.Addr().String())
	if o.Ops != nil {
		o.Ops.Serving()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	if o.Ops != nil {
		o.Ops.Draining()
	}
	if o.ShutdownDelay > 0 {
		lg.Info("shutting down: not ready, still serving", "delay", o.ShutdownDelay.String())
		select {
		case <-time.After(o.ShutdownDelay):
		case err := <-errc:
			return fmt.Errorf("http server: %w", err)
		}
	}
	lg.Info("shutting down: draining in-flight requests", "timeout", o.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		lg.Warn("drain timed out; closing connections", "error", err.Error())
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}
