package devicegrpc

import (
	"context"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/services/device/internal/device"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TokenRevoker implements device.Revoker with TokenService.RevokePrincipal.
// The connection must carry the device service's internal credentials
// with the scope internal:revoke.
type TokenRevoker struct{ Client tokenv1.TokenServiceClient }

var _ device.Revoker = TokenRevoker{}

// RevokeDevice implements device.Revoker. A token service that does not
// answer is UNAVAILABLE (the caller may retry); anything else is INTERNAL.
func (r TokenRevoker) RevokeDevice(ctx context.Context, deviceID, reason string) error {
	_, err := r.Client.RevokePrincipal(ctx, &tokenv1.RevokePrincipalRequest{
		Kind: authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE, PrincipalId: deviceID, Reason: reason,
	})
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return apperr.Unavailable(err, "the token service did not answer, so the device's tokens could not be revoked; try again")
	}
	return apperr.Internal(err)
}
