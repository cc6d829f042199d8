// Package session is the session service's domain: clinicians' login
// details for sign-in on known devices (products, groups, SEND entry
// identifier, contract expiry) and the clinician JWT issued from them.
//
// It owns the rules of the /dhos/v1/clinician endpoints, the Store
// interface its database implements with the sentinel errors ErrNotFound,
// ErrExists and ErrIdentifierTaken, the ports to its peers (Devices asks
// the device service about a device, Tokens asks the token service for a
// clinician token) and the Auditor that records sign-in successes and
// failures. Errors it returns are pkg/apperr errors whose messages are fit
// to show to clients.
package session
