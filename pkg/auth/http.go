package auth

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// Middleware returns HTTP middleware that lets a request through only with
// a valid bearer token granting every scope in required; the verified
// principal is in the request's context (PrincipalFrom). A missing or
// invalid token answers 401, a missing scope 403, each with the suite's
// error body {"code", "message"} and a WWW-Authenticate header (RFC 6750).
func (v *Verifier) Middleware(required ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, ok := bearerFromHeader(r.Header.Get("Authorization"))
			if !ok {
				writeAuthError(w, http.StatusUnauthorized, `Bearer`, "missing bearer token")
				return
			}
			p, err := v.Verify(r.Context(), raw)
			if err != nil {
				writeAuthError(w, http.StatusUnauthorized, `Bearer error="invalid_token"`, err.Error())
				return
			}
			for _, s := range required {
				if !p.HasScope(s) {
					writeAuthError(w, http.StatusForbidden, `Bearer error="insufficient_scope", scope="`+strings.Join(required, " ")+`"`, "token lacks the scope "+s)
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

// bearerFromHeader reads "Bearer <token>" (scheme in any case).
func bearerFromHeader(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

func writeAuthError(w http.ResponseWriter, code int, challenge, msg string) {
	body, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg})
	h := w.Header()
	h.Set("WWW-Authenticate", challenge)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
