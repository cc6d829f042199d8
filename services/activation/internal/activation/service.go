package activation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/validate"

	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/secret"
	"github.com/dhosauth/dhosauth/pkg/telemetry"
)

// ServiceName is what *_by fields record when no principal made a change.
const ServiceName = "activation"

// MaxIDLength bounds patient and device ids, in bytes.
const MaxIDLength = 200

// MaxSecretLength bounds codes and OTPs given by callers, in bytes.
const MaxSecretLength = 200

// Config holds the activation rules' settings.
type Config struct {
	// OTPLength is OTP_LENGTH.
	OTPLength int
	// ActivationCodeLength is AUTHORISATION_CODE_LENGTH (the length of a
	// patient activation code).
	ActivationCodeLength int
	// DeviceCodeLength is SEND_ENTRY_ACTIVATION_CODE_LENGTH.
	DeviceCodeLength int
	// ExpiryDays is ACTIVATION_EXPIRY_END_OF_NTH_DAY.
	ExpiryDays int
	// MaxAttempts is MAX_ACTIVATION_ATTEMPTS.
	MaxAttempts int
	// AllowDropData is ALLOW_DROP_DATA.
	AllowDropData bool
	// Production turns the static activations and test-data operations off.
	Production bool
	// Limits bound failed attempts at the unauthenticated RPCs.
	Limits Limits
}

// DefaultConfig is the contract's defaults (production).
func DefaultConfig() Config {
	return Config{
		OTPLength:            4,
		ActivationCodeLength: 30,
		DeviceCodeLength:     9,
		ExpiryDays:           5,
		MaxAttempts:          10,
		Production:           true,
		Limits:               DefaultLimits(),
	}
}

// Device is what the service needs to know of a device in the registry.
type Device struct {
	ID     string
	Active bool
}

// ErrDeviceNotFound is returned by Devices for an unknown device.
var ErrDeviceNotFound = errors.New("activation: device not found")

// Devices reads the device registry (the device service).
type Devices interface {
	// GetDevice returns the device, or ErrDeviceNotFound.
	GetDevice(ctx context.Context, deviceID string) (Device, error)
}

// TokenKind is the kind of principal a token is issued for.
type TokenKind int

// The kinds of token this service asks for.
const (
	PatientToken TokenKind = iota + 1
	DeviceToken
)

// Tokens issues JWTs (the token service).
type Tokens interface {
	IssueToken(ctx context.Context, kind TokenKind, subjectID string) (string, error)
}

// Audit event types of device sign-in (the contract's).
const (
	EventDeviceAuthSuccess = audit.TypeDeviceAuthSuccess
	EventDeviceAuthFailed  = audit.TypeDeviceAuthFailed
)

// event returns an audit event the activation service records about
// subject (the caller in ctx is the actor).
func event(ctx context.Context, typ, subject string, data audit.Data) audit.Event {
	return audit.New(ctx, ServiceName, typ, subject, data)
}

// failure returns a refusal's audit event.
func failure(ctx context.Context, typ, subject, reason string, data audit.Data) audit.Event {
	countFailure(ctx, typ, reason)
	return audit.NewFailure(ctx, ServiceName, typ, subject, reason, data)
}

// countFailure counts refused activations and authorisation-code
// exchanges (dhosauth_activation_failures_total) by kind and reason.
func countFailure(ctx context.Context, typ, reason string) {
	kind := ""
	switch typ {
	case audit.TypePatientActivationFailed:
		kind = "patient"
	case audit.TypeDeviceActivationFailed:
		kind = "device"
	case audit.TypeDeviceAuthFailed:
		kind = "device_auth"
	default:
		return
	}
	telemetry.ActivationFailed(ctx, kind, strings.ReplaceAll(reason, " ", "_"))
}

// asActor returns e with actor set: the caller of a public RPC proved who
// it is with a secret (an activation code and OTP, an authorisation code).
func asActor(e audit.Event, actor string) audit.Event {
	e.Actor = actor
	return e
}

// refuse records a refusal in a transaction of its own and returns the
// refusal, or the error that kept the event from being recorded.
func (s *Service) refuse(ctx context.Context, ev audit.Event, refusal error) error {
	if err := s.store.Record(ctx, ev); err != nil {
		return storeErr(err)
	}
	return refusal
}

// Service applies the activation rules.
type Service struct {
	store   Store
	hasher  *secret.Hasher
	devices Devices
	tokens  Tokens
	revoker Revoker
	limiter Limiter
	cfg     Config
	now     func() time.Time
}

// Revoker revokes every token issued to a patient until now (the token
// service). Errors are apperr errors (UNAVAILABLE when it did not answer).
type Revoker interface {
	RevokePatient(ctx context.Context, patientID, reason string) error
}

// Deps are the Service's collaborators.
type Deps struct {
	Store   Store
	Hasher  *secret.Hasher
	Devices Devices
	Tokens  Tokens
	// Revoker, when set, revokes a patient's earlier tokens when the
	// patient activates again (main always sets it).
	Revoker Revoker
	// Limiter, when set, enforces cfg.Limits (main always sets it).
	Limiter Limiter
	// Now is the clock (default apitime.Now).
	Now func() time.Time
}

// NewService returns a Service.
func NewService(cfg Config, d Deps) (*Service, error) {
	if d.Store == nil || d.Hasher == nil || d.Devices == nil || d.Tokens == nil {
		return nil, errors.New("activation: store, hasher, devices and tokens are required")
	}
	if cfg.OTPLength < 1 || cfg.ActivationCodeLength < 1 || cfg.DeviceCodeLength < 1 || cfg.MaxAttempts < 1 || cfg.ExpiryDays < 0 {
		return nil, fmt.Errorf("activation: invalid config %+v", cfg)
	}
	if d.Now == nil {
		d.Now = apitime.Now
	}
	return &Service{store: d.Store, hasher: d.Hasher, devices: d.Devices, tokens: d.Tokens, revoker: d.Revoker, limiter: d.Limiter, cfg: cfg, now: d.Now}, nil
}

// Ping reports whether the store answers (readiness).
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// checkID validates a patient or device id.
func checkID(field, v string) error { return validate.ID(field, v) }

// checkSecret validates a code or OTP given by a caller.
func checkSecret(field, v string) error { return validate.Required(field, v, MaxSecretLength) }

// storeErr turns an unexpected store error into INTERNAL (masked);
// storage-unavailable errors keep their meaning through service.MapErrors.
func storeErr(err error) error {
	if err == nil {
		return nil
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	return fmt.Errorf("activation store: %w", err)
}
