package telemetry

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// GRPCClientHandler is the stats handler of every gRPC client: a client
// span per call, whose context travels to the server in the traceparent
// metadata, and the rpc.client.* metrics.
func GRPCClientHandler() stats.Handler {
	return otelgrpc.NewClientHandler(otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))
}

// ScopeGRPCServer is the instrumentation scope of the servers' spans and
// rpc.server.call.duration.
const ScopeGRPCServer = MeterName + "/grpc"

// MetricRPCServerDuration is the servers' per-call histogram (Prometheus:
// rpc_server_call_duration_seconds, by rpc_method and
// rpc_response_status_code), as OpenTelemetry's RPC conventions name it.
const MetricRPCServerDuration = "rpc.server.call.duration"

// healthService is left out: probes would drown the real traffic.
const healthService = "/grpc.health.v1.Health/"

// GRPCServer instruments every gRPC server: a server span per call
// (continuing the caller's traceparent) and rpc.server.call.duration by
// method and status code. It does the work of a stats handler in
// interceptors instead: a stats handler makes gRPC copy every call's
// metadata and the instrumentation build an attribute set per call, which
// was a fifth of the token service's CPU for a cached VerifyToken. Here the
// traceparent is read as one metadata key and the attribute sets are built
// once per method and code.
type GRPCServer struct {
	tracer trace.Tracer
	hist   metric.Float64Histogram
	sets   sync.Map // setKey → attribute.Set
}

type setKey struct {
	method string
	code   codes.Code
}

// NewGRPCServer uses the global providers and propagator (Setup installs
// them; without Setup they are no-ops).
func NewGRPCServer() *GRPCServer {
	h, _ := otel.Meter(ScopeGRPCServer).Float64Histogram(MetricRPCServerDuration,
		metric.WithDescription("Duration of the RPCs the server handled, by method and status code."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	return &GRPCServer{tracer: otel.Tracer(ScopeGRPCServer), hist: h}
}

// Unary is the unary interceptor; it goes first in the chain, so that it
// sees the status the caller gets.
func (g *GRPCServer) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if strings.HasPrefix(info.FullMethod, healthService) {
			return h(ctx, req)
		}
		start := time.Now()
		ctx, span := g.start(ctx, info.FullMethod)
		resp, err := h(ctx, req)
		g.end(ctx, span, info.FullMethod, err, start)
		return resp, err
	}
}

// Stream is the stream interceptor (reflection and health watches).
func (g *GRPCServer) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if strings.HasPrefix(info.FullMethod, healthService) {
			return h(srv, ss)
		}
		start := time.Now()
		ctx, span := g.start(ss.Context(), info.FullMethod)
		err := h(srv, &tracedStream{ServerStream: ss, ctx: ctx})
		g.end(ctx, span, info.FullMethod, err, start)
		return err
	}
}

func (g *GRPCServer) start(ctx context.Context, fullMethod string) (context.Context, trace.Span) {
	ctx = otel.GetTextMapPropagator().Extract(ctx, incomingCarrier{ctx})
	ctx, span := g.tracer.Start(ctx, strings.TrimPrefix(fullMethod, "/"), trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		svc, method := splitMethod(fullMethod)
		span.SetAttributes(attribute.String("rpc.system.name", "grpc"), attribute.String("rpc.method", svc+"/"+method))
	}
	return ctx, span
}

func (g *GRPCServer) end(ctx context.Context, span trace.Span, fullMethod string, err error, start time.Time) {
	code := status.Code(err)
	g.hist.Record(ctx, time.Since(start).Seconds(), metric.WithAttributeSet(g.set(fullMethod, code)))
	if span.IsRecording() {
		span.SetAttributes(attribute.String("rpc.response.status_code", codeName(code)))
		if serverFault(code) {
			span.SetStatus(otelcodes.Error, status.Convert(err).Message())
		}
	}
	span.End()
}

// set returns the metric attributes of method and code, built once.
func (g *GRPCServer) set(fullMethod string, code codes.Code) attribute.Set {
	k := setKey{fullMethod, code}
	if s, ok := g.sets.Load(k); ok {
		return s.(attribute.Set)
	}
	svc, method := splitMethod(fullMethod)
	s := attribute.NewSet(
		attribute.String("rpc.system.name", "grpc"),
		attribute.String("rpc.method", svc+"/"+method),
		attribute.String("rpc.response.status_code", codeName(code)),
	)
	v, _ := g.sets.LoadOrStore(k, s)
	return v.(attribute.Set)
}

// codeName is a status code's canonical name, as the RPC conventions
// record it (grpc-go's String() is CamelCase).
func codeName(c codes.Code) string { return rpccode.Code(c).String() }

// serverFault reports the codes OpenTelemetry's conventions count as the
// server's error (the others are the caller's).
func serverFault(c codes.Code) bool {
	switch c {
	case codes.Unknown, codes.DeadlineExceeded, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss:
		return true
	}
	return false
}

// splitMethod splits "/pkg.Service/Method".
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return full, ""
}

// incomingCarrier reads the propagation headers from the incoming
// metadata one key at a time, without copying it all.
type incomingCarrier struct{ ctx context.Context }

func (c incomingCarrier) Get(key string) string {
	if v := metadata.ValueFromIncomingContext(c.ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c incomingCarrier) Set(string, string) {}

func (c incomingCarrier) Keys() []string {
	md, _ := metadata.FromIncomingContext(c.ctx)
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	return keys
}

var _ propagation.TextMapCarrier = incomingCarrier{}

// tracedStream is a server stream whose context carries the span.
type tracedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *tracedStream) Context() context.Context { return s.ctx }
