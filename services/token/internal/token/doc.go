// Package token is the token service's domain. It issues the suite's JWTs
// (patient, device, clinician and system tokens) with exactly the claims the
// /dhos/v1 contract fixes, records every token it issues in a Store (what
// revocation will build on), verifies tokens for internal callers, and
// publishes the public keys that verify its tokens.
//
// Signing sits behind the small Signer interface. Two signers exist today:
// HS512 with the legacy shared key (HS_KEY), and RS256 with an RSA key whose
// JWK thumbprint (RFC 7638) is the token's kid.
package token
