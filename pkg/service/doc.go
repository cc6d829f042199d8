// Package service is what every suite process shares: the common
// configuration (environment, logging, storage, token trust, addresses of
// the other services), the gRPC server lifecycle (health, reflection,
// interceptors, graceful shutdown) and authenticated clients to the other
// services.
package service
