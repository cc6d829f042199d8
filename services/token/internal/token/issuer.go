package token

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dhosauth/dhosauth/pkg/validate"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/telemetry"
	"github.com/google/uuid"
)

// Limits on what callers send.
const (
	// MaxIDLength bounds subject and device ids, in bytes.
	MaxIDLength = 200
	// MaxScopeLength bounds one scope, in bytes.
	MaxScopeLength = 200
	// MaxScopes bounds how many scopes a request may name.
	MaxScopes = 100
	// InternalScopePrefix marks the suite's service-to-service scopes,
	// which no issued token may carry.
	InternalScopePrefix = "internal:"
)

// Config is what the issuer needs to know.
type Config struct {
	// Issuer and Audience are the iss and aud of every token.
	Issuer   string
	Audience string
	// Scope sets of the principal kinds whose scopes are configured.
	PatientScopes   []string
	DeviceScopes    []string
	ClinicianScopes []string
	// Lifetimes of each kind of token.
	PatientLifetime   time.Duration
	DeviceLifetime    time.Duration
	ClinicianLifetime time.Duration
	SystemLifetime    time.Duration
	// AllowDropData lets DropData empty the store (ALLOW_DROP_DATA).
	AllowDropData bool
	// Leeway is the clock skew verifiers tolerate (TOKEN_LEEWAY).
	Leeway time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// MaxLifetime is the longest lifetime of any token the issuer signs.
func (c Config) MaxLifetime() time.Duration {
	return max(c.PatientLifetime, c.DeviceLifetime, c.ClinicianLifetime, c.SystemLifetime)
}

// Retention is how long a token matters after it is issued: the longest
// lifetime plus the leeway. A retired key stays published, and a
// revocation is kept, this long.
func (c Config) Retention() time.Duration { return c.MaxLifetime() + c.Leeway }

// Issuer issues, records, verifies and revokes the suite's tokens.
type Issuer struct {
	cfg      Config
	signer   Signer
	store    Store
	verifier *auth.Verifier
	revoked  *auth.RevocationList

	epochMu sync.Mutex
	epoch   string
}

// NewIssuer returns an Issuer that signs with signer, records in store and
// verifies with verifier. revoked, when not nil, is the verifier's
// revocation list: a revocation recorded here takes effect in it at once.
func NewIssuer(cfg Config, signer Signer, store Store, verifier *auth.Verifier, revoked *auth.RevocationList) *Issuer {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = auth.DefaultLeeway
	}
	return &Issuer{cfg: cfg, signer: signer, store: store, verifier: verifier, revoked: revoked}
}

// Config is the issuer's configuration.
func (i *Issuer) Config() Config { return i.cfg }

// Signer is where the issuer's keys come from.
func (i *Issuer) Signer() Signer { return i.signer }

// Request names the principal a token is for.
type Request struct {
	Kind Kind
	// SubjectID is the patient, device, clinician or system id.
	SubjectID string
	// ReferringDeviceID is the device a clinician signed in on (clinician
	// tokens only, required there).
	ReferringDeviceID string
	// Scopes are the scopes of a system token (required there) or of a
	// clinician token issued from a browser session (required there).
	Scopes []string
	// SessionID is the browser session a clinician token is issued from,
	// instead of a device (clinician tokens only).
	SessionID string
}

// Issued is a signed token.
type Issued struct {
	JWT       string
	ID        string
	ExpiresAt time.Time
	Claims    Claims
}

// plan is what a valid request turns into.
type plan struct {
	scopes   []string
	metadata map[string]string
	lifetime time.Duration
}

// Issue validates req, signs a token for it and records the token.
func (i *Issuer) Issue(ctx context.Context, req Request) (Issued, error) {
	p, err := i.plan(req)
	if err != nil {
		return Issued{}, err
	}
	// JWT times are whole seconds; the recorded and returned expiry match
	// the exp claim exactly.
	now := i.cfg.Now().UTC().Truncate(time.Second)
	if req.Kind.Revocable() {
		// A revocation refuses tokens issued before its cut-off, the
		// second after it was recorded. A token issued after the
		// revocation but within that second says so by carrying the
		// cut-off as its iat (at most a second ahead, well within the
		// verifiers' leeway).
		cutoff, err := i.store.RevokedBefore(ctx, req.Kind, req.SubjectID)
		switch {
		case err == nil && cutoff.After(now):
			now = cutoff.UTC()
		case err != nil && !errors.Is(err, ErrNotFound):
			return Issued{}, fmt.Errorf("read revocation: %w", err)
		}
	}
	for attempt := 1; ; attempt++ {
		c := Claims{
			Issuer:    i.cfg.Issuer,
			Audience:  i.cfg.Audience,
			Subject:   req.SubjectID,
			ID:        uuid.New().String(),
			IssuedAt:  now,
			ExpiresAt: now.Add(p.lifetime),
			Scopes:    p.scopes,
			Metadata:  p.metadata,
		}
		raw, err := i.signer.Sign(c)
		if err != nil {
			return Issued{}, apperr.Internal(fmt.Errorf("sign token: %w", err))
		}
		err = i.store.RecordIssued(ctx, Record{ID: c.ID, Kind: req.Kind, Subject: c.Subject, IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt})
		if errors.Is(err, ErrDuplicateID) && attempt < 3 {
			continue // a random UUID collided: draw another
		}
		if err != nil {
			return Issued{}, fmt.Errorf("record issued token: %w", err)
		}
		telemetry.TokenIssued(ctx, string(req.Kind))
		return Issued{JWT: raw, ID: c.ID, ExpiresAt: c.ExpiresAt, Claims: c}, nil
	}
}

func (i *Issuer) plan(req Request) (plan, error) {
	if !req.Kind.Valid() {
		return plan{}, apperr.InvalidArgument("kind must be one of patient, device, clinician, system")
	}
	if err := checkID("subject_id", req.SubjectID); err != nil {
		return plan{}, err
	}
	if req.Kind != KindClinician && req.ReferringDeviceID != "" {
		return plan{}, apperr.InvalidArgument("referring_device_id is only for clinician tokens")
	}
	if req.Kind != KindClinician && req.SessionID != "" {
		return plan{}, apperr.InvalidArgument("session_id is only for clinician tokens")
	}
	sessionToken := req.Kind == KindClinician && req.SessionID != ""
	if req.Kind != KindSystem && !sessionToken && len(req.Scopes) > 0 {
		return plan{}, apperr.InvalidArgument("scopes may only be given for system tokens and clinician tokens of a session; other tokens carry their configured scope set")
	}
	switch req.Kind {
	case KindPatient:
		return plan{i.cfg.PatientScopes, map[string]string{auth.PatientIDClaim: req.SubjectID}, i.cfg.PatientLifetime}, nil
	case KindDevice:
		return plan{i.cfg.DeviceScopes, map[string]string{auth.DeviceIDClaim: req.SubjectID}, i.cfg.DeviceLifetime}, nil
	case KindClinician:
		if sessionToken {
			// A browser session: the scopes the clinician's roles map to.
			if req.ReferringDeviceID != "" {
				return plan{}, apperr.InvalidArgument("a clinician token comes from a device or a session, not both")
			}
			if err := checkID("session_id", req.SessionID); err != nil {
				return plan{}, err
			}
			scopes, err := requestedScopes(req.Scopes)
			if err != nil {
				return plan{}, err
			}
			md := map[string]string{auth.ClinicianIDClaim: req.SubjectID, SessionIDClaim: req.SessionID}
			return plan{scopes, md, i.cfg.ClinicianLifetime}, nil
		}
		if req.ReferringDeviceID == "" {
			return plan{}, apperr.InvalidArgument("referring_device_id is required for clinician tokens")
		}
		if err := checkID("referring_device_id", req.ReferringDeviceID); err != nil {
			return plan{}, err
		}
		md := map[string]string{auth.ClinicianIDClaim: req.SubjectID, auth.ReferringDeviceIDClaim: req.ReferringDeviceID}
		return plan{i.cfg.ClinicianScopes, md, i.cfg.ClinicianLifetime}, nil
	default: // KindSystem
		scopes, err := requestedScopes(req.Scopes)
		if err != nil {
			return plan{}, err
		}
		return plan{scopes, map[string]string{auth.SystemIDClaim: req.SubjectID}, i.cfg.SystemLifetime}, nil
	}
}

// checkID refuses empty, over-long and unprintable ids.
func checkID(field, v string) error { return validate.ID(field, v) }

// SessionIDClaim is the metadata claim of a clinician token issued from a
// browser session: the session's public id.
const SessionIDClaim = "session_id"

// requestedScopes checks the scopes a system or session token asks for
// and drops repeats, keeping their order.
func requestedScopes(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, apperr.InvalidArgument("scopes are required for system tokens and clinician tokens of a session")
	}
	if len(in) > MaxScopes {
		return nil, apperr.InvalidArgument("at most %d scopes may be given", MaxScopes)
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if err := CheckScope(s); err != nil {
			return nil, err
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// CheckScope refuses a scope that is empty, too long, contains white space
// or control characters, or is one of the suite's internal scopes.
func CheckScope(s string) error {
	switch {
	case s == "":
		return apperr.InvalidArgument("a scope must not be empty")
	case len(s) > MaxScopeLength:
		return apperr.InvalidArgument("a scope must be at most %d bytes", MaxScopeLength)
	case !utf8.ValidString(s):
		return apperr.InvalidArgument("a scope must be valid UTF-8")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return apperr.InvalidArgument("scope %q must not contain spaces or control characters", s)
	case strings.HasPrefix(s, InternalScopePrefix):
		return apperr.InvalidArgument("scope %q is internal to the suite and cannot be issued", s)
	}
	return nil
}

// Verify checks a bearer token and that it grants every required scope:
// UNAUTHENTICATED (with the reason) when the token is not valid,
// PERMISSION_DENIED when a scope is missing.
func (i *Issuer) Verify(ctx context.Context, raw string, required []string) (*auth.Principal, error) {
	if len(required) > MaxScopes {
		return nil, apperr.InvalidArgument("at most %d required scopes may be given", MaxScopes)
	}
	for _, s := range required {
		if strings.TrimSpace(s) == "" {
			return nil, apperr.InvalidArgument("a required scope must not be empty")
		}
	}
	p, err := i.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, apperr.Unauthenticated("%v", err)
	}
	for _, s := range required {
		if !p.HasScope(s) {
			return nil, apperr.PermissionDenied("token lacks the scope %s", s)
		}
	}
	return p, nil
}

// PublicKeys are the keys that verify the tokens this issuer signs.
func (i *Issuer) PublicKeys() []auth.JWK { return i.signer.PublicKeys() }

// JWKSMaxAge is how long a copy of the key set may be cached: a quarter of
// the propagation period (so a verifier fetches a new key well before it
// signs), at most an hour, at least none.
func JWKSMaxAge(propagation time.Duration) time.Duration {
	return min(max(propagation/4, 0), time.Hour).Truncate(time.Second)
}

// Keys describes the signing keys.
func (i *Issuer) Keys() []KeyInfo { return i.signer.Keys() }

// RotateKeys starts a rotation (see Signer.Rotate).
func (i *Issuer) RotateKeys(ctx context.Context) (KeyInfo, bool, error) {
	next, created, err := i.signer.Rotate(ctx)
	if err != nil {
		return KeyInfo{}, false, rotationError(err)
	}
	return next, created, nil
}

// DropData empties the store when ALLOW_DROP_DATA is true.
func (i *Issuer) DropData(ctx context.Context) error {
	if !i.cfg.AllowDropData {
		return apperr.PermissionDenied("drop data is not allowed")
	}
	if err := i.store.DropAll(ctx); err != nil {
		return fmt.Errorf("drop issued tokens: %w", err)
	}
	return nil
}
