package ssohttp_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/session/internal/sessiondb"
	"github.com/dhosauth/dhosauth/services/session/internal/sso"
	"github.com/dhosauth/dhosauth/services/session/internal/ssohttp"
)

type clinicians map[string]sso.ClinicianInfo

func (c clinicians) Clinician(_ context.Context, id string) (sso.ClinicianInfo, error) {
	return c[id], nil
}

// tokens is a token service that is never reached by these tests'
// refusals, and answers the successes.
type tokens struct{}

func (tokens) AccessToken(_ context.Context, clinicianID, sessionID string, _ []string) (string, time.Time, error) {
	return "access:" + clinicianID, time.Now().Add(time.Minute), nil
}
func (tokens) IDToken(_ context.Context, r sso.IDTokenRequest) (string, error) {
	return "id:" + r.Subject, nil
}
func (tokens) LogoutToken(context.Context, string, string, string) (string, error) { return "", nil }
func (tokens) RevokeClinician(context.Context, string, string) error               { return nil }

const (
	password     = "a long enough password"
	clientSecret = "client-secret-of-app1-0123456789"
)

// newHandler is the handler over the real store with the given limits
// (window 15 minutes).
func newHandler(t *testing.T, db storage.DB, perAddress, perPrincipal int) http.Handler {
	t.Helper()
	sum := sha256.Sum256([]byte(clientSecret))
	clients, err := sso.ParseClients(`[{"client_id":"app1","redirect_uris":["https://app1.example/cb"],"client_secret_sha256":"`+hex.EncodeToString(sum[:])+`"}]`, "https://suite.example/")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := sso.New(sso.Config{
		Issuer: "https://suite.example/", Clients: clients, LocalLogin: true,
		RoleScopes: map[string][]string{"send clinician": {"read:send_patient"}},
		StateKey:   []byte("0123456789abcdef0123456789abcdef"),
		Limits: sso.Limits{
			PerAddress:   ratelimit.Limit{Max: perAddress, Window: 15 * time.Minute},
			PerPrincipal: ratelimit.Limit{Max: perPrincipal, Window: 15 * time.Minute},
		},
		Limiter: ratelimit.New(db),
	}, sessiondb.New(db), clinicians{"c1": {Exists: true, Active: true, Groups: []string{"send clinician"}}}, tokens{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SetLocalPassword(context.Background(), "c1", password); err != nil {
		t.Fatal(err)
	}
	return ssohttp.New(svc, nil)
}

// post sends a form; addr, when set, is the edge's Dhos-Client-Address.
func post(h http.Handler, path, addr string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if addr != "" {
		req.Header.Set(ratelimit.ClientAddressHeader, addr)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func login(h http.Handler, addr, user, pw string) *httptest.ResponseRecorder {
	return post(h, sso.PathLocalLogin, addr, url.Values{"username": {user}, "password": {pw}, "csrf": {"c"}},
		"Cookie", ssohttp.LoginCookie+"=c")
}

func token(h http.Handler, addr, secret string) *httptest.ResponseRecorder {
	return post(h, sso.PathToken, addr, url.Values{
		"grant_type": {"authorization_code"}, "code": {"no-such-code"}, "redirect_uri": {"https://app1.example/cb"},
		"code_verifier": {strings.Repeat("v", 43)}, "client_id": {"app1"}, "client_secret": {secret},
	})
}

// hasSession reports whether a response sets a session cookie.
func hasSession(w *httptest.ResponseRecorder) bool {
	for _, c := range w.Result().Cookies() {
		if c.Name == ssohttp.SessionCookie && c.Value != "" {
			return true
		}
	}
	return false
}

// wantRetryAfter checks a 429's Retry-After: whole seconds within the
// window.
func wantRetryAfter(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429; body %s", w.Code, w.Body)
	}
	n, err := strconv.Atoi(w.Header().Get("Retry-After"))
	if err != nil || n < 1 || n > 30*60 {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
}

// TestLimitedSignInIs429: past the limit of failed local sign-ins the
// form answers 429 with Retry-After and the error page; below it the
// right password signs in.
func TestLimitedSignInIs429(t *testing.T) {
	storagetest.Each(t, sessiondb.Migrations(), func(t *testing.T, db storage.DB) {
		h := newHandler(t, db, 3, 2)
		if w := login(h, "192.0.2.1", "c1", "not the password!"); w.Code != http.StatusForbidden {
			t.Fatalf("wrong password: %d", w.Code)
		}
		if w := login(h, "192.0.2.1", "c1", password); w.Code != http.StatusSeeOther || !hasSession(w) {
			t.Fatalf("the right password below the limit: %d %v", w.Code, w.Header())
		}
		// The second failure fills c1's limit (2): from any address, even
		// the right password is refused.
		if w := login(h, "192.0.2.1", "c1", "not the password!"); w.Code != http.StatusForbidden {
			t.Fatalf("second failure: %d", w.Code)
		}
		w := login(h, "192.0.2.3", "c1", password)
		wantRetryAfter(t, w)
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(w.Body.String(), "Too many attempts") || hasSession(w) {
			t.Errorf("page %q %q", ct, w.Body)
		}

		// Per address, from the edge's header: 192.0.2.1 has failed
		// twice; a third failure fills its limit (3).
		if w := login(h, "192.0.2.1", "someone", "x"); w.Code != http.StatusForbidden {
			t.Fatalf("third failure: %d", w.Code)
		}
		wantRetryAfter(t, login(h, "192.0.2.1", "someone-else", "x"))
		if w := login(h, "192.0.2.9", "someone-else", "x"); w.Code != http.StatusForbidden {
			t.Errorf("another address: %d", w.Code)
		}
	})
}

// TestLimitedTokenRequestIs429: past the limit of failed client
// authentications the token endpoint answers 429 with Retry-After and
// error temporarily_unavailable.
func TestLimitedTokenRequestIs429(t *testing.T) {
	storagetest.Each(t, sessiondb.Migrations(), func(t *testing.T, db storage.DB) {
		h := newHandler(t, db, 30, 2)
		if w := token(h, "198.51.100.1", "wrong"); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %d %s", w.Code, w.Body)
		}
		// Below the limit the right secret reaches the code check.
		if w := token(h, "198.51.100.1", clientSecret); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), sso.ErrInvalidGrant) {
			t.Fatalf("right secret, unknown code: %d %s", w.Code, w.Body)
		}
		w := token(h, "198.51.100.2", clientSecret)
		wantRetryAfter(t, w)
		var body map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != sso.ErrTemporarilyUnavailable || !strings.Contains(body["error_description"], "too many failed attempts") {
			t.Fatalf("body %s (%v)", w.Body, err)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
	})
}

// TestClientAddressWithoutTheEdge: a request without the edge's header
// counts under its connection's address.
func TestClientAddressWithoutTheEdge(t *testing.T) {
	h := newHandler(t, storagetest.OpenSQLite(t, sessiondb.Migrations()), 1, 10)
	login(h, "", "a", "x") // 192.0.2.1, httptest's RemoteAddr
	wantRetryAfter(t, login(h, "", "b", "x"))
	if w := login(h, "192.0.2.200", "b", "x"); w.Code != http.StatusForbidden {
		t.Errorf("through the edge from another address: %d", w.Code)
	}
}
