package session

import (
	"context"
	"log/slog"
)

// Audit event types of clinician sign-in.
const (
	EventLoginSuccess = "SEND entry login success"
	EventLoginFailure = "SEND entry login failure"
)

// Event is an audit event: its contract type and data (ids and reasons,
// never secrets).
type Event struct {
	Type string
	Data map[string]any
}

// Auditor records audit events. It is called where the audited decision is
// made.
type Auditor interface {
	Audit(ctx context.Context, e Event)
}

// LogAuditor writes audit events as structured log lines at INFO with the
// keys audit (true), event_type and event_data.
type LogAuditor struct {
	Logger *slog.Logger
}

// Audit implements Auditor.
func (a LogAuditor) Audit(ctx context.Context, e Event) {
	a.Logger.LogAttrs(ctx, slog.LevelInfo, "audit event",
		slog.Bool("audit", true),
		slog.String("event_type", e.Type),
		slog.Any("event_data", e.Data),
	)
}
