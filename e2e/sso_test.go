package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

// ssoWorld is a suite signed into by an upstream provider (ZITADEL's OP),
// with two sibling apps (go-oidc clients) registered with the suite.
type ssoWorld struct {
	s          *Suite
	up         *upstreamOP
	app1, app2 *siblingApp
	issuer     string
	admin      string
}

const (
	suiteClientID     = "dhos-suite"
	suiteClientSecret = "suite-secret-at-the-upstream-0123456789"
	pkjwtClientID     = "dhos-suite-pkjwt"
)

// startSSO starts the upstream provider, two sibling apps and the suite
// on top of env, and registers clinician id1 (the upstream user).
func startSSO(t *testing.T, env map[string]string) *ssoWorld {
	t.Helper()
	edge := freePort(t)
	_, port, _ := net.SplitHostPort(edge)
	issuer := "http://" + edge + "/"
	callback := "http://" + edge + "/login/callback"

	// A second registration at the upstream authenticates with
	// private_key_jwt: the suite signs assertions with this key.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	up := startUpstream(t,
		&opClient{id: suiteClientID, secret: suiteClientSecret, redirectURIs: []string{callback}, method: oidc.AuthMethodBasic},
		&opClient{id: pkjwtClientID, redirectURIs: []string{callback}, method: oidc.AuthMethodPrivateKeyJWT,
			jwk: &jose.JSONWebKey{Key: &key.PublicKey, KeyID: "suite-key-1", Algorithm: "RS256", Use: "sig"}},
	)
	app1, lis1 := newSiblingApp(t, "app1")
	app2, lis2 := newSiblingApp(t, "app2")
	roles := map[string][]string{"clinician": {"read:send_patient", "read:send_clinician"}}
	providers, _ := json.Marshal([]map[string]any{
		{"id": "upstream", "name": "Test identity provider", "issuer": up.URL, "client_id": suiteClientID,
			"client_secret": suiteClientSecret, "auth_method": "client_secret_basic", "role_scopes": roles},
		{"id": "pkjwt", "name": "Test identity provider (key)", "issuer": up.URL, "client_id": pkjwtClientID,
			"auth_method": "private_key_jwt", "private_key": keyPEM, "key_id": "suite-key-1", "assertion_audience": "issuer", "role_scopes": roles},
	})
	clients, _ := json.Marshal([]map[string]any{app1.registration(), app2.registration()})
	all := map[string]string{
		"HTTP_PORT":      port,
		"TOKEN_ISSUER":   issuer,
		"OIDC_PROVIDERS": string(providers),
		"OIDC_CLIENTS":   string(clients),
	}
	for k, v := range env {
		all[k] = v
	}
	s := Start(t, all)
	s.Secret(suiteClientSecret)
	s.Secret(app1.secret)
	s.Secret(app2.secret)
	app1.serve(t, lis1, issuer)
	app2.serve(t, lis2, issuer)
	w := &ssoWorld{s: s, up: up, app1: app1, app2: app2, issuer: issuer, admin: s.AdminToken(t)}
	waitAuthReady(t, s, w.admin)
	Expect(t, s.Do("POST", "/dhos/v1/clinician", w.admin, map[string]any{
		"clinician_id": upstreamSubject, "login_active": true, "products": []any{"send"}, "groups": []any{"send clinician"},
	}), 201)
	return w
}

// browser is a Go HTTP client with a cookie jar that follows redirects
// (net/http's jar treats loopback hosts as secure, as browsers do, so the
// __Host- cookies are kept).
func newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

// get fetches a URL and returns the final URL and body.
func get(t *testing.T, c *http.Client, u string) (string, int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Request.URL.String(), resp.StatusCode, string(b)
}

var authRequestIDRe = regexp.MustCompile(`name="id" value="([^"]+)"`)

// upstreamLogin fills in the upstream provider's login form on the page
// body (the final page of a redirect chain), and follows the redirects.
func (w *ssoWorld) upstreamLogin(t *testing.T, c *http.Client, page string) (string, int, string) {
	t.Helper()
	m := authRequestIDRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("not the upstream login page:\n%s", page)
	}
	resp, err := c.PostForm(w.up.URL+"login/username", url.Values{"id": {m[1]}, "username": {upstreamUser}, "password": {upstreamPassword}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Request.URL.String(), resp.StatusCode, string(b)
}

// noRedirect returns a client sharing c's cookies that stops at redirects.
func noRedirect(c *http.Client) *http.Client {
	return &http.Client{Jar: c.Jar, Timeout: c.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// tokenRequest posts to the suite's token endpoint.
func (w *ssoWorld) tokenRequest(t *testing.T, form url.Values, basicID, basicSecret string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", w.s.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("token endpoint answered %d %q", resp.StatusCode, b)
	}
	if resp.StatusCode == 200 {
		for _, k := range []string{"access_token", "id_token"} {
			if v, ok := m[k].(string); ok {
				w.s.Secret(v)
			}
		}
	}
	return resp.StatusCode, m
}

// code runs an authorization request for app with the browser's session
// and returns the code the suite redirects with.
func (w *ssoWorld) code(t *testing.T, c *http.Client, app *siblingApp, verifier string) string {
	t.Helper()
	q := authorizeQuery(app.name, app.URL+"/callback", "st-1", "n-1", verifier)
	resp, err := noRedirect(c).Get(w.s.URL + "/oauth2/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), app.URL+"/callback?") || loc.Query().Get("state") != "st-1" {
		t.Fatalf("authorize: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if loc.Query().Get("iss") != w.issuer {
		t.Errorf("authorization response iss %q, want %q", loc.Query().Get("iss"), w.issuer)
	}
	code := loc.Query().Get("code")
	w.s.Secret(code)
	return code
}

// events are the audit events of a type recorded by the session service.
func (w *ssoWorld) events(t *testing.T, typ string) []auditEvent {
	t.Helper()
	return auditEvents(t, w.s, w.admin, url.Values{"type": {typ}})
}

// hasEvent reports an event of the type and outcome whose reason or
// event_data matches.
func (w *ssoWorld) hasEvent(t *testing.T, typ, outcome string, match func(auditEvent) bool) bool {
	t.Helper()
	for _, e := range w.events(t, typ) {
		if e.Outcome == outcome && (match == nil || match(e)) {
			return true
		}
	}
	return false
}

func oauthErrorIs(code string) func(auditEvent) bool {
	return func(e auditEvent) bool { return e.EventData["oauth_error"] == code }
}

func reasonHas(s string) func(auditEvent) bool {
	return func(e auditEvent) bool { return strings.Contains(e.Reason, s) }
}

// TestSSOProtocol drives the whole protocol with a Go HTTP client, on
// both stores: sign-in at the upstream provider (client_secret_basic, and
// private_key_jwt), the sibling apps signing in with go-oidc without a
// second sign-in, the session admin API, the refusals the specifications
// name (each audited), and logout everywhere from the upstream's
// back-channel logout.
func TestSSOProtocol(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			w := startSSO(t, b.env(t))
			s, c := w.s, newBrowser(t)

			// Discovery lists the provider's endpoints.
			d := Expect(t, s.Do("GET", "/.well-known/openid-configuration", "", nil), 200).JSON(t)
			if d["authorization_endpoint"] != s.URL+"/oauth2/authorize" || d["token_endpoint"] != s.URL+"/oauth2/token" ||
				d["end_session_endpoint"] != s.URL+"/logout" || d["backchannel_logout_supported"] != true || d["issuer"] != w.issuer {
				t.Fatalf("discovery %v", d)
			}

			// app1 first: the suite sends the browser to the upstream.
			final, _, page := get(t, c, w.app1.URL+"/")
			if !strings.HasPrefix(final, s.URL+"/login?") {
				t.Fatalf("app1 went to %s, want the sign-in page", final)
			}
			m := regexp.MustCompile(`href="(/login/upstream\?[^"]+)"`).FindStringSubmatch(page)
			if m == nil || !strings.Contains(m[1], "provider=upstream") {
				t.Fatalf("sign-in page without the provider:\n%s", page)
			}
			final, _, page = get(t, c, s.URL+html.UnescapeString(m[1]))
			if !strings.HasPrefix(final, w.up.URL) {
				t.Fatalf("went to %s, want the upstream", final)
			}
			final, status, page := w.upstreamLogin(t, c, page)
			if status != 200 || final != w.app1.URL+"/" || !strings.Contains(page, "hello "+upstreamSubject+" from app1") {
				t.Fatalf("after the upstream sign-in: %d %s\n%s", status, final, page)
			}
			// app2 next: no second sign-in anywhere.
			pages := w.up.pages.Load()
			final, _, page = get(t, c, w.app2.URL+"/")
			if final != w.app2.URL+"/" || !strings.Contains(page, "hello "+upstreamSubject+" from app2") || w.up.pages.Load() != pages {
				t.Fatalf("app2 did not sign in silently: %s\n%s", final, page)
			}

			// The session: scopes from the upstream roles, both apps joined.
			list := Expect(t, s.Do("GET", "/dhos/v1/clinician/"+upstreamSubject+"/sessions", w.admin, nil), 200).JSON(t)
			sessions, _ := list["sessions"].([]any)
			if len(sessions) != 1 {
				t.Fatalf("sessions %v", list)
			}
			sess := sessions[0].(map[string]any)
			if fmt.Sprint(sess["clients"]) != "[app1 app2]" || fmt.Sprint(sess["scopes"]) != "[read:send_clinician read:send_patient]" || sess["provider"] != "upstream" {
				t.Errorf("session %v", sess)
			}
			sid, _ := sess["session_id"].(string)
			Expect(t, s.Do("GET", "/dhos/v1/clinician/"+upstreamSubject+"/sessions", s.SystemToken(t, "read:send_device"), nil), 403)

			// The app's access token is a clinician token of the session,
			// verifiable like any other; userinfo answers for it.
			as, ok := w.app1.session()
			if !ok || as.SID != sid {
				t.Fatalf("app1 session %+v, want sid %s", as, sid)
			}
			s.Secret(as.AccessToken)
			cl := Claims(t, as.AccessToken)
			md, _ := cl["metadata"].(map[string]any)
			if md["clinician_id"] != upstreamSubject || md["session_id"] != sid || cl["scope"] != "read:send_clinician read:send_patient" {
				t.Errorf("access token claims %v", cl)
			}
			ui := Expect(t, s.Do("GET", "/oauth2/userinfo", as.AccessToken, nil), 200).JSON(t)
			if ui["sub"] != upstreamSubject || fmt.Sprint(ui["roles"]) != "[clinician nurse]" {
				t.Errorf("userinfo %v", ui)
			}

			// Refusals, each with the error the specifications name.
			t.Run("authorize", func(t *testing.T) {
				q := authorizeQuery("app1", "https://evil.example/cb", "s", "n", oauth2.GenerateVerifier())
				resp, err := noRedirect(c).Get(s.URL + "/oauth2/authorize?" + q.Encode())
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(string(b), "invalid_request") {
					t.Errorf("wrong redirect_uri: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), b)
				}
				q = authorizeQuery("app1", w.app1.URL+"/callback", "s", "n", oauth2.GenerateVerifier())
				q.Del("code_challenge")
				resp, err = noRedirect(c).Get(s.URL + "/oauth2/authorize?" + q.Encode())
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				loc, _ := url.Parse(resp.Header.Get("Location"))
				if resp.StatusCode != 302 || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "s" {
					t.Errorf("no PKCE: %d %s", resp.StatusCode, loc)
				}
				q = authorizeQuery("nobody", w.app1.URL+"/callback", "s", "n", oauth2.GenerateVerifier())
				resp, _ = noRedirect(c).Get(s.URL + "/oauth2/authorize?" + q.Encode())
				resp.Body.Close()
				if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
					t.Errorf("unknown client: %d %s", resp.StatusCode, resp.Header.Get("Location"))
				}
			})
			t.Run("token", func(t *testing.T) {
				v := oauth2.GenerateVerifier()
				form := func(code, verifier, redirect string) url.Values {
					return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {redirect}}
				}
				cb := w.app1.URL + "/callback"
				code := w.code(t, c, w.app1, v)
				if st, r := w.tokenRequest(t, form(code, v, cb), "app1", "wrong-secret"); st != 401 || r["error"] != "invalid_client" {
					t.Errorf("wrong secret: %d %v", st, r)
				}
				if st, r := w.tokenRequest(t, form(code, v, cb), "app2", w.app2.secret); st != 400 || r["error"] != "invalid_grant" {
					t.Errorf("another client's code: %d %v", st, r)
				}
				if st, r := w.tokenRequest(t, form(code, oauth2.GenerateVerifier(), cb), "app1", w.app1.secret); st != 400 || r["error"] != "invalid_grant" {
					t.Errorf("wrong verifier: %d %v", st, r)
				}
				code = w.code(t, c, w.app1, v)
				if st, r := w.tokenRequest(t, form(code, v, w.app2.URL+"/callback"), "app1", w.app1.secret); st != 400 || r["error"] != "invalid_grant" {
					t.Errorf("wrong redirect_uri: %d %v", st, r)
				}
				code = w.code(t, c, w.app1, v)
				f := form(code, v, cb)
				f.Set("grant_type", "password")
				if st, r := w.tokenRequest(t, f, "app1", w.app1.secret); st != 400 || r["error"] != "unsupported_grant_type" {
					t.Errorf("password grant: %d %v", st, r)
				}
				f = form(code, v, cb)
				f.Set("client_id", "app1")
				f.Set("client_secret", w.app1.secret)
				if st, r := w.tokenRequest(t, f, "", ""); st != 200 || r["token_type"] != "Bearer" || r["id_token"] == "" {
					t.Errorf("client_secret_post: %d %v", st, r)
				}
				for name, ev := range map[string]func(auditEvent) bool{
					"invalid_client": oauthErrorIs("invalid_client"), "invalid_grant (verifier)": reasonHas("PKCE"),
					"invalid_grant (redirect_uri)": reasonHas("redirect_uri"), "unsupported_grant_type": oauthErrorIs("unsupported_grant_type"),
				} {
					if !w.hasEvent(t, "oauth token", "failure", ev) {
						t.Errorf("no audit event for %s", name)
					}
				}
				if !w.hasEvent(t, "oauth authorization", "failure", reasonHas("redirect_uri not registered")) {
					t.Error("no audit event for the wrong redirect_uri")
				}
			})
			t.Run("backchannel", func(t *testing.T) {
				post := func(tok string) (int, map[string]any) {
					resp, err := http.PostForm(s.URL+"/backchannel-logout", url.Values{"logout_token": {tok}})
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					var m map[string]any
					_ = json.NewDecoder(resp.Body).Decode(&m)
					return resp.StatusCode, m
				}
				other, _ := rsa.GenerateKey(rand.Reader, 2048)
				cases := map[string]func(h, c map[string]any){
					"forged signature": func(h, c map[string]any) { h["sign_with"] = other },
					"wrong audience":   func(h, c map[string]any) { c["aud"] = "someone-else" },
					"no event":         func(h, c map[string]any) { delete(c, "events") },
					"nonce":            func(h, c map[string]any) { c["nonce"] = "n" },
					"old iat":          func(h, c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() },
					"no sub or sid":    func(h, c map[string]any) { delete(c, "sub") },
					"wrong typ":        func(h, c map[string]any) { h["typ"] = "at+jwt" },
				}
				for name, change := range cases {
					if st, r := post(w.up.logoutToken(t, suiteClientID, "nobody", change)); st != 400 || r["error"] != "invalid_request" {
						t.Errorf("%s: %d %v", name, st, r)
					}
				}
				// A valid token for another subject ends nothing; sent
				// again it is a replay.
				tok := w.up.logoutToken(t, suiteClientID, "nobody", nil)
				if st, _ := post(tok); st != 200 {
					t.Fatalf("valid logout token: %d", st)
				}
				if st, r := post(tok); st != 400 || r["error"] != "invalid_request" {
					t.Errorf("replayed: %d %v", st, r)
				}
				if !w.hasEvent(t, "session back-channel logout", "failure", reasonHas("replayed")) ||
					!w.hasEvent(t, "session back-channel logout", "failure", reasonHas("signature")) {
					t.Error("refused logout tokens were not audited")
				}
			})

			// private_key_jwt at the upstream: a second session.
			c2 := newBrowser(t)
			_, _, page = get(t, c2, s.URL+"/login/upstream?provider=pkjwt&return_to=/session")
			final, status, page = w.upstreamLogin(t, c2, page)
			if status != 200 || final != s.URL+"/session" || !strings.Contains(page, `"provider":"pkjwt"`) {
				t.Fatalf("private_key_jwt sign-in: %d %s %s", status, final, page)
			}

			// Logout everywhere: the upstream says the user logged out.
			l1, l2 := w.app1.logouts.Load(), w.app2.logouts.Load()
			resp, err := http.PostForm(s.URL+"/backchannel-logout", url.Values{"logout_token": {w.up.logoutToken(t, suiteClientID, upstreamSubject, nil)}})
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("back-channel logout: %v %v", err, resp)
			}
			resp.Body.Close()
			waitFor(t, 15*time.Second, "both apps to get a logout token", func() bool {
				return w.app1.logouts.Load() > l1 && w.app2.logouts.Load() > l2
			})
			if _, ok := w.app1.session(); ok {
				t.Error("app1 still has a session")
			}
			if _, ok := w.app2.session(); ok {
				t.Error("app2 still has a session")
			}
			// The browser's suite session is gone, the tokens are revoked.
			if _, st, _ := get(t, c, s.URL+"/session"); st != 401 {
				t.Errorf("suite session after logout: %d", st)
			}
			if r := s.Do("GET", "/oauth2/userinfo", as.AccessToken, nil); r.Status != 401 || !strings.Contains(string(r.Body), "invalid_token") {
				t.Errorf("userinfo after logout: %d %s", r.Status, r.Body)
			}
			// The private_key_jwt session was another client registration
			// (and so another provider) at the upstream: still signed in.
			if _, st, _ := get(t, c2, s.URL+"/session"); st != 200 {
				t.Errorf("the other provider's session ended too: %d", st)
			}
			// app1 sends the browser back through the upstream.
			final, _, _ = get(t, c, w.app1.URL+"/")
			if !strings.HasPrefix(final, s.URL+"/login?") {
				t.Errorf("after logout app1 went to %s, want the sign-in page", final)
			}
			if !w.hasEvent(t, "session sign-out", "success", func(e auditEvent) bool { return e.EventData["end_reason"] == "upstream back-channel logout" }) ||
				!w.hasEvent(t, "session back-channel logout sent", "success", nil) {
				t.Error("logout not audited")
			}

			// Admin: end the remaining session.
			r := Expect(t, s.Do("DELETE", "/dhos/v1/clinician/"+upstreamSubject+"/sessions", w.admin, nil), 200).JSON(t)
			if r["ended"] != float64(1) {
				t.Errorf("ended %v", r)
			}
			if _, st, _ := get(t, c2, s.URL+"/session"); st != 401 {
				t.Errorf("session after admin end: %d", st)
			}
		})
	}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestLocalSignInAndLogout: a clinician with a local password (no
// identity provider) signs in on the suite's form on the way to a sibling
// app, and the app's RP-initiated logout ends the session everywhere.
func TestLocalSignInAndLogout(t *testing.T) {
	forEachBackendSSO(t, func(t *testing.T, w *ssoWorld) {
		s := w.s
		Expect(t, s.Do("POST", "/dhos/v1/clinician", w.admin, map[string]any{
			"clinician_id": "c-local", "login_active": true, "products": []any{"send"}, "groups": []any{"send clinician"},
		}), 201)
		password := "correct horse battery staple"
		s.Secret(password)
		Expect(t, s.Do("PUT", "/dhos/v1/clinician/c-local/password", w.admin, map[string]any{"password": "short"}), 400)
		Expect(t, s.Do("PUT", "/dhos/v1/clinician/c-local/password", w.admin, map[string]any{"password": password}), 200)
		Expect(t, s.Do("PUT", "/dhos/v1/clinician/c-local/password", s.SystemToken(t, "write:send_device"), map[string]any{"password": password}), 403)

		c := newBrowser(t)
		final, _, page := get(t, c, w.app1.URL+"/")
		m := csrfRe.FindStringSubmatch(page)
		if !strings.HasPrefix(final, s.URL+"/login?") || m == nil {
			t.Fatalf("sign-in page %s:\n%s", final, page)
		}
		returnTo := regexp.MustCompile(`name="return_to" value="([^"]+)"`).FindStringSubmatch(page)
		form := url.Values{"username": {"c-local"}, "password": {"wrong password!"}, "csrf": {m[1]}, "return_to": {html.UnescapeString(returnTo[1])}}
		resp, err := c.PostForm(s.URL+"/login/local", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("wrong password: %d", resp.StatusCode)
		}
		// The form's value is single use: open the page again.
		_, _, page = get(t, c, final)
		form.Set("csrf", csrfRe.FindStringSubmatch(page)[1])
		form.Set("password", password)
		resp, err = c.PostForm(s.URL+"/login/local", form)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Request.URL.String() != w.app1.URL+"/" || !strings.Contains(string(b), "hello c-local from app1") {
			t.Fatalf("local sign-in ended at %s: %s", resp.Request.URL, b)
		}
		if !w.hasEvent(t, "session sign-in", "failure", reasonHas("wrong password")) || !w.hasEvent(t, "session sign-in", "success", func(e auditEvent) bool { return e.EventData["provider"] == "local" }) {
			t.Error("local sign-ins not audited")
		}

		// RP-initiated logout with the app's ID token as the hint.
		as, _ := w.app1.session()
		s.Secret(as.IDToken)
		q := url.Values{"id_token_hint": {as.IDToken}, "post_logout_redirect_uri": {"https://evil.example/"}, "state": {"x"}}
		if _, st, _ := get(t, c, s.URL+"/logout?"+q.Encode()); st != 400 {
			t.Errorf("unregistered post_logout_redirect_uri: %d", st)
		}
		q.Set("post_logout_redirect_uri", w.app1.URL+"/signed-out")
		final, st, body := get(t, c, s.URL+"/logout?"+q.Encode())
		if st != 200 || final != w.app1.URL+"/signed-out?state=x" || !strings.Contains(body, "signed out of app1") {
			t.Fatalf("logout: %d %s %s", st, final, body)
		}
		waitFor(t, 15*time.Second, "app1's logout token", func() bool { return w.app1.logouts.Load() == 1 })
		if _, st, _ := get(t, c, s.URL+"/session"); st != 401 {
			t.Errorf("session after logout: %d", st)
		}
	})
}

// forEachBackendSSO runs fn against an SSO world on each store.
func forEachBackendSSO(t *testing.T, fn func(t *testing.T, w *ssoWorld)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, startSSO(t, b.env(t))) })
	}
}
