package upstream_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/services/session/internal/upstream"
	"github.com/golang-jwt/jwt/v5"
)

func TestParseConfigs(t *testing.T) {
	list, err := upstream.ParseConfigs(`[
		{"id": "entra", "preset": "entra", "tenant": "contoso.onmicrosoft.com", "client_id": "c", "client_secret": "s"},
		{"id": "cis2", "preset": "cis2", "issuer": "https://am.nhsint.example/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare", "client_id": "c", "client_secret": "s", "auth_method": "client_secret_post"},
		{"id": "hmpps", "preset": "hmpps", "issuer": "https://sign-in.hmpps.example/auth/issuer", "client_id": "c", "client_assertion_file": "/var/run/token"}
	]`)
	if err != nil {
		t.Fatal(err)
	}
	if list[0].Issuer != "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0" || list[0].ClinicianClaim != "oid" || list[0].RolesClaim != "roles" {
		t.Errorf("entra %+v", list[0])
	}
	if list[1].ACRValues != "AAL3_ANY" || !strings.Contains(strings.Join(list[1].Scopes, " "), "nationalrbacaccess") || list[1].AuthMethod != upstream.ClientSecretPost {
		t.Errorf("cis2 %+v", list[1])
	}
	if list[2].RolesClaim != "authorities" || list[2].AuthMethod != upstream.PrivateKeyJWT || !list[2].MustHaveClinician() {
		t.Errorf("hmpps %+v", list[2])
	}
	for name, text := range map[string]string{
		"unknown preset":    `[{"id":"a","preset":"x","issuer":"https://i.example","client_id":"c","client_secret":"s"}]`,
		"no client id":      `[{"id":"a","issuer":"https://i.example","client_secret":"s"}]`,
		"plain http":        `[{"id":"a","issuer":"http://i.example","client_id":"c","client_secret":"s"}]`,
		"no secret or key":  `[{"id":"a","issuer":"https://i.example","client_id":"c"}]`,
		"entra common":      `[{"id":"a","preset":"entra","tenant":"common","client_id":"c","client_secret":"s"}]`,
		"local id":          `[{"id":"local","issuer":"https://i.example","client_id":"c","client_secret":"s"}]`,
		"twice":             `[{"id":"a","issuer":"https://i.example","client_id":"c","client_secret":"s"},{"id":"a","issuer":"https://j.example","client_id":"c","client_secret":"s"}]`,
		"unknown field":     `[{"id":"a","issuer":"https://i.example","client_id":"c","client_secret":"s","secret":"x"}]`,
		"symmetric alg":     `[{"id":"a","issuer":"https://i.example","client_id":"c","client_secret":"s","algorithms":["HS256"]}]`,
		"bad private key":   `[{"id":"a","issuer":"https://i.example","client_id":"c","private_key":"nope"}]`,
		"bad assertion aud": `[{"id":"a","issuer":"https://i.example","client_id":"c","client_assertion_file":"/x","assertion_audience":"me"}]`,
	} {
		if _, err := upstream.ParseConfigs(text); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// fakeOP is a minimal provider: discovery, keys, a token endpoint that
// checks the client's authentication, userinfo.
type fakeOP struct {
	srv      *httptest.Server
	key      *ecdsa.PrivateKey
	mu       sync.Mutex
	idClaims jwt.MapClaims
	access   string
	userinfo map[string]any
	checkTok func(r *http.Request) bool
}

func newFakeOP(t *testing.T) *fakeOP {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := &fakeOP{key: k}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOP) issuer() string { return f.srv.URL }

func (f *fakeOP) sign(c jwt.MapClaims, typ string) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = "k1"
	if typ != "" {
		tok.Header["typ"] = typ
	}
	s, _ := tok.SignedString(f.key)
	return s
}

func (f *fakeOP) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": f.issuer(), "authorization_endpoint": f.issuer() + "/authorize", "token_endpoint": f.issuer() + "/token",
			"userinfo_endpoint": f.issuer() + "/userinfo", "jwks_uri": f.issuer() + "/jwks",
		})
	case "/jwks":
		j, _ := auth.JWKFromPublicKey("k1", "ES256", &f.key.PublicKey)
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{j}})
	case "/token":
		_ = r.ParseForm()
		if f.checkTok != nil && !f.checkTok(r) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id_token": f.sign(f.idClaims, ""), "access_token": f.access, "token_type": "Bearer"})
	case "/userinfo":
		if r.Header.Get("Authorization") != "Bearer "+f.access {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(f.userinfo)
	default:
		http.NotFound(w, r)
	}
}

func provider(t *testing.T, f *fakeOP, extra string) *upstream.Provider {
	t.Helper()
	list, err := upstream.ParseConfigs(`[{"id":"p","issuer":"` + f.issuer() + `","client_id":"suite"` + extra + `}]`)
	if err != nil {
		t.Fatal(err)
	}
	p, err := upstream.New(list[0], upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func idClaims(f *fakeOP, extra map[string]any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": f.issuer(), "aud": "suite", "sub": "u1", "nonce": "n1", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "sid": "up-s1"}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// TestSignIn: client authentication by each method, the ID token checks,
// and where each preset finds the roles.
func TestSignIn(t *testing.T) {
	ctx := context.Background()
	f := newFakeOP(t)
	f.access = "opaque-access"

	// client_secret_basic: form-encoded id and secret in the header.
	f.idClaims = idClaims(f, nil)
	f.userinfo = map[string]any{"sub": "u1", "roles": []any{"nurse", "doctor"}, "name": "N. Urse"}
	f.checkTok = func(r *http.Request) bool {
		id, secret, ok := r.BasicAuth()
		return ok && id == "suite" && secret == "s%2Fe+cret" && r.PostForm.Get("code_verifier") == "ver" && r.PostForm.Get("client_secret") == ""
	}
	id, err := provider(t, f, `,"client_secret":"s/e cret"`).SignIn(ctx, "code", "https://suite/cb", "ver", "n1")
	if err != nil {
		t.Fatal(err)
	}
	if id.ClinicianID != "u1" || strings.Join(id.Roles, ",") != "nurse,doctor" || id.SessionID != "up-s1" || id.Name != "N. Urse" {
		t.Errorf("identity %+v", id)
	}

	// client_secret_post.
	f.checkTok = func(r *http.Request) bool {
		_, _, basic := r.BasicAuth()
		return !basic && r.PostForm.Get("client_id") == "suite" && r.PostForm.Get("client_secret") == "sec"
	}
	if _, err := provider(t, f, `,"client_secret":"sec","auth_method":"client_secret_post"`).SignIn(ctx, "code", "https://suite/cb", "ver", "n1"); err != nil {
		t.Errorf("client_secret_post: %v", err)
	}

	// private_key_jwt: an assertion signed with the configured key.
	ck, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ck)
	pemText := strings.ReplaceAll(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "\n", `\n`)
	f.checkTok = func(r *http.Request) bool {
		if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			return false
		}
		c := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(r.PostForm.Get("client_assertion"), c, func(*jwt.Token) (any, error) { return &ck.PublicKey, nil },
			jwt.WithAudience(f.issuer()+"/token"), jwt.WithIssuer("suite"), jwt.WithSubject("suite"), jwt.WithExpirationRequired())
		return err == nil && c["jti"] != ""
	}
	if _, err := provider(t, f, `,"private_key":"`+pemText+`"`).SignIn(ctx, "code", "https://suite/cb", "ver", "n1"); err != nil {
		t.Errorf("private_key_jwt: %v", err)
	}
	f.checkTok = nil

	// The ID token's checks.
	for name, c := range map[string]jwt.MapClaims{
		"wrong nonce":    idClaims(f, map[string]any{"nonce": "other"}),
		"wrong audience": idClaims(f, map[string]any{"aud": "someone"}),
		"expired":        idClaims(f, map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}),
		"wrong issuer":   idClaims(f, map[string]any{"iss": "https://evil.example"}),
		"azp missing":    idClaims(f, map[string]any{"aud": []string{"suite", "other"}}),
	} {
		f.idClaims = c
		if _, err := provider(t, f, `,"client_secret":"s"`).SignIn(ctx, "code", "https://suite/cb", "ver", "n1"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	// CIS2: the selected role's code.
	f.idClaims = idClaims(f, map[string]any{"selected_roleid": "555"})
	f.userinfo = map[string]any{"sub": "u1", "nhsid_nrbac_roles": []any{
		map[string]any{"person_roleid": "444", "role_code": "S0:G0:R8001"},
		map[string]any{"person_roleid": "555", "role_code": "S8000:G8000:R8000"},
	}}
	id, err = provider(t, f, `,"client_secret":"s","preset":"cis2"`).SignIn(ctx, "code", "https://suite/cb", "ver", "n1")
	if err != nil || strings.Join(id.Roles, ",") != "S8000:G8000:R8000" {
		t.Errorf("cis2: %+v %v", id, err)
	}

	// HMPPS Auth: authorities from its signed access token.
	f.idClaims = idClaims(f, nil)
	f.access = f.sign(jwt.MapClaims{"iss": f.issuer(), "sub": "u1", "authorities": []any{"ROLE_POM"}, "exp": time.Now().Add(time.Minute).Unix()}, "")
	f.userinfo = map[string]any{"sub": "u1"}
	id, err = provider(t, f, `,"client_secret":"s","preset":"hmpps"`).SignIn(ctx, "code", "https://suite/cb", "ver", "n1")
	if err != nil || strings.Join(id.Roles, ",") != "ROLE_POM" {
		t.Errorf("hmpps: %+v %v", id, err)
	}
}

// TestVerifyLogoutToken: every check of Back-Channel Logout 1.0 section
// 2.6.
func TestVerifyLogoutToken(t *testing.T) {
	ctx := context.Background()
	f := newFakeOP(t)
	p := provider(t, f, `,"client_secret":"s"`)
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": f.issuer(), "aud": "suite", "sub": "u1", "sid": "up-s1", "iat": time.Now().Unix(), "jti": "j1",
			"events": map[string]any{upstream.BackChannelLogoutEvent: map[string]any{}}}
	}
	lc, err := p.VerifyLogoutToken(ctx, f.sign(good(), "logout+jwt"))
	if err != nil || lc.Subject != "u1" || lc.SessionID != "up-s1" || lc.JTI != "j1" {
		t.Fatalf("good token: %+v %v", lc, err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := jwt.NewWithClaims(jwt.SigningMethodES256, good())
	forged.Header["kid"] = "k1"
	forgedRaw, _ := forged.SignedString(other)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, good()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	mod := func(change func(c jwt.MapClaims)) string {
		c := good()
		change(c)
		return f.sign(c, "logout+jwt")
	}
	for name, c := range map[string]struct {
		raw  string
		want error
	}{
		"forged":         {forgedRaw, upstream.ErrLogoutSignature},
		"alg none":       {none, upstream.ErrLogoutSignature},
		"wrong typ":      {f.sign(good(), "at+jwt"), upstream.ErrLogoutType},
		"wrong audience": {mod(func(c jwt.MapClaims) { c["aud"] = "x" }), upstream.ErrLogoutSignature},
		"wrong issuer":   {mod(func(c jwt.MapClaims) { c["iss"] = "https://x.example" }), upstream.ErrLogoutSignature},
		"old":            {mod(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(-time.Hour).Unix() }), upstream.ErrLogoutIssuedAt},
		"future":         {mod(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() }), upstream.ErrLogoutIssuedAt},
		"no iat":         {mod(func(c jwt.MapClaims) { delete(c, "iat") }), upstream.ErrLogoutIssuedAt},
		"no event":       {mod(func(c jwt.MapClaims) { c["events"] = map[string]any{"other": map[string]any{}} }), upstream.ErrLogoutEvent},
		"event not obj":  {mod(func(c jwt.MapClaims) { c["events"] = map[string]any{upstream.BackChannelLogoutEvent: "x"} }), upstream.ErrLogoutEvent},
		"nonce":          {mod(func(c jwt.MapClaims) { c["nonce"] = "n" }), upstream.ErrLogoutNonce},
		"no sub or sid":  {mod(func(c jwt.MapClaims) { delete(c, "sub"); delete(c, "sid") }), upstream.ErrLogoutSubject},
		"no jti":         {mod(func(c jwt.MapClaims) { delete(c, "jti") }), upstream.ErrLogoutJTI},
	} {
		if _, err := p.VerifyLogoutToken(ctx, c.raw); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	// The authorization URL carries PKCE S256, state, nonce.
	u, err := p.AuthURL(ctx, "https://suite/cb", "st", "no", "verifier")
	if err != nil {
		t.Fatal(err)
	}
	q, _ := url.Parse(u)
	if q.Query().Get("code_challenge") != upstream.S256("verifier") || q.Query().Get("code_challenge_method") != "S256" ||
		q.Query().Get("state") != "st" || q.Query().Get("nonce") != "no" || q.Query().Get("response_type") != "code" {
		t.Errorf("auth URL %s", u)
	}
}
