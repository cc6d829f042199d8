// Command token runs the token service: it issues the suite's patient,
// device, clinician and system tokens, verifies tokens for the other
// services, publishes and rotates its signing keys and keeps the list of
// revoked principals (dhos.token.v1.TokenService).
//
// Configuration comes from the environment (see config.go): the common
// settings of pkg/service, the scope sets GDM_PATIENT_SCOPE,
// SEND_ENTRY_DEVICE_SCOPE and SEND_ENTRY_CLINICIAN_SCOPE, the lifetimes
// JWT_EXPIRY_IN_SECONDS, SEND_ENTRY_DEVICE_JWT_EXPIRY_IN_SECONDS and
// SYSTEM_JWT_EXPIRY_IN_SECONDS, the signing keys (SIGNING_ALG,
// KEY_ENCRYPTION_KEY, KEY_ROTATION_PERIOD, KEY_PROPAGATION_PERIOD, or
// SIGNING_KEYS_DIR, RSA_PRIVATE_KEY(_FILE), HS_KEY), the expiry warnings
// (KEY_EXPIRY_WARNING, *_EXPIRES_AT) and ALLOW_DROP_DATA. See
// docs/tokens.md.
package main
