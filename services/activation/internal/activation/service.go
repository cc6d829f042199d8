package activation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dhosauth/dhosauth/pkg/validate"

	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/secret"
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

// Auditor records audit events. event_data carries ids and reasons, never
// secrets.
type Auditor interface {
	Audit(ctx context.Context, eventType string, data map[string]any)
}

// Audit event types.
const (
	EventDeviceAuthSuccess = "SEND entry device auth success"
	EventDeviceAuthFailed  = "SEND entry device auth failed"
)

// SlogAuditor writes audit events as INFO log lines with audit=true.
type SlogAuditor struct{ Logger *slog.Logger }

// Audit implements Auditor.
func (a SlogAuditor) Audit(ctx context.Context, eventType string, data map[string]any) {
	a.Logger.LogAttrs(ctx, slog.LevelInfo, "audit event",
		slog.Bool("audit", true),
		slog.String("event_type", eventType),
		slog.Any("event_data", data))
}

// Service applies the activation rules.
type Service struct {
	store   Store
	hasher  *secret.Hasher
	devices Devices
	tokens  Tokens
	audit   Auditor
	cfg     Config
	now     func() time.Time
}

// Deps are the Service's collaborators.
type Deps struct {
	Store   Store
	Hasher  *secret.Hasher
	Devices Devices
	Tokens  Tokens
	Auditor Auditor
	// Now is the clock (default apitime.Now).
	Now func() time.Time
}

// NewService returns a Service.
func NewService(cfg Config, d Deps) (*Service, error) {
	if d.Store == nil || d.Hasher == nil || d.Devices == nil || d.Tokens == nil || d.Auditor == nil {
		return nil, errors.New("activation: store, hasher, devices, tokens and auditor are required")
	}
	if cfg.OTPLength < 1 || cfg.ActivationCodeLength < 1 || cfg.DeviceCodeLength < 1 || cfg.MaxAttempts < 1 || cfg.ExpiryDays < 0 {
		return nil, fmt.Errorf("activation: invalid config %+v", cfg)
	}
	if d.Now == nil {
		d.Now = apitime.Now
	}
	return &Service{store: d.Store, hasher: d.Hasher, devices: d.Devices, tokens: d.Tokens, audit: d.Auditor, cfg: cfg, now: d.Now}, nil
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
