package upstream

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/golang-jwt/jwt/v5"
)

// Limits and periods of the relying party.
const (
	// MaxResponseBytes bounds a token response read from the provider
	// (documents are read with auth.FetchJSON, bounded by
	// auth.MaxJSONBytes).
	MaxResponseBytes = 1 << 20
	// DiscoveryTTL is how long a discovery document is kept.
	DiscoveryTTL = time.Hour
	// LogoutTokenMaxAge is how old (by iat) a logout token may be.
	LogoutTokenMaxAge = 5 * time.Minute
	// AssertionLifetime is the lifetime of a private_key_jwt assertion.
	AssertionLifetime = time.Minute
)

// BackChannelLogoutEvent is the member a logout token's events claim
// must have.
const BackChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// Metadata is what the relying party reads from the discovery document.
type Metadata struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	UserinfoEndpoint      string   `json:"userinfo_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	EndSessionEndpoint    string   `json:"end_session_endpoint"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
}

// Provider is one configured upstream provider.
type Provider struct {
	cfg    Config
	client *http.Client
	leeway time.Duration
	now    func() time.Time
	signer crypto.Signer
	kid    string

	mu      sync.Mutex
	meta    *Metadata
	fetched time.Time
	keys    *auth.RemoteKeys
}

// Options tune a Provider (tests).
type Options struct {
	// Client makes the HTTP calls (default: 10s timeout, no redirects).
	Client *http.Client
	// Leeway tolerates clock skew (default auth.DefaultLeeway).
	Leeway time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// New returns a Provider for a completed Config (see ParseConfigs).
func New(cfg Config, o Options) (*Provider, error) {
	if o.Client == nil {
		o.Client = &http.Client{
			Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if o.Leeway <= 0 {
		o.Leeway = auth.DefaultLeeway
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &Provider{cfg: cfg, client: o.Client, leeway: o.Leeway, now: o.Now}
	if cfg.AuthMethod == PrivateKeyJWT && cfg.PrivateKey != "" {
		s, err := parseSigner(cfg.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", cfg.ID, err)
		}
		p.signer = s
		p.kid = cfg.KeyID
		if p.kid == "" {
			p.kid = thumbprint(s.Public())
		}
	}
	return p, nil
}

// Config is the provider's configuration.
func (p *Provider) Config() Config { return p.cfg }

// ID names the provider.
func (p *Provider) ID() string { return p.cfg.ID }

// Issuer is the provider's configured issuer.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// Discover returns the discovery document, fetched at most once an hour
// (and again after a failure).
func (p *Provider) Discover(ctx context.Context) (*Metadata, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.meta != nil && p.now().Sub(p.fetched) < DiscoveryTTL {
		return p.meta, nil
	}
	u := strings.TrimSuffix(p.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	var m Metadata
	if err := auth.FetchJSON(ctx, p.client, u, "", &m); err != nil {
		if p.meta != nil {
			return p.meta, nil // keep what we had
		}
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if m.Issuer != p.cfg.Issuer {
		return nil, fmt.Errorf("discovery: the document names issuer %q, configured %q", m.Issuer, p.cfg.Issuer)
	}
	for _, e := range []struct{ name, v string }{{"authorization_endpoint", m.AuthorizationEndpoint}, {"token_endpoint", m.TokenEndpoint}, {"jwks_uri", m.JWKSURI}} {
		if err := checkURL(e.name, e.v); err != nil {
			return nil, fmt.Errorf("discovery: %v", err)
		}
	}
	if m.UserinfoEndpoint != "" {
		if err := checkURL("userinfo_endpoint", m.UserinfoEndpoint); err != nil {
			return nil, fmt.Errorf("discovery: %v", err)
		}
	}
	if p.keys == nil || p.meta == nil || p.meta.JWKSURI != m.JWKSURI {
		p.keys = &auth.RemoteKeys{Fetch: auth.HTTPJWKS(m.JWKSURI, p.client), MinRefresh: 5 * time.Second}
	}
	p.meta, p.fetched = &m, p.now()
	return p.meta, nil
}

// AuthURL is where the browser is sent to sign in: an authorization code
// request with PKCE S256, state and nonce.
func (p *Provider) AuthURL(ctx context.Context, redirectURI, state, nonce, verifier string) (string, error) {
	m, err := p.Discover(ctx)
	if err != nil {
		return "", err
	}
	q := url.Values{}
	for k, v := range p.cfg.ExtraParams {
		q.Set(k, v)
	}
	q.Set("response_type", "code")
	q.Set("client_id", p.cfg.ClientID)
	q.Set("redirect_uri", redirectURI)
	q.Set("scope", strings.Join(p.cfg.Scopes, " "))
	q.Set("state", state)
	q.Set("nonce", nonce)
	q.Set("code_challenge", S256(verifier))
	q.Set("code_challenge_method", "S256")
	if p.cfg.ACRValues != "" {
		q.Set("acr_values", p.cfg.ACRValues)
	}
	sep := "?"
	if strings.Contains(m.AuthorizationEndpoint, "?") {
		sep = "&"
	}
	return m.AuthorizationEndpoint + sep + q.Encode(), nil
}

// S256 is the PKCE code challenge of a verifier (RFC 7636).
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Tokens are the provider's token response.
type Tokens struct {
	IDToken     string `json:"id_token"`
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
}

// Exchange redeems an authorization code at the token endpoint.
func (p *Provider) Exchange(ctx context.Context, code, redirectURI, verifier string) (*Tokens, error) {
	m, err := p.Discover(ctx)
	if err != nil {
		return nil, err
	}
	form := url.Values{}
	form.Set("grant_type", "authorization_code")
	form.Set("code", code)
	form.Set("redirect_uri", redirectURI)
	form.Set("code_verifier", verifier)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.TokenEndpoint, nil)
	if err != nil {
		return nil, err
	}
	switch p.cfg.AuthMethod {
	case ClientSecretBasic:
		// RFC 6749 section 2.3.1: both are form-encoded first.
		req.SetBasicAuth(url.QueryEscape(p.cfg.ClientID), url.QueryEscape(p.cfg.ClientSecret))
	case ClientSecretPost:
		form.Set("client_id", p.cfg.ClientID)
		form.Set("client_secret", p.cfg.ClientSecret)
	case PrivateKeyJWT:
		assertion, err := p.clientAssertion(m.TokenEndpoint)
		if err != nil {
			return nil, err
		}
		form.Set("client_id", p.cfg.ClientID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", assertion)
	}
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token endpoint: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("token endpoint: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return nil, fmt.Errorf("token endpoint: HTTP %d %s", resp.StatusCode, safeWord(e.Error))
	}
	var t Tokens
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("token endpoint: %w", err)
	}
	if t.IDToken == "" {
		return nil, errors.New("token endpoint: no id_token in the response")
	}
	return &t, nil
}

// clientAssertion is the private_key_jwt assertion: signed here, or read
// from the federated credential file.
func (p *Provider) clientAssertion(tokenEndpoint string) (string, error) {
	if p.signer == nil {
		b, err := os.ReadFile(p.cfg.ClientAssertionFile)
		if err != nil {
			return "", fmt.Errorf("client assertion: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	now := p.now()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	aud := tokenEndpoint
	if p.cfg.AssertionAudience == "issuer" {
		aud = p.cfg.Issuer
	}
	claims := jwt.MapClaims{
		"iss": p.cfg.ClientID,
		"sub": p.cfg.ClientID,
		"aud": aud,
		"jti": hex.EncodeToString(jti),
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(AssertionLifetime).Unix(),
	}
	var method jwt.SigningMethod
	switch p.signer.(type) {
	case *rsa.PrivateKey:
		method = jwt.SigningMethodRS256
	case *ecdsa.PrivateKey:
		method = jwt.SigningMethodES256
	case ed25519.PrivateKey:
		method = jwt.SigningMethodEdDSA
	}
	t := jwt.NewWithClaims(method, claims)
	t.Header["kid"] = p.kid
	if p.cfg.X5T != "" {
		t.Header["x5t"] = p.cfg.X5T
	}
	return t.SignedString(p.signer)
}

// verify checks a JWT of the provider: signature with its keys (the
// algorithm pinned), iss, and, when aud is not empty, the audience.
// Expiry is checked when required or present.
func (p *Provider) verify(ctx context.Context, raw, aud string, requireExp bool) (jwt.MapClaims, error) {
	if _, err := p.Discover(ctx); err != nil {
		return nil, err
	}
	p.mu.Lock()
	keys := p.keys
	p.mu.Unlock()
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(p.cfg.Algorithms),
		jwt.WithIssuer(p.cfg.Issuer),
		jwt.WithLeeway(p.leeway),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(p.now),
	}
	if aud != "" {
		opts = append(opts, jwt.WithAudience(aud))
	}
	if requireExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if len(raw) > auth.MaxTokenLength {
		return nil, errors.New("token too long")
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(opts...).ParseWithClaims(raw, claims, auth.KeyFunc(ctx, keys, p.cfg.Algorithms))
	if err != nil {
		return nil, err
	}
	return claims, nil
}

// Identity is who signed in at the provider.
type Identity struct {
	// Subject and SessionID are the provider's sub and sid.
	Subject   string
	SessionID string
	// ClinicianID is the value of the configured clinician claim.
	ClinicianID string
	// Roles are the values of the configured roles claim (CIS2: the
	// selected role's code).
	Roles    []string
	Name     string
	Email    string
	ACR      string
	AMR      []string
	AuthTime time.Time
}

// SignIn redeems the code and returns the verified identity: the ID token
// checked (signature, iss, aud, azp, exp, iat, nonce), then claims missing
// from it read from the userinfo endpoint, and for HMPPS Auth from the
// access token, which it signs too.
func (p *Provider) SignIn(ctx context.Context, code, redirectURI, verifier, nonce string) (Identity, error) {
	t, err := p.Exchange(ctx, code, redirectURI, verifier)
	if err != nil {
		return Identity{}, err
	}
	idc, err := p.verify(ctx, t.IDToken, p.cfg.ClientID, true)
	if err != nil {
		return Identity{}, fmt.Errorf("id token: %w", err)
	}
	if got, _ := idc["nonce"].(string); got == "" || got != nonce {
		return Identity{}, errors.New("id token: nonce does not match")
	}
	if aud, _ := idc.GetAudience(); len(aud) > 1 {
		if azp, _ := idc["azp"].(string); azp != p.cfg.ClientID {
			return Identity{}, errors.New("id token: azp is not our client id")
		}
	}
	sub, _ := idc["sub"].(string)
	if sub == "" {
		return Identity{}, errors.New("id token: no sub")
	}
	claims := map[string]any(idc)
	need := []string{p.cfg.ClinicianClaim, "name", "email"}
	if p.cfg.RolesClaim != "" {
		need = append(need, p.cfg.RolesClaim)
	}
	if p.cfg.Preset == PresetCIS2 {
		need = append(need, "nhsid_nrbac_roles", "selected_roleid")
	}
	missing := slices.ContainsFunc(need, func(c string) bool { _, ok := lookup(claims, c); return !ok })
	meta, _ := p.Discover(ctx)
	if missing && t.AccessToken != "" && meta != nil && meta.UserinfoEndpoint != "" {
		info, err := p.userInfo(ctx, meta.UserinfoEndpoint, t.AccessToken)
		if err != nil {
			return Identity{}, err
		}
		if s, _ := info["sub"].(string); s != sub {
			return Identity{}, errors.New("userinfo: sub does not match the id token")
		}
		merged := make(map[string]any, len(claims)+len(info))
		for k, v := range info {
			merged[k] = v
		}
		for k, v := range claims {
			merged[k] = v
		}
		claims = merged
	}
	if _, ok := lookup(claims, p.cfg.RolesClaim); !ok && p.cfg.Preset == PresetHMPPS && t.AccessToken != "" {
		// HMPPS Auth puts authorities in its (signed) access token.
		if ac, err := p.verify(ctx, t.AccessToken, "", true); err == nil {
			if v, ok := ac[p.cfg.RolesClaim]; ok {
				claims[p.cfg.RolesClaim] = v
			}
		}
	}
	id := Identity{Subject: sub}
	id.SessionID, _ = idc["sid"].(string)
	if v, ok := lookup(claims, p.cfg.ClinicianClaim); ok {
		id.ClinicianID = claimString(v)
	}
	if id.ClinicianID == "" {
		return Identity{}, fmt.Errorf("the %s claim is missing", p.cfg.ClinicianClaim)
	}
	if p.cfg.Preset == PresetCIS2 {
		id.Roles = cis2Roles(claims)
	} else if v, ok := lookup(claims, p.cfg.RolesClaim); ok {
		id.Roles = claimStrings(v)
	}
	id.Name, _ = claims["name"].(string)
	id.Email, _ = claims["email"].(string)
	id.ACR, _ = idc["acr"].(string)
	id.AMR = claimStrings(idc["amr"])
	if at, ok := idc["auth_time"].(float64); ok {
		id.AuthTime = time.Unix(int64(at), 0)
	}
	return id, nil
}

// cis2Roles is the code of the selected role: the entry of
// nhsid_nrbac_roles whose person_roleid is selected_roleid.
func cis2Roles(claims map[string]any) []string {
	sel := claimString(claims["selected_roleid"])
	list, _ := claims["nhsid_nrbac_roles"].([]any)
	for _, r := range list {
		m, _ := r.(map[string]any)
		if m == nil || sel == "" || claimString(m["person_roleid"]) != sel {
			continue
		}
		if code := claimString(m["role_code"]); code != "" {
			return []string{code}
		}
	}
	return nil
}

func (p *Provider) userInfo(ctx context.Context, endpoint, accessToken string) (map[string]any, error) {
	var info map[string]any
	if err := auth.FetchJSON(ctx, p.client, endpoint, accessToken, &info); err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	return info, nil
}

// LogoutClaims are what a valid logout token says.
type LogoutClaims struct {
	Subject   string
	SessionID string
	JTI       string
	// Expires is when the token stops being accepted (its replay record
	// may go then).
	Expires time.Time
}

// Reasons a logout token is refused (audited as is).
var (
	ErrLogoutSignature = errors.New("logout token: signature, issuer or audience not valid")
	ErrLogoutType      = errors.New("logout token: wrong typ header")
	ErrLogoutIssuedAt  = errors.New("logout token: iat missing or outside the accepted window")
	ErrLogoutEvent     = errors.New("logout token: no back-channel logout event")
	ErrLogoutSubject   = errors.New("logout token: neither sub nor sid")
	ErrLogoutNonce     = errors.New("logout token: a nonce is not allowed")
	ErrLogoutJTI       = errors.New("logout token: no jti")
)

// VerifyLogoutToken validates a back-channel logout token (OpenID Connect
// Back-Channel Logout 1.0, section 2.6): signature by the provider's keys
// (algorithm pinned), typ logout+jwt when present, iss, aud, iat within
// LogoutTokenMaxAge and not in the future, exp when present, the events
// claim with the back-channel logout event, sub or sid, no nonce, a jti.
// Replays (the same jti again) are the caller's to refuse.
func (p *Provider) VerifyLogoutToken(ctx context.Context, raw string) (LogoutClaims, error) {
	if typ := headerType(raw); typ != "" && !strings.EqualFold(typ, "logout+jwt") && !strings.EqualFold(typ, "JWT") {
		return LogoutClaims{}, ErrLogoutType
	}
	c, err := p.verify(ctx, raw, p.cfg.ClientID, false)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenUsedBeforeIssued) || errors.Is(err, jwt.ErrTokenExpired) {
			return LogoutClaims{}, ErrLogoutIssuedAt
		}
		return LogoutClaims{}, ErrLogoutSignature
	}
	iat, err := c.GetIssuedAt()
	now := p.now()
	if err != nil || iat == nil || now.Sub(iat.Time) > LogoutTokenMaxAge+p.leeway || iat.Time.Sub(now) > p.leeway {
		return LogoutClaims{}, ErrLogoutIssuedAt
	}
	events, _ := c["events"].(map[string]any)
	if _, ok := events[BackChannelLogoutEvent].(map[string]any); !ok {
		return LogoutClaims{}, ErrLogoutEvent
	}
	if _, ok := c["nonce"]; ok {
		return LogoutClaims{}, ErrLogoutNonce
	}
	out := LogoutClaims{Expires: iat.Time.Add(LogoutTokenMaxAge + 2*p.leeway)}
	out.Subject, _ = c["sub"].(string)
	out.SessionID, _ = c["sid"].(string)
	out.JTI, _ = c["jti"].(string)
	if out.Subject == "" && out.SessionID == "" {
		return LogoutClaims{}, ErrLogoutSubject
	}
	if out.JTI == "" {
		return LogoutClaims{}, ErrLogoutJTI
	}
	if exp, err := c.GetExpirationTime(); err == nil && exp != nil && exp.Time.After(out.Expires) {
		out.Expires = exp.Time
	}
	return out, nil
}

// IssuerOf reads a token's iss and aud without verifying them (to pick
// the provider that must verify it).
func IssuerOf(raw string) (string, []string) {
	if len(raw) > auth.MaxTokenLength {
		return "", nil
	}
	c, err := auth.ParseUnverified(raw)
	if err != nil {
		return "", nil
	}
	iss, _ := c["iss"].(string)
	aud, _ := jwt.MapClaims(c).GetAudience()
	return iss, aud
}

func headerType(raw string) string {
	h, _, ok := strings.Cut(raw, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return ""
	}
	var hdr struct {
		Typ string `json:"typ"`
	}
	_ = json.Unmarshal(b, &hdr)
	return hdr.Typ
}

// lookup finds a claim by a dotted path.
func lookup(claims map[string]any, path string) (any, bool) {
	if path == "" {
		return nil, false
	}
	if v, ok := claims[path]; ok {
		return v, true
	}
	cur := any(claims)
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func claimString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmt.Sprint(x)
	}
	return ""
}

// claimStrings reads a string or a list of strings.
func claimStrings(v any) []string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// safeWord keeps an OAuth error code the provider sent if it looks like
// one (for logs), nothing else.
func safeWord(s string) string {
	if len(s) > 40 || strings.IndexFunc(s, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z') }) >= 0 {
		return ""
	}
	return s
}

// parseSigner reads a PEM private key (PKCS#8, PKCS#1 or SEC 1).
func parseSigner(text string) (crypto.Signer, error) {
	s := strings.TrimSpace(text)
	if !strings.Contains(s, "\n") && strings.Contains(s, `\n`) {
		s = strings.ReplaceAll(s, `\n`, "\n")
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not a PEM private key")
	}
	var k any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, errors.New("the private key does not parse")
	}
	switch key := k.(type) {
	case *rsa.PrivateKey:
		return key, nil
	case *ecdsa.PrivateKey:
		if key.Curve != elliptic.P256() {
			return nil, errors.New("only P-256 EC keys are supported")
		}
		return key, nil
	case ed25519.PrivateKey:
		return key, nil
	}
	return nil, fmt.Errorf("keys of type %T are not supported", k)
}

// thumbprint is the RFC 7638 thumbprint of a public key, the default kid.
func thumbprint(pub crypto.PublicKey) string {
	j, err := auth.JWKFromPublicKey("", "", pub)
	if err != nil {
		return ""
	}
	var canonical string
	switch j.Kty {
	case "RSA":
		canonical = `{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`
	case "EC":
		canonical = `{"crv":"` + j.Crv + `","kty":"EC","x":"` + j.X + `","y":"` + j.Y + `"}`
	case "OKP":
		canonical = `{"crv":"` + j.Crv + `","kty":"OKP","x":"` + j.X + `"}`
	}
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
