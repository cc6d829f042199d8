package device

import (
	"context"

	"github.com/dhosauth/dhosauth/pkg/audit"
)

// EventDeviceUpdate is the audit event type of a device patch (the
// contract's "SEND entry device update").
const EventDeviceUpdate = audit.TypeDeviceUpdate

// event returns an audit event the device service records about device
// id (the caller in ctx is the actor).
func event(ctx context.Context, typ, id string, data audit.Data) audit.Event {
	return audit.New(ctx, ServiceName, typ, id, data)
}
