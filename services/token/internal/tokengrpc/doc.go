// Package tokengrpc is the token service's gRPC server: it turns
// dhos.token.v1.TokenService requests into calls on the token domain and
// the results back into responses.
package tokengrpc
