// Package auditgrpc serves dhos.audit.v1.AuditService over a service's own
// audit outbox: every service process registers it next to its own API,
// with the access rule declared in audit.proto (scope read:audit).
package auditgrpc
