package auth

import (
	"context"
	"slices"
	"strings"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
)

// Metadata claim names that identify the principal.
const (
	PatientIDClaim   = "patient_id"
	DeviceIDClaim    = "device_id"
	ClinicianIDClaim = "clinician_id"
	SystemIDClaim    = "system_id"
	// ReferringDeviceIDClaim is the device a clinician signed in on: a
	// clinician token falls with its device's revocation too.
	ReferringDeviceIDClaim = "referring_device_id"
)

// Principal is the verified caller.
type Principal struct {
	Kind      authv1.PrincipalKind
	ID        string
	Scopes    []string
	Metadata  map[string]any
	Subject   string
	Issuer    string
	TokenID   string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// HasScope reports whether the token grants scope.
func (p *Principal) HasScope(scope string) bool { return slices.Contains(p.Scopes, scope) }

// MetadataString returns metadata[key] when it is a string.
func (p *Principal) MetadataString(key string) string {
	s, _ := p.Metadata[key].(string)
	return s
}

// Name is what *_by fields record: the principal's id, or its subject.
func (p *Principal) Name() string {
	if p.ID != "" {
		return p.ID
	}
	return p.Subject
}

// principalOf names the principal from the metadata claim.
func principalOf(md map[string]any) (authv1.PrincipalKind, string) {
	for _, c := range []struct {
		claim string
		kind  authv1.PrincipalKind
	}{
		{ClinicianIDClaim, authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN},
		{DeviceIDClaim, authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE},
		{PatientIDClaim, authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT},
		{SystemIDClaim, authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM},
	} {
		if id, ok := md[c.claim].(string); ok && id != "" {
			return c.kind, id
		}
	}
	return authv1.PrincipalKind_PRINCIPAL_KIND_UNSPECIFIED, ""
}

// ParseScopes splits a space-separated scope string.
func ParseScopes(s string) []string { return strings.Fields(s) }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller verified by the guard, or nil on a
// public RPC.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// ActorName is what *_by fields record for the caller in ctx, or fallback.
func ActorName(ctx context.Context, fallback string) string {
	if p := PrincipalFrom(ctx); p != nil && p.Name() != "" {
		return p.Name()
	}
	return fallback
}
