// Package edge is the suite's REST edge: an HTTP server that reproduces the
// /dhos/v1 contract in front of the activation, device, token and session
// gRPC services.
//
// The grpc-gateway mux is configured explicitly, in one place each: the
// JSON marshaller (snake_case names, unpopulated fields emitted, unknown
// request fields refused, field-less responses written as an empty body),
// the error handler that turns gRPC statuses into {"code", "message"}
// bodies, the incoming header matcher, and the table of success statuses
// other than 200. Middleware in front of the mux refuses what the contract
// calls bad input before any service is asked: GET bodies, bodies that are
// not JSON or too large, and paths, queries or headers with bytes that have
// no business there. The plain endpoints (/running, /version,
// /openapi.json, /docs, the token service's /.well-known/jwks.json and
// /.well-known/openid-configuration) and the non-production /drop_data and
// /reset_test_data live here too.
//
// The edge verifies no tokens: it forwards the caller's Authorization
// header and each service checks it against the access rule of the RPC.
package edge
