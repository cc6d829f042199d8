// Package telemetry sets up OpenTelemetry for a suite process: traces
// exported over OTLP when the standard OTEL_* variables ask for it, W3C
// trace-context propagation, and metrics served to Prometheus from the
// process's ops listener.
//
// Setup installs the global tracer provider, meter provider and
// propagator, so instrumentation anywhere in the process (GRPCServer's
// interceptors on every gRPC server, otelgrpc on every client, otelhttp at
// the edge, the database tracer
// in pkg/storage, and the suite's own counters in this package) reports
// through them. Call it before anything creates instruments or opens the
// database.
//
// Variables read (all optional):
//
//   - OTEL_SERVICE_NAME (default: the process name), OTEL_RESOURCE_ATTRIBUTES
//   - OTEL_TRACES_EXPORTER: otlp or none; unset means otlp when an OTLP
//     endpoint is set and none otherwise
//   - OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
//     OTEL_EXPORTER_OTLP_PROTOCOL / OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
//     (grpc or http/protobuf, the default), and the exporter's other
//     OTEL_EXPORTER_OTLP_* settings (headers, timeout, certificates)
//   - OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_* (read by the
//     SDK)
//   - OTEL_SDK_DISABLED=true: no spans are exported (trace ids are still
//     made, for logs and error bodies)
//
// Spans are made even when none are exported, so every log line of a
// request and every error body of the edge carries a trace id.
package telemetry
