package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
)

// Event types. The first five are the contract's event_type strings
// (dhos-v1.md, "Audit events"); the others follow the same style.
const (
	// TypeLoginSuccess: a clinician signed in on a SEND entry device.
	TypeLoginSuccess = "SEND entry login success"
	// TypeLoginFailure: a clinician sign-in on a device was refused.
	TypeLoginFailure = "SEND entry login failure"
	// TypeDeviceAuthSuccess: a device exchanged its authorisation code for
	// a device JWT.
	TypeDeviceAuthSuccess = "SEND entry device auth success"
	// TypeDeviceAuthFailed: a device JWT was refused.
	TypeDeviceAuthFailed = "SEND entry device auth failed"
	// TypeDeviceUpdate: a device's location, description or active flag
	// was changed.
	TypeDeviceUpdate = "SEND entry device update"

	// TypePatientActivationCreated: a patient activation was issued or
	// reissued (data: reissued).
	TypePatientActivationCreated = "patient activation created"
	// TypePatientActivationValidated: a patient activation was used.
	TypePatientActivationValidated = "patient activation validated"
	// TypePatientActivationFailed: a patient activation attempt was
	// refused (wrong OTP, used, expired or locked).
	TypePatientActivationFailed = "patient activation failed"
	// TypeDeviceActivationCreated: a device activation was issued or
	// reissued.
	TypeDeviceActivationCreated = "device activation created"
	// TypeDeviceActivationValidated: a device activation was used.
	TypeDeviceActivationValidated = "device activation validated"
	// TypeDeviceActivationFailed: a device activation attempt was refused
	// (unknown, used or expired code).
	TypeDeviceActivationFailed = "device activation failed"
	// TypeAuthorisationCodeIssued: a patient or device was given a new
	// authorisation code (never the code itself).
	TypeAuthorisationCodeIssued = "authorisation code issued"
	// TypePatientAuthSuccess: a patient exchanged an authorisation code
	// for a patient JWT.
	TypePatientAuthSuccess = "patient auth success"
	// TypePatientAuthFailed: a patient JWT was refused.
	TypePatientAuthFailed = "patient auth failed"

	// TypeTokenIssued: the token service signed a token (data: kind,
	// token_id, expires_at; never the token).
	TypeTokenIssued = "token issued"
	// TypeTokenRevoked: a token, or every token of a subject, was revoked.
	TypeTokenRevoked = "token revoked"
	// TypeKeyRotated: the token service's signing key was rotated (data:
	// the new and retired key ids, never key material).
	TypeKeyRotated = "signing key rotated"

	// TypeSessionSignIn: a browser sign-in (upstream provider or local
	// password) made a session, or was refused.
	TypeSessionSignIn = "session sign-in"
	// TypeSessionSignOut: a browser session ended (logout, an upstream's
	// back-channel logout, an administrator, a timeout).
	TypeSessionSignOut = "session sign-out"
	// TypeBackChannelLogout: an upstream provider's back-channel logout
	// token was accepted or refused.
	TypeBackChannelLogout = "session back-channel logout"
	// TypeBackChannelLogoutSent: a back-channel logout token was delivered
	// to a client app that joined an ended session (or given up on).
	TypeBackChannelLogoutSent = "session back-channel logout sent"
	// TypeOAuthAuthorize: the suite's OpenID provider handed a client app
	// an authorisation code, or refused the authorization request.
	TypeOAuthAuthorize = "oauth authorization"
	// TypeOAuthToken: the token endpoint handed a client app tokens, or
	// refused (with the OAuth error).
	TypeOAuthToken = "oauth token"

	// TypeDeviceCreated: an administrator registered a device.
	TypeDeviceCreated = "device created"
	// TypeClinicianCreated: an administrator stored a clinician's login
	// details.
	TypeClinicianCreated = "clinician created"
	// TypeClinicianUpdated: an administrator changed a clinician's login
	// details, or the sign-in found the contract expired and deactivated
	// the login.
	TypeClinicianUpdated = "clinician updated"
	// TypeDataDropped: a service's data were dropped (outside production).
	TypeDataDropped = "data dropped"
	// TypeTestDataReset: the test data were reset (outside production).
	TypeTestDataReset = "test data reset"
)

// Outcome says whether what an event describes succeeded.
type Outcome string

// The outcomes.
const (
	Success Outcome = "success"
	Failure Outcome = "failure"
)

// Anonymous is the actor of an event whose caller presented no bearer
// token (public RPCs such as the exchange of an authorisation code).
const Anonymous = "anonymous"

// Data is an event's event_data: ids and reasons, never secrets.
type Data map[string]any

// Event is one audit event.
type Event struct {
	// ID is a UUID, the message id on the broker (consumers de-duplicate
	// by it).
	ID string
	// Time is when it happened (millisecond precision).
	Time time.Time
	// Type is the event_type.
	Type string
	// Actor is who did it: the id of the principal in the caller's token,
	// or Anonymous.
	Actor string
	// Subject is who or what it was done to (a device, patient or
	// clinician id), when there is one.
	Subject string
	Outcome Outcome
	// Reason says why, on failures.
	Reason string
	// TraceID is the OpenTelemetry trace of the request, when there is one.
	TraceID string
	// Service is the service that recorded it.
	Service string
	// Data is event_data.
	Data Data
}

// New returns a successful event of type typ recorded by service: a fresh
// id, the time now, the caller in ctx as actor (Anonymous when there is
// none) and the trace id in ctx.
func New(ctx context.Context, service, typ, subject string, data Data) Event {
	return Event{
		ID:      uuid.NewString(),
		Time:    apitime.Now(),
		Type:    typ,
		Actor:   auth.ActorName(ctx, Anonymous),
		Subject: subject,
		Outcome: Success,
		TraceID: TraceID(ctx),
		Service: service,
		Data:    data,
	}
}

// NewFailure is New with outcome failure and a reason (also put in
// event_data as "reason", as the contract's consumers read it there).
func NewFailure(ctx context.Context, service, typ, subject, reason string, data Data) Event {
	e := New(ctx, service, typ, subject, data)
	e.Outcome = Failure
	e.Reason = reason
	return e
}

// TraceID returns the id of the OpenTelemetry span in ctx, or "".
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

// MaxDataBytes bounds an event's encoded event_data.
const MaxDataBytes = 8 << 10

// secretWords are the last words of event_data keys that would name a
// secret: such a key is refused, so no code, OTP, token or key can be
// recorded by mistake under its own name.
var secretWords = map[string]bool{
	"otp": true, "pin": true, "code": true, "token": true, "jwt": true,
	"secret": true, "password": true, "key": true, "hash": true, "authorization": true,
}

// ErrSecret: an event's data would carry a secret.
var ErrSecret = errors.New("audit: event data must not carry secrets")

// prepare fills what is missing (id, time, reason in data) and checks the
// event: a type, a service, an outcome, and no secret in its data.
func prepare(e Event) (Event, []byte, error) {
	if e.Type == "" || e.Service == "" {
		return e, nil, errors.New("audit: an event needs a type and a service")
	}
	if e.ID == "" {
		e.ID = uuid.NewString()
	} else if _, err := uuid.Parse(e.ID); err != nil {
		return e, nil, fmt.Errorf("audit: event id %q is not a UUID", e.ID)
	}
	if e.Time.IsZero() {
		e.Time = apitime.Now()
	}
	e.Time = e.Time.UTC().Truncate(time.Millisecond)
	switch e.Outcome {
	case Success, Failure:
	case "":
		e.Outcome = Success
	default:
		return e, nil, fmt.Errorf("audit: outcome %q is neither success nor failure", e.Outcome)
	}
	if e.Actor == "" {
		e.Actor = Anonymous
	}
	data := Data{}
	for k, v := range e.Data {
		if err := checkData(k, v); err != nil {
			return e, nil, err
		}
		data[k] = v
	}
	if e.Reason != "" {
		if _, ok := data["reason"]; !ok {
			data["reason"] = e.Reason
		}
	}
	e.Data = data
	b, err := json.Marshal(data)
	if err != nil {
		return e, nil, fmt.Errorf("audit: event data: %w", err)
	}
	if len(b) > MaxDataBytes {
		return e, nil, fmt.Errorf("audit: event data is %d bytes, at most %d", len(b), MaxDataBytes)
	}
	return e, b, nil
}

// checkData refuses a key that names a secret and a value that looks like
// a JWT.
func checkData(k string, v any) error {
	words := strings.FieldsFunc(strings.ToLower(k), func(r rune) bool { return r == '_' || r == '-' || r == ' ' })
	if len(words) == 0 {
		return fmt.Errorf("audit: empty event data key")
	}
	if secretWords[words[len(words)-1]] {
		return fmt.Errorf("%w: key %q", ErrSecret, k)
	}
	if s, ok := v.(string); ok && strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2 {
		return fmt.Errorf("%w: the value of %q looks like a JWT", ErrSecret, k)
	}
	return nil
}

// Message is the JSON body published to the broker: the contract's
// {event_type, event_data} plus the event's other fields.
type Message struct {
	EventType string `json:"event_type"`
	EventData Data   `json:"event_data"`
	ID        string `json:"id"`
	Time      string `json:"time"`
	Actor     string `json:"actor"`
	Subject   string `json:"subject"`
	Outcome   string `json:"outcome"`
	Reason    string `json:"reason"`
	TraceID   string `json:"trace_id"`
	Service   string `json:"service"`
}

// MessageOf returns the broker message of e.
func MessageOf(e Event) Message {
	d := e.Data
	if d == nil {
		d = Data{}
	}
	return Message{
		EventType: e.Type,
		EventData: d,
		ID:        e.ID,
		Time:      apitime.Format(e.Time),
		Actor:     e.Actor,
		Subject:   e.Subject,
		Outcome:   string(e.Outcome),
		Reason:    e.Reason,
		TraceID:   e.TraceID,
		Service:   e.Service,
	}
}
