package main

import (
	"context"
	"testing"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/pkg/service/servicetest"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestServe starts the whole service as main does, on each backend, and
// issues, verifies and drops over gRPC.
func TestServe(t *testing.T) {
	backends := map[string]func(t *testing.T, env map[string]string){
		"sqlite": func(t *testing.T, env map[string]string) {},
		"postgres": func(t *testing.T, env map[string]string) {
			url := storagetest.PostgresURL(t)
			env["DATABASE_URL"] = url
			env["DATABASE_SCHEMA"] = storagetest.UniqueSchema(t, url)
		},
	}
	for name, setup := range backends {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{
				"ENVIRONMENT":       "TEST",
				"DATA_DIR":          t.TempDir(),
				"TOKEN_GRPC_ADDR":   "127.0.0.1:0",
				"OPS_ADDR":          "127.0.0.1:0",
				"INTERNAL_AUTH_KEY": internalKey,
				"ALLOW_DROP_DATA":   "true",
				"LOG_LEVEL":         "ERROR",
			}
			setup(t, env)
			testServe(t, env)
		})
	}
}

func testServe(t *testing.T, env map[string]string) {
	ctx := context.Background()
	r, conn := servicetest.StartServe(t, env, serve)
	c := tokenv1.NewTokenServiceClient(conn)
	creds := grpc.PerRPCCredentials(auth.NewInternalCredentials([]byte(internalKey), "activation", "internal:issue_token"))

	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "dhos.token.v1.TokenService"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	iss, err := c.IssueToken(ctx, &tokenv1.IssueTokenRequest{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE, SubjectId: "device-1"}, creds)
	if err != nil {
		t.Fatalf("IssueToken: %v", err)
	}
	v, err := c.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: iss.GetJwt(), RequiredScopes: []string{"read:send_entry_identifier"}})
	if err != nil || v.GetPrincipalId() != "device-1" || v.GetExpiresAt() != iss.GetExpiresAt() {
		t.Fatalf("VerifyToken: %v %v", v, err)
	}
	jwks, err := c.GetJWKS(ctx, &tokenv1.GetJWKSRequest{})
	if err != nil || len(jwks.GetKeys()) != 1 || jwks.GetKeys()[0].GetAlg() != "ES256" || jwks.GetMaxAgeSeconds() != 900 {
		t.Fatalf("GetJWKS: %v %v", jwks, err)
	}
	// The verifier other services build from GetJwks accepts the token.
	pv := service.Common{Issuer: service.DefaultIssuer, Audience: service.DefaultIssuer}.Verifier(c)
	if p, err := pv.Verify(ctx, iss.GetJwt()); err != nil || p.ID != "device-1" {
		t.Fatalf("remote verifier: %v %v", p, err)
	}
	if _, err := c.DropData(ctx, &tokenv1.DropDataRequest{}, grpc.PerRPCCredentials(auth.NewInternalCredentials([]byte(internalKey), "gateway"))); err != nil {
		t.Fatalf("DropData: %v", err)
	}
	r.Stop()
}

func TestServeRefusesBadConfiguration(t *testing.T) {
	env := map[string]string{"TOKEN_ISSUER": "https://dhos.example/", "LOG_LEVEL": "LOUD"}
	servicetest.WantError(t, serve(context.Background(), config.MapLookup(env), nil),
		"invalid configuration", "INTERNAL_AUTH_KEY", "GDM_PATIENT_SCOPE", "signing key", "LOG_LEVEL")
}
