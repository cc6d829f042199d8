package token_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
	"google.golang.org/grpc/codes"
)

// revocationIssuer is an issuer whose verifier honours its revocations.
func revocationIssuer(t *testing.T, c *clock) (*token.Issuer, *memStore) {
	t.Helper()
	cfg := testConfig()
	cfg.Now = c.Now
	pair, err := token.NewKeyPair(testKey())
	if err != nil {
		t.Fatal(err)
	}
	signer := token.NewFixedKey(pair)
	list := auth.NewRevocationList(nil)
	v := auth.NewVerifier(auth.VerifierOptions{Issuer: cfg.Issuer, Audience: cfg.Audience, Keys: signer, Revocations: list, CacheSize: 100, Now: c.Now})
	store := newMemStore()
	iss := token.NewIssuer(cfg, signer, store, v, list)
	list.Fetch = iss.Revocations
	return iss, store
}

// TestRevokeTakesEffectAtOnce: tokens issued before the revocation are
// refused (also from the verify cache), a token issued right after it, in
// the same second, is accepted.
func TestRevokeTakesEffectAtOnce(t *testing.T) {
	c := newClock()
	c.Set(c.Now().Add(400 * time.Millisecond))
	iss, _ := revocationIssuer(t, c)
	ctx := context.Background()
	before, err := iss.Issue(ctx, token.Request{Kind: token.KindDevice, SubjectID: "dev-1"})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := iss.Issue(ctx, token.Request{Kind: token.KindDevice, SubjectID: "dev-2"})
	if _, err := iss.Verify(ctx, before.JWT, nil); err != nil {
		t.Fatal(err) // now in the verify cache
	}
	c.Add(100 * time.Millisecond)
	cut, err := iss.Revoke(ctx, token.KindDevice, "dev-1", "device deactivated")
	if err != nil {
		t.Fatal(err)
	}
	if want := c.Now().Truncate(time.Second).Add(time.Second); !cut.Equal(want) {
		t.Fatalf("cut-off %v, want %v", cut, want)
	}
	_, err = iss.Verify(ctx, before.JWT, nil)
	if apperr.CodeOf(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := iss.Verify(ctx, other.JWT, nil); err != nil {
		t.Fatalf("another device's token: %v", err)
	}
	// Issued in the same second, after the revocation: iat is the cut-off.
	c.Add(100 * time.Millisecond)
	after, err := iss.Issue(ctx, token.Request{Kind: token.KindDevice, SubjectID: "dev-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !after.Claims.IssuedAt.Equal(cut) || !after.ExpiresAt.Equal(cut.Add(86400*time.Second)) {
		t.Fatalf("iat %v exp %v, want the cut-off %v", after.Claims.IssuedAt, after.ExpiresAt, cut)
	}
	if _, err := iss.Verify(ctx, after.JWT, nil); err != nil {
		t.Fatalf("token issued after the revocation: %v", err)
	}
	// Later tokens are issued as usual.
	c.Add(5 * time.Second)
	later, _ := iss.Issue(ctx, token.Request{Kind: token.KindDevice, SubjectID: "dev-1"})
	if !later.Claims.IssuedAt.Equal(c.Now().Truncate(time.Second)) {
		t.Fatalf("later iat %v", later.Claims.IssuedAt)
	}
}

func TestRevokeRefusals(t *testing.T) {
	iss, _ := revocationIssuer(t, newClock())
	for name, c := range map[string]struct {
		kind    token.Kind
		subject string
		reason  string
	}{
		"system":      {token.KindSystem, "activation", ""},
		"unspecified": {"", "x", ""},
		"empty id":    {token.KindPatient, "", ""},
		"bad id":      {token.KindPatient, "a\nb", ""},
		"long reason": {token.KindPatient, "p", strings.Repeat("r", 201)},
	} {
		if _, err := iss.Revoke(context.Background(), c.kind, c.subject, c.reason); apperr.CodeOf(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want INVALID_ARGUMENT", name, err)
		}
	}
}

// TestRevocationFeed: pages by cursor, a foreign cursor starts afresh,
// revocations older than the retention are left out and pruned.
func TestRevocationFeed(t *testing.T) {
	c := newClock()
	iss, store := revocationIssuer(t, c)
	ctx := context.Background()
	for i := range 3 {
		if _, err := iss.Revoke(ctx, token.KindPatient, fmt.Sprint("p", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	page, err := iss.Revocations(ctx, "")
	if err != nil || !page.Reset || page.More || len(page.Revocations) != 3 || page.Cursor != "mem:3" {
		t.Fatalf("first page %+v %v", page, err)
	}
	if page.Revocations[0].Kind != authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT || page.Revocations[0].ID != "p0" {
		t.Fatalf("entry %+v", page.Revocations[0])
	}
	page, _ = iss.Revocations(ctx, page.Cursor)
	if page.Reset || len(page.Revocations) != 0 || page.Cursor != "mem:3" {
		t.Fatalf("caught-up page %+v", page)
	}
	if _, err := iss.Revoke(ctx, token.KindClinician, "c1", ""); err != nil {
		t.Fatal(err)
	}
	page, _ = iss.Revocations(ctx, page.Cursor)
	if len(page.Revocations) != 1 || page.Revocations[0].ID != "c1" || page.Cursor != "mem:4" {
		t.Fatalf("next page %+v", page)
	}
	for _, cur := range []string{"other-store:2", "mem:x", "mem:-1", "junk"} {
		if page, _ := iss.Revocations(ctx, cur); !page.Reset || len(page.Revocations) != 4 {
			t.Errorf("cursor %q: %+v", cur, page)
		}
	}
	if _, err := iss.Revocations(ctx, strings.Repeat("x", 101)); apperr.CodeOf(err) != codes.InvalidArgument {
		t.Errorf("long cursor: %v", err)
	}
	// After the retention (longest lifetime + leeway) they no longer
	// matter: left out, then pruned.
	c.Add(86400*time.Second + 32*time.Second)
	page, _ = iss.Revocations(ctx, "")
	if len(page.Revocations) != 0 || !page.PruneBefore.After(time.Time{}) {
		t.Fatalf("old revocations listed: %+v", page)
	}
	if n, err := iss.PruneRevocations(ctx); err != nil || n != 4 || len(store.revs) != 0 {
		t.Fatalf("pruned %d (%v), %d left", n, err, len(store.revs))
	}
}

// TestExpiryWarnings: a configured secret close to its *_EXPIRES_AT is
// warned about (once per interval), an expired one is an error, a managed
// key near retirement without a successor is warned about, one with a
// successor is not.
func TestExpiryWarnings(t *testing.T) {
	c := newClock()
	var logs bytes.Buffer
	w := &token.ExpiryWatch{
		Secrets: []token.Expiring{
			{Name: "HS_KEY", ExpiresAt: c.Now().Add(10 * 24 * time.Hour)},
			{Name: "INTERNAL_AUTH_KEY", ExpiresAt: c.Now().Add(-time.Hour)},
			{Name: "KEY_ENCRYPTION_KEY", ExpiresAt: c.Now().Add(60 * 24 * time.Hour)},
		},
		Warning:           14 * 24 * time.Hour,
		RotationPeriod:    30 * 24 * time.Hour,
		PropagationPeriod: time.Hour,
		Logger:            slog.New(slog.NewTextHandler(&logs, nil)),
		Now:               c.Now,
	}
	keys := []token.KeyInfo{
		// Due in 20 minutes, no successor: the rotation is failing.
		{ID: "stuck", Source: token.SourceStore, State: token.StateActive, ActivatesAt: c.Now().Add(-30*24*time.Hour + 20*time.Minute)},
		// Due in 40 minutes with a successor: fine.
		{ID: "fine", Source: token.SourceStore, State: token.StateActive, ActivatesAt: c.Now().Add(-30*24*time.Hour + 40*time.Minute), RetiresAt: c.Now().Add(40 * time.Minute)},
		// Due in 10 days: on schedule, INFO once.
		{ID: "young", Source: token.SourceStore, State: token.StateActive, ActivatesAt: c.Now().Add(-20 * 24 * time.Hour)},
	}
	w.Check(context.Background(), keys)
	out := logs.String()
	for _, want := range []string{
		`level=WARN msg="configured secret expires soon: replace it before then" setting=HS_KEY`,
		`level=ERROR msg="configured secret has EXPIRED: replace it now" setting=INTERNAL_AUTH_KEY`,
		`level=WARN msg="signing key is due to retire but no successor is published`,
		`kid=stuck`,
		`level=INFO msg="signing key nears its scheduled retirement`,
		`kid=young`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, not := range []string{"KEY_ENCRYPTION_KEY", "kid=fine"} {
		if strings.Contains(out, not) {
			t.Errorf("log mentions %s:\n%s", not, out)
		}
	}
	// Within the hour nothing repeats; after it, the standing warnings do.
	logs.Reset()
	c.Add(30 * time.Minute)
	w.Check(context.Background(), keys)
	if logs.Len() != 0 {
		t.Errorf("repeated within the hour:\n%s", logs.String())
	}
	c.Add(31 * time.Minute)
	w.Check(context.Background(), keys)
	if out := logs.String(); !strings.Contains(out, "setting=HS_KEY") || strings.Contains(out, "kid=young") {
		t.Errorf("after an hour:\n%s", out)
	}
}
