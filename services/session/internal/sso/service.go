package sso

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/services/session/internal/upstream"
)

// ServiceName is the audit service name.
const ServiceName = "session"

// ProviderLocal is the provider of sessions signed in with a local
// password.
const ProviderLocal = "local"

// Paths of the browser-facing endpoints (under the issuer's origin).
const (
	PathAuthorize     = "/oauth2/authorize"
	PathToken         = "/oauth2/token"
	PathUserinfo      = "/oauth2/userinfo"
	PathLogin         = "/login"
	PathLoginUpstream = "/login/upstream"
	PathCallback      = "/login/callback"
	PathLocalLogin    = "/login/local"
	PathLogout        = "/logout"
	PathBackchannel   = "/backchannel-logout"
	PathSession       = "/session"
)

// Defaults and limits.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
	// CodeLifetime is how long an authorisation code may be redeemed.
	CodeLifetime = time.Minute
	// LoginStateLifetime is how long a sign-in at the upstream may take.
	LoginStateLifetime = 10 * time.Minute
	// touchEvery bounds how often a session's last use is written.
	touchEvery = time.Minute
	// keepEnded is how long ended sessions are kept (for the audit trail
	// they are not needed: events are).
	keepEnded = 24 * time.Hour
	// MaxParamLength bounds a request parameter, in bytes.
	MaxParamLength = 2048
)

// Audit event types of the OpenID provider (the session events are
// pkg/audit's).
const (
	EventSignIn           = audit.TypeSessionSignIn
	EventSignOut          = audit.TypeSessionSignOut
	EventBackChannel      = audit.TypeBackChannelLogout
	EventAuthorize        = audit.TypeOAuthAuthorize
	EventToken            = audit.TypeOAuthToken
	EventBackChannelSent  = audit.TypeBackChannelLogoutSent
	EventClinicianUpdated = audit.TypeClinicianUpdated
)

// ClinicianInfo is what sign-in needs to know about a clinician.
type ClinicianInfo struct {
	Exists bool
	// Active: the login is active and the contract has not ended.
	Active bool
	Groups []string
}

// Clinicians reads clinicians' login details.
type Clinicians interface {
	Clinician(ctx context.Context, id string) (ClinicianInfo, error)
}

// IDTokenRequest describes an ID token.
type IDTokenRequest struct {
	ClientID  string
	Subject   string
	SessionID string
	Nonce     string
	AuthTime  time.Time
	ACR       string
	AMR       []string
	Claims    map[string]any
}

// Tokens asks the token service for tokens and revocations. Errors are
// apperr errors (UNAVAILABLE when it did not answer).
type Tokens interface {
	// AccessToken is a clinician token of a session with the scopes.
	AccessToken(ctx context.Context, clinicianID, sessionID string, scopes []string) (string, time.Time, error)
	// IDToken is an ID token for a client app.
	IDToken(ctx context.Context, r IDTokenRequest) (string, error)
	// LogoutToken is a back-channel logout token for a client app.
	LogoutToken(ctx context.Context, clientID, subject, sessionID string) (string, error)
	// RevokeClinician revokes the clinician's tokens issued until now.
	RevokeClinician(ctx context.Context, clinicianID, reason string) error
}

// Upstream is a configured upstream provider (*upstream.Provider).
type Upstream interface {
	ID() string
	Issuer() string
	Config() upstream.Config
	AuthURL(ctx context.Context, redirectURI, state, nonce, verifier string) (string, error)
	SignIn(ctx context.Context, code, redirectURI, verifier, nonce string) (upstream.Identity, error)
	VerifyLogoutToken(ctx context.Context, raw string) (upstream.LogoutClaims, error)
}

// Config configures a Service.
type Config struct {
	// Issuer is the suite's issuer: the public origin of the edge
	// (TOKEN_ISSUER), an http(s) URL.
	Issuer string
	// Providers are the upstream providers, in the order the sign-in page
	// lists them.
	Providers []Upstream
	// Clients are the registered client apps.
	Clients []*Client
	// LocalLogin allows sign-in with a local password.
	LocalLogin bool
	// RoleScopes map roles (upstream roles, or a local clinician's
	// groups) to scopes, where a provider does not map them itself.
	RoleScopes map[string][]string
	// IdleTimeout ends a session unused for this long; AbsoluteTimeout
	// ends every session this long after sign-in.
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// StateKey derives the PKCE verifier and nonce of upstream sign-ins.
	StateKey []byte
	// SuiteKeys verify the suite's own tokens (id_token_hint).
	SuiteKeys auth.KeySource
	// AccessVerifier verifies access tokens at the userinfo endpoint.
	AccessVerifier *auth.Verifier
	// Leeway tolerates clock skew.
	Leeway time.Duration
	// Limits bound failed local sign-ins and token requests, counted by
	// Limiter (nil: nothing is limited). Limits left zero are off.
	Limits  Limits
	Limiter Limiter
	// Logger receives delivery failures and the like.
	Logger *slog.Logger
	// Now is the clock (default apitime.Now).
	Now func() time.Time
}

// Service applies the browser sign-in rules.
type Service struct {
	cfg        Config
	store      Store
	clinicians Clinicians
	tokens     Tokens
	base       string
	providers  map[string]Upstream
	byIssuer   map[string][]Upstream
	clients    map[string]*Client
	wake       chan struct{}
}

// New returns a Service. It checks the configuration: the issuer must be
// an http(s) URL.
func New(cfg Config, store Store, clinicians Clinicians, tokens Tokens) (*Service, error) {
	if !strings.HasPrefix(cfg.Issuer, "https://") && !strings.HasPrefix(cfg.Issuer, "http://") {
		return nil, fmt.Errorf("sso: the issuer %q is not an http(s) URL (set TOKEN_ISSUER to the edge's public address)", cfg.Issuer)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.AbsoluteTimeout <= 0 {
		cfg.AbsoluteTimeout = DefaultAbsoluteTimeout
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = auth.DefaultLeeway
	}
	if cfg.Now == nil {
		cfg.Now = apitime.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.StateKey) < 16 {
		return nil, errors.New("sso: a state key of at least 16 bytes is required")
	}
	s := &Service{
		cfg: cfg, store: store, clinicians: clinicians, tokens: tokens,
		base:      strings.TrimSuffix(cfg.Issuer, "/"),
		providers: map[string]Upstream{}, byIssuer: map[string][]Upstream{}, clients: map[string]*Client{},
		wake: make(chan struct{}, 1),
	}
	for _, p := range cfg.Providers {
		s.providers[p.ID()] = p
		s.byIssuer[p.Issuer()] = append(s.byIssuer[p.Issuer()], p)
	}
	for _, c := range cfg.Clients {
		s.clients[c.ID] = c
	}
	return s, nil
}

// URL is the public URL of a path of the service.
func (s *Service) URL(path string) string { return s.base + path }

// Issuer is the suite's issuer.
func (s *Service) Issuer() string { return s.cfg.Issuer }

// LocalLoginEnabled reports whether local password sign-in is allowed.
func (s *Service) LocalLoginEnabled() bool { return s.cfg.LocalLogin }

// ProviderChoice is a provider offered on the sign-in page.
type ProviderChoice struct{ ID, Name string }

// Providers lists the upstream providers, in configuration order.
func (s *Service) Providers() []ProviderChoice {
	out := make([]ProviderChoice, 0, len(s.cfg.Providers))
	for _, p := range s.cfg.Providers {
		out = append(out, ProviderChoice{ID: p.ID(), Name: p.Config().Name})
	}
	return out
}

// now is the clock.
func (s *Service) now() time.Time { return s.cfg.Now() }

// randomToken is 32 random bytes, base64url: cookies, states and codes.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomID is a public id (16 random bytes, base64url).
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash is the SHA-256 (hex) under which cookies, states and codes are
// stored: they are random 256-bit values, so a fast hash is enough.
func Hash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// derive is HMAC-SHA256(StateKey, label || 0 || v), base64url.
func (s *Service) derive(label, v string) string {
	m := hmac.New(sha256.New, s.cfg.StateKey)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// event is an audit event of the session service; actor, when not empty,
// replaces the (anonymous) caller.
func event(ctx context.Context, typ, actor, subject string, data audit.Data) audit.Event {
	e := audit.New(ctx, ServiceName, typ, subject, data)
	if actor != "" {
		e.Actor = actor
	}
	return e
}

func failure(ctx context.Context, typ, actor, subject, reason string, data audit.Data) audit.Event {
	e := audit.NewFailure(ctx, ServiceName, typ, subject, reason, data)
	if actor != "" {
		e.Actor = actor
	}
	return e
}

// record stores refusals; a failure to record is logged, not shown (the
// refusal stands either way).
func (s *Service) record(ctx context.Context, evs ...audit.Event) {
	if err := s.store.Record(ctx, evs...); err != nil {
		s.cfg.Logger.ErrorContext(ctx, "audit: recording a refusal failed", "error", err.Error())
	}
}

// scopesFor maps roles to scopes with the provider's map, else the
// default one; sorted, without repeats.
func (s *Service) scopesFor(providerMap map[string][]string, roles []string) []string {
	m := providerMap
	if len(m) == 0 {
		m = s.cfg.RoleScopes
	}
	var out []string
	for _, r := range roles {
		for _, sc := range m[r] {
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Current returns the session a cookie names, when it is still valid:
// not ended, used within the idle timeout, younger than the absolute
// timeout, and its clinician still active. A session found expired is
// ended (audited). ErrNotFound when there is none.
func (s *Service) Current(ctx context.Context, cookie string) (Session, error) {
	if cookie == "" || len(cookie) > 100 {
		return Session{}, ErrNotFound
	}
	sess, err := s.store.SessionByCookie(ctx, Hash(cookie))
	if err != nil {
		return Session{}, err
	}
	return s.check(ctx, sess)
}

// check applies the timeouts and the clinician's status to a session
// that has not ended.
func (s *Service) check(ctx context.Context, sess Session) (Session, error) {
	now := s.now()
	reason := ""
	switch {
	case !now.Before(sess.AbsoluteExpires):
		reason = "absolute timeout"
	case !now.Before(sess.LastSeen.Add(s.cfg.IdleTimeout)):
		reason = "idle timeout"
	}
	if reason == "" && s.needsClinician(sess.Provider) {
		info, err := s.clinicians.Clinician(ctx, sess.ClinicianID)
		if err != nil {
			return Session{}, err
		}
		if !info.Exists || !info.Active {
			reason = "clinician login not active"
		}
	}
	if reason != "" {
		if err := s.end(ctx, sess, reason, ""); err != nil {
			return Session{}, err
		}
		return Session{}, ErrNotFound
	}
	if now.Sub(sess.LastSeen) >= touchEvery {
		if err := s.store.TouchSession(ctx, sess.ID, now); err != nil {
			return Session{}, fmt.Errorf("touch session: %w", err)
		}
		sess.LastSeen = now
	}
	return sess, nil
}

// needsClinician reports whether sessions of the provider need an active
// clinician record.
func (s *Service) needsClinician(provider string) bool {
	if provider == ProviderLocal {
		return true
	}
	if p, ok := s.providers[provider]; ok {
		return p.Config().MustHaveClinician()
	}
	return true
}

// Expires is when a session ends unless it is used again.
func (s *Service) Expires(sess Session) time.Time {
	idle := sess.LastSeen.Add(s.cfg.IdleTimeout)
	if idle.Before(sess.AbsoluteExpires) {
		return idle
	}
	return sess.AbsoluteExpires
}

// CookieMaxAge is how long the browser should keep a session cookie.
func (s *Service) CookieMaxAge() time.Duration { return s.cfg.AbsoluteTimeout }

// end ends a session: the clinician's tokens are revoked before (when
// that fails nothing changes and the caller gets UNAVAILABLE) and after
// (a token issued in between is refused too), and every client app that
// joined it with a back-channel logout URI gets a logout token. actor
// is who ended it ("" for the clinician).
func (s *Service) end(ctx context.Context, sess Session, reason, actor string) error {
	if err := s.tokens.RevokeClinician(ctx, sess.ClinicianID, "session ended: "+reason); err != nil {
		return err
	}
	clients, err := s.store.SessionClients(ctx, sess.ID)
	if err != nil {
		return fmt.Errorf("session clients: %w", err)
	}
	now := s.now()
	var deliveries []Delivery
	for _, id := range clients {
		if c, ok := s.clients[id]; ok && c.BackchannelLogoutURI != "" {
			deliveries = append(deliveries, Delivery{ID: randomID(), SessionID: sess.ID, ClientID: id, Subject: sess.ClinicianID, NextAttempt: now, Created: now})
		}
	}
	if actor == "" {
		actor = sess.ClinicianID
	}
	ev := event(ctx, EventSignOut, actor, sess.ClinicianID, audit.Data{
		"clinician_id": sess.ClinicianID, "session_id": sess.ID, "provider": sess.Provider, "end_reason": reason, "clients": anyList(clients),
	})
	ended, err := s.store.EndSession(ctx, sess.ID, now, reason, deliveries, ev)
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	if !ended {
		return nil
	}
	if err := s.tokens.RevokeClinician(ctx, sess.ClinicianID, "session ended: "+reason); err != nil {
		return err
	}
	if len(deliveries) > 0 {
		s.Wake()
	}
	return nil
}

func anyList(v []string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}

// ListSessions lists a clinician's sessions that have not ended (and are
// within their timeouts).
func (s *Service) ListSessions(ctx context.Context, clinicianID string) ([]Session, error) {
	if err := checkParam("clinician_id", clinicianID, true); err != nil {
		return nil, err
	}
	list, err := s.store.ActiveSessions(ctx, clinicianID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	now := s.now()
	out := list[:0]
	for _, sess := range list {
		if now.Before(s.Expires(sess)) {
			out = append(out, sess)
		}
	}
	return out, nil
}

// EndSessions ends a clinician's sessions, or the one named (NOT_FOUND
// when it is not the clinician's or has ended). It returns how many
// ended.
func (s *Service) EndSessions(ctx context.Context, clinicianID, sessionID string) (int, error) {
	if err := checkParam("clinician_id", clinicianID, true); err != nil {
		return 0, err
	}
	if err := checkParam("session_id", sessionID, false); err != nil {
		return 0, err
	}
	list, err := s.store.ActiveSessions(ctx, clinicianID)
	if err != nil {
		return 0, fmt.Errorf("list sessions: %w", err)
	}
	actor := auth.ActorName(ctx, ServiceName)
	n := 0
	for _, sess := range list {
		if sessionID != "" && sess.ID != sessionID {
			continue
		}
		if err := s.end(ctx, sess, "ended by an administrator", actor); err != nil {
			return n, err
		}
		n++
	}
	if sessionID != "" && n == 0 {
		return 0, apperr.NotFound("clinician %s has no session %s", clinicianID, sessionID)
	}
	return n, nil
}

// checkParam bounds a request parameter.
func checkParam(field, v string, required bool) error {
	if v == "" {
		if required {
			return apperr.InvalidArgument("%s is required", field)
		}
		return nil
	}
	if len(v) > 200 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return apperr.InvalidArgument("%s must be at most 200 bytes of printable text", field)
	}
	return nil
}

// RecordRefusal audits a request the HTTP side refused before the rules
// ran (a form that does not parse, a repeated parameter, a sign-in form
// whose CSRF value does not match): typ is one of the Event* types.
func (s *Service) RecordRefusal(ctx context.Context, typ, reason string, data audit.Data) {
	s.record(ctx, failure(ctx, typ, "", "", reason, data))
}
