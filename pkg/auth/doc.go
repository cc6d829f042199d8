// Package auth is the suite's token verifier for Go services, and its
// access guard.
//
// Every service verifies the bearer token of each call itself (nothing is
// trusted because it came through the edge) and checks the access rule
// declared next to the RPC in its .proto file (option dhos.auth.v1.access):
// Guard is the gRPC interceptor, Verifier.Middleware the HTTP middleware.
//
// Accepted tokens: those the token service issued (public keys fetched
// from its JWK set and cached, RemoteKeys), legacy Polaris HS512 tokens
// signed with HS_KEY whose iss and aud equal HS_ISSUER, tokens of trusted
// external issuers (keys from their JWKS URL), and the suite's short-lived
// internal service tokens. The algorithm is pinned per issuer; alg "none"
// and algorithm confusion (a public key used as an HMAC secret, an RS key
// for an ES token) are refused.
//
// Verification is local: no call per token. A RevocationList, polled from
// the token service, refuses the tokens of principals revoked since they
// were issued, and an optional bounded cache keyed by the token's SHA-256
// skips the signature check for tokens seen before (expiry and revocation
// are still checked on every call).
package auth
