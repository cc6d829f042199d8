package telemetry

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"google.golang.org/grpc/stats"
)

// GRPCServerHandler is the stats handler of every gRPC server: a server
// span per call (continuing the caller's trace) and the rpc.server.*
// metrics (rate, errors by status code, duration per method). Health
// checks are left out: probes would drown the real traffic.
func GRPCServerHandler() stats.Handler {
	return otelgrpc.NewServerHandler(otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))
}

// GRPCClientHandler is the stats handler of every gRPC client: a client
// span per call, whose context travels to the server in the traceparent
// metadata, and the rpc.client.* metrics.
func GRPCClientHandler() stats.Handler {
	return otelgrpc.NewClientHandler(otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))
}
