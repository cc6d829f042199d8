package e2e

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	opstorage "github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The upstream identity provider of the sign-in tests is ZITADEL's
// OpenID provider (github.com/zitadel/oidc/v3/pkg/op) with its example
// login UI and in-memory storage (example/server), used as a library and
// configured here: the suite's client registration, a signing key the
// test holds (so that it can act as the provider's back-channel logout
// sender), and a roles claim.

// Upstream users (the example storage's): id1 logs in as
// test-user@127.0.0.1 with password verysecure.
const (
	upstreamUser     = "test-user@127.0.0.1"
	upstreamPassword = "verysecure"
	upstreamSubject  = "id1"
)

// upstreamOP is a running upstream provider.
type upstreamOP struct {
	URL    string // issuer, with trailing slash
	key    *rsa.PrivateKey
	kid    string
	logins atomic.Int64 // login form submissions
	pages  atomic.Int64 // login form views
}

// opClient is a client registration at the upstream provider.
type opClient struct {
	id, secret   string
	redirectURIs []string
	method       oidc.AuthMethod
	jwk          *jose.JSONWebKey // private_key_jwt
}

func (c *opClient) GetID() string                       { return c.id }
func (c *opClient) RedirectURIs() []string              { return c.redirectURIs }
func (c *opClient) PostLogoutRedirectURIs() []string    { return nil }
func (c *opClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *opClient) AuthMethod() oidc.AuthMethod         { return c.method }
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *opClient) GrantTypes() []oidc.GrantType         { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *opClient) LoginURL(id string) string            { return "/login/username?authRequestID=" + id }
func (c *opClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *opClient) IDTokenLifetime() time.Duration       { return 5 * time.Minute }
func (c *opClient) DevMode() bool                        { return true }
func (c *opClient) IsScopeAllowed(string) bool           { return false }
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *opClient) ClockSkew() time.Duration             { return 0 }
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// opStorage is the example storage with our clients, our signing key and
// a roles claim in userinfo.
type opStorage struct {
	*opstorage.Storage
	up      *upstreamOP
	clients map[string]*opClient
}

type opSigningKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k opSigningKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k opSigningKey) Key() any                                    { return k.key }
func (k opSigningKey) ID() string                                  { return k.id }

type opPublicKey struct{ opSigningKey }

func (k opPublicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k opPublicKey) Use() string                        { return "sig" }
func (k opPublicKey) Key() any                           { return &k.key.PublicKey }

func (s *opStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return opSigningKey{id: s.up.kid, key: s.up.key}, nil
}

func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *opStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{opPublicKey{opSigningKey{id: s.up.kid, key: s.up.key}}}, nil
}

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	if c, ok := s.clients[id]; ok {
		return c, nil
	}
	return nil, errors.New("client not found")
}

func (s *opStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if c, ok := s.clients[id]; ok && c.secret != "" && c.secret == secret {
		return nil
	}
	return errors.New("invalid client")
}

func (s *opStorage) GetKeyByIDAndClientID(_ context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	if c, ok := s.clients[clientID]; ok && c.jwk != nil && c.jwk.KeyID == keyID {
		return c.jwk, nil
	}
	return nil, errors.New("key not found")
}

// upstreamRoles are the roles the provider reports for id1.
var upstreamRoles = []string{"clinician", "nurse"}

func (s *opStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin); err != nil {
		return err
	}
	info.AppendClaims("roles", upstreamRoles)
	return nil
}

// startUpstream runs the provider on a loopback port with the clients.
func startUpstream(t *testing.T, clients ...*opClient) *upstreamOP {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	up := &upstreamOP{URL: "http://" + lis.Addr().String() + "/", key: key, kid: "upstream-" + uuid.NewString()[:8]}
	st := &opStorage{
		Storage: opstorage.NewStorageWithClients(opstorage.NewUserStore(up.URL), map[string]*opstorage.Client{}),
		up:      up,
		clients: map[string]*opClient{},
	}
	for _, c := range clients {
		st.clients[c.id] = c
	}
	router := exampleop.SetupServer(up.URL, st, nil, false)
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/login/username") {
			if r.Method == http.MethodPost {
				up.logins.Add(1)
			} else {
				up.pages.Add(1)
			}
		}
		router.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: counted, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return up
}

// logoutToken signs a back-channel logout token as the provider would
// (OpenID Connect Back-Channel Logout 1.0, section 2.4), with changes.
func (up *upstreamOP) logoutToken(t *testing.T, aud, sub string, change func(h, c map[string]any)) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{
		"iss": up.URL, "aud": aud, "sub": sub, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti":    uuid.NewString(),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = up.kid
	tok.Header["typ"] = "logout+jwt"
	var signer crypto.Signer = up.key
	if change != nil {
		change(tok.Header, c)
		if k, ok := tok.Header["sign_with"].(crypto.Signer); ok {
			signer = k
			delete(tok.Header, "sign_with")
		}
	}
	raw, err := tok.SignedString(signer)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
