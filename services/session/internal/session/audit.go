package session

import (
	"context"

	"github.com/dhosauth/dhosauth/pkg/audit"
)

// Audit event types of clinician sign-in (the contract's).
const (
	EventLoginSuccess = audit.TypeLoginSuccess
	EventLoginFailure = audit.TypeLoginFailure
)

// Reasons recorded in "SEND entry login failure" events.
const (
	ReasonDeviceNotFound     = "device not found"
	ReasonDeviceInactive     = "device inactive"
	ReasonUnknownIdentifier  = "unknown send_entry_identifier"
	ReasonLoginInactive      = "login inactive"
	ReasonContractExpired    = "contract expired"
	ReasonNotInSendGroup     = "not in a SEND clinician group"
	reasonContractExpiredFix = "contract expiry date passed: login deactivated"
)

// event returns an audit event the session service records (the caller in
// ctx is the actor).
func event(ctx context.Context, typ, subject string, data audit.Data) audit.Event {
	return audit.New(ctx, ServiceName, typ, subject, data)
}
