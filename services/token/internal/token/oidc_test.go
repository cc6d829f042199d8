package token_test

import (
	"context"
	"testing"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
)

// TestSessionClinicianToken: a clinician token from a browser session
// carries the scopes asked for and the session id, and verifies like any
// other clinician token.
func TestSessionClinicianToken(t *testing.T) {
	cfg := testConfig()
	cfg.Now = nil
	iss, _, _ := newRSAIssuer(t, cfg)
	ctx := context.Background()
	out, err := iss.Issue(ctx, token.Request{Kind: token.KindClinician, SubjectID: "c1", SessionID: "s1", Scopes: []string{"read:send_patient", "read:send_patient"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := iss.Verify(ctx, out.JWT, []string{"read:send_patient"})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "c1" || p.MetadataString("session_id") != "s1" || len(p.Scopes) != 1 || p.MetadataString("referring_device_id") != "" {
		t.Errorf("principal %+v", p)
	}
	for name, req := range map[string]token.Request{
		"no scopes":           {Kind: token.KindClinician, SubjectID: "c1", SessionID: "s1"},
		"internal scope":      {Kind: token.KindClinician, SubjectID: "c1", SessionID: "s1", Scopes: []string{"internal:revoke"}},
		"device and session":  {Kind: token.KindClinician, SubjectID: "c1", SessionID: "s1", ReferringDeviceID: "d", Scopes: []string{"a"}},
		"patient session":     {Kind: token.KindPatient, SubjectID: "p1", SessionID: "s1"},
		"device token scopes": {Kind: token.KindClinician, SubjectID: "c1", ReferringDeviceID: "d", Scopes: []string{"a"}},
		"bad session id":      {Kind: token.KindClinician, SubjectID: "c1", SessionID: "s\n1", Scopes: []string{"a"}},
	} {
		if _, err := iss.Issue(ctx, req); apperr.CodeOf(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want INVALID_ARGUMENT", name, err)
		}
	}
}

// TestIssueOIDC: ID and logout tokens are signed with the published key,
// addressed to the client app, and never accepted as access tokens.
func TestIssueOIDC(t *testing.T) {
	cfg := testConfig()
	cfg.Now = nil
	iss, pair, _ := newRSAIssuer(t, cfg)
	ctx := context.Background()
	id, err := iss.IssueOIDC(ctx, token.OIDCRequest{Type: token.IDToken, Audience: "app1", Subject: "c1", SessionID: "s1", Nonce: "n1",
		AMR: []string{"pwd"}, Claims: map[string]any{"name": "Dr Who"}})
	if err != nil {
		t.Fatal(err)
	}
	header, claims := decodeJWT(t, id.JWT)
	if header["kid"] != pair.ID() || header["typ"] != "JWT" {
		t.Errorf("header %v", header)
	}
	if claims["aud"] != "app1" || claims["sub"] != "c1" || claims["sid"] != "s1" || claims["nonce"] != "n1" || claims["name"] != "Dr Who" ||
		claims["iss"] != cfg.Issuer || claims["scope"] != nil || claims["metadata"] != nil {
		t.Errorf("claims %v", claims)
	}
	if _, err := jwt.Parse(id.JWT, func(*jwt.Token) (any, error) { return &testKey().PublicKey, nil }, jwt.WithAudience("app1"), jwt.WithIssuer(cfg.Issuer)); err != nil {
		t.Errorf("ID token does not verify: %v", err)
	}
	if _, err := iss.Verify(ctx, id.JWT, nil); apperr.CodeOf(err) != codes.Unauthenticated {
		t.Errorf("an ID token was accepted as an access token: %v", err)
	}

	lt, err := iss.IssueOIDC(ctx, token.OIDCRequest{Type: token.LogoutToken, Audience: "app1", Subject: "c1", SessionID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	header, claims = decodeJWT(t, lt.JWT)
	events, _ := claims["events"].(map[string]any)
	if header["typ"] != "logout+jwt" || events[token.BackChannelLogoutEvent] == nil || claims["nonce"] != nil || claims["jti"] == "" {
		t.Errorf("logout token %v %v", header, claims)
	}

	for name, req := range map[string]token.OIDCRequest{
		"no type":              {Audience: "app1", Subject: "c1"},
		"suite audience":       {Type: token.IDToken, Audience: cfg.Audience, Subject: "c1"},
		"internal audience":    {Type: token.IDToken, Audience: auth.InternalIssuer, Subject: "c1"},
		"no subject":           {Type: token.IDToken, Audience: "app1"},
		"reserved claim":       {Type: token.IDToken, Audience: "app1", Subject: "c1", Claims: map[string]any{"scope": "admin"}},
		"metadata claim":       {Type: token.IDToken, Audience: "app1", Subject: "c1", Claims: map[string]any{"metadata": map[string]any{"system_id": "x"}}},
		"logout with nonce":    {Type: token.LogoutToken, Audience: "app1", Subject: "c1", Nonce: "n"},
		"logout without names": {Type: token.LogoutToken, Audience: "app1"},
	} {
		if _, err := iss.IssueOIDC(ctx, req); apperr.CodeOf(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want INVALID_ARGUMENT", name, err)
		}
	}

	hs, err := token.NewHSSigner([]byte("a-legacy-shared-key-of-reasonable-length"))
	if err != nil {
		t.Fatal(err)
	}
	legacy := token.NewIssuer(cfg, hs, newMemStore(), nil, nil)
	if _, err := legacy.IssueOIDC(ctx, token.OIDCRequest{Type: token.IDToken, Audience: "app1", Subject: "c1"}); apperr.CodeOf(err) != codes.FailedPrecondition {
		t.Errorf("HS512: %v, want FAILED_PRECONDITION", err)
	}
}
