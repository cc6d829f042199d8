// Package apitime formats and parses the contract's timestamps
// (ISO 8601, UTC, milliseconds, Z) and dates (YYYY-MM-DD).
package apitime

import (
	"time"
)

// Layout is the contract's timestamp layout, e.g. 2026-03-26T23:59:59.000Z.
const Layout = "2006-01-02T15:04:05.000Z"

// DateLayout is the contract's date layout.
const DateLayout = "2006-01-02"

// Format renders t in UTC with milliseconds.
func Format(t time.Time) string { return t.UTC().Format(Layout) }

// FormatPtr renders t, or "" when t is nil.
func FormatPtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return Format(*t)
}

// Now is the current time truncated to the milliseconds the API shows, so
// that what is stored equals what is returned.
func Now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// ParseDate parses a YYYY-MM-DD date as midnight UTC.
func ParseDate(s string) (time.Time, error) { return time.ParseInLocation(DateLayout, s, time.UTC) }

// EndOfNthDay is 23:59:59.000 UTC at the end of the nth day after t's day.
func EndOfNthDay(t time.Time, n int) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+n, 23, 59, 59, 0, time.UTC)
}
