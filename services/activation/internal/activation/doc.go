// Package activation is the activation service's domain: patients' phone
// activations (an activation code and a one-time PIN), wards' tablet
// activations (a short numeric code), and the authorisation codes both hand
// out in exchange, which are later traded for JWTs issued by the token
// service.
//
// The package owns its Store interface and sentinel errors; the store is in
// package activationdb. Secrets (activation codes, OTPs, authorisation
// codes) never reach the store in clear: only keyed hashes (secret.Hasher)
// are written, and every comparison is made on hashes in constant time.
// A patient activation code is derived from the activation's id under the
// hash key, so a reissued activation shows the same code without it ever
// being stored.
//
// The RPCs that take a secret instead of a token (validation and the
// patient and device JWT exchanges) count failures against brute-force
// limits (Limits: per client address, per patient or device, and a budget
// of failed device-code guesses for all clients together) in counters
// shared by every replica (a Limiter, pkg/ratelimit on the service's
// store); over a limit they answer RESOURCE_EXHAUSTED with a RetryInfo.
// Codes and OTPs are compared in NormalizeCode's form: ASCII upper case.
//
// Outside production the package also serves the static test activations
// and the test-data endpoints; in production they do not exist.
package activation
