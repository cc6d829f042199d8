package tokengrpc_test

import (
	"context"
	"fmt"
	"testing"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/perftest"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
	"github.com/dhosauth/dhosauth/services/token/internal/tokendb"
	"github.com/dhosauth/dhosauth/services/token/internal/tokengrpc"
)

// BenchmarkFloorIssueToken is the token service's part of the flows in
// the floor of make bench (scenario e): IssueToken called as a Go function
// with an ES256 key and a PostgreSQL store (the record and its audit
// event), as the activation and session services call it over gRPC.
func BenchmarkFloorIssueToken(b *testing.B) {
	for _, c := range []struct {
		name string
		req  func(n int64) *tokenv1.IssueTokenRequest
	}{
		{"patient", func(n int64) *tokenv1.IssueTokenRequest {
			return &tokenv1.IssueTokenRequest{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT, SubjectId: fmt.Sprint("floor-patient-", n)}
		}},
		{"device", func(n int64) *tokenv1.IssueTokenRequest {
			return &tokenv1.IssueTokenRequest{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE, SubjectId: fmt.Sprint("floor-device-", n)}
		}},
		{"clinician", func(n int64) *tokenv1.IssueTokenRequest {
			return &tokenv1.IssueTokenRequest{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN, SubjectId: fmt.Sprint("floor-clinician-", n), ReferringDeviceId: "floor-device"}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			db := storagetest.OpenPostgres(b, tokendb.Migrations())
			pair, err := token.GenerateKeyPair(token.AlgES256)
			if err != nil {
				b.Fatal(err)
			}
			cfg := tokenConfig(options{})
			signer := token.NewFixedKey(pair)
			revoked := auth.NewRevocationList(nil)
			verifier := auth.NewVerifier(auth.VerifierOptions{Issuer: cfg.Issuer, Audience: cfg.Audience, Keys: signer, Revocations: revoked})
			srv := tokengrpc.New(token.NewIssuer(cfg, signer, tokendb.New(db), verifier, revoked), tokengrpc.Options{})
			caller := auth.WithPrincipal(context.Background(), &auth.Principal{
				Kind: authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM, ID: "activation", Scopes: []string{"internal:issue_token"}})
			perftest.Parallel(b, func(_ context.Context, n int64) error {
				_, err := srv.IssueToken(caller, c.req(n))
				return err
			})
		})
	}
}
