package edge

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
)

// Paths of the token service's public documents.
const (
	JWKSPath                = "/.well-known/jwks.json"
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
)

// discoveryMaxAge is how long the discovery document may be cached, in
// seconds (it changes only with the configuration).
const discoveryMaxAge = 300

// wellKnown serves the JWK set and the OpenID discovery document, read
// from the token service over gRPC on each request (it answers from
// memory), with caching headers: Cache-Control max-age as the token
// service says (short enough that a key published now is fetched before it
// signs) and an ETag, so that unchanged documents cost a 304.
type wellKnown struct {
	errs  *errorWriter
	token tokenv1.TokenServiceClient
	// provider: the session service's OpenID provider endpoints are
	// served (and listed) under the issuer.
	provider bool
}

// jwks answers GET /.well-known/jwks.json: public keys only.
func (k *wellKnown) jwks(w http.ResponseWriter, r *http.Request) {
	resp, err := k.token.GetJWKS(r.Context(), &tokenv1.GetJWKSRequest{})
	if err != nil {
		k.errs.writeError(r.Context(), w, r, err)
		return
	}
	set := struct {
		Keys []auth.JWK `json:"keys"`
	}{Keys: make([]auth.JWK, 0, len(resp.GetKeys()))}
	for _, key := range resp.GetKeys() {
		set.Keys = append(set.Keys, auth.JWK{
			Kty: key.GetKty(), Kid: key.GetKid(), Alg: key.GetAlg(), Use: key.GetUse(),
			N: key.GetN(), E: key.GetE(), Crv: key.GetCrv(), X: key.GetX(), Y: key.GetY(),
		})
	}
	body, _ := json.Marshal(set)
	writeCacheable(w, r, body, int(resp.GetMaxAgeSeconds()))
}

// openIDConfiguration answers GET /.well-known/openid-configuration.
func (k *wellKnown) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	resp, err := k.token.GetIssuer(r.Context(), &tokenv1.GetIssuerRequest{})
	if err != nil {
		k.errs.writeError(r.Context(), w, r, err)
		return
	}
	algs := resp.GetSigningAlgorithms()
	if algs == nil {
		algs = []string{}
	}
	doc := discovery{
		Issuer:          resp.GetIssuer(),
		JWKSURI:         jwksURI(resp.GetIssuer(), r),
		SigningAlgs:     algs,
		SubjectTypes:    []string{"public"},
		ClaimsSupported: []string{"iss", "aud", "exp", "iat", "jti", "sub", "scope", "metadata"},
	}
	if base, ok := issuerBase(resp.GetIssuer()); ok && k.provider && hasAsymmetric(algs) {
		doc.provider(base)
	}
	body, _ := json.Marshal(doc)
	writeCacheable(w, r, body, discoveryMaxAge)
}

// discovery is the OpenID discovery document (OpenID Connect Discovery
// 1.0 section 3, Back-Channel Logout 1.0 section 2.1, RP-Initiated Logout
// 1.0 section 2.1, RFC 8414, RFC 9207).
type discovery struct {
	Issuer                   string   `json:"issuer"`
	AuthorizationEndpoint    string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint            string   `json:"token_endpoint,omitempty"`
	UserinfoEndpoint         string   `json:"userinfo_endpoint,omitempty"`
	EndSessionEndpoint       string   `json:"end_session_endpoint,omitempty"`
	JWKSURI                  string   `json:"jwks_uri"`
	ScopesSupported          []string `json:"scopes_supported,omitempty"`
	ResponseTypes            []string `json:"response_types_supported,omitempty"`
	ResponseModes            []string `json:"response_modes_supported,omitempty"`
	GrantTypes               []string `json:"grant_types_supported,omitempty"`
	SigningAlgs              []string `json:"id_token_signing_alg_values_supported"`
	SubjectTypes             []string `json:"subject_types_supported"`
	TokenAuthMethods         []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenAuthSigningAlgs     []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	CodeChallengeMethods     []string `json:"code_challenge_methods_supported,omitempty"`
	ClaimsSupported          []string `json:"claims_supported"`
	BackchannelLogout        bool     `json:"backchannel_logout_supported,omitempty"`
	BackchannelLogoutSession bool     `json:"backchannel_logout_session_supported,omitempty"`
	IssParameter             bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
}

// provider adds the OpenID provider's endpoints and capabilities.
func (d *discovery) provider(base string) {
	d.AuthorizationEndpoint = base + authorizePath
	d.TokenEndpoint = base + tokenPath
	d.UserinfoEndpoint = base + userinfoPath
	d.EndSessionEndpoint = base + endSession
	d.ScopesSupported = []string{"openid", "profile", "email"}
	d.ResponseTypes = []string{"code"}
	d.ResponseModes = []string{"query"}
	d.GrantTypes = []string{"authorization_code"}
	d.TokenAuthMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}
	d.TokenAuthSigningAlgs = []string{"ES256", "EdDSA", "RS256"}
	d.CodeChallengeMethods = []string{"S256"}
	d.ClaimsSupported = append(d.ClaimsSupported, "sid", "nonce", "auth_time", "acr", "amr", "name", "email", "roles")
	d.BackchannelLogout = true
	d.BackchannelLogoutSession = true
	d.IssParameter = true
}

// issuerBase is the issuer without its trailing slash, when it is an
// http(s) URL.
func issuerBase(issuer string) (string, bool) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", false
	}
	return strings.TrimSuffix(issuer, "/"), true
}

// hasAsymmetric: ID tokens need a published key (not the shared HS512).
func hasAsymmetric(algs []string) bool {
	for _, a := range algs {
		if a != "HS512" {
			return true
		}
	}
	return false
}

// jwksURI is where the JWK set is: under the issuer when the issuer is an
// http(s) URL (as it should be: the edge's public address), else under the
// address the request came to.
func jwksURI(issuer string, r *http.Request) string {
	if u, err := url.Parse(issuer); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		return strings.TrimSuffix(issuer, "/") + JWKSPath
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host + JWKSPath
}

// writeCacheable writes a JSON document with an ETag and Cache-Control
// max-age (no-cache when maxAge is 0), or 304 when the client's copy
// (If-None-Match) is current.
func writeCacheable(w http.ResponseWriter, r *http.Request, body []byte, maxAge int) {
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
	h := w.Header()
	h.Set("ETag", etag)
	if maxAge > 0 {
		h.Set("Cache-Control", "public, max-age="+strconv.Itoa(maxAge))
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// etagMatches implements If-None-Match's weak comparison (RFC 9110).
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
