package token

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/telemetry"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
)

// OIDCType is the kind of OpenID Connect token IssueOIDC signs.
type OIDCType int

// The OpenID Connect token types.
const (
	// IDToken is an ID token for a client app (OpenID Connect Core 1.0).
	IDToken OIDCType = iota + 1
	// LogoutToken is a back-channel logout token (OpenID Connect
	// Back-Channel Logout 1.0, section 2.4).
	LogoutToken
)

// Lifetimes and limits of OpenID Connect tokens.
const (
	// IDTokenLifetime is how long an ID token is valid: the client reads
	// it once, when it redeems the code.
	IDTokenLifetime = 10 * time.Minute
	// LogoutTokenLifetime is how long a logout token is valid: it is
	// sent at once (retries are signed anew).
	LogoutTokenLifetime = 2 * time.Minute
	// MaxNonceLength bounds the nonce a client app sends, in bytes.
	MaxNonceLength = 512
	// MaxExtraClaimsBytes bounds the encoded extra claims of an ID token.
	MaxExtraClaimsBytes = 4 << 10
	// BackChannelLogoutEvent is the member of a logout token's events
	// claim.
	BackChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"
	// LogoutTokenType is the typ header of logout tokens.
	LogoutTokenType = "logout+jwt"
)

// reservedClaims are set by IssueOIDC itself and cannot be passed as
// extra claims; scope and metadata would make the token look like an
// access token.
var reservedClaims = []string{
	"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "nonce", "sid", "auth_time",
	"acr", "amr", "azp", "events", "scope", "metadata", "at_hash", "c_hash", "cnf", "typ",
}

// OIDCRequest describes an OpenID Connect token.
type OIDCRequest struct {
	Type OIDCType
	// Audience is the client id of the app the token is for.
	Audience string
	// Subject is sub (required for ID tokens; a logout token needs a
	// subject, a session id or both).
	Subject string
	// SessionID is sid.
	SessionID string
	// Nonce, AuthTime, ACR and AMR are ID token claims.
	Nonce    string
	AuthTime time.Time
	ACR      string
	AMR      []string
	// Claims are further ID token claims.
	Claims map[string]any
}

// IssueOIDC signs an ID token or a logout token with the active key. Its
// audience is a client app's id, never the suite's own audience, and it
// carries neither scope nor metadata: no verifier of the suite accepts it
// as an access token. OpenID Connect tokens are verified with the
// published key set, so a service that signs with the shared HS512 key
// refuses (FAILED_PRECONDITION).
func (i *Issuer) IssueOIDC(ctx context.Context, req OIDCRequest) (Issued, error) {
	if len(i.signer.PublicKeys()) == 0 {
		return Issued{}, &apperr.Error{Code: codes.FailedPrecondition, Msg: "OpenID Connect tokens need published signing keys; this service signs with the shared HS512 key"}
	}
	if req.Type != IDToken && req.Type != LogoutToken {
		return Issued{}, apperr.InvalidArgument("type must be ID or LOGOUT")
	}
	if err := checkID("audience", req.Audience); err != nil {
		return Issued{}, err
	}
	if req.Audience == i.cfg.Audience || req.Audience == i.cfg.Issuer || req.Audience == auth.InternalIssuer {
		return Issued{}, apperr.InvalidArgument("audience must be a client app's id, not the suite's own audience")
	}
	if req.Subject != "" {
		if err := checkID("subject", req.Subject); err != nil {
			return Issued{}, err
		}
	}
	if req.SessionID != "" {
		if err := checkID("session_id", req.SessionID); err != nil {
			return Issued{}, err
		}
	}
	now := i.cfg.Now().UTC().Truncate(time.Second)
	c := jwt.MapClaims{
		"iss": i.cfg.Issuer,
		"aud": req.Audience,
		"iat": now.Unix(),
		"jti": uuid.New().String(),
	}
	if req.Subject != "" {
		c["sub"] = req.Subject
	}
	if req.SessionID != "" {
		c["sid"] = req.SessionID
	}
	var lifetime time.Duration
	var typ, kind string
	switch req.Type {
	case IDToken:
		if req.Subject == "" {
			return Issued{}, apperr.InvalidArgument("subject is required for ID tokens")
		}
		if len(req.Nonce) > MaxNonceLength {
			return Issued{}, apperr.InvalidArgument("nonce must be at most %d bytes", MaxNonceLength)
		}
		if req.Nonce != "" {
			c["nonce"] = req.Nonce
		}
		if !req.AuthTime.IsZero() {
			c["auth_time"] = req.AuthTime.Unix()
		}
		if req.ACR != "" {
			c["acr"] = req.ACR
		}
		if len(req.AMR) > 0 {
			c["amr"] = req.AMR
		}
		if len(req.Claims) > 0 {
			b, err := json.Marshal(req.Claims)
			if err != nil || len(b) > MaxExtraClaimsBytes {
				return Issued{}, apperr.InvalidArgument("claims must be JSON of at most %d bytes", MaxExtraClaimsBytes)
			}
			for k, v := range req.Claims {
				if slices.Contains(reservedClaims, k) {
					return Issued{}, apperr.InvalidArgument("claim %q is set by the token service", k)
				}
				c[k] = v
			}
		}
		lifetime, kind = IDTokenLifetime, "id_token"
	case LogoutToken:
		if req.Subject == "" && req.SessionID == "" {
			return Issued{}, apperr.InvalidArgument("a logout token needs a subject or a session_id")
		}
		if req.Nonce != "" || len(req.Claims) > 0 || req.ACR != "" || len(req.AMR) > 0 || !req.AuthTime.IsZero() {
			return Issued{}, apperr.InvalidArgument("a logout token carries no nonce and no ID token claims")
		}
		c["events"] = map[string]any{BackChannelLogoutEvent: map[string]any{}}
		lifetime, typ, kind = LogoutTokenLifetime, LogoutTokenType, "logout_token"
	}
	exp := now.Add(lifetime)
	c["exp"] = exp.Unix()
	raw, err := i.signer.Sign(Claims{OIDC: c, Type: typ})
	if err != nil {
		return Issued{}, apperr.Internal(err)
	}
	telemetry.TokenIssued(ctx, kind)
	return Issued{JWT: raw, ID: c["jti"].(string), ExpiresAt: exp}, nil
}
