package device

import "github.com/dhosauth/dhosauth/pkg/validate"

// Length limits of the strings the service accepts, in bytes.
const (
	// MaxIDLength bounds ids and other short strings.
	MaxIDLength = 200
	// MaxDescriptionLength bounds descriptions.
	MaxDescriptionLength = 1000
)

// checkString and checkRequired apply the suite's string rules.
func checkString(field, v string, max int) error { return validate.String(field, v, max) }

func checkRequired(field, v string, max int) error { return validate.Required(field, v, max) }
