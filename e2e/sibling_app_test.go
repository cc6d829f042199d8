package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// siblingApp is a client app of the suite's OpenID provider, written the
// way any Go web app would be: github.com/coreos/go-oidc/v3 for discovery
// and token verification and golang.org/x/oauth2 for the authorization
// code flow with PKCE. It keeps its own sessions behind its own cookie,
// and ends them when the suite sends a back-channel logout token.
type siblingApp struct {
	name, secret, issuer string
	URL                  string

	mu       sync.Mutex
	provider *oidc.Provider
	pending  map[string]appPending
	sessions map[string]appSession

	logins  atomic.Int64
	logouts atomic.Int64
	refused atomic.Int64
}

type appPending struct{ nonce, verifier string }

// appSession is a signed-in user of the app.
type appSession struct {
	Subject, SID, AccessToken, IDToken string
}

// newSiblingApp listens on a loopback port (so that the suite can be
// configured with its URLs before it starts); serve starts it.
func newSiblingApp(t *testing.T, name string) (*siblingApp, net.Listener) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return &siblingApp{
		name: name, secret: name + "-" + hex.EncodeToString(b), URL: "http://" + lis.Addr().String(),
		pending: map[string]appPending{}, sessions: map[string]appSession{},
	}, lis
}

// registration is the app's OIDC_CLIENTS entry: only the SHA-256 of its
// secret is configured.
func (a *siblingApp) registration() map[string]any {
	sum := sha256.Sum256([]byte(a.secret))
	return map[string]any{
		"client_id":                 a.name,
		"name":                      "Sibling app " + a.name,
		"redirect_uris":             []string{a.URL + "/callback"},
		"post_logout_redirect_uris": []string{a.URL + "/signed-out"},
		"backchannel_logout_uri":    a.URL + "/backchannel-logout",
		"client_secret_sha256":      hex.EncodeToString(sum[:]),
	}
}

func (a *siblingApp) serve(t *testing.T, lis net.Listener, issuer string) {
	a.issuer = issuer
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", a.home)
	mux.HandleFunc("GET /callback", a.callback)
	mux.HandleFunc("POST /backchannel-logout", a.backchannel)
	mux.HandleFunc("GET /signed-out", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "signed out of "+a.name) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// oidc returns the provider (discovered on first use) and the OAuth 2.0
// configuration.
func (a *siblingApp) oidc(ctx context.Context) (*oidc.Provider, *oauth2.Config, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.provider == nil {
		p, err := oidc.NewProvider(ctx, a.issuer)
		if err != nil {
			return nil, nil, err
		}
		a.provider = p
	}
	return a.provider, &oauth2.Config{
		ClientID: a.name, ClientSecret: a.secret, Endpoint: a.provider.Endpoint(),
		RedirectURL: a.URL + "/callback", Scopes: []string{oidc.ScopeOpenID, "profile"},
	}, nil
}

func (a *siblingApp) cookie() string { return a.name + "_session" }

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// home greets a signed-in user, or sends the browser to sign in.
func (a *siblingApp) home(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if c, err := r.Cookie(a.cookie()); err == nil {
		a.mu.Lock()
		s, ok := a.sessions[c.Value]
		a.mu.Unlock()
		if ok {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><title>%s</title><p id="hello">hello %s from %s</p>`, a.name, html.EscapeString(s.Subject), a.name)
			return
		}
	}
	_, cfg, err := a.oidc(r.Context())
	if err != nil {
		http.Error(w, "discovery: "+err.Error(), http.StatusBadGateway)
		return
	}
	state, nonce, verifier := random(), random(), oauth2.GenerateVerifier()
	a.mu.Lock()
	a.pending[state] = appPending{nonce: nonce, verifier: verifier}
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: a.name + "_state", Value: state, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// callback redeems the code (PKCE), verifies the ID token (signature,
// issuer, audience, expiry, nonce) and starts the app's own session.
func (a *siblingApp) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := r.Cookie(a.name + "_state")
	if err != nil || c.Value != q.Get("state") {
		http.Error(w, "state does not match", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	p, ok := a.pending[c.Value]
	delete(a.pending, c.Value)
	a.mu.Unlock()
	if !ok {
		http.Error(w, "unknown state", http.StatusBadRequest)
		return
	}
	if e := q.Get("error"); e != "" {
		http.Error(w, "refused: "+e, http.StatusForbidden)
		return
	}
	provider, cfg, err := a.oidc(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	tok, err := cfg.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		http.Error(w, "exchange: "+err.Error(), http.StatusBadGateway)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: a.name}).Verify(r.Context(), raw)
	if err != nil || idt.Nonce != p.nonce {
		http.Error(w, fmt.Sprintf("id token: %v", err), http.StatusBadGateway)
		return
	}
	var claims struct {
		SID string `json:"sid"`
	}
	_ = idt.Claims(&claims)
	id := random()
	a.mu.Lock()
	a.sessions[id] = appSession{Subject: idt.Subject, SID: claims.SID, AccessToken: tok.AccessToken, IDToken: raw}
	a.mu.Unlock()
	a.logins.Add(1)
	http.SetCookie(w, &http.Cookie{Name: a.cookie(), Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusFound)
}

// backchannel ends the app's sessions of the logout token's sid (OpenID
// Connect Back-Channel Logout 1.0, section 2.6), verified with go-oidc.
func (a *siblingApp) backchannel(w http.ResponseWriter, r *http.Request) {
	provider, _, err := a.oidc(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	raw := r.PostFormValue("logout_token")
	t, err := provider.Verifier(&oidc.Config{ClientID: a.name}).Verify(r.Context(), raw)
	var c struct {
		SID    string         `json:"sid"`
		Nonce  *string        `json:"nonce"`
		Events map[string]any `json:"events"`
	}
	if err == nil {
		err = t.Claims(&c)
	}
	if _, ok := c.Events["http://schemas.openid.net/event/backchannel-logout"]; err != nil || !ok || c.Nonce != nil || c.SID == "" {
		a.refused.Add(1)
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	for id, s := range a.sessions {
		if s.SID == c.SID && s.Subject == t.Subject {
			delete(a.sessions, id)
		}
	}
	a.mu.Unlock()
	a.logouts.Add(1)
	w.WriteHeader(http.StatusOK)
}

// session returns one of the app's sessions (the test has one user).
func (a *siblingApp) session() (appSession, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.sessions {
		return s, true
	}
	return appSession{}, false
}

// authCodeURL is what the app would send a browser to (tests drive the
// protocol by hand with it).
func authorizeQuery(clientID, redirectURI, state, nonce, verifier string) url.Values {
	return url.Values{
		"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid profile"},
		"state": {state}, "nonce": {nonce}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
}
