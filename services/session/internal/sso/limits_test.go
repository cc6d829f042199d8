package sso_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/services/session/internal/sso"
)

// withLimits counts attempts in the store's rate_limit table (emptied
// first: the subtests share a database) on the test's clock.
func withLimits(t *testing.T, db storage.DB, perAddress, perPrincipal int) func(*sso.Config, *env) {
	return func(c *sso.Config, e *env) {
		if _, err := db.Exec(context.Background(), `DELETE FROM rate_limit`); err != nil {
			t.Fatal(err)
		}
		c.Limits = sso.Limits{
			PerAddress:   ratelimit.Limit{Max: perAddress, Window: 15 * time.Minute},
			PerPrincipal: ratelimit.Limit{Max: perPrincipal, Window: 15 * time.Minute},
		}
		c.Limiter = ratelimit.New(db).WithClock(e.clock.now)
	}
}

// from is a request context from a client address.
func from(addr string) context.Context {
	return ratelimit.WithAddress(context.Background(), netip.MustParseAddr(addr))
}

// wantLimited checks that err is a refusal by the named limit with a
// Retry-After within the window, and returns the wait.
func wantLimited(t *testing.T, err error, limit string) time.Duration {
	t.Helper()
	var le *sso.LimitedError
	if !errors.As(err, &le) {
		t.Fatalf("want a refusal by %s, got %v", limit, err)
	}
	if le.Limit != limit || le.RetryAfter < time.Second || le.RetryAfter > 30*time.Minute || le.Seconds() < 1 {
		t.Fatalf("refused by %s after %v, want %s", le.Limit, le.RetryAfter, limit)
	}
	return le.RetryAfter
}

// refusals counts the audited refusals by a limit of an event type.
func refusals(t *testing.T, db storage.DB, typ, limit string) int {
	t.Helper()
	n := 0
	for _, ev := range events(t, db, typ) {
		if ev.Outcome == audit.Failure && ev.Reason == "too many failed attempts" && ev.Data["limit"] == limit {
			n++
		}
	}
	return n
}

func testLocalLoginLimits(t *testing.T, db storage.DB) {
	e := newEnv(t, db, true, withLimits(t, db, 5, 3))
	const right = "a long enough password"
	if err := e.svc.SetLocalPassword(context.Background(), "c1", right); err != nil {
		t.Fatal(err)
	}
	var se *sso.SignInError
	a, b := from("192.0.2.1"), from("192.0.2.2")

	// Below the limit a success is not blocked, and is not counted.
	for range 2 {
		if _, err := e.svc.LocalLogin(a, "c1", "not the password!"); !errors.As(err, &se) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, err := e.svc.LocalLogin(a, "c1", right); err != nil {
		t.Fatalf("the right password after 2 failures: %v", err)
	}
	// The third failure fills c1's limit (3), from whatever address: the
	// next attempt is refused before the password is checked, the right
	// one included, and the refusal itself is not counted.
	if _, err := e.svc.LocalLogin(b, "c1", "not the password!"); !errors.As(err, &se) {
		t.Fatalf("third failure: %v", err)
	}
	_, err := e.svc.LocalLogin(b, "c1", right)
	wait := wantLimited(t, err, sso.LimitLocalLoginUser)
	wantLimited(t, func() error { _, err := e.svc.LocalLogin(a, "c1", right); return err }(), sso.LimitLocalLoginUser)
	if n := refusals(t, db, audit.TypeSessionSignIn, sso.LimitLocalLoginUser); n != 2 {
		t.Errorf("%d audited refusals, want 2", n)
	}
	// Retry-After says when an attempt is taken again.
	e.clock.add(wait)
	if _, err := e.svc.LocalLogin(b, "c1", right); err != nil {
		t.Fatalf("after Retry-After (%v): %v", wait, err)
	}

	// Per address: five failures (five names) from one address; the
	// sixth attempt from it is refused, another address is not.
	c := from("2001:db8:1:2::7")
	for i := range 5 {
		if _, err := e.svc.LocalLogin(c, "nobody"+string(rune('a'+i)), right); !errors.As(err, &se) {
			t.Fatalf("unknown name: %v", err)
		}
	}
	// The same /64 is the same client.
	_, err = e.svc.LocalLogin(from("2001:db8:1:2::8"), "c1", right)
	wantLimited(t, err, sso.LimitLocalLoginAddress)
	if _, err := e.svc.LocalLogin(from("192.0.2.3"), "nobodyf", right); !errors.As(err, &se) {
		t.Fatalf("another address: %v", err)
	}
	if n := refusals(t, db, audit.TypeSessionSignIn, sso.LimitLocalLoginAddress); n != 1 {
		t.Errorf("%d audited address refusals, want 1", n)
	}

	// Refusals that are not wrong passwords do not count: an inactive
	// clinician with the right password, ten times.
	if err := e.svc.SetLocalPassword(context.Background(), "inactive", right); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := e.svc.LocalLogin(from("192.0.2.4"), "inactive", right); !errors.As(err, &se) || !strings.Contains(se.Message, "not active") {
			t.Fatalf("inactive: %v", err)
		}
	}
}

// tokenAt redeems a code from ctx with app1's secret (or another).
func (e *env) tokenAt(ctx context.Context, code, verifier, secret string) (*sso.TokenResponse, *sso.OAuthError, error) {
	return e.svc.Token(ctx, sso.TokenRequest{
		GrantType: "authorization_code", Code: code, RedirectURI: "https://app1.example/cb", CodeVerifier: verifier,
	}.WithBasic("app1", secret))
}

func testTokenLimits(t *testing.T, db storage.DB) {
	e := newEnv(t, db, true, withLimits(t, db, 5, 3))
	cookie := e.signIn(t)
	v := strings.Repeat("v", 43)
	a, b := from("198.51.100.1"), from("198.51.100.2")

	// Requests refused for what is not a wrong secret do not count.
	for range 5 {
		if _, oe, err := e.tokenAt(a, e.code(t, cookie, v), "", clientSecret); err != nil || oe == nil || oe.Code != sso.ErrInvalidRequest {
			t.Fatalf("no code_verifier: %v %v", oe, err)
		}
	}
	// Two failed client authentications, then a redemption that works.
	for range 2 {
		if _, oe, err := e.tokenAt(a, "some-code", v, "wrong secret"); err != nil || oe == nil || oe.Code != sso.ErrInvalidClient {
			t.Fatalf("wrong secret: %v %v", oe, err)
		}
	}
	if resp, oe, err := e.tokenAt(a, e.code(t, cookie, v), v, clientSecret); err != nil || oe != nil || resp.AccessToken == "" {
		t.Fatalf("a redemption after 2 failures: %v %v", oe, err)
	}
	// A third failure (an unknown code) fills app1's limit: from any
	// address, even a good redemption is refused with 429.
	if _, oe, err := e.tokenAt(b, "unknown-code", v, clientSecret); err != nil || oe == nil || oe.Code != sso.ErrInvalidGrant {
		t.Fatalf("unknown code: %v %v", oe, err)
	}
	code := e.code(t, cookie, v)
	_, oe, err := e.tokenAt(b, code, v, clientSecret)
	if err != nil || oe == nil || oe.Code != sso.ErrTemporarilyUnavailable || oe.Status != http.StatusTooManyRequests ||
		oe.RetryAfter < time.Second || oe.RetryAfter > 30*time.Minute || !strings.Contains(oe.Description, "too many failed attempts") {
		t.Fatalf("over the limit: %+v %v", oe, err)
	}
	if n := refusals(t, db, audit.TypeOAuthToken, sso.LimitTokenClient); n != 1 {
		t.Errorf("%d audited refusals, want 1", n)
	}
	// After Retry-After a redemption is taken again.
	e.clock.add(oe.RetryAfter)
	if resp, oe, err := e.tokenAt(b, e.code(t, cookie, v), v, clientSecret); err != nil || oe != nil || resp.AccessToken == "" {
		t.Fatalf("after Retry-After: %v %v", oe, err)
	}

	// Per address: five unknown clients from one address.
	c := from("203.0.113.9")
	for i := range 5 {
		_, oe, err := e.svc.Token(c, sso.TokenRequest{GrantType: "authorization_code", Code: "x", CodeVerifier: v}.WithBasic("nobody"+string(rune('a'+i)), "s"))
		if err != nil || oe == nil || oe.Code != sso.ErrInvalidClient {
			t.Fatalf("unknown client: %v %v", oe, err)
		}
	}
	_, oe, err = e.tokenAt(c, e.code(t, cookie, v), v, clientSecret)
	if err != nil || oe == nil || oe.Status != http.StatusTooManyRequests {
		t.Fatalf("sixth from the address: %+v %v", oe, err)
	}
	if n := refusals(t, db, audit.TypeOAuthToken, sso.LimitTokenAddress); n != 1 {
		t.Errorf("%d audited address refusals, want 1", n)
	}
}

// testLimitsOff: RATE_LIMIT_*=off (the end-to-end tests) counts nothing.
func testLimitsOff(t *testing.T, db storage.DB) {
	e := newEnv(t, db, true, withLimits(t, db, 0, 0))
	if err := e.svc.SetLocalPassword(context.Background(), "c1", "a long enough password"); err != nil {
		t.Fatal(err)
	}
	a := from("192.0.2.9")
	for range 12 {
		if _, err := e.svc.LocalLogin(a, "c1", "not the password!"); errors.As(err, new(*sso.LimitedError)) {
			t.Fatalf("limited while off: %v", err)
		}
	}
	if _, err := e.svc.LocalLogin(a, "c1", "a long enough password"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM rate_limit`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d counters stored while off (%v)", n, err)
	}
}
