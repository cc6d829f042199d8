package edge

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// serverName is the server.address of the edge's spans and metrics: a
// fixed name, because the Host header (otelhttp's default) is the
// client's choice and would make a label per value. Port 80 means "no
// port label".
const serverName = "gateway:80"

// hiddenKey holds the request's real URL while otelhttp looks at a copy
// without it.
type hiddenKey struct{}

type hidden struct {
	url        *url.URL
	requestURI string
}

// traced wraps the edge in otelhttp: a server span per request that
// continues the caller's traceparent, and the http.server.* metrics per
// route. The span and the metrics name the route template, never the path
// or query, which can carry activation codes: otelhttp sees the request
// without them and the handler gets them back. The response carries the
// traceparent of the edge's span, so a client can quote the trace.
func traced(next http.Handler) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := &routeInfo{}
		req := r.WithContext(context.WithValue(r.Context(), routeKey{}, ri))
		if h, ok := r.Context().Value(hiddenKey{}).(hidden); ok {
			req.URL, req.RequestURI = h.url, h.requestURI
		}
		if sc := trace.SpanContextFromContext(req.Context()); sc.IsValid() {
			otel.GetTextMapPropagator().Inject(req.Context(), propagation.HeaderCarrier(w.Header()))
		}
		next.ServeHTTP(w, req)
		// otelhttp names the span and labels the metrics from the
		// Pattern ("METHOD /template") of the request it passed here.
		if route := ri.template(); route != "" {
			r.Pattern = r.Method + " " + route
			trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("http.route", route))
		}
	})
	h := otelhttp.NewHandler(inner, "http",
		otelhttp.WithServerName(serverName),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method
		}),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bare := r.WithContext(context.WithValue(r.Context(), hiddenKey{}, hidden{url: r.URL, requestURI: r.RequestURI}))
		bare.URL = &url.URL{Scheme: r.URL.Scheme, Host: r.URL.Host}
		bare.RequestURI = ""
		h.ServeHTTP(w, bare)
	})
}

// template is the route's path template ("/dhos/v1/device/{device_id}"),
// or "" when no route matched. grpc-gateway writes a single-segment
// variable as "{device_id=*}"; the label uses the plain form.
func (ri *routeInfo) template() string {
	switch {
	case ri.hasPattern:
		return strings.ReplaceAll(ri.pattern.String(), "=*}", "}")
	case ri.path != "":
		return ri.path
	}
	return ""
}

// traceIDOf is the trace id the error body quotes ("" outside a trace).
func traceIDOf(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}
