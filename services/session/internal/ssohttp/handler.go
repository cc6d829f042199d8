package ssohttp

import (
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/services/session/internal/sso"
	"google.golang.org/grpc/codes"
)

// Cookie names. The __Host- prefix makes browsers insist on Secure, Path=/
// and no Domain: the cookie belongs to the suite's origin only.
const (
	SessionCookie = "__Host-dhos_session"
	LoginCookie   = "__Host-dhos_login"
)

// maxFormBytes bounds a form body.
const maxFormBytes = 64 << 10

// Handler serves the browser-facing endpoints.
type Handler struct {
	svc *sso.Service
	log *slog.Logger
	mux *http.ServeMux
}

// New returns the handler over svc.
func New(svc *sso.Service, lg *slog.Logger) *Handler {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	h := &Handler{svc: svc, log: lg, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET "+sso.PathLogin, h.login)
	h.mux.HandleFunc("GET "+sso.PathLoginUpstream, h.loginUpstream)
	h.mux.HandleFunc("GET "+sso.PathCallback, h.callback)
	h.mux.HandleFunc("POST "+sso.PathLocalLogin, h.localLogin)
	h.mux.HandleFunc("GET "+sso.PathLogout, h.logout)
	h.mux.HandleFunc("POST "+sso.PathLogout, h.logout)
	h.mux.HandleFunc("POST "+sso.PathBackchannel, h.backchannel)
	h.mux.HandleFunc("GET "+sso.PathSession, h.session)
	h.mux.HandleFunc("GET "+sso.PathAuthorize, h.authorize)
	h.mux.HandleFunc("POST "+sso.PathToken, h.token)
	h.mux.HandleFunc("GET "+sso.PathUserinfo, h.userinfo)
	h.mux.HandleFunc("POST "+sso.PathUserinfo, h.userinfo)
	return h
}

// ServeHTTP implements http.Handler: security headers, bounded bodies,
// then the routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("Pragma", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	h.mux.ServeHTTP(w, r.WithContext(ratelimit.WithAddress(r.Context(), clientAddress(r))))
}

// clientAddress is the address a request came from, for the per-address
// limits: the edge's ratelimit.ClientAddressHeader, which it always sets
// itself (only the edge reaches this listener: the network policies in
// deploy/k8s, a loopback address by default), else the connection's peer.
func clientAddress(r *http.Request) netip.Addr {
	if v := r.Header.Values(ratelimit.ClientAddressHeader); len(v) > 0 {
		if a, err := netip.ParseAddr(strings.TrimSpace(v[len(v)-1])); err == nil {
			return a.Unmap()
		}
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

func setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	} else {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// fail answers an unexpected error: 503 when a peer did not answer, else
// 500, without details.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if apperr.CodeOf(err) == codes.Unavailable {
		h.page(w, http.StatusServiceUnavailable, "Try again", "A service this sign-in needs is not answering. Try again in a moment.")
		return
	}
	var nf *apperr.Error
	if errors.As(err, &nf) && nf.Code == codes.NotFound {
		h.page(w, http.StatusNotFound, "Not found", nf.Msg)
		return
	}
	h.log.ErrorContext(r.Context(), "sign-in: internal error", "path", r.URL.Path, "error", err.Error())
	h.page(w, http.StatusInternalServerError, "Something went wrong", "The sign-in could not be completed. Try again.")
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;max-width:32em;margin:3em auto}label{display:block;margin:.5em 0}</style></head>
<body><h1 id="title">{{.Title}}</h1>{{if .Message}}<p id="message">{{.Message}}</p>{{end}}
{{range .Providers}}<p><a class="provider" id="provider-{{.ID}}" href="{{.URL}}">Sign in with {{.Name}}</a></p>{{end}}
{{if .Local}}<form method="post" action="/login/local" id="local">
<label>Name <input name="username" id="username" autocomplete="username"></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label>
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="return_to" value="{{.ReturnTo}}">
<button type="submit" id="submit">Sign in</button></form>{{end}}
{{if .Clinician}}<p>Signed in as <span id="clinician">{{.Clinician}}</span>.</p>{{end}}
</body></html>`))

type providerLink struct{ ID, Name, URL string }

type pageData struct {
	Title, Message string
	Providers      []providerLink
	Local          bool
	CSRF, ReturnTo string
	Clinician      string
}

func (h *Handler) render(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, d)
}

func (h *Handler) page(w http.ResponseWriter, status int, title, msg string) {
	h.render(w, status, pageData{Title: title, Message: msg})
}

// login shows the sign-in page: a link per provider and, when enabled,
// the local password form. With one provider and no local form it goes
// straight to the provider.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	returnTo := sso.SafeReturnTo(r.URL.Query().Get("return_to"))
	providers := h.svc.Providers()
	var links []providerLink
	for _, p := range providers {
		q := url.Values{"provider": {p.ID}}
		if returnTo != "" {
			q.Set("return_to", returnTo)
		}
		links = append(links, providerLink{ID: p.ID, Name: p.Name, URL: sso.PathLoginUpstream + "?" + q.Encode()})
	}
	if len(links) == 1 && !h.svc.LocalLoginEnabled() {
		http.Redirect(w, r, links[0].URL, http.StatusFound)
		return
	}
	d := pageData{Title: "Sign in", Providers: links, ReturnTo: returnTo}
	if h.svc.LocalLoginEnabled() {
		d.Local = true
		d.CSRF = sso.NewCSRF()
		setCookie(w, LoginCookie, d.CSRF, sso.LoginStateLifetime)
	}
	if len(links) == 0 && !d.Local {
		d.Message = "No way to sign in is configured."
	}
	h.render(w, http.StatusOK, d)
}

// loginUpstream starts a sign-in at a provider.
func (h *Handler) loginUpstream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	u, state, err := h.svc.BeginUpstream(r.Context(), q.Get("provider"), q.Get("return_to"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	setCookie(w, LoginCookie, state, sso.LoginStateLifetime)
	http.Redirect(w, r, u, http.StatusFound)
}

// callback is the upstream's redirect URI.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cookie, returnTo, err := h.svc.FinishUpstream(r.Context(), sso.Callback{
		State: q.Get("state"), StateCookie: cookieValue(r, LoginCookie), Code: q.Get("code"), Error: q.Get("error"),
	})
	setCookie(w, LoginCookie, "", 0)
	h.signedIn(w, r, cookie, returnTo, err)
}

// signedIn sets the session cookie and goes on, or shows the refusal: a
// refusal by a brute-force limit is a 429 with Retry-After.
func (h *Handler) signedIn(w http.ResponseWriter, r *http.Request, cookie, returnTo string, err error) {
	var se *sso.SignInError
	var limited *sso.LimitedError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.Seconds()))
		h.page(w, http.StatusTooManyRequests, "Too many attempts",
			"There have been too many failed sign-ins. Try again in "+strconv.Itoa(limited.Seconds())+" seconds.")
		return
	case errors.As(err, &se):
		h.page(w, http.StatusForbidden, "You are not signed in", se.Message)
		return
	case err != nil:
		h.fail(w, r, err)
		return
	}
	setCookie(w, SessionCookie, cookie, h.svc.CookieMaxAge())
	if returnTo == "" {
		returnTo = sso.PathSession
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

// localLogin checks the form's CSRF value against the cookie the sign-in
// page set, then the password.
func (h *Handler) localLogin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.svc.RecordRefusal(r.Context(), sso.EventSignIn, "sign-in form does not parse", audit.Data{"provider": sso.ProviderLocal})
		h.page(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	if !sso.CSRFMatches(r.PostForm.Get("csrf"), cookieValue(r, LoginCookie)) {
		h.svc.RecordRefusal(r.Context(), sso.EventSignIn, "sign-in form value does not match the browser", audit.Data{"provider": sso.ProviderLocal})
		h.page(w, http.StatusForbidden, "You are not signed in", "The sign-in form has expired: open the sign-in page again.")
		return
	}
	setCookie(w, LoginCookie, "", 0)
	cookie, err := h.svc.LocalLogin(r.Context(), r.PostForm.Get("username"), r.PostForm.Get("password"))
	h.signedIn(w, r, cookie, sso.SafeReturnTo(r.PostForm.Get("return_to")), err)
}

// logout is the end_session_endpoint (GET or POST).
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.page(w, http.StatusBadRequest, "Bad request", "The request could not be read.")
		return
	}
	f := r.Form
	res, err := h.svc.Logout(r.Context(), cookieValue(r, SessionCookie), sso.LogoutRequest{
		IDTokenHint: f.Get("id_token_hint"), ClientID: f.Get("client_id"),
		PostLogoutRedirectURI: f.Get("post_logout_redirect_uri"), State: f.Get("state"),
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if res.Error != nil {
		h.page(w, res.Error.Status, "Sign-out refused", res.Error.Code+": "+res.Error.Description)
		return
	}
	setCookie(w, SessionCookie, "", 0)
	if res.Redirect != "" {
		http.Redirect(w, r, res.Redirect, http.StatusFound)
		return
	}
	h.page(w, http.StatusOK, "Signed out", "You have been signed out.")
}

// backchannel receives an upstream provider's logout token (form
// logout_token): 200 when accepted, 400 invalid_request otherwise.
func (h *Handler) backchannel(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.svc.RecordRefusal(r.Context(), sso.EventBackChannel, "request does not parse", nil)
		writeOAuthError(w, &sso.OAuthError{Code: sso.ErrInvalidRequest, Description: "the body must be a form with logout_token", Status: http.StatusBadRequest})
		return
	}
	e, err := h.svc.BackChannelLogout(r.Context(), r.PostForm.Get("logout_token"))
	if err != nil {
		h.log.ErrorContext(r.Context(), "back-channel logout failed", "error", err.Error())
		st := http.StatusInternalServerError
		if apperr.CodeOf(err) == codes.Unavailable {
			st = http.StatusServiceUnavailable
		}
		writeOAuthError(w, &sso.OAuthError{Code: sso.ErrServerError, Description: "the logout could not be completed", Status: st})
		return
	}
	if e != nil {
		writeOAuthError(w, e)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// session answers who is signed in (JSON), for the suite's own pages.
func (h *Handler) session(w http.ResponseWriter, r *http.Request) {
	sess, err := h.svc.Current(r.Context(), cookieValue(r, SessionCookie))
	if errors.Is(err, sso.ErrNotFound) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": http.StatusUnauthorized, "message": "not signed in"})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"clinician_id": sess.ClinicianID, "session_id": sess.ID, "provider": sess.Provider, "scopes": sess.Scopes,
		"claims": sess.Claims, "expires": h.svc.Expires(sess).UTC().Format(time.RFC3339),
	})
}

// authorize is the OpenID provider's authorization endpoint.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	res, err := h.svc.Authorize(r.Context(), cookieValue(r, SessionCookie), sso.AuthorizeRequest{
		ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"), ResponseType: q.Get("response_type"),
		Scope: q.Get("scope"), State: q.Get("state"), Nonce: q.Get("nonce"), CodeChallenge: q.Get("code_challenge"),
		CodeChallengeMethod: q.Get("code_challenge_method"), Prompt: q.Get("prompt"), ResponseMode: q.Get("response_mode"),
		Request: q.Get("request"), RequestURI: q.Get("request_uri"), Query: r.URL.RawQuery,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if res.Error != nil {
		h.page(w, res.Error.Status, "Sign-in refused", res.Error.Code+": "+res.Error.Description)
		return
	}
	http.Redirect(w, r, res.Redirect, http.StatusFound)
}

// token is the token endpoint (form-encoded POST).
func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.svc.RecordRefusal(r.Context(), sso.EventToken, "request does not parse", audit.Data{"oauth_error": sso.ErrInvalidRequest})
		writeOAuthError(w, &sso.OAuthError{Code: sso.ErrInvalidRequest, Description: "the body must be application/x-www-form-urlencoded", Status: http.StatusBadRequest})
		return
	}
	f := r.PostForm
	for _, v := range f {
		if len(v) > 1 {
			h.svc.RecordRefusal(r.Context(), sso.EventToken, "repeated parameter", audit.Data{"oauth_error": sso.ErrInvalidRequest})
			writeOAuthError(w, &sso.OAuthError{Code: sso.ErrInvalidRequest, Description: "a parameter is repeated", Status: http.StatusBadRequest})
			return
		}
	}
	req := sso.TokenRequest{
		GrantType: f.Get("grant_type"), Code: f.Get("code"), RedirectURI: f.Get("redirect_uri"), CodeVerifier: f.Get("code_verifier"),
		FormClientID: f.Get("client_id"), FormSecret: f.Get("client_secret"),
		ClientAssertionType: f.Get("client_assertion_type"), ClientAssertion: f.Get("client_assertion"),
	}
	if id, secret, ok := r.BasicAuth(); ok {
		req = req.WithBasic(id, secret)
	}
	resp, e, err := h.svc.Token(r.Context(), req)
	if err != nil {
		h.log.ErrorContext(r.Context(), "token endpoint failed", "error", err.Error())
		if apperr.CodeOf(err) == codes.Unavailable {
			writeOAuthError(w, &sso.OAuthError{Code: sso.ErrTemporarilyUnavailable, Description: "try again", Status: http.StatusServiceUnavailable})
			return
		}
		writeOAuthError(w, &sso.OAuthError{Code: sso.ErrServerError, Description: "internal error", Status: http.StatusInternalServerError})
		return
	}
	if e != nil {
		if e.Code == sso.ErrInvalidClient && r.Header.Get("Authorization") != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="dhosauth"`)
		}
		writeOAuthError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// userinfo is the userinfo endpoint (RFC 6750 bearer token).
func (h *Handler) userinfo(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dhosauth"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": sso.ErrInvalidToken, "error_description": "a bearer token is required"})
		return
	}
	info, e, err := h.svc.UserInfo(r.Context(), strings.TrimSpace(tok))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if e != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dhosauth", error="invalid_token"`)
		writeOAuthError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func writeOAuthError(w http.ResponseWriter, e *sso.OAuthError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, e.Status, map[string]string{"error": e.Code, "error_description": e.Description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
