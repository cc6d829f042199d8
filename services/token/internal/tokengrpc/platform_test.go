package tokengrpc_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/pkg/service/servicetest"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func kidOf(t *testing.T, raw string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.SplitN(raw, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// asServiceAt authenticates a call as an internal service at the test
// clock's time (InternalCredentials use the real clock).
func asServiceAt(now time.Time, name string, scopes ...string) grpc.CallOption {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{
		"iss": auth.InternalIssuer, "aud": auth.InternalIssuer, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		"scope": strings.Join(scopes, " "), "metadata": map[string]any{"system_id": name},
	}).SignedString(internalKey)
	if err != nil {
		panic(err)
	}
	return grpc.PerRPCCredentials(staticToken(tok))
}

type staticToken string

func (s staticToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(s)}, nil
}

func (staticToken) RequireTransportSecurity() bool { return false }

func (e *env) issueAt(t *testing.T, now time.Time, req *tokenv1.IssueTokenRequest) *tokenv1.IssueTokenResponse {
	t.Helper()
	resp, err := e.client.IssueToken(context.Background(), req, asServiceAt(now, "activation", "internal:issue_token"))
	if err != nil {
		t.Fatalf("IssueToken: %v", err)
	}
	return resp
}

// TestRotateKeysRPC: only an operator (system token with admin:keys) may
// list and rotate; a rotation publishes the next key at once; a second
// rotation under way changes nothing.
func TestRotateKeysRPC(t *testing.T) {
	e := start(t, options{managed: true})
	ctx := context.Background()
	_, err := e.client.RotateKeys(ctx, &tokenv1.RotateKeysRequest{})
	wantCode(t, err, codes.Unauthenticated)
	_, err = e.client.RotateKeys(ctx, &tokenv1.RotateKeysRequest{}, asService("dhosctl", "read:x"))
	wantCode(t, err, codes.PermissionDenied)
	patient := e.issue(t, patientReq("p"))
	_, err = e.client.ListKeys(bearer(patient.GetJwt()), &tokenv1.ListKeysRequest{})
	wantCode(t, err, codes.PermissionDenied)

	admin := asService("dhosctl", "admin:keys")
	list, err := e.client.ListKeys(ctx, &tokenv1.ListKeysRequest{}, admin)
	if err != nil || len(list.GetKeys()) != 1 || list.GetKeys()[0].GetState() != tokenv1.KeyState_KEY_STATE_ACTIVE ||
		list.GetKeys()[0].GetSource() != "store" || list.GetKeys()[0].GetAlg() != "ES256" || list.GetKeys()[0].GetRetiresAt() != "" {
		t.Fatalf("ListKeys: %v %v", list, err)
	}
	r, err := e.client.RotateKeys(ctx, &tokenv1.RotateKeysRequest{}, admin)
	if err != nil || !r.GetCreated() || r.GetNext().GetState() != tokenv1.KeyState_KEY_STATE_NEXT || len(r.GetKeys()) != 2 {
		t.Fatalf("RotateKeys: %v %v", r, err)
	}
	if r.GetKeys()[0].GetRetiresAt() != r.GetNext().GetActivatesAt() || r.GetKeys()[0].GetRemovedAt() == "" {
		t.Errorf("retiring key %v, next %v", r.GetKeys()[0], r.GetNext())
	}
	jwks, err := e.client.GetJWKS(ctx, &tokenv1.GetJWKSRequest{})
	if err != nil || len(jwks.GetKeys()) != 2 || jwks.GetMaxAgeSeconds() != 900 {
		t.Fatalf("GetJWKS after rotation: %v %v", jwks, err)
	}
	again, err := e.client.RotateKeys(ctx, &tokenv1.RotateKeysRequest{}, admin)
	if err != nil || again.GetCreated() || again.GetNext().GetKid() != r.GetNext().GetKid() {
		t.Fatalf("second RotateKeys: %v %v", again, err)
	}
	// New tokens are still signed by the active key.
	if kid := kidOf(t, e.issue(t, patientReq("p")).GetJwt()); kid != list.GetKeys()[0].GetKid() {
		t.Errorf("signed by %s during the propagation period", kid)
	}

	iss, err := e.client.GetIssuer(ctx, &tokenv1.GetIssuerRequest{})
	if err != nil || iss.GetIssuer() != testIssuer || iss.GetAudience() != testAudience || strings.Join(iss.GetSigningAlgorithms(), ",") != "ES256" {
		t.Fatalf("GetIssuer: %v %v", iss, err)
	}
}

func TestRotateKeysRefusedForConfiguredKeys(t *testing.T) {
	for name, o := range map[string]options{"file key": {}, "HS512": {hsKey: []byte("legacy-polaris-shared-key"), hsIssuer: "polaris"}} {
		t.Run(name, func(t *testing.T) {
			e := start(t, o)
			_, err := e.client.RotateKeys(context.Background(), &tokenv1.RotateKeysRequest{}, asService("dhosctl", "admin:keys"))
			wantCode(t, err, codes.FailedPrecondition)
		})
	}
}

// TestRotatedOutKeyVerifiesUntilExpiry: a token signed before a rotation
// verifies after the new key has taken over, until it expires; then it
// fails. The retired key stays in the JWK set meanwhile.
func TestRotatedOutKeyVerifiesUntilExpiry(t *testing.T) {
	ctx := context.Background()
	c2 := servicetest.NewClock(time.Now())
	e2 := start(t, options{managed: true, clock: c2.Now})
	if _, err := e2.client.RotateKeys(ctx, &tokenv1.RotateKeysRequest{}, asService("dhosctl", "admin:keys")); err != nil {
		t.Fatal(err)
	}
	// Signed by the old key a minute before it retires, verified after.
	c2.Add(time.Hour - time.Minute)
	before := e2.issueAt(t, c2.Now(), patientReq("p1"))
	c2.Add(2 * time.Minute)
	after := e2.issueAt(t, c2.Now(), patientReq("p2"))
	if kidOf(t, before.GetJwt()) == kidOf(t, after.GetJwt()) {
		t.Fatal("the key did not change at the end of the propagation period")
	}
	for _, tok := range []string{before.GetJwt(), after.GetJwt()} {
		if _, err := e2.client.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: tok}); err != nil {
			t.Fatalf("VerifyToken after the rotation: %v", err)
		}
	}
	jwks, _ := e2.client.GetJWKS(ctx, &tokenv1.GetJWKSRequest{})
	if len(jwks.GetKeys()) != 2 {
		t.Fatalf("%d keys published", len(jwks.GetKeys()))
	}
	// 900 s after it was issued (and the 30 s leeway) the old token fails.
	c2.Add(900*time.Second + 31*time.Second)
	_, err := e2.client.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: before.GetJwt()})
	wantCode(t, err, codes.Unauthenticated)
	if !strings.Contains(status.Convert(err).Message(), "expired") {
		t.Errorf("message %q", status.Convert(err).Message())
	}
}

// TestRevokePrincipalRPC: only internal services with internal:revoke may
// revoke; a revoked device's token is refused by VerifyToken at once, and
// by a remote verifier (what other services run) after its next poll.
func TestRevokePrincipalRPC(t *testing.T) {
	e := start(t, options{managed: true})
	ctx := context.Background()
	dev := e.issue(t, &tokenv1.IssueTokenRequest{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE, SubjectId: "dev-1"})
	req := &tokenv1.RevokePrincipalRequest{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE, PrincipalId: "dev-1", Reason: "device deactivated"}

	// The remote verifier another service would run, polling over gRPC.
	remote := auth.NewRevocationList(service.RevocationFetcher(e.client))
	_, err := remote.Fetch(ctx, "")
	wantCode(t, err, codes.Unauthenticated)
	remoteClient := tokenv1.NewTokenServiceClient(e.conn)
	remote = auth.NewRevocationList(func(ctx context.Context, cursor string) (auth.RevocationPage, error) {
		return service.RevocationFetcher(withCreds{remoteClient})(ctx, cursor)
	})
	rv := auth.NewVerifier(auth.VerifierOptions{Issuer: testIssuer, Audience: testAudience, Keys: e.signer, Revocations: remote, CacheSize: 10})
	if err := remote.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rv.Verify(ctx, dev.GetJwt()); err != nil {
		t.Fatal(err)
	}

	_, err = e.client.RevokePrincipal(ctx, req)
	wantCode(t, err, codes.Unauthenticated)
	_, err = e.client.RevokePrincipal(ctx, req, asService("device", "internal:issue_token"))
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.client.RevokePrincipal(bearer(dev.GetJwt()), req)
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.client.RevokePrincipal(ctx, &tokenv1.RevokePrincipalRequest{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM, PrincipalId: "x"}, asService("device", "internal:revoke"))
	wantCode(t, err, codes.InvalidArgument)

	resp, err := e.client.RevokePrincipal(ctx, req, asService("device", "internal:revoke"))
	if err != nil || resp.GetRevokedBefore() == "" {
		t.Fatalf("RevokePrincipal: %v %v", resp, err)
	}
	_, err = e.client.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: dev.GetJwt()})
	wantCode(t, err, codes.Unauthenticated)
	if msg := status.Convert(err).Message(); msg != "invalid token: revoked" {
		t.Errorf("message %q", msg)
	}

	// The remote verifier still has the token cached until it polls.
	if err := remote.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rv.Verify(ctx, dev.GetJwt()); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("remote verifier after its poll: %v", err)
	}

	// ListRevocations needs read:token_revocations from a system caller.
	_, err = e.client.ListRevocations(ctx, &tokenv1.ListRevocationsRequest{}, asService("session", "read:x"))
	wantCode(t, err, codes.PermissionDenied)
	page, err := e.client.ListRevocations(ctx, &tokenv1.ListRevocationsRequest{}, asService("session", service.ScopeReadRevocations))
	if err != nil || !page.GetFromStart() || len(page.GetRevocations()) != 1 || page.GetRevocations()[0].GetPrincipalId() != "dev-1" || page.GetCursor() == "" {
		t.Fatalf("ListRevocations: %v %v", page, err)
	}
	// A new token for the device, issued after the revocation, verifies.
	fresh := e.issue(t, &tokenv1.IssueTokenRequest{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE, SubjectId: "dev-1"})
	if _, err := e.client.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: fresh.GetJwt()}); err != nil {
		t.Fatalf("token issued after the revocation: %v", err)
	}
}

// withCreds calls ListRevocations as the session service would.
type withCreds struct{ tokenv1.TokenServiceClient }

func (w withCreds) ListRevocations(ctx context.Context, in *tokenv1.ListRevocationsRequest, _ ...grpc.CallOption) (*tokenv1.ListRevocationsResponse, error) {
	return w.TokenServiceClient.ListRevocations(ctx, in, asService("session", service.ScopeReadRevocations))
}
