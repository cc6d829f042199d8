package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Limits of every HTTP listener of the suite (the REST edge and the
// session service's browser sign-in).
const (
	HTTPReadHeaderTimeout = 5 * time.Second
	HTTPReadTimeout       = 30 * time.Second
	HTTPWriteTimeout      = 30 * time.Second
	HTTPIdleTimeout       = 120 * time.Second
	HTTPMaxHeaderBytes    = 64 << 10
)

// NewHTTPServer is an HTTP server for h with every timeout and the header
// size bounded. Requests' contexts are not cancelled when ctx ends, so
// in-flight requests finish while the server drains.
func NewHTTPServer(ctx context.Context, h http.Handler, lg *slog.Logger) *http.Server {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: HTTPReadHeaderTimeout,
		ReadTimeout:       HTTPReadTimeout,
		WriteTimeout:      HTTPWriteTimeout,
		IdleTimeout:       HTTPIdleTimeout,
		MaxHeaderBytes:    HTTPMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(lg.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// HTTPServeOptions describe one HTTP listener.
type HTTPServeOptions struct {
	// Name says which listener in log lines ("edge", "browser sign-in").
	Name string
	// Addr is host:port to listen on.
	Addr string
	// Server serves the requests (NewHTTPServer).
	Server *http.Server
	Logger *slog.Logger
	// ShutdownTimeout bounds draining (default 10s).
	ShutdownTimeout time.Duration
	// ShutdownDelay: how long to go on serving, reported not ready,
	// before draining (so that load balancers stop sending requests).
	ShutdownDelay time.Duration
	// Ops, when set, is told when the listener serves and when it starts
	// to stop; its /readyz follows.
	Ops *Ops
	// Listening, when set, is told the bound address (tests use port 0).
	Listening func(net.Addr)
}

// ServeHTTP runs the server until ctx is cancelled, then reports not
// ready, goes on serving for ShutdownDelay, stops accepting connections
// and lets in-flight requests finish within ShutdownTimeout (then closes
// what is left).
func ServeHTTP(ctx context.Context, o HTTPServeOptions) error {
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
	srv := o.Server
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	lg.Info(o.Name+" listening", "url", "http://"+lis.Addr().String())
	if o.Ops != nil {
		o.Ops.Serving()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("%s http server: %w", o.Name, err)
	case <-ctx.Done():
	}
	if o.Ops != nil {
		o.Ops.Draining()
	}
	if o.ShutdownDelay > 0 {
		lg.Info(o.Name+" shutting down: not ready, still serving", "delay", o.ShutdownDelay.String())
		select {
		case <-time.After(o.ShutdownDelay):
		case err := <-errc:
			return fmt.Errorf("%s http server: %w", o.Name, err)
		}
	}
	lg.Info(o.Name+" shutting down: draining in-flight requests", "timeout", o.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		lg.Warn(o.Name+" drain timed out; closing connections", "error", err.Error())
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s http server: %w", o.Name, err)
	}
	return nil
}
