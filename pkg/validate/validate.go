// Package validate checks the strings that arrive in requests, with one
// set of rules and messages for every service: bounded length, valid UTF-8,
// no control characters. Failures are apperr INVALID_ARGUMENT errors (400).
package validate

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dhosauth/dhosauth/pkg/apperr"
)

// MaxID bounds ids and other short strings, in bytes.
const MaxID = 200

// String refuses a value longer than max bytes, not valid UTF-8 or holding
// control characters. field names the value in the message.
func String(field, v string, max int) error {
	switch {
	case len(v) > max:
		return apperr.InvalidArgument("%s must be at most %d bytes", field, max)
	case !utf8.ValidString(v):
		return apperr.InvalidArgument("%s must be valid UTF-8", field)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return apperr.InvalidArgument("%s must not contain control characters", field)
	}
	return nil
}

// Required is String for a value that must not be empty or blank.
func Required(field, v string, max int) error {
	if strings.TrimSpace(v) == "" {
		return apperr.InvalidArgument("%s is required", field)
	}
	return String(field, v, max)
}

// ID is Required with the id bound.
func ID(field, v string) error { return Required(field, v, MaxID) }
