// Package auth is the suite's shared token verifier and access guard.
//
// Every service verifies the bearer token of each call itself (nothing is
// trusted because it came through the edge) and checks the access rule
// declared next to the RPC in its .proto file (option dhos.auth.v1.access).
// Accepted tokens: those the token service issued (public keys fetched from
// it and cached), legacy Polaris HS512 tokens signed with HS_KEY whose iss
// and aud equal HS_ISSUER, and the suite's short-lived internal service
// tokens. The algorithm is pinned per issuer; alg "none" and algorithm
// confusion are refused.
package auth
