// Package apperr is the suite's one error kind. Its codes mirror gRPC's;
// the gRPC interceptor and the REST edge each map it once. Messages are
// shown to clients, so they say what was wrong with the request and never
// carry internal detail; the wrapped cause is for logs only.
package apperr

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Error is an error with a gRPC code and a client-safe message.
type Error struct {
	Code  codes.Code
	Msg   string
	Cause error
	// RetryAfter, when positive, is sent as a google.rpc.RetryInfo detail
	// (the REST edge turns it into a Retry-After header).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Msg + ": " + e.Cause.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Cause }

// GRPCStatus lets grpc-go send the code and the client-safe message.
func (e *Error) GRPCStatus() *status.Status {
	st := status.New(e.Code, e.Msg)
	if e.RetryAfter > 0 {
		if withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)}); err == nil {
			return withInfo
		}
	}
	return st
}

func newf(c codes.Code, format string, args []any) error {
	return &Error{Code: c, Msg: fmt.Sprintf(format, args...)}
}

// InvalidArgument is a 400.
func InvalidArgument(format string, args ...any) error {
	return newf(codes.InvalidArgument, format, args)
}

// NotFound is a 404.
func NotFound(format string, args ...any) error { return newf(codes.NotFound, format, args) }

// AlreadyExists is a 409.
func AlreadyExists(format string, args ...any) error { return newf(codes.AlreadyExists, format, args) }

// PermissionDenied is a 403.
func PermissionDenied(format string, args ...any) error {
	return newf(codes.PermissionDenied, format, args)
}

// Unauthenticated is a 401.
func Unauthenticated(format string, args ...any) error {
	return newf(codes.Unauthenticated, format, args)
}

// Unavailable is a 503: a dependency did not answer; the caller may retry.
func Unavailable(cause error, format string, args ...any) error {
	return &Error{Code: codes.Unavailable, Msg: fmt.Sprintf(format, args...), Cause: cause}
}

// ResourceExhausted is a 429: the caller exceeded a limit and may try
// again after retryAfter (sent as a google.rpc.RetryInfo detail).
func ResourceExhausted(retryAfter time.Duration, format string, args ...any) error {
	return &Error{Code: codes.ResourceExhausted, Msg: fmt.Sprintf(format, args...), RetryAfter: retryAfter}
}

// RetryAfterOf returns the RetryInfo delay of a gRPC status error, or 0.
func RetryAfterOf(err error) time.Duration {
	st, ok := status.FromError(err)
	if !ok {
		return 0
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// Internal hides cause from the client behind a generic message.
func Internal(cause error) error {
	return &Error{Code: codes.Internal, Msg: "internal error", Cause: cause}
}

// CodeOf returns the code of err: its own, a gRPC status's, or Unknown.
func CodeOf(err error) codes.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Unknown
}
