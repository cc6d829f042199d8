// Package token is the token service's domain. It issues the suite's JWTs
// (patient, device, clinician and system tokens) with exactly the claims the
// /dhos/v1 contract fixes, records every token it issues in a Store,
// verifies tokens for internal callers, revokes the tokens of principals
// (Revoke, and the ordered feed verifiers poll, Revocations), and
// publishes the public keys that verify its tokens.
//
// Signing sits behind the Signer interface: ManagedKeys (keys the service
// makes, seals with a Sealer in its store and rotates next -> active ->
// retired, one rotation winning across replicas), FileKeys (mounted PEM
// files or RSA_PRIVATE_KEY) and HSSigner (the legacy shared HS512 key).
// Every asymmetric key's kid is its RFC 7638 thumbprint. ExpiryWatch and
// KeyMetrics tell operators in time when a key or secret is about to
// expire.
package token
