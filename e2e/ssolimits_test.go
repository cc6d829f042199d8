package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// postForm posts a form to the edge at base; headers are name, value
// pairs.
func postForm(t *testing.T, base, path string, form url.Values, headers ...string) Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Body: b, Header: resp.Header}
}

// wantStatus fails unless r has the status (the sign-in pages and the
// token endpoint answer HTML and OAuth errors, not the contract's body);
// a 429 must carry a Retry-After of 1 to 30 minutes' seconds.
func wantStatus(t *testing.T, r Response, status int) Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if status == http.StatusTooManyRequests {
		if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 || n > 30*60 {
			t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
		}
	}
	return r
}

// TestSignInLimitsThroughTheEdge: the session service limits failed
// local sign-ins per user name and per client address, and failed token
// requests per client_id, with the activation service's variables; the
// client address is the edge's (X-Forwarded-For only through an edge
// that trusts its proxy), the counters are the session store's, and a
// refusal is a 429 with Retry-After.
func TestSignInLimitsThroughTheEdge(t *testing.T) {
	const secret = "secret-of-the-limited-app-0123456789"
	sum := sha256.Sum256([]byte(secret))
	clients, _ := json.Marshal([]map[string]any{{
		"client_id": "app-limited", "redirect_uris": []string{"https://app.example/cb"}, "client_secret_sha256": hex.EncodeToString(sum[:]),
	}})
	forEachBackend(t, map[string]string{
		"RATE_LIMIT_PER_ADDRESS":   "3/15m",
		"RATE_LIMIT_PER_PRINCIPAL": "2/15m",
		"OIDC_CLIENTS":             string(clients),
	}, func(t *testing.T, s *Suite) {
		s.Secret(secret)
		a := s.URL
		b := s.StartEdge("gateway-2", map[string]string{"TRUSTED_PROXIES": "127.0.0.1"})
		admin := s.AdminToken(t)
		id := Unique("c-limited")
		Expect(t, s.Do("POST", "/dhos/v1/clinician", admin, map[string]any{
			"clinician_id": id, "login_active": true, "products": []any{"send"}, "groups": []any{"send clinician"},
		}), 201)
		password := "correct horse battery staple"
		s.Secret(password)
		Expect(t, s.Do("PUT", "/dhos/v1/clinician/"+id+"/password", admin, map[string]any{"password": password}), 200)
		login := func(edge, user, pw string, headers ...string) Response {
			return postForm(t, edge, "/login/local", url.Values{"username": {user}, "password": {pw}, "csrf": {"c"}},
				append([]string{"Cookie", "__Host-dhos_login=c"}, headers...)...)
		}

		// Per name: two failures from 127.0.0.1; then even the right
		// password from another client is refused.
		wantStatus(t, login(a, id, "wrong password!"), 403)
		wantStatus(t, login(b, id, "wrong password!"), 403)
		wantStatus(t, login(b, id, password, "X-Forwarded-For", "198.51.100.1"), 429)

		// Per address: 127.0.0.1 has failed twice; a third failure fills
		// it. X-Forwarded-For straight to edge A changes nothing; through
		// edge B, which trusts its proxy, the client is another address.
		wantStatus(t, login(a, "nobody-"+id, "wrong password!"), 403)
		wantStatus(t, login(a, "nobody-"+id, "wrong password!"), 429)
		wantStatus(t, login(a, "nobody-"+id, "wrong password!", "X-Forwarded-For", "198.51.100.2"), 429)
		wantStatus(t, login(b, "nobody-"+id, "wrong password!", "X-Forwarded-For", "198.51.100.2"), 403)

		// The token endpoint: two failed client authentications, then a
		// 429 with error temporarily_unavailable, whatever the address.
		tokenReq := func(edge, secret string, headers ...string) Response {
			return postForm(t, edge, "/oauth2/token", url.Values{
				"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {"https://app.example/cb"},
				"code_verifier": {strings.Repeat("v", 43)}, "client_id": {"app-limited"}, "client_secret": {secret},
			}, headers...)
		}
		wantStatus(t, tokenReq(b, "wrong", "X-Forwarded-For", "198.51.100.3"), 401)
		wantStatus(t, tokenReq(b, "wrong", "X-Forwarded-For", "198.51.100.4"), 401)
		r := wantStatus(t, tokenReq(b, secret, "X-Forwarded-For", "198.51.100.5"), 429)
		if m := r.JSON(t); m["error"] != "temporarily_unavailable" {
			t.Errorf("token endpoint refusal %v", m)
		}
		if ops := s.OpsGet("session", "/metrics"); !strings.Contains(string(ops.Body), `limit="local_login_user"`) || !strings.Contains(string(ops.Body), `limit="token_client"`) {
			t.Error("the session service's refusals are not on its /metrics")
		}
	})
}
