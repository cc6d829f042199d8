package auth

import (
	"context"
	"testing"
	"time"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	sessionv1 "github.com/dhosauth/dhosauth/gen/go/dhos/session/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func TestGuard(t *testing.T) {
	v, _ := newTestVerifier(t)
	rules := Rules{
		"/s/Public":  {Public: true},
		"/s/Scoped":  {Scopes: []string{"read:x"}},
		"/s/Devices": {PrincipalKinds: []authv1.PrincipalKind{authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE}},
		"/s/Dev":     {Public: true, NonProduction: true},
	}
	tok := func(md map[string]any, scope string) string {
		return sign(t, jwt.SigningMethodHS512, hsKey, claims(hsIssuer, hsIssuer, md, scope, time.Minute), "")
	}
	withTok := func(s string) context.Context {
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+s))
	}
	device := tok(map[string]any{"device_id": "d1"}, "read:x")
	patient := tok(map[string]any{"patient_id": "p1"}, "read:y")
	cases := []struct {
		name, method string
		ctx          context.Context
		prod         bool
		want         codes.Code
	}{
		{"public without token", "/s/Public", context.Background(), false, codes.OK},
		{"no token", "/s/Scoped", context.Background(), false, codes.Unauthenticated},
		{"not bearer", "/s/Scoped", metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Basic abc")), false, codes.Unauthenticated},
		{"bad token", "/s/Scoped", withTok("x.y.z"), false, codes.Unauthenticated},
		{"scope ok", "/s/Scoped", withTok(device), false, codes.OK},
		{"scope missing", "/s/Scoped", withTok(patient), false, codes.PermissionDenied},
		{"kind ok", "/s/Devices", withTok(device), false, codes.OK},
		{"kind wrong", "/s/Devices", withTok(patient), false, codes.PermissionDenied},
		{"no rule denies", "/s/Other", withTok(device), false, codes.PermissionDenied},
		{"health is open", "/grpc.health.v1.Health/Check", context.Background(), false, codes.OK},
		{"non-production outside production", "/s/Dev", context.Background(), false, codes.OK},
		{"non-production in production", "/s/Dev", context.Background(), true, codes.NotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewGuard(v, rules, c.prod)
			ctx, err := g.Authorize(c.ctx, c.method)
			if got := codeOf(err); got != c.want {
				t.Fatalf("code = %v, want %v (%v)", got, c.want, err)
			}
			if c.want == codes.OK && !rules[c.method].GetPublic() && PrincipalFrom(ctx) == nil && rules[c.method] != nil {
				t.Fatal("no principal in context")
			}
		})
	}
}

func codeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	return apperr.CodeOf(err)
}

func TestEverySuiteRPCDeclaresAccess(t *testing.T) {
	files := []protoreflect.FileDescriptor{
		activationv1.File_dhos_activation_v1_activation_proto,
		devicev1.File_dhos_device_v1_device_proto,
		sessionv1.File_dhos_session_v1_session_proto,
		tokenv1.File_dhos_token_v1_token_proto,
	}
	n := 0
	for _, f := range files {
		for i := 0; i < f.Services().Len(); i++ {
			sd := f.Services().Get(i)
			rules, err := RulesOf(sd)
			if err != nil {
				t.Fatal(err)
			}
			if len(rules) != sd.Methods().Len() {
				t.Fatalf("%s: %d rules for %d methods", sd.FullName(), len(rules), sd.Methods().Len())
			}
			for m, r := range rules {
				if !r.GetPublic() && len(r.GetScopes()) == 0 && len(r.GetPrincipalKinds()) == 0 && !r.GetNonProduction() {
					t.Errorf("%s: neither public nor restricted by scope or principal", m)
				}
			}
			n += len(rules)
		}
	}
	if n < 20 {
		t.Fatalf("only %d RPCs found", n)
	}
	if r := rulesMust(t, tokenv1.File_dhos_token_v1_token_proto)["/dhos.token.v1.TokenService/IssueToken"]; len(r.GetScopes()) != 1 || r.GetScopes()[0] != "internal:issue_token" {
		t.Fatalf("IssueToken rule = %v", r)
	}
}

func rulesMust(t *testing.T, f protoreflect.FileDescriptor) Rules {
	t.Helper()
	r, err := RulesOf(f.Services().Get(0))
	if err != nil {
		t.Fatal(err)
	}
	return r
}
