package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
)

// middleware refuses bad input before routing, bounds and checks request
// bodies, recovers from panics and logs each request at DEBUG.
func middleware(next http.Handler, errs *errorWriter, lg *slog.Logger, maxBody int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, traceID: traceIDOf(r.Context())}
		if routeInfoOf(r) == nil {
			r = r.WithContext(context.WithValue(r.Context(), routeKey{}, &routeInfo{}))
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				lg.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "route", routeOf(r), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !rec.wrote {
					errs.write(rec, http.StatusInternalServerError, "internal error")
				}
			}
			if lg.Enabled(r.Context(), slog.LevelDebug) {
				lg.DebugContext(r.Context(), "http", "method", r.Method, "route", routeOf(r), "status", rec.status(), "duration", time.Since(start))
			}
		}()
		rec.Header().Set("X-Content-Type-Options", "nosniff")
		if code, msg := checkRequest(r); code != 0 {
			errs.write(rec, code, msg)
			return
		}
		if code, msg := readBody(rec, r, maxBody); code != 0 {
			errs.write(rec, code, msg)
			return
		}
		next.ServeHTTP(rec, r)
	})
}

// routeKey holds the *routeInfo of a request in its context.
type routeKey struct{}

// routeInfo is the route a request matched: its path template, never the
// path itself, which can carry activation codes.
type routeInfo struct {
	pattern    runtime.Pattern
	hasPattern bool
	path       string
}

func routeInfoOf(r *http.Request) *routeInfo {
	ri, _ := r.Context().Value(routeKey{}).(*routeInfo)
	return ri
}

// routeOf is what logs say about a request's path.
func routeOf(r *http.Request) string {
	if p, ok := runtime.HTTPPattern(r.Context()); ok {
		return p.String()
	}
	if ri := routeInfoOf(r); ri != nil {
		switch {
		case ri.hasPattern:
			return ri.pattern.String()
		case ri.path != "":
			return ri.path
		}
	}
	return "(no route)"
}

// recordRoute is a mux middleware that records the matched pattern for
// the request log.
func recordRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if ri := routeInfoOf(r); ri != nil {
			ri.pattern, ri.hasPattern = runtime.HTTPPattern(r.Context())
		}
		next(w, r, params)
	}
}

const badQuery = "the query string contains bytes that are not allowed (invalid UTF-8 or control characters)"

// cleanText reports valid UTF-8 without control characters.
func cleanText(s string) bool { return utf8.ValidString(s) && !hasControl(s) }

// checkRequest refuses a request line or headers the edge will not pass
// on. It returns 0 when the request may go on.
func checkRequest(r *http.Request) (int, string) {
	if !utf8.ValidString(r.URL.Path) {
		return http.StatusBadRequest, "the request path is not valid UTF-8"
	}
	if hasControl(r.URL.Path) {
		return http.StatusBadRequest, "the request path contains control characters"
	}
	var q url.Values
	if r.URL.RawQuery != "" {
		var err error
		if q, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			return http.StatusBadRequest, "the query string is malformed"
		}
	}
	for k, vs := range q {
		if !cleanText(k) {
			return http.StatusBadRequest, badQuery
		}
		for _, v := range vs {
			if !cleanText(v) {
				return http.StatusBadRequest, badQuery
			}
		}
	}
	for name, vs := range r.Header {
		for _, v := range vs {
			if hasControlExceptTab(v) {
				return http.StatusBadRequest, "header " + strings.ToLower(name) + " contains control characters"
			}
			if printableASCII(v) {
				continue
			}
			switch lower := strings.ToLower(name); {
			case forwardedHeaders[lower]:
				return http.StatusBadRequest, "header " + lower + " must be printable ASCII"
			case lower == "authorization":
				return http.StatusUnauthorized, "the authorization header must be 'Bearer <token>'"
			}
			// gRPC metadata cannot carry it, and no service reads it.
			r.Header.Del(name)
			break
		}
	}
	// The services bound every call themselves; a client does not choose
	// how long the edge waits.
	r.Header.Del("Grpc-Timeout")
	if bodyless(r.Method) && hasBody(r) {
		return http.StatusBadRequest, r.Method + " request must not have a body"
	}
	return 0, ""
}

// readBody reads a request body into memory (at most maxBody bytes),
// checks that it is JSON and puts it back for the handlers.
func readBody(w http.ResponseWriter, r *http.Request, maxBody int64) (int, string) {
	if !hasBody(r) {
		return 0, ""
	}
	tooLarge := func() string { return fmt.Sprintf("the request body is larger than %d bytes", maxBody) }
	if r.ContentLength > maxBody {
		return http.StatusRequestEntityTooLarge, tooLarge()
	}
	// The declared type is not trusted either way: legacy clients (and curl
	// -d) label JSON as a form, so a body is judged by whether it is JSON.
	form := false
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return http.StatusBadRequest, "the Content-Type header is malformed"
		}
		form = mt == "application/x-www-form-urlencoded" || strings.HasPrefix(mt, "multipart/")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	_ = r.Body.Close()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return http.StatusRequestEntityTooLarge, tooLarge()
		}
		return http.StatusBadRequest, "the request body could not be read"
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = nil
	} else if !json.Valid(body) {
		if form {
			return http.StatusUnsupportedMediaType, "request bodies must be JSON"
		}
		return http.StatusBadRequest, "the request body is not valid JSON"
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	r.Header.Del("Transfer-Encoding")
	return 0, ""
}

func bodyless(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodDelete
}

// hasBody reports whether the request carries a body: a positive length,
// chunked encoding, or a body of unknown length.
func hasBody(r *http.Request) bool {
	if r.ContentLength > 0 || slices.Contains(r.TransferEncoding, "chunked") {
		return true
	}
	return r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody
}

// hasControlExceptTab is hasControl allowing horizontal tabs, which HTTP
// header values may contain.
func hasControlExceptTab(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

// hasControl reports C0 control characters and DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// statusRecorder remembers the status written, for the request log and
// for the panic handler.
type statusRecorder struct {
	http.ResponseWriter
	code  int
	wrote bool
	// traceID is quoted in error bodies.
	traceID string
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.code, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if !s.wrote {
		s.code, s.wrote = http.StatusOK, true
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) status() int {
	if !s.wrote {
		return http.StatusOK
	}
	return s.code
}
