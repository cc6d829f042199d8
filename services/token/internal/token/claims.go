package token

import (
	"strings"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	"github.com/golang-jwt/jwt/v5"
)

// Kind is the kind of principal a token is issued to.
type Kind string

// The kinds of principal.
const (
	KindPatient   Kind = "patient"
	KindDevice    Kind = "device"
	KindClinician Kind = "clinician"
	KindSystem    Kind = "system"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindPatient, KindDevice, KindClinician, KindSystem:
		return true
	}
	return false
}

// Revocable reports whether tokens of this kind can be revoked by
// principal (patients, devices, clinicians; not systems).
func (k Kind) Revocable() bool {
	return k == KindPatient || k == KindDevice || k == KindClinician
}

// Proto is the kind as the API names it.
func (k Kind) Proto() authv1.PrincipalKind {
	switch k {
	case KindPatient:
		return authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT
	case KindDevice:
		return authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE
	case KindClinician:
		return authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN
	case KindSystem:
		return authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM
	}
	return authv1.PrincipalKind_PRINCIPAL_KIND_UNSPECIFIED
}

// KindFromProto maps the API's kind onto the domain's; anything else
// (UNSPECIFIED, unknown numbers) becomes the invalid empty kind.
func KindFromProto(k authv1.PrincipalKind) Kind {
	switch k {
	case authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT:
		return KindPatient
	case authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE:
		return KindDevice
	case authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN:
		return KindClinician
	case authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM:
		return KindSystem
	}
	return ""
}

// Claims are the claims of a token the service issues.
type Claims struct {
	Issuer    string
	Audience  string
	Subject   string
	ID        string
	IssuedAt  time.Time
	ExpiresAt time.Time
	Scopes    []string
	Metadata  map[string]string
	// OIDC, when set, replaces the contract's claims: the claims of an
	// OpenID Connect ID or logout token (no scope, no metadata).
	OIDC jwt.MapClaims
	// Type, when set, is the JWT's typ header (logout+jwt).
	Type string
}

// JWT returns the claims as the contract writes them: iss, aud (a single
// string, not an array), exp and iat in whole seconds, jti, sub, scope
// (space-separated) and metadata.
func (c Claims) JWT() jwt.MapClaims {
	if c.OIDC != nil {
		return c.OIDC
	}
	md := make(map[string]any, len(c.Metadata))
	for k, v := range c.Metadata {
		md[k] = v
	}
	return jwt.MapClaims{
		"iss":      c.Issuer,
		"aud":      c.Audience,
		"sub":      c.Subject,
		"jti":      c.ID,
		"iat":      c.IssuedAt.Unix(),
		"exp":      c.ExpiresAt.Unix(),
		"scope":    strings.Join(c.Scopes, " "),
		"metadata": md,
	}
}
