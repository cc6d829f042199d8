// Package ratelimit counts attempts against limits shared by every replica
// of a service: the counters live in the service's own database (either
// backend), in a table this package migrates (Migrations, listed in the
// store's storage.Migrations.Shared like the audit outbox).
//
// A limit is at most Max attempts per Window, sliding: each bucket keeps
// the count of the current fixed window and of the previous one, and the
// previous window weighs by the share of it the sliding window still
// covers (so a burst at a window's edge cannot double the limit). Take
// counts an attempt in every bucket of a request in one transaction, each
// with one atomic upsert that rolls the windows forward; when one bucket is
// full nothing is counted, and the caller answers RESOURCE_EXHAUSTED with
// the reservation's RetryAfter. Limits on failures give a success back with
// Return. Expired counters are pruned as a side effect of Take.
//
// ClientAddress, AddressKey and ForwardedClient decide which address a
// per-address limit counts: the REST edge passes the client's address in
// the dhos-client-address metadata, and to the session service's sign-in
// listener in the Dhos-Client-Address header (from X-Forwarded-For only
// when the connection comes from a configured trusted proxy), IPv6
// addresses count per /64.
package ratelimit
