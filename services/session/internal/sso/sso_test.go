package sso_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/session/internal/sessiondb"
	"github.com/dhosauth/dhosauth/services/session/internal/sso"
	"github.com/dhosauth/dhosauth/services/session/internal/upstream"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// clinicians is a fake clinician lookup.
type clinicians map[string]sso.ClinicianInfo

func (c clinicians) Clinician(_ context.Context, id string) (sso.ClinicianInfo, error) {
	return c[id], nil
}

// tokens is a fake token service.
type tokens struct {
	mu      sync.Mutex
	revoked []string
}

func (t *tokens) AccessToken(_ context.Context, clinicianID, sessionID string, scopes []string) (string, time.Time, error) {
	return "access:" + clinicianID + ":" + sessionID + ":" + strings.Join(scopes, ","), time.Now().Add(15 * time.Minute), nil
}

func (t *tokens) IDToken(_ context.Context, r sso.IDTokenRequest) (string, error) {
	return "id:" + r.ClientID + ":" + r.Subject + ":" + r.Nonce, nil
}

func (t *tokens) LogoutToken(_ context.Context, clientID, subject, sessionID string) (string, error) {
	return "logout:" + clientID + ":" + sessionID, nil
}

func (t *tokens) RevokeClinician(_ context.Context, id, _ string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.revoked = append(t.revoked, id)
	return nil
}

const clientSecret = "client-secret-of-app1-0123456789"

type env struct {
	svc   *sso.Service
	store *sessiondb.Store
	db    storage.DB
	clock *clock
	toks  *tokens
	app   *httptest.Server
	hits  *atomic.Int64
	fail  *atomic.Int64
}

// newEnv builds the service over a real store, with one client app whose
// back-channel logout endpoint fails as many times as fail says; opts
// change the configuration.
func newEnv(t *testing.T, db storage.DB, local bool, opts ...func(*sso.Config, *env)) *env {
	t.Helper()
	if err := sessiondb.New(db).DropAll(context.Background(), audit.New(context.Background(), "session", audit.TypeDataDropped, "", nil)); err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, store: sessiondb.New(db), clock: &clock{t: time.Date(2026, 3, 26, 12, 0, 0, 0, time.UTC)}, toks: &tokens{}, hits: &atomic.Int64{}, fail: &atomic.Int64{}}
	e.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		if e.fail.Load() != 0 {
			e.fail.Add(-1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if !strings.HasPrefix(r.PostFormValue("logout_token"), "logout:app1:") {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(e.app.Close)
	sum := sha256.Sum256([]byte(clientSecret))
	clients, err := sso.ParseClients(`[{"client_id":"app1","redirect_uris":["https://app1.example/cb"],"backchannel_logout_uri":"`+e.app.URL+`/bcl","client_secret_sha256":"`+hex.EncodeToString(sum[:])+`"}]`, "https://suite.example/")
	if err != nil {
		t.Fatal(err)
	}
	cfg := sso.Config{
		Issuer: "https://suite.example/", Clients: clients, LocalLogin: local,
		RoleScopes: map[string][]string{"send clinician": {"read:send_patient"}},
		StateKey:   []byte("0123456789abcdef0123456789abcdef"), Now: e.clock.now,
	}
	for _, o := range opts {
		o(&cfg, e)
	}
	e.svc, err = sso.New(cfg, e.store, clinicians{
		"c1":       {Exists: true, Active: true, Groups: []string{"send clinician"}},
		"inactive": {Exists: true, Active: false, Groups: []string{"send clinician"}},
		"norole":   {Exists: true, Active: true, Groups: []string{"admin"}},
	}, e.toks)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// signIn signs c1 in with a local password and returns the cookie.
func (e *env) signIn(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	if err := e.svc.SetLocalPassword(ctx, "c1", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	cookie, err := e.svc.LocalLogin(ctx, "c1", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	return cookie
}

// code runs an authorization request and returns the code.
func (e *env) code(t *testing.T, cookie, verifier string) string {
	t.Helper()
	res, err := e.svc.Authorize(context.Background(), cookie, sso.AuthorizeRequest{
		ClientID: "app1", RedirectURI: "https://app1.example/cb", ResponseType: "code", Scope: "openid",
		State: "s", Nonce: "n", CodeChallenge: upstream.S256(verifier), CodeChallengeMethod: "S256",
	})
	if err != nil || res.Error != nil {
		t.Fatalf("authorize: %v %v", err, res.Error)
	}
	u, _ := url.Parse(res.Redirect)
	if u.Query().Get("code") == "" {
		t.Fatalf("no code in %s", res.Redirect)
	}
	return u.Query().Get("code")
}

func (e *env) token(code, verifier string) (*sso.TokenResponse, *sso.OAuthError, error) {
	return e.svc.Token(context.Background(), sso.TokenRequest{
		GrantType: "authorization_code", Code: code, RedirectURI: "https://app1.example/cb", CodeVerifier: verifier,
	}.WithBasic("app1", clientSecret))
}

// events lists the audit events recorded so far, of a type.
func events(t *testing.T, db storage.DB, typ string) []audit.Stored {
	t.Helper()
	page, err := audit.List(context.Background(), db, audit.Query{Type: typ, PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	return page.Events
}

// TestSSO runs the rules over the real store on every backend.
func TestSSO(t *testing.T) {
	storagetest.Each(t, sessiondb.Migrations(), func(t *testing.T, db storage.DB) {
		t.Run("CodeExpiresAfterAMinute", func(t *testing.T) { testCodeExpiry(t, db) })
		t.Run("CodeSingleUseConcurrently", func(t *testing.T) { testCodeSingleUse(t, db) })
		t.Run("Timeouts", func(t *testing.T) { testTimeouts(t, db) })
		t.Run("LocalLogin", func(t *testing.T) { testLocalLogin(t, db) })
		t.Run("LogoutDeliveryRetries", func(t *testing.T) { testDeliveryRetries(t, db) })
		t.Run("ReplayedJTI", func(t *testing.T) { testReplayedJTI(t, db) })
		t.Run("LocalLoginLimits", func(t *testing.T) { testLocalLoginLimits(t, db) })
		t.Run("TokenLimits", func(t *testing.T) { testTokenLimits(t, db) })
		t.Run("LimitsOff", func(t *testing.T) { testLimitsOff(t, db) })
	})
}

func testCodeExpiry(t *testing.T, db storage.DB) {
	e := newEnv(t, db, true)
	cookie := e.signIn(t)
	v := strings.Repeat("v", 43)
	code := e.code(t, cookie, v)
	e.clock.add(sso.CodeLifetime)
	if _, oe, err := e.token(code, v); err != nil || oe == nil || oe.Code != sso.ErrInvalidGrant || !strings.Contains(oe.Description, "expired") {
		t.Fatalf("expired code: %v %v", oe, err)
	}
	found := false
	for _, ev := range events(t, db, audit.TypeOAuthToken) {
		if ev.Outcome == audit.Failure && ev.Reason == "code expired" {
			found = true
		}
	}
	if !found {
		t.Error("the expired code was not audited")
	}
	// Within the minute it works, once.
	code = e.code(t, cookie, v)
	e.clock.add(sso.CodeLifetime - time.Second)
	resp, oe, err := e.token(code, v)
	if err != nil || oe != nil || !strings.HasPrefix(resp.AccessToken, "access:c1:") || resp.IDToken != "id:app1:c1:n" || resp.Scope != "read:send_patient" {
		t.Fatalf("token: %+v %v %v", resp, oe, err)
	}
}

func testCodeSingleUse(t *testing.T, db storage.DB) {
	e := newEnv(t, db, true)
	cookie := e.signIn(t)
	v := strings.Repeat("w", 43)
	code := e.code(t, cookie, v)
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, oe, err := e.token(code, v)
			switch {
			case err == nil && oe == nil:
				ok.Add(1)
			case oe != nil && oe.Code == sso.ErrInvalidGrant:
				refused.Add(1)
			default:
				t.Errorf("redeem: %v %v", oe, err)
			}
		}()
	}
	wg.Wait()
	// At most one redemption succeeds. It may be none: a concurrent reuse
	// ends the session (RFC 6749 4.1.2), and when that lands before the
	// winner has issued its tokens, the winner is refused too.
	if ok.Load() > 1 || ok.Load()+refused.Load() != 8 {
		t.Fatalf("%d successes, %d refusals; want at most 1 success and the rest refused", ok.Load(), refused.Load())
	}
	// A reused code ends the session it came from (its tokens revoked).
	if _, err := e.svc.Current(context.Background(), cookie); !errors.Is(err, sso.ErrNotFound) {
		t.Errorf("session after a reused code: %v", err)
	}
	if len(e.toks.revoked) == 0 {
		t.Error("nothing revoked")
	}
}

func testTimeouts(t *testing.T, db storage.DB) {
	e := newEnv(t, db, true)
	ctx := context.Background()
	cookie := e.signIn(t)
	for range 5 { // used every 20 minutes: alive past the idle timeout
		e.clock.add(20 * time.Minute)
		if _, err := e.svc.Current(ctx, cookie); err != nil {
			t.Fatalf("session used within the idle timeout: %v", err)
		}
	}
	e.clock.add(sso.DefaultIdleTimeout)
	if _, err := e.svc.Current(ctx, cookie); !errors.Is(err, sso.ErrNotFound) {
		t.Fatalf("idle session: %v", err)
	}
	cookie = e.signIn(t)
	for range 37 { // 12h20m of use every 20 minutes: the absolute timeout ends it
		e.clock.add(20 * time.Minute)
		if _, err := e.svc.Current(ctx, cookie); err != nil {
			if !errors.Is(err, sso.ErrNotFound) {
				t.Fatal(err)
			}
			break
		}
	}
	if _, err := e.svc.Current(ctx, cookie); !errors.Is(err, sso.ErrNotFound) {
		t.Fatal("session alive past the absolute timeout")
	}
	reasons := map[string]bool{}
	for _, ev := range events(t, db, audit.TypeSessionSignOut) {
		reasons[ev.Data["end_reason"].(string)] = true
	}
	if !reasons["idle timeout"] || !reasons["absolute timeout"] {
		t.Errorf("sign-out reasons %v", reasons)
	}
}

func testLocalLogin(t *testing.T, db storage.DB) {
	ctx := context.Background()
	off := newEnv(t, db, false)
	var se *sso.SignInError
	if _, err := off.svc.LocalLogin(ctx, "c1", "whatever"); !errors.As(err, &se) {
		t.Fatalf("local sign-in while disabled: %v", err)
	}
	e := newEnv(t, db, true)
	if err := e.svc.SetLocalPassword(ctx, "c1", "short"); err == nil {
		t.Error("a short password was accepted")
	}
	if err := e.svc.SetLocalPassword(ctx, "nobody", "a long enough password"); err == nil {
		t.Error("a password for an unknown clinician was accepted")
	}
	for _, id := range []string{"c1", "inactive", "norole"} {
		if err := e.svc.SetLocalPassword(ctx, id, "a long enough password"); err != nil {
			t.Fatal(err)
		}
	}
	hash, err := e.store.PasswordHash(ctx, "c1")
	if err != nil || !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(hash, "long enough") {
		t.Fatalf("stored hash %q %v", hash, err)
	}
	for name, c := range map[string][2]string{
		"wrong password": {"c1", "not the password!"}, "no password": {"c2", "a long enough password"},
		"inactive": {"inactive", "a long enough password"}, "no role": {"norole", "a long enough password"},
	} {
		if _, err := e.svc.LocalLogin(ctx, c[0], c[1]); !errors.As(err, &se) {
			t.Errorf("%s: %v", name, err)
		}
	}
	cookie, err := e.svc.LocalLogin(ctx, "c1", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := e.svc.Current(ctx, cookie)
	if err != nil || sess.ClinicianID != "c1" || sess.Provider != sso.ProviderLocal || sess.CookieHash != sso.Hash(cookie) || sess.CookieHash == cookie {
		t.Fatalf("session %+v %v", sess, err)
	}
	var fails, oks int
	for _, ev := range events(t, db, audit.TypeSessionSignIn) {
		if ev.Outcome == audit.Failure {
			fails++
		} else {
			oks++
		}
	}
	if fails < 5 || oks < 1 {
		t.Errorf("sign-in events: %d failures, %d successes", fails, oks)
	}
}

func testDeliveryRetries(t *testing.T, db storage.DB) {
	ctx := context.Background()
	e := newEnv(t, db, true)
	cookie := e.signIn(t)
	e.code(t, cookie, strings.Repeat("x", 43)) // app1 joins
	e.fail.Store(2)
	sess, err := e.svc.Current(ctx, cookie)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.EndSessions(ctx, "c1", sess.ID); err != nil || n != 1 {
		t.Fatalf("end: %d %v", n, err)
	}
	// Attempts at 0s, +1s, +2s: the third is delivered.
	for i := range 3 {
		e.svc.DeliverDue(ctx, nil)
		if i < 2 {
			e.clock.add(time.Duration(1<<i) * time.Second)
		}
	}
	if e.hits.Load() != 3 {
		t.Fatalf("%d attempts, want 3", e.hits.Load())
	}
	e.svc.DeliverDue(ctx, nil)
	if e.hits.Load() != 3 {
		t.Fatal("delivered twice")
	}
	// An app that never answers is given up on after the bounded attempts.
	cookie = e.signIn(t)
	e.code(t, cookie, strings.Repeat("y", 43))
	e.fail.Store(100)
	e.hits.Store(0)
	if _, err := e.svc.EndSessions(ctx, "c1", ""); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		e.svc.DeliverDue(ctx, nil)
		e.clock.add(20 * time.Second)
	}
	if e.hits.Load() != sso.MaxDeliveryAttempts {
		t.Fatalf("%d attempts, want %d", e.hits.Load(), sso.MaxDeliveryAttempts)
	}
	var sent, gaveUp int
	for _, ev := range events(t, db, audit.TypeBackChannelLogoutSent) {
		if ev.Outcome == audit.Success {
			sent++
		} else if strings.HasPrefix(ev.Reason, "gave up") {
			gaveUp++
		}
	}
	if sent != 1 || gaveUp != 1 {
		t.Errorf("delivery events: %d sent, %d given up", sent, gaveUp)
	}
}

func testReplayedJTI(t *testing.T, db storage.DB) {
	s := sessiondb.New(db)
	ctx := context.Background()
	exp := time.Now().Add(time.Minute)
	if err := s.RememberJTI(ctx, "https://idp.example/", "j1", exp); err != nil {
		t.Fatal(err)
	}
	if err := s.RememberJTI(ctx, "https://idp.example/", "j1", exp); !errors.Is(err, sso.ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
	if err := s.RememberJTI(ctx, "https://other.example/", "j1", exp); err != nil {
		t.Fatalf("same jti of another issuer: %v", err)
	}
}
