package ssohttp

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/dhosauth/dhosauth/pkg/service"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// ServeOptions describe the session service's HTTP listener.
type ServeOptions struct {
	Addr    string
	Handler http.Handler
	Logger  *slog.Logger
	// ShutdownTimeout bounds draining (default 10s).
	ShutdownTimeout time.Duration
	// Listening, when set, is told the bound address (tests use port 0).
	Listening func(net.Addr)
}

// Serve runs the HTTP listener until ctx ends, then drains in-flight
// requests. Each request continues the trace the edge sent
// (traceparent), so its audit events carry the edge's trace id.
func Serve(ctx context.Context, o ServeOptions) error {
	h := o.Handler
	traced := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		h.ServeHTTP(w, r.WithContext(ctx))
	})
	return service.ServeHTTP(ctx, service.HTTPServeOptions{
		Name: "browser sign-in", Addr: o.Addr, Server: service.NewHTTPServer(ctx, traced, o.Logger), Logger: o.Logger,
		ShutdownTimeout: o.ShutdownTimeout, Listening: o.Listening,
	})
}
