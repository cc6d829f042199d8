package sso

import (
	"net/http"
	"time"
)

// OAuth error codes (RFC 6749 sections 4.1.2.1 and 5.2, OpenID Connect
// Core 3.1.2.6, RFC 6750 section 3.1).
const (
	ErrInvalidRequest          = "invalid_request"
	ErrInvalidClient           = "invalid_client"
	ErrInvalidGrant            = "invalid_grant"
	ErrUnauthorizedClient      = "unauthorized_client"
	ErrUnsupportedGrantType    = "unsupported_grant_type"
	ErrUnsupportedResponseType = "unsupported_response_type"
	ErrInvalidScope            = "invalid_scope"
	ErrAccessDenied            = "access_denied"
	ErrLoginRequired           = "login_required"
	ErrRequestNotSupported     = "request_not_supported"
	ErrInvalidToken            = "invalid_token"
	ErrServerError             = "server_error"
	ErrTemporarilyUnavailable  = "temporarily_unavailable"
)

// OAuthError is a refusal of an OAuth or OpenID Connect endpoint: the
// error code the specifications name, a description fit for the client,
// and the HTTP status of a direct (non-redirect) answer.
type OAuthError struct {
	Code        string
	Description string
	Status      int
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up): a refusal by a brute-force limit.
	RetryAfter time.Duration
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

func oauthErr(code, desc string) *OAuthError {
	st := http.StatusBadRequest
	switch code {
	case ErrInvalidClient, ErrInvalidToken:
		st = http.StatusUnauthorized
	case ErrServerError:
		st = http.StatusInternalServerError
	case ErrTemporarilyUnavailable:
		st = http.StatusServiceUnavailable
	}
	return &OAuthError{Code: code, Description: desc, Status: st}
}
