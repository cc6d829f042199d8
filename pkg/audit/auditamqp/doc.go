// Package auditamqp publishes a service's audit outbox to RabbitMQ (AMQP
// 0-9-1) when AMQP_URL is set: to a durable topic exchange (AUDIT_EXCHANGE,
// default "dhos") with one routing key (AUDIT_ROUTING_KEY, default
// "dhos.34837004"), as persistent JSON messages whose message id is the
// event id.
//
// Delivery is at-least-once and ordered per service: the replica holding
// the outbox's publisher lease reads the oldest waiting events, publishes
// them in order on a channel in confirm mode, and marks them published
// only once the broker confirmed every one. A failure anywhere (broker
// down, connection lost, a nack, a confirm timeout) drops the connection
// and republishes the same events after a backoff, so consumers may see an
// event twice and de-duplicate by message id; they never miss one. A
// restart loses nothing either: what was not confirmed is still waiting in
// the outbox.
//
// The publisher records the outbox's depth and the age of its oldest
// waiting event as OpenTelemetry gauges (meter "dhosauth/audit"), and
// prunes published events after the retention period.
package auditamqp
