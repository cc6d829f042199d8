package edge

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apperr"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorBody is the contract's error body.
type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	// TraceID names the request's trace, for support and the logs.
	TraceID string `json:"trace_id,omitempty"`
}

// errorWriter is the one place errors become HTTP responses: gRPC
// statuses from the services, the gateway's own decoding and routing
// errors, and the middleware's refusals.
type errorWriter struct {
	log *slog.Logger
}

// grpcError is the mux's error handler (runtime.ErrorHandlerFunc).
func (e *errorWriter) grpcError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	e.writeError(ctx, w, r, err)
}

// muxRoutingError is the mux's routing error handler.
func (e *errorWriter) muxRoutingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	e.routingError(w, r, httpStatus)
}

// routingError answers a request no route matched (404), or one whose
// path exists for other methods only (405).
func (e *errorWriter) routingError(w http.ResponseWriter, r *http.Request, httpStatus int) {
	switch httpStatus {
	case http.StatusNotFound:
		e.write(w, http.StatusNotFound, "not found: no endpoint has this path")
	case http.StatusMethodNotAllowed:
		e.write(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on this path")
	case http.StatusBadRequest:
		e.write(w, http.StatusBadRequest, "bad request path")
	default:
		e.write(w, httpStatus, http.StatusText(httpStatus))
	}
}

// writeError maps err to a status and a client-safe message.
func (e *errorWriter) writeError(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	var hse *runtime.HTTPStatusError
	if errors.As(err, &hse) {
		msg := "bad request"
		if hse.Err != nil {
			msg = status.Convert(hse.Err).Message()
		}
		if hse.HTTPStatus >= 500 {
			e.log.ErrorContext(ctx, "request failed", "method", r.Method, "route", routeOf(r), "status", hse.HTTPStatus, "error", err.Error())
			msg = "internal error"
		}
		e.write(w, hse.HTTPStatus, msg)
		return
	}
	st := status.Convert(err)
	code := runtime.HTTPStatusFromCode(st.Code())
	msg := st.Message()
	switch st.Code() {
	case codes.Unauthenticated:
		w.Header().Set("WWW-Authenticate", `Bearer realm="dhos"`)
	case codes.Unavailable:
		// The message may be the client transport's (addresses, dial
		// errors): keep it for the log only.
		e.log.WarnContext(ctx, "service unavailable", "method", r.Method, "route", routeOf(r), "error", msg)
		w.Header().Set("Retry-After", "1")
		msg = "service temporarily unavailable, try again"
	case codes.DeadlineExceeded:
		e.log.WarnContext(ctx, "deadline exceeded", "method", r.Method, "route", routeOf(r), "error", msg)
		msg = "the request took too long, try again"
	case codes.ResourceExhausted:
		// A rate limit: the service says how long to wait (RetryInfo).
		secs := int64(1)
		if d := apperr.RetryAfterOf(err); d > 0 {
			secs = int64((d + time.Second - 1) / time.Second)
		}
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	case codes.Canceled:
		msg = "request canceled"
	case codes.Unimplemented:
		msg = "not implemented"
	default:
		if code >= 500 {
			e.log.ErrorContext(ctx, "request failed", "method", r.Method, "route", routeOf(r), "code", st.Code().String(), "error", msg)
			msg = "internal error"
		}
	}
	if msg == "" {
		msg = http.StatusText(code)
	}
	e.write(w, code, msg)
}

// traceIDOfWriter finds the trace id the middleware's recorder holds.
func traceIDOfWriter(w http.ResponseWriter) string {
	for {
		switch t := w.(type) {
		case *statusRecorder:
			return t.traceID
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return ""
		}
	}
}

// write sends {"code", "message", "trace_id"} with the status (a message that
// quotes the client's input is cut short). Headers set for a
// success response that did not happen are cleared first.
func (e *errorWriter) write(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Del("Trailer")
	h.Del("Transfer-Encoding")
	h.Del("Content-Length")
	body, _ := json.Marshal(errorBody{Code: code, Message: truncate(msg, 2*maxMessage), TraceID: traceIDOfWriter(w)})
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
