// Package upstream is the session service's OpenID Connect relying party:
// it signs clinicians in at the organisation's identity provider (NHS
// CIS2, Entra ID, HMPPS Auth or any OpenID Connect provider) with the
// authorization code flow, PKCE (S256), state and nonce, and validates the
// back-channel logout tokens the provider sends.
//
// A Provider is built from a Config (a preset fills in what a known
// provider needs). It reads the provider's discovery document lazily and
// keeps it for an hour; keys come from the provider's JWKS URL (cached,
// refetched on an unknown kid). The client authenticates at the token
// endpoint with client_secret_basic, client_secret_post or
// private_key_jwt (a key it signs with, or a federated assertion read from
// a file each time). Identity turns the tokens into the clinician id and
// roles the configuration names.
package upstream
