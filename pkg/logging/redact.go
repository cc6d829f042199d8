package logging

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
)

// Redacted replaces a value that must not be logged.
const Redacted = "[REDACTED]"

// secretKeys are attribute keys whose values are never logged, compared
// after lower-casing and turning '-' and '.' into '_'.
var secretKeys = map[string]bool{
	"authorization": true, "authorisation": true, "password": true, "secret": true,
	"token": true, "jwt": true, "otp": true, "pin": true, "key": true, "cookie": true,
	"activation_code": true, "authorisation_code": true, "authorization_code": true,
	"x_authorisation_code": true, "auth_code": true, "set_cookie": true,
}

// secretSuffixes mark keys such as "hs_key", "refresh_token" or
// "database_password".
var secretSuffixes = []string{"_key", "_token", "_secret", "_password", "_otp", "_jwt", "_code_hash"}

// isSecretKey reports whether an attribute key names a secret. "code" on
// its own is a status code, not a secret.
func isSecretKey(k string) bool {
	k = strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToLower(k))
	if secretKeys[k] {
		return true
	}
	for _, s := range secretSuffixes {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// jwtRe matches a compact JWS (three base64url parts, the header starting
// with '{"'), bearerRe a bearer credential.
var (
	jwtRe    = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`)
	bearerRe = regexp.MustCompile(`(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+`)
)

// RedactString hides JWTs and bearer credentials inside free text, such as
// an error message that quotes a request.
func RedactString(s string) string {
	if strings.Contains(s, "eyJ") {
		s = jwtRe.ReplaceAllString(s, Redacted)
	}
	if strings.Contains(s, "earer") || strings.Contains(s, "EARER") {
		s = bearerRe.ReplaceAllString(s, "$1 "+Redacted)
	}
	return s
}

// RedactAttr is the redaction every log line passes through: values of
// secret-named keys are replaced, and JWTs and bearer credentials are cut
// out of every string, in groups and in map values too.
func RedactAttr(a slog.Attr) slog.Attr {
	if isSecretKey(a.Key) && a.Value.Kind() != slog.KindGroup {
		return slog.String(a.Key, Redacted)
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, RedactString(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, ga := range g {
			out[i] = RedactAttr(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		switch m := v.Any().(type) {
		case map[string]any:
			return slog.Any(a.Key, redactMap(m))
		case map[string]string:
			out := make(map[string]string, len(m))
			for k, s := range m {
				if isSecretKey(k) {
					out[k] = Redacted
				} else {
					out[k] = RedactString(s)
				}
			}
			return slog.Any(a.Key, out)
		case error:
			return slog.String(a.Key, RedactString(m.Error()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func redactMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, x := range m {
		switch {
		case isSecretKey(k):
			out[k] = Redacted
		default:
			switch t := x.(type) {
			case string:
				out[k] = RedactString(t)
			case map[string]any:
				out[k] = redactMap(t)
			default:
				out[k] = x
			}
		}
	}
	return out
}

// redactHandler applies RedactAttr and RedactString to every record.
type redactHandler struct{ next slog.Handler }

func (h redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h redactHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, RedactString(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(RedactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = RedactAttr(a)
	}
	return redactHandler{next: h.next.WithAttrs(out)}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{next: h.next.WithGroup(name)}
}
