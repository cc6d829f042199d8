package sso

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/golang-jwt/jwt/v5"
)

// Client authentication methods at the token endpoint.
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
)

// ClientAssertionType is the client_assertion_type of private_key_jwt.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Client is a registered client app, as OIDC_CLIENTS lists it.
type Client struct {
	ID   string `json:"client_id"`
	Name string `json:"name"`
	// RedirectURIs are compared exactly.
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	// BackchannelLogoutURI receives logout tokens when a session the app
	// joined ends.
	BackchannelLogoutURI string `json:"backchannel_logout_uri"`
	// SecretSHA256 is the hex SHA-256 of the client secret (the secret
	// itself is never configured): client_secret_basic and _post.
	SecretSHA256 string `json:"client_secret_sha256"`
	// JWKS or JWKSURI hold the app's public keys: private_key_jwt.
	JWKS    *struct{ Keys []auth.JWK } `json:"jwks"`
	JWKSURI string                     `json:"jwks_uri"`
	// Scopes, when set, bound the access token's scopes (the session's
	// scopes that are also listed here).
	Scopes []string `json:"scopes"`

	secret []byte
	keys   auth.KeySource
}

// ParseClients reads OIDC_CLIENTS: a JSON array of Client.
func ParseClients(text, suiteAudience string) ([]*Client, error) {
	list, err := config.JSONList[*Client](text, "clients")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, c := range list {
		if c == nil {
			return nil, fmt.Errorf("client %d is null", i)
		}
		if err := c.complete(suiteAudience); err != nil {
			return nil, fmt.Errorf("client %d (%s): %v", i, c.ID, err)
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("client_id %q is listed twice", c.ID)
		}
		seen[c.ID] = true
	}
	return list, nil
}

func (c *Client) complete(suiteAudience string) error {
	if err := checkParam("client_id", c.ID, true); err != nil || strings.ContainsAny(c.ID, " :") {
		return errors.New("client_id must be 1 to 200 bytes of printable text without spaces or colons")
	}
	if c.ID == suiteAudience || c.ID == auth.InternalIssuer {
		return errors.New("client_id must not be the suite's own audience")
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	if len(c.RedirectURIs) == 0 {
		return errors.New("redirect_uris is required")
	}
	for _, u := range append(append([]string{}, c.RedirectURIs...), c.PostLogoutRedirectURIs...) {
		if err := checkAppURL(u); err != nil {
			return err
		}
	}
	if c.BackchannelLogoutURI != "" {
		if err := checkAppURL(c.BackchannelLogoutURI); err != nil {
			return err
		}
	}
	hasKeys := c.JWKS != nil || c.JWKSURI != ""
	switch {
	case c.SecretSHA256 != "" && hasKeys:
		return errors.New("give client_secret_sha256 or public keys, not both")
	case c.SecretSHA256 != "":
		b, err := hex.DecodeString(c.SecretSHA256)
		if err != nil || len(b) != sha256.Size {
			return errors.New("client_secret_sha256 must be 64 hex digits")
		}
		c.secret = b
	case c.JWKS != nil:
		keys := auth.StaticKeys{}
		for _, j := range c.JWKS.Keys {
			pub, err := j.PublicKey()
			if err != nil || j.Kid == "" {
				return errors.New("jwks: every key needs a kid and must be a public RSA, P-256 or Ed25519 key")
			}
			keys[j.Kid] = auth.StaticKey{Key: pub, Alg: j.Alg}
		}
		c.keys = keys
	case c.JWKSURI != "":
		if err := checkAppURL(c.JWKSURI); err != nil {
			return err
		}
		c.keys = &auth.RemoteKeys{Fetch: auth.HTTPJWKS(c.JWKSURI, nil), MinRefresh: 5 * time.Second}
	default:
		return errors.New("client_secret_sha256, jwks or jwks_uri is required: every client authenticates")
	}
	return nil
}

// checkAppURL accepts absolute http(s) URLs without a fragment.
func checkAppURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute http(s) URL without fragment", v)
	}
	return nil
}

// clientCredentials is what a token request presented.
type clientCredentials struct {
	method    string
	id        string
	secret    string
	assertion string
}

// authenticate checks a client's credentials: invalid_client when the
// client is unknown or its secret or assertion is wrong.
func (s *Service) authenticate(ctx context.Context, cc clientCredentials) (*Client, *OAuthError) {
	c, ok := s.clients[cc.id]
	if !ok {
		return nil, oauthErr(ErrInvalidClient, "unknown client")
	}
	switch cc.method {
	case AuthClientSecretBasic, AuthClientSecretPost:
		if c.secret == nil {
			return nil, oauthErr(ErrInvalidClient, "this client authenticates with private_key_jwt")
		}
		sum := sha256.Sum256([]byte(cc.secret))
		if subtle.ConstantTimeCompare(sum[:], c.secret) != 1 {
			return nil, oauthErr(ErrInvalidClient, "client authentication failed")
		}
		return c, nil
	case AuthPrivateKeyJWT:
		if c.keys == nil {
			return nil, oauthErr(ErrInvalidClient, "this client authenticates with a client secret")
		}
		if err := s.checkAssertion(ctx, c, cc.assertion); err != nil {
			return nil, oauthErr(ErrInvalidClient, "client assertion not valid: "+err.Error())
		}
		return c, nil
	}
	return nil, oauthErr(ErrInvalidClient, "client authentication is required")
}

// maxAssertionLifetime bounds exp - now of a client assertion.
const maxAssertionLifetime = 5 * time.Minute

// checkAssertion verifies a private_key_jwt assertion (RFC 7523 section
// 3): signed by one of the client's keys, iss and sub the client id, aud
// the token endpoint (or the issuer), short-lived, and a jti used once.
func (s *Service) checkAssertion(ctx context.Context, c *Client, raw string) error {
	claims := jwt.MapClaims{}
	p := jwt.NewParser(
		jwt.WithValidMethods(auth.AsymmetricAlgorithms),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(s.cfg.Leeway),
		jwt.WithTimeFunc(s.cfg.Now),
		jwt.WithIssuer(c.ID),
		jwt.WithSubject(c.ID),
	)
	if len(raw) > auth.MaxTokenLength {
		return errors.New("too long")
	}
	_, err := p.ParseWithClaims(raw, claims, auth.KeyFunc(ctx, c.keys, auth.AsymmetricAlgorithms))
	if err != nil {
		return errors.New("signature, issuer, subject or expiry")
	}
	aud, _ := claims.GetAudience()
	if !slices.Contains(aud, s.URL(PathToken)) && !slices.Contains(aud, s.cfg.Issuer) && !slices.Contains(aud, s.base) {
		return errors.New("audience is not the token endpoint")
	}
	exp, _ := claims.GetExpirationTime()
	if exp.Time.Sub(s.now()) > maxAssertionLifetime {
		return errors.New("lives too long")
	}
	jti, _ := claims["jti"].(string)
	if jti == "" {
		return errors.New("no jti")
	}
	if err := s.store.RememberJTI(ctx, "client:"+c.ID, jti, exp.Time.Add(s.cfg.Leeway)); err != nil {
		if errors.Is(err, ErrReplayed) {
			return errors.New("replayed")
		}
		return err
	}
	return nil
}
