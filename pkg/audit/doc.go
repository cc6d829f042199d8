// Package audit is the suite's audit trail: the event types, the events
// (id, time, type, actor, subject, outcome, reason, trace id, service and
// event_data), and the transactional outbox every service keeps in its own
// schema.
//
// A service records events with Record in the same database transaction as
// the change they describe, so an event exists if and only if its change
// does; a refusal that changes nothing is recorded in a transaction of its
// own (RecordTx). Events never carry secrets: Record refuses event_data
// keys that name one (otp, code, token, key, ...) and values that look like
// a JWT.
//
// The outbox is also the store of the query API (List, served by package
// auditgrpc), and the source of the broker publisher (package auditamqp),
// which marks events published once the broker confirmed them and prunes
// them after the retention period. The outbox's migrations are a shared
// set (Migrations) that each service store lists in its
// storage.Migrations, so the SQL is written once for all four services.
package audit
