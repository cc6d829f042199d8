package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	"github.com/golang-jwt/jwt/v5"
)

// jwksServer serves a JWK set that the test can change, and counts GETs.
type jwksServer struct {
	*httptest.Server
	mu    sync.Mutex
	keys  []JWK
	gets  atomic.Int32
	fails atomic.Bool
}

func newJWKSServer(t *testing.T, keys ...JWK) *jwksServer {
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.gets.Add(1)
		if s.fails.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...JWK) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func mustJWK(t *testing.T, kid, alg string, pub any) JWK {
	t.Helper()
	j, err := JWKFromPublicKey(kid, alg, pub)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

const auth0 = "https://tenant.eu.auth0.com/"

// TestTrustedIssuerJWKS: an external issuer's tokens verify with keys from
// its JWKS URL; an unknown kid is refetched, at a bounded rate; its
// algorithm is pinned; its audience is checked.
func TestTrustedIssuerJWKS(t *testing.T) {
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := newJWKSServer(t, mustJWK(t, "a1", "RS256", &k1.PublicKey), mustJWK(t, "e1", "ES256", &ec.PublicKey))
	cfg := fmt.Sprintf(`[{"issuer": %q, "jwks_uri": %q, "audience": "https://api.dhos/", "algorithms": ["RS256"]}]`, auth0, srv.URL+"/.well-known/jwks.json")
	trusted, err := ParseTrustedIssuers(cfg, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(VerifierOptions{Trusted: trusted})
	ctx := context.Background()
	md := map[string]any{"clinician_id": "c-1"}

	tok := sign(t, jwt.SigningMethodRS256, k1, claims(auth0, "https://api.dhos/", md, "read:x", time.Minute), "a1")
	p, err := v.Verify(ctx, tok)
	if err != nil || p.ID != "c-1" || p.Issuer != auth0 {
		t.Fatalf("external token: %+v %v", p, err)
	}
	if srv.gets.Load() != 1 {
		t.Fatalf("%d fetches, want 1", srv.gets.Load())
	}
	refused := map[string]string{
		"wrong audience":       sign(t, jwt.SigningMethodRS256, k1, claims(auth0, "https://other/", md, "", time.Minute), "a1"),
		"algorithm not pinned": sign(t, jwt.SigningMethodES256, ec, claims(auth0, "https://api.dhos/", md, "", time.Minute), "e1"),
		"HS with public key":   sign(t, jwt.SigningMethodHS512, []byte(mustJWK(t, "a1", "RS256", &k1.PublicKey).N), claims(auth0, "https://api.dhos/", md, "", time.Minute), "a1"),
		"foreign key":          sign(t, jwt.SigningMethodRS256, k2, claims(auth0, "https://api.dhos/", md, "", time.Minute), "a1"),
	}
	for name, tok := range refused {
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %v, want refused", name, err)
		}
	}

	// The issuer rotates: the new kid is unknown, so the set is fetched
	// again, and the token verifies.
	srv.set(mustJWK(t, "a1", "RS256", &k1.PublicKey), mustJWK(t, "a2", "RS256", &k2.PublicKey))
	time.Sleep(250 * time.Millisecond)
	before := srv.gets.Load()
	tok2 := sign(t, jwt.SigningMethodRS256, k2, claims(auth0, "https://api.dhos/", md, "", time.Minute), "a2")
	if _, err := v.Verify(ctx, tok2); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if srv.gets.Load() != before+1 {
		t.Fatalf("unknown kid fetched %d times, want once", srv.gets.Load()-before)
	}
	// A flood of unknown kids costs at most one fetch per MinRefresh.
	before = srv.gets.Load()
	for i := range 50 {
		junk := sign(t, jwt.SigningMethodRS256, k2, claims(auth0, "https://api.dhos/", md, "", time.Minute), fmt.Sprintf("junk-%d", i))
		if _, err := v.Verify(ctx, junk); err == nil {
			t.Fatal("unknown kid accepted")
		}
	}
	if n := srv.gets.Load() - before; n > 1 {
		t.Fatalf("50 unknown kids caused %d fetches within MinRefresh", n)
	}
	// The issuer's JWKS going down keeps the known keys working.
	srv.fails.Store(true)
	time.Sleep(250 * time.Millisecond)
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k1, claims(auth0, "https://api.dhos/", md, "", time.Minute), "a1")); err != nil {
		t.Fatalf("known key while the JWKS is down: %v", err)
	}
}

func TestParseTrustedIssuersRefusesBadConfig(t *testing.T) {
	bad := map[string]string{
		"not JSON":        `{`,
		"unknown field":   `[{"issuer":"i","jwks_uri":"https://x/j","audience":"a","algorithms":["RS256"],"extra":1}]`,
		"no issuer":       `[{"jwks_uri":"https://x/j","audience":"a","algorithms":["RS256"]}]`,
		"no audience":     `[{"issuer":"i","jwks_uri":"https://x/j","algorithms":["RS256"]}]`,
		"no algorithms":   `[{"issuer":"i","jwks_uri":"https://x/j","audience":"a"}]`,
		"HS algorithm":    `[{"issuer":"i","jwks_uri":"https://x/j","audience":"a","algorithms":["HS256"]}]`,
		"none algorithm":  `[{"issuer":"i","jwks_uri":"https://x/j","audience":"a","algorithms":["none"]}]`,
		"plain http":      `[{"issuer":"i","jwks_uri":"http://idp.example/j","audience":"a","algorithms":["RS256"]}]`,
		"relative URL":    `[{"issuer":"i","jwks_uri":"/j","audience":"a","algorithms":["RS256"]}]`,
		"issuer repeated": `[{"issuer":"i","jwks_uri":"https://x/j","audience":"a","algorithms":["RS256"]},{"issuer":"i","jwks_uri":"https://y/j","audience":"a","algorithms":["RS256"]}]`,
	}
	for name, cfg := range bad {
		if _, err := ParseTrustedIssuers(cfg, time.Second); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if l, err := ParseTrustedIssuers("", time.Second); err != nil || l != nil {
		t.Errorf("empty: %v %v", l, err)
	}
}

// TestSuiteKeysEveryAlgorithm: ES256, EdDSA and RS256 keys verify their own
// algorithm only; the same issuer may also be the HS512 issuer.
func TestSuiteKeysEveryAlgorithm(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	keys := StaticKeys{
		"rs": {Key: &rk.PublicKey, Alg: "RS256"},
		"es": {Key: &ec.PublicKey, Alg: "ES256"},
		"ed": {Key: edPub, Alg: "EdDSA"},
	}
	// Issuer and HS issuer are the same name: HS512 tokens use the shared
	// key, the others the key set.
	v := NewVerifier(VerifierOptions{Issuer: suiteIssuer, Audience: suiteIssuer, Keys: keys, HSKey: hsKey, HSIssuer: suiteIssuer})
	md := map[string]any{"device_id": "d"}
	c := func() jwt.MapClaims { return claims(suiteIssuer, suiteIssuer, md, "", time.Minute) }
	ctx := context.Background()
	for name, tok := range map[string]string{
		"RS256": sign(t, jwt.SigningMethodRS256, rk, c(), "rs"),
		"ES256": sign(t, jwt.SigningMethodES256, ec, c(), "es"),
		"EdDSA": sign(t, jwt.SigningMethodEdDSA, edPriv, c(), "ed"),
		"HS512": sign(t, jwt.SigningMethodHS512, hsKey, c(), ""),
	} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, tok := range map[string]string{
		"ES256 token naming the RSA key": sign(t, jwt.SigningMethodES256, ec, c(), "rs"),
		"RS256 token naming the EC key":  sign(t, jwt.SigningMethodRS256, rk, c(), "es"),
		"HS512 with the RSA modulus":     sign(t, jwt.SigningMethodHS512, rk.PublicKey.N.Bytes(), c(), "rs"),
		"no issuer":                      sign(t, jwt.SigningMethodES256, ec, jwt.MapClaims{"aud": suiteIssuer, "exp": time.Now().Add(time.Minute).Unix()}, "es"),
	} {
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %v, want refused", name, err)
		}
	}
}

// TestRevocationList: a token issued before its principal's revocation is
// refused, one issued after is accepted; polling merges pages and prunes.
func TestRevocationList(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	var pages []RevocationPage
	var cursors []string
	l := NewRevocationList(func(_ context.Context, cursor string) (RevocationPage, error) {
		cursors = append(cursors, cursor)
		if len(pages) == 0 {
			return RevocationPage{Cursor: cursor}, nil
		}
		p := pages[0]
		pages = pages[1:]
		return p, nil
	})
	dev := authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE
	pages = []RevocationPage{
		{Revocations: []Revocation{{dev, "d1", now}}, Cursor: "e:1", Reset: true, More: true},
		{Revocations: []Revocation{{dev, "d2", now.Add(-48 * time.Hour)}}, Cursor: "e:2"},
	}
	if err := l.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !l.Revoked(dev, "d1", now.Add(-time.Second)) || l.Revoked(dev, "d1", now) || l.Revoked(dev, "d3", now.Add(-time.Hour)) {
		t.Fatal("revocation cut-off not applied")
	}
	if !l.Revoked(dev, "d1", time.Time{}) {
		t.Fatal("a token without iat of a revoked principal was accepted")
	}
	if l.Revoked(authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT, "d1", now.Add(-time.Hour)) {
		t.Fatal("revocation leaked to another kind of principal")
	}
	if !l.Revoked(dev, "d2", now.Add(-72*time.Hour)) {
		t.Fatal("second page not merged")
	}
	pages = []RevocationPage{{Cursor: "e:2", PruneBefore: now.Add(-24 * time.Hour)}}
	if err := l.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.Len() != 1 || l.Revoked(dev, "d2", now.Add(-72*time.Hour)) {
		t.Fatalf("old revocation not pruned: %d entries", l.Len())
	}
	if got := strings.Join(cursors, ","); got != ",e:1,e:2" {
		t.Fatalf("cursors = %q", got)
	}
	// A local Add moves the cut-off forward, never back.
	l.Add(Revocation{dev, "d1", now.Add(time.Minute)}, Revocation{dev, "d1", now.Add(-time.Hour)})
	if !l.Revoked(dev, "d1", now.Add(30*time.Second)) {
		t.Fatal("later cut-off not kept")
	}
}

// TestVerifierRefusesRevoked: revocation applies on the full path and on
// the cached fast path; system tokens are never revoked by principal.
func TestVerifierRefusesRevoked(t *testing.T) {
	l := NewRevocationList(nil)
	for _, cacheSize := range []int{0, 100} {
		v := NewVerifier(VerifierOptions{HSKey: hsKey, HSIssuer: hsIssuer, InternalKey: internalKey, Revocations: l, CacheSize: cacheSize})
		ctx := context.Background()
		tok := sign(t, jwt.SigningMethodHS512, hsKey, claims(hsIssuer, hsIssuer, map[string]any{"device_id": fmt.Sprint("dev-", cacheSize)}, "", time.Hour), "")
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		l.Add(Revocation{authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE, fmt.Sprint("dev-", cacheSize), time.Now().Add(time.Second)})
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("cache %d: revoked token: %v", cacheSize, err)
		}
	}
}

// A clinician's token falls with the device the clinician signed in on
// (and only with that device), cached or not; a clinician token issued
// after the device's revocation is not refused by it.
func TestClinicianTokenRevokedWithItsDevice(t *testing.T) {
	for _, cacheSize := range []int{0, 100} {
		l := NewRevocationList(nil)
		v := NewVerifier(VerifierOptions{HSKey: hsKey, HSIssuer: hsIssuer, Revocations: l, CacheSize: cacheSize})
		ctx := context.Background()
		onTablet := func(device string, life time.Duration) string {
			return sign(t, jwt.SigningMethodHS512, hsKey, claims(hsIssuer, hsIssuer, map[string]any{"clinician_id": "clin-1", "referring_device_id": device}, "", life), "")
		}
		lost, kept := onTablet("tablet-lost", time.Hour), onTablet("tablet-kept", time.Hour)
		for _, tok := range []string{lost, kept} {
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		l.Add(Revocation{authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE, "tablet-lost", time.Now().Add(time.Second)})
		if _, err := v.Verify(ctx, lost); !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("cache %d: clinician token of a revoked device: %v", cacheSize, err)
		}
		if _, err := v.Verify(ctx, kept); err != nil {
			t.Fatalf("cache %d: clinician token of another device: %v", cacheSize, err)
		}
		// Re-activated later: a token issued after the revocation stands.
		later := sign(t, jwt.SigningMethodHS512, hsKey, jwt.MapClaims{"iss": hsIssuer, "aud": hsIssuer, "iat": time.Now().Add(2 * time.Second).Unix(),
			"exp": time.Now().Add(time.Hour).Unix(), "metadata": map[string]any{"clinician_id": "clin-1", "referring_device_id": "tablet-lost"}}, "")
		if _, err := v.Verify(ctx, later); err != nil {
			t.Fatalf("cache %d: clinician token issued after the device's revocation: %v", cacheSize, err)
		}
	}
}

// TestCacheFastPath: a token seen before is answered without a signature
// check, expiry still applies, and the cache never holds more than its
// size.
func TestCacheFastPath(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	keys := &countingKeys{}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys.k = StaticKeys{"k": {Key: &ec.PublicKey, Alg: "ES256"}}
	v := NewVerifier(VerifierOptions{Issuer: suiteIssuer, Audience: suiteIssuer, Keys: keys, CacheSize: 64, Leeway: time.Second, Now: clock})
	ctx := context.Background()
	c := jwt.MapClaims{"iss": suiteIssuer, "aud": suiteIssuer, "iat": now.Unix(), "exp": now.Add(10 * time.Second).Unix(), "metadata": map[string]any{"patient_id": "p"}}
	tok := sign(t, jwt.SigningMethodES256, ec, c, "k")
	for range 5 {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if keys.n.Load() != 1 {
		t.Fatalf("%d key lookups for one token verified five times", keys.n.Load())
	}
	// Past exp + leeway the cached token is refused.
	now = now.Add(12 * time.Second)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired cached token: %v", err)
	}
	// Bounded: 500 distinct tokens leave at most 64 entries.
	for i := range 500 {
		c := jwt.MapClaims{"iss": suiteIssuer, "aud": suiteIssuer, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": fmt.Sprint(i)}
		if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, ec, c, "k")); err != nil {
			t.Fatal(err)
		}
		if n := v.CacheLen(); n > 64 {
			t.Fatalf("cache holds %d entries, size 64", n)
		}
	}
	if n := v.CacheLen(); n < 32 {
		t.Fatalf("cache holds only %d entries", n)
	}
	// Invalid tokens are never cached.
	bad := sign(t, jwt.SigningMethodES256, ec, jwt.MapClaims{"iss": suiteIssuer, "aud": "x", "exp": now.Add(time.Minute).Unix()}, "k")
	for range 3 {
		if _, err := v.Verify(ctx, bad); err == nil {
			t.Fatal("wrong audience accepted")
		}
	}
}

func TestCacheSmallSizes(t *testing.T) {
	for _, size := range []int{1, 3, 63, 64, 1000} {
		c := newVerifiedCache(size)
		for i := range 5 * size {
			c.put(cacheKey(fmt.Sprint(i)), &Principal{})
		}
		if n := c.len(); n > size || n == 0 {
			t.Errorf("size %d: holds %d", size, n)
		}
		if _, ok := c.get(cacheKey(fmt.Sprint(5*size - 1))); !ok {
			t.Errorf("size %d: newest entry evicted", size)
		}
	}
}

type countingKeys struct {
	k StaticKeys
	n atomic.Int32
}

func (c *countingKeys) PublicKey(ctx context.Context, kid string) (crypto.PublicKey, string, error) {
	c.n.Add(1)
	return c.k.PublicKey(ctx, kid)
}

func TestMiddleware(t *testing.T) {
	v, _ := newTestVerifier(t)
	h := v.Middleware("read:x")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(PrincipalFrom(r.Context()).ID))
	}))
	good := sign(t, jwt.SigningMethodHS512, hsKey, claims(hsIssuer, hsIssuer, map[string]any{"device_id": "d1"}, "read:x", time.Minute), "")
	noScope := sign(t, jwt.SigningMethodHS512, hsKey, claims(hsIssuer, hsIssuer, map[string]any{"device_id": "d1"}, "read:y", time.Minute), "")
	for _, c := range []struct {
		name, header string
		code         int
		challenge    string
	}{
		{"ok", "Bearer " + good, 200, ""},
		{"lower-case scheme", "bearer " + good, 200, ""},
		{"none", "", 401, "Bearer"},
		{"basic", "Basic abc", 401, "Bearer"},
		{"invalid", "Bearer " + good + "x", 401, `Bearer error="invalid_token"`},
		{"scope", "Bearer " + noScope, 403, `Bearer error="insufficient_scope", scope="read:x"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.code {
				t.Fatalf("code %d, want %d (%s)", rec.Code, c.code, rec.Body)
			}
			if c.code == 200 {
				if rec.Body.String() != "d1" {
					t.Fatalf("principal not in context: %q", rec.Body)
				}
				return
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != c.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, c.challenge)
			}
			var body struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Code != c.code || body.Message == "" {
				t.Errorf("body %q", rec.Body)
			}
		})
	}
}
