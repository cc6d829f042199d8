// Command token runs the token service: it issues the suite's patient,
// device, clinician and system tokens, verifies tokens for the other
// services and publishes its public keys (dhos.token.v1.TokenService).
//
// Configuration comes from the environment (see config.go): the common
// settings of pkg/service, the scope sets GDM_PATIENT_SCOPE,
// SEND_ENTRY_DEVICE_SCOPE and SEND_ENTRY_CLINICIAN_SCOPE, the lifetimes
// JWT_EXPIRY_IN_SECONDS, SEND_ENTRY_DEVICE_JWT_EXPIRY_IN_SECONDS and
// SYSTEM_JWT_EXPIRY_IN_SECONDS, the signing key (HS_KEY, RSA_PRIVATE_KEY or
// RSA_PRIVATE_KEY_FILE) and ALLOW_DROP_DATA.
package main
