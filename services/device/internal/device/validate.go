package device

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dhosauth/dhosauth/pkg/apperr"
)

// Length limits of the strings the service accepts, in bytes.
const (
	// MaxIDLength bounds ids and other short strings.
	MaxIDLength = 200
	// MaxDescriptionLength bounds descriptions.
	MaxDescriptionLength = 1000
)

// checkString rejects a value longer than max bytes, not valid UTF-8 or
// holding control characters. field names the value in the message.
func checkString(field, v string, max int) error {
	if len(v) > max {
		return apperr.InvalidArgument("%s must be at most %d bytes", field, max)
	}
	if !utf8.ValidString(v) {
		return apperr.InvalidArgument("%s must be valid UTF-8", field)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return apperr.InvalidArgument("%s must not contain control characters", field)
		}
	}
	return nil
}

// checkRequired is checkString for a value that must not be empty or
// blank.
func checkRequired(field, v string, max int) error {
	if strings.TrimSpace(v) == "" {
		return apperr.InvalidArgument("%s is required", field)
	}
	return checkString(field, v, max)
}
