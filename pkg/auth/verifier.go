package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// InternalIssuer is the iss and aud of internal service tokens.
const InternalIssuer = "dhosauth-internal"

// MaxTokenLength bounds what the verifier will parse.
const MaxTokenLength = 8192

// ErrInvalidToken wraps every verification failure.
var ErrInvalidToken = errors.New("invalid token")

// KeySource finds the public key (and its algorithm) for a key id.
type KeySource interface {
	PublicKey(ctx context.Context, kid string) (crypto.PublicKey, string, error)
}

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	// Issuer and Audience of tokens the token service signs with its
	// asymmetric keys (looked up in Keys).
	Issuer   string
	Audience string
	Keys     KeySource
	// HSKey and HSIssuer accept legacy HS512 tokens (iss = aud = HSIssuer);
	// the token service also signs with them when HS_KEY is configured.
	HSKey    []byte
	HSIssuer string
	// InternalKey accepts internal service tokens.
	InternalKey []byte
	// Leeway tolerates clock skew on exp, nbf and iat (default 30s).
	Leeway time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Verifier checks bearer tokens.
type Verifier struct{ o VerifierOptions }

// NewVerifier returns a Verifier.
func NewVerifier(o VerifierOptions) *Verifier {
	if o.Leeway == 0 {
		o.Leeway = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Verifier{o: o}
}

type tokenClaims struct {
	jwt.RegisteredClaims
	Scope    string         `json:"scope"`
	Metadata map[string]any `json:"metadata"`
}

// Verify checks raw and returns its principal. Every failure wraps
// ErrInvalidToken with a reason fit to show the caller.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Principal, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidToken)
	}
	if len(raw) > MaxTokenLength {
		return nil, fmt.Errorf("%w: too long", ErrInvalidToken)
	}
	var wantAud string
	p := jwt.NewParser(
		jwt.WithLeeway(v.o.Leeway),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(v.o.Now),
		jwt.WithValidMethods([]string{"HS512", "RS256", "ES256", "EdDSA"}),
	)
	var c tokenClaims
	_, err := p.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		iss, _ := t.Claims.GetIssuer()
		alg := t.Method.Alg()
		switch {
		case iss == InternalIssuer && len(v.o.InternalKey) > 0:
			if alg != "HS512" {
				return nil, errors.New("algorithm not allowed for this issuer")
			}
			wantAud = InternalIssuer
			return v.o.InternalKey, nil
		case iss != "" && iss == v.o.HSIssuer && len(v.o.HSKey) > 0:
			if alg != "HS512" {
				return nil, errors.New("algorithm not allowed for this issuer")
			}
			wantAud = v.o.HSIssuer
			return v.o.HSKey, nil
		case iss != "" && iss == v.o.Issuer && v.o.Keys != nil:
			kid, _ := t.Header["kid"].(string)
			if kid == "" {
				return nil, errors.New("no key id")
			}
			key, keyAlg, err := v.o.Keys.PublicKey(ctx, kid)
			if err != nil {
				return nil, err
			}
			if alg != keyAlg {
				return nil, errors.New("algorithm does not match the key")
			}
			wantAud = v.o.Audience
			return key, nil
		}
		return nil, errors.New("untrusted issuer")
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidToken, reason(err))
	}
	if !slices.Contains(c.Audience, wantAud) {
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
