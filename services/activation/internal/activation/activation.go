package activation

import (
	"context"
	"errors"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
)

// Sentinel errors a Store returns.
var (
	// ErrNotFound: no record matched (for a conditional update: the record
	// no longer satisfies the condition, e.g. it was completed meanwhile).
	ErrNotFound = errors.New("activation: not found")
	// ErrConflict: a unique constraint was violated (a code hash already in
	// use, or a second unused activation for the same patient or device).
	ErrConflict = errors.New("activation: conflict")
)

// Audit records the identifier fields every stored record carries.
type Audit struct {
	Created    time.Time
	CreatedBy  string
	Modified   time.Time
	ModifiedBy string
}

// PatientActivation is one activation of a patient's phone. CodeHash and
// OTPHash are keyed hashes; the clear values are never stored.
type PatientActivation struct {
	ID        string
	PatientID string
	CodeHash  []byte
	OTPHash   []byte
	// Attempts counts wrong OTPs since the activation was (re)issued.
	Attempts  int
	ExpiresAt time.Time
	// Completed is when the activation was used, nil while unused.
	Completed *time.Time
	// PatientActivated reports that the patient has completed an
	// activation before (set by PatientActivationByCode only): validating
	// this one is a re-activation, which revokes the patient's tokens.
	PatientActivated bool
	Audit
}

// PatientCompletion is the atomic change made when a patient activation is
// validated: the activation is marked completed, but only if it is still
// unused, unexpired, not locked and still has the OTP hash that was
// checked, and the patient's authorisation code hash is replaced.
type PatientCompletion struct {
	ActivationID string
	PatientID    string
	// OTPHash is the hash the caller checked; the update matches only if
	// the stored hash is still this one.
	OTPHash     []byte
	MaxAttempts int
	Now         time.Time
	// AuthCodeHash is the new authorisation code's hash.
	AuthCodeHash []byte
	Actor        string
}

// DeviceActivation is one activation of a ward's device. CodeHash is the
// keyed hash of the numeric code.
type DeviceActivation struct {
	ID        string
	DeviceID  string
	CodeHash  []byte
	ExpiresAt time.Time
	Completed *time.Time
	Audit
}

// DeviceCompletion is the atomic change made when a device activation is
// validated.
type DeviceCompletion struct {
	ActivationID string
	DeviceID     string
	Now          time.Time
	AuthCodeHash []byte
	Actor        string
}

// SeedPatient is a patient given a completed activation and an
// authorisation code by ResetTestData.
type SeedPatient struct {
	PatientID    string
	Activation   PatientActivation
	AuthCodeHash []byte
}

// Store keeps patients, devices, their activations and the hashes of their
// authorisation codes. Implementations translate their driver errors into
// ErrNotFound and ErrConflict. Every change is written with the audit
// events that describe it, in one transaction.
type Store interface {
	// UnusedPatientActivation returns the patient's activation that is not
	// completed (expired or not), or ErrNotFound.
	UnusedPatientActivation(ctx context.Context, patientID string) (PatientActivation, error)
	// CreatePatientActivation stores a new activation and ev, creating the
	// patient record when it does not exist. ErrConflict when the patient
	// already has an unused activation or the code hash is taken.
	CreatePatientActivation(ctx context.Context, a PatientActivation, ev audit.Event) error
	// ReissuePatientActivation replaces the code and OTP hashes and the
	// expiry of the unused activation a.ID and resets its attempts.
	// ErrNotFound when it is gone or was completed meanwhile. ev is stored
	// with the change.
	ReissuePatientActivation(ctx context.Context, a PatientActivation, ev audit.Event) error
	// PatientActivationByCode finds an activation by its code hash.
	PatientActivationByCode(ctx context.Context, codeHash []byte) (PatientActivation, error)
	// RecordFailedAttempt adds one failed attempt unless the activation
	// already has max, and stores ev; it reports whether the attempt was
	// counted.
	RecordFailedAttempt(ctx context.Context, activationID string, max int, ev audit.Event) (bool, error)
	// CompletePatientActivation applies c and stores evs in one
	// transaction: ErrNotFound (and no change) when the activation no
	// longer qualifies.
	CompletePatientActivation(ctx context.Context, c PatientCompletion, evs ...audit.Event) error
	// CompletedPatientActivations lists the patient's newest completed
	// activations, at most limit of them, newest first (empty for an
	// unknown patient).
	CompletedPatientActivations(ctx context.Context, patientID string, limit int) ([]PatientActivation, error)
	// PatientAuthCodeHash returns the hash of the patient's newest
	// authorisation code: ErrNotFound for an unknown patient, nil for a
	// patient that was never activated.
	PatientAuthCodeHash(ctx context.Context, patientID string) ([]byte, error)

	// IssueDeviceActivation reissues the device's unused activation with
	// a's code hash and expiry, or stores a as a new one (creating the
	// device record), stores ev, and returns what is stored. ErrConflict
	// when the code hash is taken.
	IssueDeviceActivation(ctx context.Context, a DeviceActivation, ev audit.Event) (DeviceActivation, error)
	// DeviceActivationByCode finds a device activation by its code hash.
	DeviceActivationByCode(ctx context.Context, codeHash []byte) (DeviceActivation, error)
	// CompleteDeviceActivation marks the activation completed if it is
	// still unused and unexpired and replaces the device's authorisation
	// code hash, and stores evs, in one transaction; ErrNotFound otherwise.
	CompleteDeviceActivation(ctx context.Context, c DeviceCompletion, evs ...audit.Event) error
	// DeviceAuthCodeHash returns the hash of the device's newest
	// authorisation code: ErrNotFound for a device never seen, nil for a
	// device never activated.
	DeviceAuthCodeHash(ctx context.Context, deviceID string) ([]byte, error)

	// DropData empties every table (audit events are kept) and stores ev.
	DropData(ctx context.Context, ev audit.Event) error
	// ResetTestData empties every table, then stores the seed patients
	// and ev.
	ResetTestData(ctx context.Context, seed []SeedPatient, ev audit.Event) error
	// Record stores events of decisions that change nothing else
	// (refusals, tokens handed out), in a transaction of their own.
	Record(ctx context.Context, evs ...audit.Event) error
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
}
