package sessiongrpc

import (
	"context"
	"errors"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/services/session/internal/session"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DeviceClient implements session.Devices with DeviceService.GetDevice.
type DeviceClient struct {
	client devicev1.DeviceServiceClient
}

var _ session.Devices = DeviceClient{}

// NewDeviceClient returns a DeviceClient. The connection must carry the
// session service's internal credentials (scope read:send_device).
func NewDeviceClient(c devicev1.DeviceServiceClient) DeviceClient { return DeviceClient{client: c} }

// DeviceActive implements session.Devices.
func (d DeviceClient) DeviceActive(ctx context.Context, deviceID string) (bool, error) {
	resp, err := d.client.GetDevice(ctx, &devicev1.GetDeviceRequest{DeviceId: deviceID})
	if err != nil {
		switch status.Code(err) {
		case codes.NotFound, codes.InvalidArgument:
			// An id the device service cannot hold is not a known device.
			return false, session.ErrDeviceNotFound
		}
		return false, peerError(ctx, err, "device service")
	}
	return resp.GetDevice().GetActive(), nil
}

// TokenClient implements session.Tokens with TokenService.IssueToken.
type TokenClient struct {
	client tokenv1.TokenServiceClient
}

var _ session.Tokens = TokenClient{}

// NewTokenClient returns a TokenClient. The connection must carry the
// session service's internal credentials (scope internal:issue_token).
func NewTokenClient(c tokenv1.TokenServiceClient) TokenClient { return TokenClient{client: c} }

// IssueClinicianToken implements session.Tokens.
func (t TokenClient) IssueClinicianToken(ctx context.Context, clinicianID, deviceID string) (string, error) {
	resp, err := t.client.IssueToken(ctx, &tokenv1.IssueTokenRequest{
		Kind:              authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN,
		SubjectId:         clinicianID,
		ReferringDeviceId: deviceID,
	})
	if err != nil {
		return "", peerError(ctx, err, "token service")
	}
	if resp.GetJwt() == "" {
		return "", apperr.Internal(errors.New("token service returned no jwt"))
	}
	return resp.GetJwt(), nil
}

// peerError turns a failed call to a peer into what our caller sees: the
// caller's own cancellation or deadline as is, UNAVAILABLE when the peer
// did not answer, and a masked INTERNAL for anything else (the peer
// refusing us is our misconfiguration, not the caller's fault).
func peerError(ctx context.Context, err error, peer string) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return apperr.Unavailable(err, "%s unavailable, try again", peer)
	}
	return apperr.Internal(err)
}
