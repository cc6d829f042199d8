package activation

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dhosauth/dhosauth/pkg/secret"
)

// FuzzNormalizeCode checks the one form in which typed codes and OTPs are
// compared: it changes ASCII letters only (a code has exactly one spelling
// up to ASCII case: no other character may fold into the alphabet), it is
// idempotent, two inputs that differ in ASCII case alone normalise alike,
// and a code made of the alphabet stays in it.
func FuzzNormalizeCode(f *testing.F) {
	for _, s := range []string{"", "abcd", "ABCD", "a1b2", "ſ", "ı", "K", "ǆ", "\xff", "6WZ6", "123456789", "x-Y_z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeCode(s)
		if len(n) != len(s) {
			t.Fatalf("%q normalised to %q: length changed", s, n)
		}
		for i := 0; i < len(s); i++ {
			a, b := s[i], n[i]
			switch {
			case a >= 'a' && a <= 'z':
				if b != a-('a'-'A') {
					t.Fatalf("%q: byte %d %q became %q", s, i, a, b)
				}
			case a != b:
				t.Fatalf("%q: byte %d %q, not a lower-case ASCII letter, became %q", s, i, a, b)
			}
		}
		if NormalizeCode(n) != n {
			t.Fatalf("%q: not idempotent", s)
		}
		if NormalizeCode(strings.ToLower(n)) != n && utf8.ValidString(s) && isASCII(s) {
			t.Fatalf("%q: case variants normalise differently", s)
		}
		if strings.Trim(s, secret.OTP+strings.ToLower(secret.OTP)) == "" && strings.Trim(n, secret.OTP) != "" {
			t.Fatalf("%q left the OTP alphabet: %q", s, n)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
