package activationgrpc

import (
	"context"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/services/activation/internal/activation"
)

// TokenRevoker implements activation.Revoker with
// TokenService.RevokePrincipal. The connection must carry the activation
// service's internal credentials with the scope internal:revoke.
type TokenRevoker struct{ Client tokenv1.TokenServiceClient }

var _ activation.Revoker = TokenRevoker{}

// RevokePatient implements activation.Revoker.
func (r TokenRevoker) RevokePatient(ctx context.Context, patientID, reason string) error {
	_, err := r.Client.RevokePrincipal(ctx, &tokenv1.RevokePrincipalRequest{
		Kind: authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT, PrincipalId: patientID, Reason: reason,
	})
	if err != nil {
		return dependencyError("token", err)
	}
	return nil
}
