package token_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
)

func newRSAIssuer(t *testing.T, cfg token.Config) (*token.Issuer, *token.KeyPair, *memStore) {
	t.Helper()
	pair, err := token.NewKeyPair(testKey())
	if err != nil {
		t.Fatal(err)
	}
	signer := token.NewFixedKey(pair)
	v := auth.NewVerifier(auth.VerifierOptions{Issuer: cfg.Issuer, Audience: cfg.Audience, Keys: signer, Now: cfg.Now})
	store := newMemStore()
	return token.NewIssuer(cfg, signer, store, v, nil), pair, store
}

// TestIssueClaims checks each kind's claims exactly as the contract fixes
// them.
func TestIssueClaims(t *testing.T) {
	cfg := testConfig()
	iss, signer, store := newRSAIssuer(t, cfg)
	cases := []struct {
		req      token.Request
		metadata map[string]any
		scopes   []string
		lifetime time.Duration
	}{
		{token.Request{Kind: token.KindPatient, SubjectID: "patient-1"},
			map[string]any{"patient_id": "patient-1"}, cfg.PatientScopes, 900 * time.Second},
		{token.Request{Kind: token.KindDevice, SubjectID: "device-1"},
			map[string]any{"device_id": "device-1"}, cfg.DeviceScopes, 86400 * time.Second},
		{token.Request{Kind: token.KindClinician, SubjectID: "clinician-1", ReferringDeviceID: "device-7"},
			map[string]any{"clinician_id": "clinician-1", "referring_device_id": "device-7"}, cfg.ClinicianScopes, 900 * time.Second},
		{token.Request{Kind: token.KindSystem, SubjectID: "dhos-robot", Scopes: []string{"read:gdm_patient", "write:gdm_message"}},
			map[string]any{"system_id": "dhos-robot"}, []string{"read:gdm_patient", "write:gdm_message"}, 3600 * time.Second},
	}
	for _, c := range cases {
		t.Run(string(c.req.Kind), func(t *testing.T) {
			out, err := iss.Issue(context.Background(), c.req)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			header, claims := decodeJWT(t, out.JWT)
			if header["alg"] != "RS256" || header["typ"] != "JWT" {
				t.Errorf("header = %v, want alg RS256, typ JWT", header)
			}
			if kid, _ := header["kid"].(string); kid == "" || kid != signer.ID() {
				t.Errorf("kid = %v, want %s", header["kid"], signer.ID())
			}
			keys := slices.Sorted(maps.Keys(claims))
			want := []string{"aud", "exp", "iat", "iss", "jti", "metadata", "scope", "sub"}
			if !slices.Equal(keys, want) {
				t.Errorf("claims = %v, want exactly %v", keys, want)
			}
			if aud, ok := claims["aud"].(string); !ok || aud != cfg.Audience {
				t.Errorf("aud = %#v, want the string %q", claims["aud"], cfg.Audience)
			}
			if claims["iss"] != cfg.Issuer {
				t.Errorf("iss = %v, want %s", claims["iss"], cfg.Issuer)
			}
			if claims["sub"] != c.req.SubjectID {
				t.Errorf("sub = %v, want %s", claims["sub"], c.req.SubjectID)
			}
			if scope, _ := claims["scope"].(string); scope != strings.Join(c.scopes, " ") {
				t.Errorf("scope = %q, want %q", scope, strings.Join(c.scopes, " "))
			}
			if md, _ := claims["metadata"].(map[string]any); !maps.Equal(md, c.metadata) {
				t.Errorf("metadata = %v, want %v", claims["metadata"], c.metadata)
			}
			iat, _ := claims["iat"].(float64)
			exp, _ := claims["exp"].(float64)
			if int64(iat) != fixedNow.Unix() {
				t.Errorf("iat = %v, want %d", iat, fixedNow.Unix())
			}
			if time.Duration(exp-iat)*time.Second != c.lifetime {
				t.Errorf("exp - iat = %vs, want %v", exp-iat, c.lifetime)
			}
			jti, _ := claims["jti"].(string)
			if u, err := uuid.Parse(jti); err != nil || u.Version() != 4 || jti != out.ID {
				t.Errorf("jti = %q (%v), want a random UUID equal to the returned id %s", jti, err, out.ID)
			}
			if !out.ExpiresAt.Equal(time.Unix(int64(exp), 0)) {
				t.Errorf("ExpiresAt = %v, want the exp claim %v", out.ExpiresAt, time.Unix(int64(exp), 0))
			}
			rec, err := store.Get(context.Background(), out.ID)
			if err != nil {
				t.Fatalf("issued token not recorded: %v", err)
			}
			if rec.Kind != c.req.Kind || rec.Subject != c.req.SubjectID || !rec.IssuedAt.Equal(time.Unix(int64(iat), 0)) || !rec.ExpiresAt.Equal(out.ExpiresAt) {
				t.Errorf("record = %+v", rec)
			}
		})
	}
}

// TestIssuedTokenVerifies: the suite's own verifier accepts what the
// issuer signs and sees the principal.
func TestIssuedTokenVerifies(t *testing.T) {
	cfg := testConfig()
	cfg.Now = nil
	iss, _, _ := newRSAIssuer(t, cfg)
	out, err := iss.Issue(context.Background(), token.Request{Kind: token.KindClinician, SubjectID: "c1", ReferringDeviceID: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := iss.Verify(context.Background(), out.JWT, []string{"read:send_clinician"})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if p.ID != "c1" || p.TokenID != out.ID || p.MetadataString("referring_device_id") != "d1" {
		t.Errorf("principal = %+v", p)
	}
	_, err = iss.Verify(context.Background(), out.JWT, []string{"write:send_device"})
	if apperr.CodeOf(err) != codes.PermissionDenied {
		t.Errorf("missing scope: got %v, want PERMISSION_DENIED", err)
	}
	_, err = iss.Verify(context.Background(), out.JWT+"x", nil)
	if apperr.CodeOf(err) != codes.Unauthenticated {
		t.Errorf("tampered: got %v, want UNAUTHENTICATED", err)
	}
	_, err = iss.Verify(context.Background(), out.JWT, []string{""})
	if apperr.CodeOf(err) != codes.InvalidArgument {
		t.Errorf("empty required scope: got %v, want INVALID_ARGUMENT", err)
	}
}

// TestIssueHS512 signs with the legacy shared key: HS512, no kid, no
// published keys.
func TestIssueHS512(t *testing.T) {
	cfg := testConfig()
	cfg.Issuer, cfg.Audience = "polaris-legacy", "polaris-legacy"
	key := []byte("a-legacy-shared-key-of-reasonable-length")
	signer, err := token.NewHSSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	if signer.Alg() != "HS512" || len(signer.PublicKeys()) != 0 {
		t.Fatalf("alg %s, %d public keys", signer.Alg(), len(signer.PublicKeys()))
	}
	iss := token.NewIssuer(cfg, signer, newMemStore(), nil, nil)
	out, err := iss.Issue(context.Background(), token.Request{Kind: token.KindPatient, SubjectID: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	header, claims := decodeJWT(t, out.JWT)
	if header["alg"] != "HS512" || header["kid"] != nil {
		t.Errorf("header = %v, want HS512 without kid", header)
	}
	if claims["iss"] != "polaris-legacy" || claims["aud"] != "polaris-legacy" {
		t.Errorf("iss %v aud %v, want both polaris-legacy", claims["iss"], claims["aud"])
	}
	_, err = jwt.Parse(out.JWT, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"HS512"}), jwt.WithIssuer("polaris-legacy"), jwt.WithAudience("polaris-legacy"),
		jwt.WithTimeFunc(func() time.Time { return fixedNow }))
	if err != nil {
		t.Errorf("golang-jwt rejects the HS512 token: %v", err)
	}
	// The suite's verifier accepts it as a legacy token.
	v := auth.NewVerifier(auth.VerifierOptions{HSKey: key, HSIssuer: "polaris-legacy", Now: func() time.Time { return fixedNow }})
	p, err := v.Verify(context.Background(), out.JWT)
	if err != nil || p.ID != "p1" {
		t.Errorf("verifier: %v, %+v", err, p)
	}
}

// TestIssueRefusals: bad requests are INVALID_ARGUMENT and record nothing.
func TestIssueRefusals(t *testing.T) {
	iss, _, store := newRSAIssuer(t, testConfig())
	cases := map[string]token.Request{
		"unspecified kind":          {SubjectID: "x"},
		"unknown kind":              {Kind: "robot", SubjectID: "x"},
		"empty subject":             {Kind: token.KindPatient},
		"subject too long":          {Kind: token.KindPatient, SubjectID: strings.Repeat("a", 201)},
		"subject newline":           {Kind: token.KindPatient, SubjectID: "a\nb"},
		"subject NUL":               {Kind: token.KindDevice, SubjectID: "a\x00b"},
		"subject DEL":               {Kind: token.KindDevice, SubjectID: "a\x7fb"},
		"subject C1 control":        {Kind: token.KindDevice, SubjectID: "a\u0085b"},
		"subject invalid UTF-8":     {Kind: token.KindDevice, SubjectID: "a\xffb"},
		"clinician without device":  {Kind: token.KindClinician, SubjectID: "c"},
		"clinician bad device":      {Kind: token.KindClinician, SubjectID: "c", ReferringDeviceID: "d\tx"},
		"patient with device":       {Kind: token.KindPatient, SubjectID: "p", ReferringDeviceID: "d"},
		"patient with scopes":       {Kind: token.KindPatient, SubjectID: "p", Scopes: []string{"read:x"}},
		"system without scopes":     {Kind: token.KindSystem, SubjectID: "s"},
		"system empty scope list":   {Kind: token.KindSystem, SubjectID: "s", Scopes: []string{}},
		"system internal scope":     {Kind: token.KindSystem, SubjectID: "s", Scopes: []string{"read:x", "internal:issue_token"}},
		"system other internal":     {Kind: token.KindSystem, SubjectID: "s", Scopes: []string{"internal:anything"}},
		"system empty scope":        {Kind: token.KindSystem, SubjectID: "s", Scopes: []string{""}},
		"system scope with space":   {Kind: token.KindSystem, SubjectID: "s", Scopes: []string{"read:x write:y"}},
		"system scope too long":     {Kind: token.KindSystem, SubjectID: "s", Scopes: []string{strings.Repeat("s", 201)}},
		"system too many scopes":    {Kind: token.KindSystem, SubjectID: "s", Scopes: slices.Repeat([]string{"read:x"}, 101)},
		"system subject whitespace": {Kind: token.KindSystem, SubjectID: "s\r", Scopes: []string{"read:x"}},
	}
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := iss.Issue(context.Background(), req)
			if apperr.CodeOf(err) != codes.InvalidArgument {
				t.Fatalf("got %v, want INVALID_ARGUMENT", err)
			}
		})
	}
	if store.len() != 0 {
		t.Errorf("%d tokens recorded for refused requests", store.len())
	}
	// A subject of exactly 200 bytes is fine.
	if _, err := iss.Issue(context.Background(), token.Request{Kind: token.KindPatient, SubjectID: strings.Repeat("é", 100)}); err != nil {
		t.Errorf("200-byte subject: %v", err)
	}
}

func TestSystemScopesDeduplicated(t *testing.T) {
	iss, _, _ := newRSAIssuer(t, testConfig())
	out, err := iss.Issue(context.Background(), token.Request{Kind: token.KindSystem, SubjectID: "s", Scopes: []string{"b", "a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(out.Claims.Scopes, " "); got != "b a" {
		t.Errorf("scopes = %q, want %q", got, "b a")
	}
}

func TestIssueRetriesDuplicateID(t *testing.T) {
	iss, _, store := newRSAIssuer(t, testConfig())
	store.dupes = 1
	out, err := iss.Issue(context.Background(), token.Request{Kind: token.KindPatient, SubjectID: "p"})
	if err != nil {
		t.Fatalf("one collision: %v", err)
	}
	if _, err := store.Get(context.Background(), out.ID); err != nil {
		t.Errorf("returned token not recorded: %v", err)
	}
	store.dupes = 10
	if _, err := iss.Issue(context.Background(), token.Request{Kind: token.KindPatient, SubjectID: "p"}); !errors.Is(err, token.ErrDuplicateID) {
		t.Errorf("repeated collisions: got %v", err)
	}
}

func TestIssueStoreFailure(t *testing.T) {
	iss, _, store := newRSAIssuer(t, testConfig())
	boom := errors.New("database on fire")
	store.err = boom
	if _, err := iss.Issue(context.Background(), token.Request{Kind: token.KindPatient, SubjectID: "p"}); !errors.Is(err, boom) {
		t.Errorf("got %v, want the store's error", err)
	}
}

func TestDropData(t *testing.T) {
	cfg := testConfig()
	iss, _, store := newRSAIssuer(t, cfg)
	if _, err := iss.Issue(context.Background(), token.Request{Kind: token.KindPatient, SubjectID: "p"}); err != nil {
		t.Fatal(err)
	}
	err := iss.DropData(context.Background())
	if apperr.CodeOf(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "drop data is not allowed") {
		t.Fatalf("not allowed: got %v", err)
	}
	if store.len() != 1 {
		t.Fatal("refused DropData emptied the store")
	}
	cfg.AllowDropData = true
	iss, _, store = newRSAIssuer(t, cfg)
	if _, err := iss.Issue(context.Background(), token.Request{Kind: token.KindPatient, SubjectID: "p"}); err != nil {
		t.Fatal(err)
	}
	if err := iss.DropData(context.Background()); err != nil {
		t.Fatalf("allowed: %v", err)
	}
	if store.len() != 0 {
		t.Error("DropData left records")
	}
}
