// Package service is what every suite process shares: the common
// configuration (environment, logging, storage, token trust, addresses of
// the other services, listeners and shutdown), the operations side of a
// process (StartOps: OpenTelemetry from the OTEL_* variables and the ops
// listener with /livez, /readyz, /metrics and pprof), the gRPC server
// lifecycle (health, reflection, interceptors, tracing and metrics per
// RPC, readiness, graceful shutdown, and every call capped at RPC_TIMEOUT
// by the Deadline interceptor) and traced, authenticated clients to the
// other services (each call bounded by CallTimeout, reconnecting within 2s
// of a service's return). Main and Process are a service command's
// start-up in one place: signals and exit status, the configuration check
// and start-up lines, the ops side, the store, clients, the verifier and
// the gRPC server with the audit query service, all released by Close.
package service
