package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	"github.com/golang-jwt/jwt/v5"
)

// InternalIssuer is the iss and aud of internal service tokens.
const InternalIssuer = "dhosauth-internal"

// MaxTokenLength bounds what the verifier will parse.
const MaxTokenLength = 8192

// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// Signature algorithms the suite knows. Asymmetric ones verify with a
// public key from a key set; HS512 only with a configured shared key.
const (
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
	AlgHS512 = "HS512"
)

// AsymmetricAlgorithms are the algorithms a key set may name.
var AsymmetricAlgorithms = []string{AlgES256, AlgEdDSA, AlgRS256}

// ErrInvalidToken wraps every verification failure.
var ErrInvalidToken = errors.New("invalid token")

// KeySource finds the public key (and its algorithm) for a key id. The
// algorithm may be empty when the key set does not name one; the issuer's
// pinned algorithms then decide.
type KeySource interface {
	PublicKey(ctx context.Context, kid string) (crypto.PublicKey, string, error)
}

// RevocationChecker says whether a token of a principal, issued at
// issuedAt (zero when the token has no iat), has been revoked.
type RevocationChecker interface {
	Revoked(kind authv1.PrincipalKind, id string, issuedAt time.Time) bool
}

// TrustedIssuer is an external issuer (for example Auth0) whose tokens are
// accepted: keys from its JWKS URL, algorithm pinned, audience checked.
type TrustedIssuer struct {
	Issuer     string   `json:"issuer"`
	JWKSURI    string   `json:"jwks_uri"`
	Audience   string   `json:"audience"`
	Algorithms []string `json:"algorithms"`
	// Keys finds the issuer's keys (NewTrustedIssuers sets a cached HTTP
	// key set on JWKSURI).
	Keys KeySource `json:"-"`
}

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	// Issuer and Audience of tokens the token service signs with its
	// asymmetric keys (looked up in Keys).
	Issuer   string
	Audience string
	Keys     KeySource
	// HSKey and HSIssuer accept legacy HS512 tokens (iss = aud = HSIssuer);
	// the token service also signs with them when it runs in HS512 mode.
	HSKey    []byte
	HSIssuer string
	// InternalKey accepts internal service tokens.
	InternalKey []byte
	// Trusted are external issuers whose tokens are accepted.
	Trusted []TrustedIssuer
	// Revocations, when set, refuses tokens of revoked principals.
	Revocations RevocationChecker
	// CacheSize, when positive, keeps up to that many verified tokens
	// (keyed by their SHA-256) so that a token seen before costs no
	// signature check; expiry and revocation still apply on every call.
	CacheSize int
	// Leeway tolerates clock skew on exp, nbf and iat (default
	// DefaultLeeway).
	Leeway time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Verifier checks bearer tokens.
type Verifier struct {
	o       VerifierOptions
	parser  *jwt.Parser
	trusted map[string]*TrustedIssuer
	cache   *verifiedCache
}

// NewVerifier returns a Verifier.
func NewVerifier(o VerifierOptions) *Verifier {
	if o.Leeway <= 0 {
		o.Leeway = DefaultLeeway
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	v := &Verifier{o: o, trusted: map[string]*TrustedIssuer{}}
	for i := range o.Trusted {
		v.trusted[o.Trusted[i].Issuer] = &o.Trusted[i]
	}
	v.parser = jwt.NewParser(
		jwt.WithLeeway(o.Leeway),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(o.Now),
		jwt.WithValidMethods([]string{AlgHS512, AlgRS256, AlgES256, AlgEdDSA}),
	)
	if o.CacheSize > 0 {
		v.cache = newVerifiedCache(o.CacheSize)
	}
	return v
}

// Leeway is the clock skew the verifier tolerates.
func (v *Verifier) Leeway() time.Duration { return v.o.Leeway }

type tokenClaims struct {
	jwt.RegisteredClaims
	Scope    string         `json:"scope"`
	Metadata map[string]any `json:"metadata"`
}

// Verify checks raw and returns its principal. Every failure wraps
// ErrInvalidToken with a reason fit to show the caller. The principal may
// be shared with other callers (it comes from the cache): do not modify it.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Principal, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidToken)
	}
	if len(raw) > MaxTokenLength {
		return nil, fmt.Errorf("%w: too long", ErrInvalidToken)
	}
	var key [32]byte
	if v.cache != nil {
		key = cacheKey(raw)
		if p, ok := v.cache.get(key); ok {
			if !v.o.Now().Before(p.ExpiresAt.Add(v.o.Leeway)) {
				v.cache.remove(key)
				return nil, fmt.Errorf("%w: expired", ErrInvalidToken)
			}
			if v.revoked(p) {
				return nil, fmt.Errorf("%w: revoked", ErrInvalidToken)
			}
			return p, nil
		}
	}
	p, err := v.verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if v.revoked(p) {
		return nil, fmt.Errorf("%w: revoked", ErrInvalidToken)
	}
	if v.cache != nil {
		v.cache.put(key, p)
	}
	return p, nil
}

// CacheLen is how many verified tokens the cache holds (0 without one).
func (v *Verifier) CacheLen() int {
	if v.cache == nil {
		return 0
	}
	return v.cache.len()
}

func (v *Verifier) revoked(p *Principal) bool {
	if v.o.Revocations == nil || p.ID == "" {
		return false
	}
	switch p.Kind {
	case authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT, authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE:
		return v.o.Revocations.Revoked(p.Kind, p.ID, p.IssuedAt)
	case authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN:
		if v.o.Revocations.Revoked(p.Kind, p.ID, p.IssuedAt) {
			return true
		}
		// Signed in on a tablet since deactivated: the clinician's token
		// goes with the device's (a lost or stolen tablet must not keep a
		// clinician's session for the rest of its lifetime).
		if d := p.MetadataString(ReferringDeviceIDClaim); d != "" {
			return v.o.Revocations.Revoked(authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE, d, p.IssuedAt)
		}
	}
	return false
}

// verify does the full check: header, issuer, pinned algorithm, key,
// signature, times and audience.
func (v *Verifier) verify(ctx context.Context, raw string) (*Principal, error) {
	var wantAud []string
	var c tokenClaims
	_, err := v.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		iss, _ := t.Claims.GetIssuer()
		alg := t.Method.Alg()
		if iss == "" {
			return nil, errors.New("no issuer")
		}
		switch {
		case iss == InternalIssuer && len(v.o.InternalKey) > 0:
			if alg != AlgHS512 {
				return nil, errors.New("algorithm not allowed for this issuer")
			}
			wantAud = []string{InternalIssuer}
			return v.o.InternalKey, nil
		case iss == v.o.HSIssuer && len(v.o.HSKey) > 0 && (alg == AlgHS512 || iss != v.o.Issuer || v.o.Keys == nil):
			if alg != AlgHS512 {
				return nil, errors.New("algorithm not allowed for this issuer")
			}
			wantAud = []string{v.o.HSIssuer}
			return v.o.HSKey, nil
		case iss == v.o.Issuer && v.o.Keys != nil:
			wantAud = []string{v.o.Audience}
			return lookupKey(ctx, t, v.o.Keys, AsymmetricAlgorithms)
		}
		if ti, ok := v.trusted[iss]; ok && ti.Keys != nil {
			wantAud = []string{ti.Audience}
			return lookupKey(ctx, t, ti.Keys, ti.Algorithms)
		}
		return nil, errors.New("untrusted issuer")
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidToken, reason(err))
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(wantAud, a) }) {
		return nil, fmt.Errorf("%w: wrong audience", ErrInvalidToken)
	}
	kind, id := principalOf(c.Metadata)
	pr := &Principal{
		Kind:     kind,
		ID:       id,
		Scopes:   ParseScopes(c.Scope),
		Metadata: c.Metadata,
		Subject:  c.Subject,
		Issuer:   c.Issuer,
		TokenID:  c.ID,
	}
	if c.ExpiresAt != nil {
		pr.ExpiresAt = c.ExpiresAt.Time
	}
	if c.IssuedAt != nil {
		pr.IssuedAt = c.IssuedAt.Time
	}
	if pr.Metadata == nil {
		pr.Metadata = map[string]any{}
	}
	return pr, nil
}

// KeyFunc is the jwt.Keyfunc of tokens signed by one of keys with one of
// the allowed (asymmetric) algorithms, checked as the Verifier checks its
// own: the token must name its key (kid), and its algorithm must be allowed,
// the key's own when the key set names one, and fit for the key's type.
func KeyFunc(ctx context.Context, keys KeySource, allowed []string) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) { return lookupKey(ctx, t, keys, allowed) }
}

// lookupKey finds the key a token names (kid) in keys and checks that the
// token's algorithm is one the issuer is pinned to, the key's own (when the
// key set names one) and fit for the key's type: a public key is never
// used as an HMAC secret.
func lookupKey(ctx context.Context, t *jwt.Token, keys KeySource, allowed []string) (any, error) {
	alg := t.Method.Alg()
	if !slices.Contains(allowed, alg) || !slices.Contains(AsymmetricAlgorithms, alg) {
		return nil, errors.New("algorithm not allowed for this issuer")
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errors.New("no key id")
	}
	key, keyAlg, err := keys.PublicKey(ctx, kid)
	if err != nil {
		return nil, err
	}
	if keyAlg != "" && alg != keyAlg {
		return nil, errors.New("algorithm does not match the key")
	}
	if !algFitsKey(alg, key) {
		return nil, errors.New("algorithm does not match the key")
	}
	return key, nil
}

// algFitsKey reports whether alg verifies with a key of this type.
func algFitsKey(alg string, key crypto.PublicKey) bool {
	switch key.(type) {
	case *rsa.PublicKey:
		return alg == AlgRS256
	case *ecdsa.PublicKey:
		return alg == AlgES256
	case ed25519.PublicKey:
		return alg == AlgEdDSA
	}
	return false
}

// reason turns a jwt error into a short message without key material.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing required claim"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			return msg[i+2:]
		}
		return "unverifiable"
	}
	return "invalid"
}

// ParseUnverified returns a token's claims without checking anything. Only
// the non-production security-info endpoint uses it.
func ParseUnverified(raw string) (map[string]any, error) {
	if len(raw) > MaxTokenLength {
		return nil, fmt.Errorf("%w: too long", ErrInvalidToken)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
		return nil, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	return claims, nil
}
