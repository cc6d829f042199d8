package sso

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/services/session/internal/upstream"
	"github.com/golang-jwt/jwt/v5"
)

// AuthorizeRequest is an authorization request of a client app (OpenID
// Connect Core 3.1.2.1), as received.
type AuthorizeRequest struct {
	ClientID, RedirectURI, ResponseType, Scope, State, Nonce string
	CodeChallenge, CodeChallengeMethod, Prompt, ResponseMode string
	Request, RequestURI                                      string
	// Query is the request's query string, to come back to after sign-in.
	Query string
}

// AuthorizeResult says where the browser goes: Redirect (the client app
// with a code or an error, or the sign-in page), or, when no redirect is
// safe (unknown client, unregistered redirect URI), Error shown on a
// page.
type AuthorizeResult struct {
	Redirect string
	Error    *OAuthError
}

// Authorize handles an authorization request: it checks the client and
// the redirect URI first (errors there are shown, never redirected),
// then the request (errors are sent to the app). With a valid session in
// the cookie the app gets a code at once and joins the session; without
// one the browser is sent to sign in and comes back here.
func (s *Service) Authorize(ctx context.Context, cookie string, r AuthorizeRequest) (AuthorizeResult, error) {
	data := audit.Data{"client_id": truncate(r.ClientID, 200)}
	show := func(reason string, e *OAuthError) (AuthorizeResult, error) {
		s.record(ctx, failure(ctx, EventAuthorize, "", "", reason, withErr(data, e.Code)))
		return AuthorizeResult{Error: e}, nil
	}
	c, ok := s.clients[r.ClientID]
	if !ok {
		return show("unknown client", oauthErr(ErrInvalidRequest, "unknown client_id"))
	}
	if !slices.Contains(c.RedirectURIs, r.RedirectURI) {
		data["redirect_uri"] = truncate(r.RedirectURI, 300)
		return show("redirect_uri not registered", oauthErr(ErrInvalidRequest, "redirect_uri is not registered for this client"))
	}
	data["redirect_uri"] = r.RedirectURI
	back := func(reason string, e *OAuthError) (AuthorizeResult, error) {
		s.record(ctx, failure(ctx, EventAuthorize, "", "", reason, withErr(data, e.Code)))
		q := url.Values{"error": {e.Code}, "error_description": {e.Description}}
		if r.State != "" {
			q.Set("state", r.State)
		}
		q.Set("iss", s.cfg.Issuer)
		return AuthorizeResult{Redirect: addQuery(r.RedirectURI, q)}, nil
	}
	for name, v := range map[string]string{"state": r.State, "nonce": r.Nonce, "scope": r.Scope, "code_challenge": r.CodeChallenge} {
		if len(v) > MaxParamLength {
			return back(name+" too long", oauthErr(ErrInvalidRequest, name+" is too long"))
		}
	}
	switch {
	case r.Request != "" || r.RequestURI != "":
		return back("request object", oauthErr(ErrRequestNotSupported, "request objects are not supported"))
	case r.ResponseType != "code":
		return back("response_type not code", oauthErr(ErrUnsupportedResponseType, "only response_type=code is supported"))
	case r.ResponseMode != "" && r.ResponseMode != "query":
		return back("response_mode not query", oauthErr(ErrInvalidRequest, "only response_mode=query is supported"))
	case !slices.Contains(strings.Fields(r.Scope), "openid"):
		return back("scope without openid", oauthErr(ErrInvalidScope, "scope must include openid"))
	case r.CodeChallenge == "":
		return back("no code_challenge", oauthErr(ErrInvalidRequest, "PKCE is required: send code_challenge with code_challenge_method=S256"))
	case r.CodeChallengeMethod != "S256":
		return back("code_challenge_method not S256", oauthErr(ErrInvalidRequest, "code_challenge_method must be S256"))
	case len(r.CodeChallenge) != 43:
		return back("malformed code_challenge", oauthErr(ErrInvalidRequest, "code_challenge must be the base64url SHA-256 of the verifier"))
	}
	prompts := strings.Fields(r.Prompt)
	sess, err := s.Current(ctx, cookie)
	if errors.Is(err, ErrNotFound) || (err == nil && slices.Contains(prompts, "login")) {
		if slices.Contains(prompts, "none") {
			return back("no session (prompt=none)", oauthErr(ErrLoginRequired, "the user is not signed in"))
		}
		// Sign in, then come back without prompt (no loop).
		q, _ := url.ParseQuery(r.Query)
		q.Del("prompt")
		return AuthorizeResult{Redirect: PathLogin + "?" + url.Values{"return_to": {PathAuthorize + "?" + q.Encode()}}.Encode()}, nil
	}
	if err != nil {
		return AuthorizeResult{}, err
	}
	code := randomToken()
	now := s.now()
	scopes := sess.Scopes
	if len(c.Scopes) > 0 {
		scopes = slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool { return !slices.Contains(c.Scopes, sc) })
	}
	data["session_id"] = sess.ID
	data["clinician_id"] = sess.ClinicianID
	if err := s.store.JoinSession(ctx, sess.ID, c.ID, now); err != nil {
		return AuthorizeResult{}, fmt.Errorf("join session: %w", err)
	}
	if err := s.store.CreateCode(ctx, Code{
		CodeHash: Hash(code), ClientID: c.ID, RedirectURI: r.RedirectURI, SessionID: sess.ID, Nonce: r.Nonce,
		CodeChallenge: r.CodeChallenge, Scopes: scopes, Created: now, Expires: now.Add(CodeLifetime),
	}, event(ctx, EventAuthorize, sess.ClinicianID, sess.ClinicianID, data)); err != nil {
		return AuthorizeResult{}, fmt.Errorf("store code: %w", err)
	}
	q := url.Values{"code": {code}, "iss": {s.cfg.Issuer}}
	if r.State != "" {
		q.Set("state", r.State)
	}
	return AuthorizeResult{Redirect: addQuery(r.RedirectURI, q)}, nil
}

func withErr(d audit.Data, code string) audit.Data {
	out := audit.Data{"oauth_error": code}
	for k, v := range d {
		out[k] = v
	}
	return out
}

// addQuery appends parameters to a URL that may have a query already.
func addQuery(u string, q url.Values) string {
	if strings.Contains(u, "?") {
		return u + "&" + q.Encode()
	}
	return u + "?" + q.Encode()
}

// TokenRequest is a token request (RFC 6749 4.1.3) with the client's
// credentials as presented.
type TokenRequest struct {
	GrantType, Code, RedirectURI, CodeVerifier string
	// FormClientID, FormSecret and the assertion come from the form;
	// WithBasic adds the Authorization header's credentials.
	FormClientID, FormSecret             string
	ClientAssertionType, ClientAssertion string

	basicID, basicSecret string
	basic                bool
}

// WithBasic sets the client_secret_basic credentials.
func (r TokenRequest) WithBasic(id, secret string) TokenRequest {
	r.basicID, r.basicSecret, r.basic = id, secret, true
	return r
}

// TokenResponse is the token endpoint's answer.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	IDToken     string `json:"id_token"`
	Scope       string `json:"scope"`
}

// Token redeems an authorisation code: the client authenticated, the
// code its own, unused, unexpired, for this redirect_uri, the PKCE
// verifier matching, the session still valid. It returns a clinician
// access token with the session's scopes and an ID token. A reused code
// ends the session it came from (its tokens are revoked). Every refusal
// is audited with its OAuth error.
//
// Failed client authentications and code redemptions (invalid_client,
// invalid_grant) count against the limits per client address and per
// client_id; when one is full the request is refused before anything is
// checked with temporarily_unavailable, status 429 and RetryAfter.
// RFC 6749 5.2 names no error for this, and a client app handles 429
// with Retry-After as a standard HTTP answer.
func (s *Service) Token(ctx context.Context, r TokenRequest) (*TokenResponse, *OAuthError, error) {
	data := audit.Data{}
	cc, e := credentials(r)
	if e != nil {
		s.record(ctx, failure(ctx, EventToken, "", "", "client credentials malformed", withErr(data, e.Code)))
		return nil, e, nil
	}
	data["client_id"] = truncate(cc.id, 200)
	data["auth_method"] = cc.method
	settle, err := s.reserve(ctx, s.addressBucket(ctx, LimitTokenAddress), s.principalBucket(LimitTokenClient, cc.id))
	var limited *LimitedError
	if errors.As(err, &limited) {
		data["limit"] = limited.Limit
		e := &OAuthError{Code: ErrTemporarilyUnavailable, Description: limited.Error(), Status: http.StatusTooManyRequests, RetryAfter: limited.RetryAfter}
		s.record(ctx, failure(ctx, EventToken, "", "", "too many failed attempts", withErr(data, e.Code)))
		return nil, e, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("rate limit: %w", err)
	}
	resp, e, err := s.redeem(ctx, r, cc, data)
	settle(e != nil && (e.Code == ErrInvalidClient || e.Code == ErrInvalidGrant))
	return resp, e, err
}

// redeem is Token once the client's credentials are read and the attempt
// counted.
func (s *Service) redeem(ctx context.Context, r TokenRequest, cc clientCredentials, data audit.Data) (*TokenResponse, *OAuthError, error) {
	refuse := func(reason string, e *OAuthError) (*TokenResponse, *OAuthError, error) {
		s.record(ctx, failure(ctx, EventToken, "", "", reason, withErr(data, e.Code)))
		return nil, e, nil
	}
	c, e := s.authenticate(ctx, cc)
	if e != nil {
		return refuse("client authentication failed: "+e.Description, e)
	}
	if r.GrantType != "authorization_code" {
		return refuse("grant_type not authorization_code", oauthErr(ErrUnsupportedGrantType, "only grant_type=authorization_code is supported"))
	}
	if r.Code == "" || len(r.Code) > 100 {
		return refuse("no code", oauthErr(ErrInvalidRequest, "code is required"))
	}
	if r.CodeVerifier == "" {
		return refuse("no code_verifier", oauthErr(ErrInvalidRequest, "code_verifier is required (PKCE)"))
	}
	now := s.now()
	code, err := s.store.RedeemCode(ctx, Hash(r.Code), c.ID, now)
	switch {
	case errors.Is(err, ErrNotFound):
		return refuse("unknown code", oauthErr(ErrInvalidGrant, "the code is not valid"))
	case errors.Is(err, ErrCodeUsed):
		data["session_id"] = code.SessionID
		s.record(ctx, failure(ctx, EventToken, "", "", "code reused", withErr(data, ErrInvalidGrant)))
		// RFC 6749 4.1.2: revoke what the code gave. Ending the session
		// revokes its tokens and logs out every app that joined it.
		if sess, err := s.store.SessionByID(ctx, code.SessionID); err == nil {
			if err := s.end(ctx, sess, "authorization code reused", c.ID); err != nil {
				return nil, nil, err
			}
		}
		return nil, oauthErr(ErrInvalidGrant, "the code was already used"), nil
	case err != nil:
		return nil, nil, fmt.Errorf("redeem code: %w", err)
	}
	data["session_id"] = code.SessionID
	switch {
	case !now.Before(code.Expires):
		return refuse("code expired", oauthErr(ErrInvalidGrant, "the code has expired"))
	case r.RedirectURI != code.RedirectURI:
		return refuse("redirect_uri does not match", oauthErr(ErrInvalidGrant, "redirect_uri does not match the authorization request"))
	case subtle.ConstantTimeCompare([]byte(upstream.S256(r.CodeVerifier)), []byte(code.CodeChallenge)) != 1:
		return refuse("PKCE verifier does not match", oauthErr(ErrInvalidGrant, "code_verifier does not match the code_challenge"))
	}
	sess, err := s.store.SessionByID(ctx, code.SessionID)
	if err == nil {
		sess, err = s.check(ctx, sess)
	}
	if errors.Is(err, ErrNotFound) {
		return refuse("session ended", oauthErr(ErrInvalidGrant, "the sign-in has ended"))
	}
	if err != nil {
		return nil, nil, err
	}
	data["clinician_id"] = sess.ClinicianID
	if len(code.Scopes) == 0 {
		return refuse("no scope for this client", oauthErr(ErrInvalidScope, "the user's roles grant this client no scope"))
	}
	access, exp, err := s.tokens.AccessToken(ctx, sess.ClinicianID, sess.ID, code.Scopes)
	if err != nil {
		return nil, nil, err
	}
	id, err := s.tokens.IDToken(ctx, IDTokenRequest{
		ClientID: c.ID, Subject: sess.ClinicianID, SessionID: sess.ID, Nonce: code.Nonce,
		AuthTime: sess.Created, ACR: sess.ACR, AMR: sess.AMR, Claims: sess.Claims,
	})
	if err != nil {
		return nil, nil, err
	}
	data["scopes"] = anyList(code.Scopes)
	if err := s.store.Record(ctx, event(ctx, EventToken, sess.ClinicianID, sess.ClinicianID, data)); err != nil {
		return nil, nil, fmt.Errorf("record token: %w", err)
	}
	return &TokenResponse{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(time.Until(exp).Seconds()),
		IDToken: id, Scope: strings.Join(code.Scopes, " "),
	}, nil, nil
}

// credentials picks the one client authentication a request used.
func credentials(r TokenRequest) (clientCredentials, *OAuthError) {
	n := 0
	var cc clientCredentials
	if r.basic {
		n++
		id, err1 := url.QueryUnescape(r.basicID)
		secret, err2 := url.QueryUnescape(r.basicSecret)
		if err1 != nil || err2 != nil {
			return cc, oauthErr(ErrInvalidClient, "malformed client credentials")
		}
		cc = clientCredentials{method: AuthClientSecretBasic, id: id, secret: secret}
	}
	if r.FormSecret != "" {
		n++
		cc = clientCredentials{method: AuthClientSecretPost, id: r.FormClientID, secret: r.FormSecret}
	}
	if r.ClientAssertion != "" || r.ClientAssertionType != "" {
		n++
		if r.ClientAssertionType != ClientAssertionType {
			return cc, oauthErr(ErrInvalidClient, "client_assertion_type must be "+ClientAssertionType)
		}
		id := r.FormClientID
		if claims, err := auth.ParseUnverified(r.ClientAssertion); err == nil {
			if iss, _ := claims["iss"].(string); id == "" {
				id = iss
			}
		}
		cc = clientCredentials{method: AuthPrivateKeyJWT, id: id, assertion: r.ClientAssertion}
	}
	switch {
	case n == 0:
		return cc, oauthErr(ErrInvalidClient, "client authentication is required")
	case n > 1:
		return cc, oauthErr(ErrInvalidRequest, "use exactly one client authentication method")
	case r.FormClientID != "" && r.FormClientID != cc.id:
		return cc, oauthErr(ErrInvalidClient, "client_id does not match the credentials")
	}
	return cc, nil
}

// UserInfo answers the userinfo endpoint for an access token issued from
// a session: the session must still be valid.
func (s *Service) UserInfo(ctx context.Context, accessToken string) (map[string]any, *OAuthError, error) {
	if s.cfg.AccessVerifier == nil {
		return nil, oauthErr(ErrInvalidToken, "no verifier"), nil
	}
	p, err := s.cfg.AccessVerifier.Verify(ctx, accessToken)
	if err != nil {
		return nil, oauthErr(ErrInvalidToken, "the access token is not valid"), nil
	}
	sid := p.MetadataString("session_id")
	if p.Kind.String() != "PRINCIPAL_KIND_CLINICIAN" || sid == "" {
		return nil, oauthErr(ErrInvalidToken, "the access token was not issued from a sign-in"), nil
	}
	sess, err := s.store.SessionByID(ctx, sid)
	if err == nil {
		sess, err = s.check(ctx, sess)
	}
	if errors.Is(err, ErrNotFound) || (err == nil && sess.ClinicianID != p.ID) {
		return nil, oauthErr(ErrInvalidToken, "the sign-in has ended"), nil
	}
	if err != nil {
		return nil, nil, err
	}
	out := map[string]any{"sub": sess.ClinicianID, "sid": sess.ID}
	for k, v := range sess.Claims {
		out[k] = v
	}
	return out, nil, nil
}

// LogoutRequest is an RP-initiated logout request (OpenID Connect
// RP-Initiated Logout 1.0, section 2).
type LogoutRequest struct {
	IDTokenHint, ClientID, PostLogoutRedirectURI, State string
}

// LogoutResult says where the browser goes: Redirect (the app's
// registered post-logout URI), or a signed-out page; Error when the
// request was refused (shown on the page).
type LogoutResult struct {
	Redirect string
	Error    *OAuthError
}

// Logout ends the session in the cookie (or the one id_token_hint names)
// and sends the browser to the app's registered post_logout_redirect_uri.
// The hint is verified with the suite's keys (its expiry is not checked:
// the specification allows old hints).
func (s *Service) Logout(ctx context.Context, cookie string, r LogoutRequest) (LogoutResult, error) {
	var hintSID, hintSub string
	clientID := r.ClientID
	if r.IDTokenHint != "" {
		c, err := s.verifyOwnIDToken(ctx, r.IDTokenHint)
		if err != nil {
			s.record(ctx, failure(ctx, EventSignOut, "", "", "id_token_hint not valid", audit.Data{"client_id": truncate(clientID, 200)}))
			return LogoutResult{Error: oauthErr(ErrInvalidRequest, "id_token_hint is not an ID token of this provider")}, nil
		}
		aud, _ := c.GetAudience()
		if len(aud) != 1 || (clientID != "" && clientID != aud[0]) {
			return LogoutResult{Error: oauthErr(ErrInvalidRequest, "client_id does not match id_token_hint")}, nil
		}
		clientID = aud[0]
		hintSID, _ = c["sid"].(string)
		hintSub, _ = c["sub"].(string)
	}
	redirect := ""
	if r.PostLogoutRedirectURI != "" {
		c, ok := s.clients[clientID]
		if !ok || !slices.Contains(c.PostLogoutRedirectURIs, r.PostLogoutRedirectURI) {
			s.record(ctx, failure(ctx, EventSignOut, "", "", "post_logout_redirect_uri not registered", audit.Data{"client_id": truncate(clientID, 200)}))
			return LogoutResult{Error: oauthErr(ErrInvalidRequest, "post_logout_redirect_uri is not registered for this client")}, nil
		}
		redirect = r.PostLogoutRedirectURI
		if r.State != "" {
			redirect = addQuery(redirect, url.Values{"state": {r.State}})
		}
	}
	var sess Session
	var err error
	if cookie != "" {
		sess, err = s.store.SessionByCookie(ctx, Hash(cookie))
	} else {
		err = ErrNotFound
	}
	if errors.Is(err, ErrNotFound) && hintSID != "" {
		sess, err = s.store.SessionByID(ctx, hintSID)
		if err == nil && sess.ClinicianID != hintSub {
			err = ErrNotFound
		}
	}
	switch {
	case err == nil:
		if err := s.end(ctx, sess, "logout", ""); err != nil {
			return LogoutResult{}, err
		}
	case !errors.Is(err, ErrNotFound):
		return LogoutResult{}, err
	}
	return LogoutResult{Redirect: redirect}, nil
}

// verifyOwnIDToken checks the signature and issuer of an ID token this
// provider signed (not its expiry).
func (s *Service) verifyOwnIDToken(ctx context.Context, raw string) (jwt.MapClaims, error) {
	if s.cfg.SuiteKeys == nil || len(raw) > auth.MaxTokenLength {
		return nil, errors.New("cannot verify")
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithValidMethods(auth.AsymmetricAlgorithms), jwt.WithIssuer(s.cfg.Issuer), jwt.WithoutClaimsValidation()).
		ParseWithClaims(raw, claims, auth.KeyFunc(ctx, s.cfg.SuiteKeys, auth.AsymmetricAlgorithms))
	if err != nil {
		return nil, err
	}
	if iss, _ := claims["iss"].(string); iss != s.cfg.Issuer {
		return nil, errors.New("wrong issuer")
	}
	if _, ok := claims["scope"]; ok {
		return nil, errors.New("an access token is not an ID token")
	}
	return claims, nil
}
