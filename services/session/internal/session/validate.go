package session

import (
	"strings"

	"github.com/dhosauth/dhosauth/pkg/validate"

	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/apperr"
)

// Limits of what the service accepts.
const (
	// MaxStringLength bounds ids, names and identifiers, in bytes.
	MaxStringLength = 200
	// MaxListLength bounds the products and groups lists.
	MaxListLength = 100
)

// checkString and checkRequired apply the suite's string rules.
func checkString(field, v string) error { return validate.String(field, v, MaxStringLength) }

func checkRequired(field, v string) error { return validate.Required(field, v, MaxStringLength) }

// names checks a list of product or group names and lower-cases them. A
// nil list is absent: required reports it as an error, otherwise it
// becomes an empty list.
func names(field string, list []string, required bool) ([]string, error) {
	if list == nil {
		if required {
			return nil, apperr.InvalidArgument("%s is required", field)
		}
		return []string{}, nil
	}
	if len(list) > MaxListLength {
		return nil, apperr.InvalidArgument("%s may hold at most %d names", field, MaxListLength)
	}
	out := make([]string, len(list))
	for i, n := range list {
		if err := checkString(field, n); err != nil {
			return nil, err
		}
		out[i] = strings.ToLower(n)
	}
	return out, nil
}

// identifier checks an optional SEND entry identifier; an empty one is
// stored as null (it could never be used to sign in).
func identifier(v *string) (*string, error) {
	if v == nil || *v == "" {
		return nil, nil
	}
	if err := checkString("send_entry_identifier", *v); err != nil {
		return nil, err
	}
	s := *v
	return &s, nil
}

// expiryDate checks an optional YYYY-MM-DD date.
func expiryDate(v *string) (*string, error) {
	if v == nil {
		return nil, nil
	}
	d, err := apitime.ParseDate(*v)
	if err != nil || d.Format(apitime.DateLayout) != *v {
		return nil, apperr.InvalidArgument("contract_expiry_eod_date must be a date as YYYY-MM-DD or null")
	}
	s := *v
	return &s, nil
}
