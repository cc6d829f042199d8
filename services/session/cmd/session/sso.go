package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"os"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/services/session/internal/sso"
	"github.com/dhosauth/dhosauth/services/session/internal/upstream"
)

// DefaultHTTPAddr is where the browser-facing endpoints listen (and where
// the edge forwards them) unless SESSION_HTTP_ADDR says otherwise.
const DefaultHTTPAddr = "127.0.0.1:9095"

// defaultRoleScopes map the SEND clinician groups to the default
// clinician scope set, outside production when ROLE_SCOPES is unset.
var defaultRoleScopes = func() map[string][]string {
	scopes := strings.Fields("read:send_clinician read:send_encounter write:send_encounter read:send_observation " +
		"write:send_observation read:send_patient write:send_patient read:send_location read:send_device " +
		"read:send_trustomer read:send_rule")
	return map[string][]string{"send clinician": scopes, "send superclinician": scopes}
}()

// ssoSettings configure browser sign-in.
type ssoSettings struct {
	// HTTPListen is where the browser-facing endpoints listen ("off":
	// nowhere).
	HTTPListen string
	Providers  []upstream.Config
	Clients    []*sso.Client
	RoleScopes map[string][]string
	LocalLogin bool
	Idle       time.Duration
	Absolute   time.Duration
	// Limits bound failed local sign-ins and token requests.
	Limits sso.Limits
	Notes  []string
}

// loadSSO reads SESSION_HTTP_ADDR (SESSION_HTTP_LISTEN_ADDR), OIDC_PROVIDERS
// (or OIDC_PROVIDERS_FILE), OIDC_CLIENTS (or OIDC_CLIENTS_FILE), ROLE_SCOPES,
// LOCAL_LOGIN_ENABLED, SESSION_IDLE_TIMEOUT, SESSION_ABSOLUTE_TIMEOUT and
// the activation service's RATE_LIMIT_PER_ADDRESS and
// RATE_LIMIT_PER_PRINCIPAL.
func loadSSO(l *config.Loader, c service.Common) ssoSettings {
	prod := c.Environment.IsProduction()
	s := ssoSettings{}
	addr := l.String("SESSION_HTTP_ADDR", DefaultHTTPAddr)
	s.HTTPListen = l.String("SESSION_HTTP_LISTEN_ADDR", addr)
	providers := fromFile(l, "OIDC_PROVIDERS", true)
	list, err := upstream.ParseConfigs(providers)
	if err != nil {
		l.Fail("OIDC_PROVIDERS: %v", err)
	}
	s.Providers = list
	clients, err := sso.ParseClients(fromFile(l, "OIDC_CLIENTS", false), c.Audience)
	if err != nil {
		l.Fail("OIDC_CLIENTS: %v", err)
	}
	s.Clients = clients
	if v := l.String("ROLE_SCOPES", ""); v != "" {
		dec := json.NewDecoder(strings.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s.RoleScopes); err != nil {
			l.Fail("ROLE_SCOPES: want a JSON object of role: [scopes]: %v", err)
		}
	} else if !prod {
		s.RoleScopes = defaultRoleScopes
	}
	for role, scopes := range s.RoleScopes {
		for _, sc := range scopes {
			if sc == "" || strings.HasPrefix(sc, "internal:") || strings.ContainsAny(sc, " \t") {
				l.Fail("ROLE_SCOPES: role %q: scope %q cannot be issued", role, sc)
			}
		}
	}
	s.LocalLogin = l.Bool("LOCAL_LOGIN_ENABLED", !prod)
	if s.LocalLogin && prod {
		s.Notes = append(s.Notes, "LOCAL_LOGIN_ENABLED=true in PRODUCTION: clinicians with a local password can sign in without the identity provider")
	}
	s.Idle = l.Duration("SESSION_IDLE_TIMEOUT", sso.DefaultIdleTimeout)
	s.Absolute = l.Duration("SESSION_ABSOLUTE_TIMEOUT", sso.DefaultAbsoluteTimeout)
	if s.Idle < time.Minute || s.Absolute < s.Idle || s.Absolute > 30*24*time.Hour {
		l.Fail("SESSION_IDLE_TIMEOUT and SESSION_ABSOLUTE_TIMEOUT: want 1m <= idle <= absolute <= 720h, got %s and %s", s.Idle, s.Absolute)
	}
	def := sso.DefaultLimits()
	s.Limits = sso.Limits{
		PerAddress:   limit(l, "RATE_LIMIT_PER_ADDRESS", def.PerAddress),
		PerPrincipal: limit(l, "RATE_LIMIT_PER_PRINCIPAL", def.PerPrincipal),
	}
	return s
}

// limit reads a rate limit ("N/duration", or "off").
func limit(l *config.Loader, name string, def ratelimit.Limit) ratelimit.Limit {
	lim, err := ratelimit.ParseLimit(def.Name, l.String(name, def.String()))
	if err != nil {
		l.Fail("%s: %v", name, err)
		return def
	}
	return lim
}

// fromFile reads NAME, or the file NAME_FILE names.
func fromFile(l *config.Loader, name string, secret bool) string {
	var v string
	if secret {
		v = l.Secret(name)
	} else {
		v = l.String(name, "")
	}
	if f := l.String(name+"_FILE", ""); f != "" {
		if v != "" {
			l.Fail("%s and %s_FILE are both set", name, name)
			return ""
		}
		b, err := os.ReadFile(f)
		if err != nil {
			l.Fail("%s_FILE: %v", name, err)
			return ""
		}
		return string(b)
	}
	return v
}

// stateKey derives the key of upstream sign-in states from the internal
// key (no further secret to configure).
func stateKey(internal []byte) []byte {
	m := hmac.New(sha256.New, internal)
	m.Write([]byte("dhosauth session sign-in state"))
	return m.Sum(nil)
}
