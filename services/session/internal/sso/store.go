package sso

import (
	"context"
	"errors"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
)

// Session is a browser session.
type Session struct {
	// ID is the public id: the sid of ID tokens, what admins see.
	ID string
	// CookieHash is the SHA-256 (hex) of the cookie that names it.
	CookieHash  string
	ClinicianID string
	// Provider is the upstream provider's id, or "local".
	Provider string
	// UpstreamSubject and UpstreamSID are the provider's sub and sid
	// (back-channel logouts name them).
	UpstreamSubject string
	UpstreamSID     string
	// Scopes of the clinician tokens issued from the session.
	Scopes []string
	// Claims are the ID token and userinfo claims (name, email, roles).
	Claims          map[string]any
	ACR             string
	AMR             []string
	Created         time.Time
	LastSeen        time.Time
	AbsoluteExpires time.Time
	// Clients are the client apps that joined (filled by list queries).
	Clients []string
}

// LoginState is a sign-in under way at an upstream provider.
type LoginState struct {
	StateHash string
	Provider  string
	ReturnTo  string
	Created   time.Time
	Expires   time.Time
}

// Code is an authorisation code handed to a client app.
type Code struct {
	CodeHash      string
	ClientID      string
	RedirectURI   string
	SessionID     string
	Nonce         string
	CodeChallenge string
	Scopes        []string
	Created       time.Time
	Expires       time.Time
	// Used is when it was redeemed (zero: never).
	Used time.Time
}

// Delivery is a back-channel logout token still to send to a client app.
type Delivery struct {
	ID          string
	SessionID   string
	ClientID    string
	Subject     string
	Attempts    int
	NextAttempt time.Time
	Created     time.Time
	LastError   string
}

// Sentinel errors a Store returns.
var (
	// ErrNotFound: no such session, state, code or password.
	ErrNotFound = errors.New("sso: not found")
	// ErrCodeUsed: the code was redeemed before.
	ErrCodeUsed = errors.New("sso: code already used")
	// ErrReplayed: the token id was seen before.
	ErrReplayed = errors.New("sso: token id seen before")
)

// Store keeps sessions, sign-ins under way, codes, seen token ids,
// local passwords and pending logout deliveries. Changes are written with
// the audit events that describe them, in one transaction.
type Store interface {
	// CreateLoginState stores a sign-in under way.
	CreateLoginState(ctx context.Context, s LoginState) error
	// TakeLoginState removes and returns a sign-in under way (single use);
	// ErrNotFound when there is none.
	TakeLoginState(ctx context.Context, stateHash string) (LoginState, error)
	// CreateSession stores a new session with evs.
	CreateSession(ctx context.Context, s Session, evs ...audit.Event) error
	// SessionByCookie returns the session a cookie names, unless it has
	// ended; ErrNotFound otherwise.
	SessionByCookie(ctx context.Context, cookieHash string) (Session, error)
	// SessionByID returns a session that has not ended; ErrNotFound
	// otherwise.
	SessionByID(ctx context.Context, id string) (Session, error)
	// TouchSession records a use of the session.
	TouchSession(ctx context.Context, id string, at time.Time) error
	// ActiveSessions lists a clinician's sessions that have not ended,
	// newest first, with the clients that joined them.
	ActiveSessions(ctx context.Context, clinicianID string) ([]Session, error)
	// SessionsByUpstream lists the sessions that have not ended of a
	// provider's subject and/or session (an empty value matches any).
	SessionsByUpstream(ctx context.Context, provider, subject, upstreamSID string) ([]Session, error)
	// EndSession ends a session that has not ended, and stores the
	// deliveries and events with it; false when it had already ended.
	EndSession(ctx context.Context, id string, at time.Time, reason string, deliveries []Delivery, evs ...audit.Event) (bool, error)
	// JoinSession records that a client app joined a session.
	JoinSession(ctx context.Context, sessionID, clientID string, at time.Time) error
	// SessionClients lists the client apps that joined a session.
	SessionClients(ctx context.Context, sessionID string) ([]string, error)
	// CreateCode stores an authorisation code with evs.
	CreateCode(ctx context.Context, c Code, evs ...audit.Event) error
	// RedeemCode marks a client's code used and returns it: ErrNotFound
	// when the client has no such code, ErrCodeUsed (with the code) when
	// it was used before. Expiry is the caller's to check.
	RedeemCode(ctx context.Context, codeHash, clientID string, at time.Time) (Code, error)
	// RememberJTI records a token id of an issuer until expires;
	// ErrReplayed when it was recorded before.
	RememberJTI(ctx context.Context, issuer, jti string, expires time.Time) error
	// SetPassword stores (hash non-empty) or removes a clinician's local
	// password hash with ev.
	SetPassword(ctx context.Context, clinicianID, hash string, at time.Time, by string, ev audit.Event) error
	// PasswordHash returns a clinician's password hash; ErrNotFound when
	// there is none.
	PasswordHash(ctx context.Context, clinicianID string) (string, error)
	// DueDeliveries lists deliveries whose next attempt is due.
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]Delivery, error)
	// ClaimDelivery takes a due delivery for one attempt (false when
	// another replica took it): its attempts go up by one and its next
	// attempt moves to leaseUntil.
	ClaimDelivery(ctx context.Context, d Delivery, leaseUntil time.Time) (bool, error)
	// FinishDelivery removes a delivery (sent, or given up) with evs.
	FinishDelivery(ctx context.Context, id string, evs ...audit.Event) error
	// RetryDelivery schedules another attempt.
	RetryDelivery(ctx context.Context, id string, next time.Time, lastError string) error
	// Prune removes expired sign-ins under way, codes and seen token ids,
	// and sessions that ended (or expired) before endedBefore.
	Prune(ctx context.Context, now, endedBefore time.Time) error
	// Record stores events of decisions that change nothing else.
	Record(ctx context.Context, evs ...audit.Event) error
}
