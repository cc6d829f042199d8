package sso

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"golang.org/x/crypto/argon2"
)

// SignInError is a refused sign-in: a message fit for the person signing
// in (details are in the audit trail).
type SignInError struct{ Message string }

func (e *SignInError) Error() string { return e.Message }

// SafeReturnTo keeps a return address that stays on the suite's origin:
// an absolute path, not "//host" and not "/\host"; anything else is "".
func SafeReturnTo(v string) string {
	if len(v) > MaxParamLength || !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.HasPrefix(v, "/\\") ||
		strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return ""
	}
	return v
}

// BeginUpstream starts a sign-in at an upstream provider: it stores the
// state and returns the provider's authorization URL and the state, which
// the browser must also carry in a cookie (it binds the sign-in to the
// browser that started it).
func (s *Service) BeginUpstream(ctx context.Context, providerID, returnTo string) (authURL, state string, err error) {
	p, ok := s.providers[providerID]
	if !ok {
		return "", "", apperr.NotFound("no identity provider %q", providerID)
	}
	state = randomToken()
	now := s.now()
	if err := s.store.CreateLoginState(ctx, LoginState{
		StateHash: Hash(state), Provider: p.ID(), ReturnTo: SafeReturnTo(returnTo), Created: now, Expires: now.Add(LoginStateLifetime),
	}); err != nil {
		return "", "", fmt.Errorf("store sign-in state: %w", err)
	}
	u, err := p.AuthURL(ctx, s.URL(PathCallback), state, s.nonce(state), s.verifier(state))
	if err != nil {
		s.record(ctx, failure(ctx, EventSignIn, "", "", "identity provider unavailable", audit.Data{"provider": p.ID()}))
		return "", "", apperr.Unavailable(err, "the identity provider cannot be reached, try again")
	}
	return u, state, nil
}

func (s *Service) verifier(state string) string { return s.derive("pkce", state) }
func (s *Service) nonce(state string) string    { return s.derive("nonce", state)[:32] }

// Callback is what the upstream sent the browser back with.
type Callback struct {
	State, StateCookie, Code, Error string
}

// FinishUpstream completes an upstream sign-in: the state must be one this
// service made, unused, unexpired and the one in the browser's cookie;
// the code is redeemed with the PKCE verifier, the ID token verified
// (nonce included), the identity mapped to a clinician and scopes. It
// returns the new session's cookie and where to go next. Every refusal is
// a *SignInError (or UNAVAILABLE), audited.
func (s *Service) FinishUpstream(ctx context.Context, cb Callback) (cookie, returnTo string, err error) {
	refuse := func(reason, provider string, msg string) (string, string, error) {
		data := audit.Data{}
		if provider != "" {
			data["provider"] = provider
		}
		s.record(ctx, failure(ctx, EventSignIn, "", "", reason, data))
		return "", "", &SignInError{Message: msg}
	}
	if cb.State == "" || len(cb.State) > 100 {
		return refuse("missing state", "", "The sign-in could not be completed: start again.")
	}
	if cb.StateCookie == "" || subtle.ConstantTimeCompare([]byte(cb.State), []byte(cb.StateCookie)) != 1 {
		return refuse("state does not match the browser", "", "The sign-in was started in another browser or window: start again.")
	}
	ls, err := s.store.TakeLoginState(ctx, Hash(cb.State))
	if errors.Is(err, ErrNotFound) {
		return refuse("unknown or used state", "", "The sign-in could not be completed: start again.")
	}
	if err != nil {
		return "", "", fmt.Errorf("read sign-in state: %w", err)
	}
	if !s.now().Before(ls.Expires) {
		return refuse("sign-in took too long", ls.Provider, "The sign-in took too long: start again.")
	}
	p, ok := s.providers[ls.Provider]
	if !ok {
		return refuse("provider no longer configured", ls.Provider, "The sign-in could not be completed: start again.")
	}
	if cb.Error != "" {
		return refuse("the identity provider refused: "+safeCode(cb.Error), p.ID(), "The identity provider did not sign you in.")
	}
	if cb.Code == "" || len(cb.Code) > MaxParamLength {
		return refuse("missing code", p.ID(), "The sign-in could not be completed: start again.")
	}
	id, err := p.SignIn(ctx, cb.Code, s.URL(PathCallback), s.verifier(cb.State), s.nonce(cb.State))
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "upstream sign-in refused", "provider", p.ID(), "error", err.Error())
		return refuse("upstream tokens not valid: "+truncate(err.Error(), 150), p.ID(), "The identity provider's answer could not be verified.")
	}
	cfg := p.Config()
	data := audit.Data{"provider": p.ID(), "clinician_id": id.ClinicianID, "roles": anyList(id.Roles)}
	if cfg.MustHaveClinician() {
		info, err := s.clinicians.Clinician(ctx, id.ClinicianID)
		if err != nil {
			return "", "", err
		}
		switch {
		case !info.Exists:
			s.record(ctx, failure(ctx, EventSignIn, id.ClinicianID, id.ClinicianID, "unknown clinician", data))
			return "", "", &SignInError{Message: "You are not registered to use this service."}
		case !info.Active:
			s.record(ctx, failure(ctx, EventSignIn, id.ClinicianID, id.ClinicianID, "clinician login not active", data))
			return "", "", &SignInError{Message: "Your access to this service is not active."}
		}
	}
	scopes := s.scopesFor(cfg.RoleScopes, id.Roles)
	if len(scopes) == 0 {
		s.record(ctx, failure(ctx, EventSignIn, id.ClinicianID, id.ClinicianID, "no role grants access", data))
		return "", "", &SignInError{Message: "None of your roles gives access to this service."}
	}
	claims := map[string]any{}
	if id.Name != "" {
		claims["name"] = id.Name
	}
	if id.Email != "" {
		claims["email"] = id.Email
	}
	if len(id.Roles) > 0 {
		claims["roles"] = anyList(id.Roles)
	}
	amr := id.AMR
	if len(amr) == 0 {
		amr = []string{"fed"}
	}
	cookie, err = s.startSession(ctx, Session{
		ClinicianID: id.ClinicianID, Provider: p.ID(), UpstreamSubject: id.Subject, UpstreamSID: id.SessionID,
		Scopes: scopes, Claims: claims, ACR: id.ACR, AMR: amr,
	}, data)
	if err != nil {
		return "", "", err
	}
	return cookie, ls.ReturnTo, nil
}

// startSession stores a new session and its sign-in event and returns
// its cookie.
func (s *Service) startSession(ctx context.Context, sess Session, data audit.Data) (string, error) {
	cookie := randomToken()
	now := s.now()
	sess.ID = randomID()
	sess.CookieHash = Hash(cookie)
	sess.Created, sess.LastSeen = now, now
	sess.AbsoluteExpires = now.Add(s.cfg.AbsoluteTimeout)
	data["session_id"] = sess.ID
	data["scopes"] = anyList(sess.Scopes)
	if err := s.store.CreateSession(ctx, sess, event(ctx, EventSignIn, sess.ClinicianID, sess.ClinicianID, data)); err != nil {
		return "", fmt.Errorf("store session: %w", err)
	}
	return cookie, nil
}

func truncate(v string, n int) string {
	if len(v) <= n {
		return v
	}
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return v[:n]
}

// safeCode keeps an OAuth error code as a short word.
func safeCode(v string) string {
	if len(v) > 40 || strings.IndexFunc(v, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z') }) >= 0 {
		return "(not an error code)"
	}
	return v
}

// Argon2id parameters of local passwords (the OWASP minimum: 19 MiB, two
// passes, one lane).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	// MinPasswordLength is the shortest local password accepted.
	MinPasswordLength = 12
	// MaxPasswordLength bounds a password, in bytes.
	MaxPasswordLength = 256
)

// HashPassword returns the argon2id PHC string of a password.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	sum := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads, enc.EncodeToString(salt), enc.EncodeToString(sum))
}

// CheckPassword compares a password with an argon2id PHC string in
// constant time.
func CheckPassword(password, phc string) bool {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var v int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 1<<20 || t == 0 || t > 10 || p == 0 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is compared when a clinician has no password, so that a
// guess at an unknown name costs as long as one at a known one. It is made
// on first use: an argon2id hash takes its 19 MiB of memory, which at
// start-up stayed in the resident set of every session process.
var dummyHash = sync.OnceValue(func() string { return HashPassword("not a password of anyone") })

// LocalLogin signs a clinician in with a local password: refused unless
// local sign-in is enabled; the clinician must exist, be active, have a
// password that matches, and be in a group that maps to scopes. Every
// outcome is audited; refusals say no more than "wrong name or password"
// unless the password matched. Wrong passwords (and names without one)
// count against the limits per client address and per name; when one is
// full the attempt is refused with a *LimitedError before the password is
// looked at, the right one included.
func (s *Service) LocalLogin(ctx context.Context, clinicianID, password string) (string, error) {
	if !s.cfg.LocalLogin {
		s.record(ctx, failure(ctx, EventSignIn, "", "", "local sign-in disabled", audit.Data{"provider": ProviderLocal}))
		return "", &SignInError{Message: "Sign-in with a password is not available here."}
	}
	if clinicianID == "" || len(clinicianID) > 200 || len(password) > MaxPasswordLength {
		return "", &SignInError{Message: "Wrong name or password."}
	}
	data := audit.Data{"provider": ProviderLocal, "clinician_id": clinicianID}
	settle, err := s.reserve(ctx, s.addressBucket(ctx, LimitLocalLoginAddress), s.principalBucket(LimitLocalLoginUser, clinicianID))
	var limited *LimitedError
	if errors.As(err, &limited) {
		data["limit"] = limited.Limit
		s.record(ctx, failure(ctx, EventSignIn, "", clinicianID, "too many failed attempts", data))
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("rate limit: %w", err)
	}
	wrongSecret := false
	defer func() { settle(wrongSecret) }()
	hash, err := s.store.PasswordHash(ctx, clinicianID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("read password: %w", err)
	}
	if errors.Is(err, ErrNotFound) {
		CheckPassword(password, dummyHash())
		wrongSecret = true
		s.record(ctx, failure(ctx, EventSignIn, "", clinicianID, "no local password", data))
		return "", &SignInError{Message: "Wrong name or password."}
	}
	if !CheckPassword(password, hash) {
		wrongSecret = true
		s.record(ctx, failure(ctx, EventSignIn, "", clinicianID, "wrong password", data))
		return "", &SignInError{Message: "Wrong name or password."}
	}
	info, err := s.clinicians.Clinician(ctx, clinicianID)
	if err != nil {
		return "", err
	}
	if !info.Exists || !info.Active {
		s.record(ctx, failure(ctx, EventSignIn, clinicianID, clinicianID, "clinician login not active", data))
		return "", &SignInError{Message: "Your access to this service is not active."}
	}
	scopes := s.scopesFor(nil, info.Groups)
	if len(scopes) == 0 {
		s.record(ctx, failure(ctx, EventSignIn, clinicianID, clinicianID, "no role grants access", data))
		return "", &SignInError{Message: "None of your roles gives access to this service."}
	}
	data["roles"] = anyList(info.Groups)
	return s.startSession(ctx, Session{
		ClinicianID: clinicianID, Provider: ProviderLocal, Scopes: scopes,
		Claims: map[string]any{"roles": anyList(info.Groups)}, AMR: []string{"pwd"},
	}, data)
}

// SetLocalPassword sets (or, empty, removes) a clinician's local
// password. The clinician must exist.
func (s *Service) SetLocalPassword(ctx context.Context, clinicianID, password string) error {
	if err := checkParam("clinician_id", clinicianID, true); err != nil {
		return err
	}
	if password != "" && (utf8.RuneCountInString(password) < MinPasswordLength || len(password) > MaxPasswordLength || !utf8.ValidString(password)) {
		return apperr.InvalidArgument("password must be %d to %d bytes of text (at least %d characters)", MinPasswordLength, MaxPasswordLength, MinPasswordLength)
	}
	info, err := s.clinicians.Clinician(ctx, clinicianID)
	if err != nil {
		return err
	}
	if !info.Exists {
		return apperr.NotFound("clinician %s not found", clinicianID)
	}
	hash := ""
	if password != "" {
		hash = HashPassword(password)
	}
	actor := auth.ActorName(ctx, ServiceName)
	ev := event(ctx, EventClinicianUpdated, "", clinicianID, audit.Data{
		"clinician_id": clinicianID, "changed_fields": []any{"local_password"}, "local_password_set": password != "",
	})
	if err := s.store.SetPassword(ctx, clinicianID, hash, s.now(), actor, ev); err != nil {
		return fmt.Errorf("store password: %w", err)
	}
	return nil
}

// NewCSRF is a random value the sign-in form and its cookie share.
func NewCSRF() string { return randomToken() }

// CSRFMatches compares the form's value with the cookie's.
func CSRFMatches(form, cookie string) bool {
	return form != "" && cookie != "" && subtle.ConstantTimeCompare([]byte(form), []byte(cookie)) == 1
}
