package activationgrpc

import (
	"context"
	"errors"
	"fmt"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/services/activation/internal/activation"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DeviceClient adapts the device service's client to activation.Devices.
type DeviceClient struct{ Client devicev1.DeviceServiceClient }

var _ activation.Devices = DeviceClient{}

// GetDevice implements activation.Devices.
func (d DeviceClient) GetDevice(ctx context.Context, deviceID string) (activation.Device, error) {
	resp, err := d.Client.GetDevice(ctx, &devicev1.GetDeviceRequest{DeviceId: deviceID})
	if status.Code(err) == codes.NotFound {
		return activation.Device{}, activation.ErrDeviceNotFound
	} else if err != nil {
		return activation.Device{}, dependencyError("device", err)
	}
	dev := resp.GetDevice()
	if dev == nil {
		return activation.Device{}, apperr.Internal(errors.New("device service returned no device"))
	}
	return activation.Device{ID: dev.GetUuid(), Active: dev.GetActive()}, nil
}

// TokenClient adapts the token service's client to activation.Tokens.
type TokenClient struct{ Client tokenv1.TokenServiceClient }

var _ activation.Tokens = TokenClient{}

// IssueToken implements activation.Tokens.
func (t TokenClient) IssueToken(ctx context.Context, kind activation.TokenKind, subjectID string) (string, error) {
	var k authv1.PrincipalKind
	switch kind {
	case activation.PatientToken:
		k = authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT
	case activation.DeviceToken:
		k = authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE
	default:
		return "", apperr.Internal(fmt.Errorf("unknown token kind %d", kind))
	}
	resp, err := t.Client.IssueToken(ctx, &tokenv1.IssueTokenRequest{Kind: k, SubjectId: subjectID})
	if err != nil {
		return "", dependencyError("token", err)
	}
	if resp.GetJwt() == "" {
		return "", apperr.Internal(errors.New("token service returned an empty token"))
	}
	return resp.GetJwt(), nil
}

// dependencyError turns a failed call to another service into what our
// caller should see: "try again" when it did not answer, INTERNAL (logged,
// masked) for anything else, since our caller's request was not at fault.
func dependencyError(name string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return apperr.Unavailable(err, "the %s service did not answer, try again", name)
	case codes.Canceled:
		return err
	}
	return apperr.Internal(fmt.Errorf("%s service: %w", name, err))
}
