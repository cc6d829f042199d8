package sessiongrpc

import (
	"context"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/services/session/internal/session"
)

// TokenRevoker implements session.Revoker with
// TokenService.RevokePrincipal. The connection must carry the session
// service's internal credentials with the scope internal:revoke.
type TokenRevoker struct{ Client tokenv1.TokenServiceClient }

var _ session.Revoker = TokenRevoker{}

// RevokeClinician implements session.Revoker.
func (r TokenRevoker) RevokeClinician(ctx context.Context, clinicianID, reason string) error {
	_, err := r.Client.RevokePrincipal(ctx, &tokenv1.RevokePrincipalRequest{
		Kind: authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN, PrincipalId: clinicianID, Reason: reason,
	})
	if err != nil {
		return peerError(ctx, err, "token service")
	}
	return nil
}
