package validate

import (
	"strings"
	"testing"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"google.golang.org/grpc/codes"
)

func TestRules(t *testing.T) {
	bad := map[string]string{
		"empty":   "",
		"blank":   "  ",
		"long":    strings.Repeat("a", MaxID+1),
		"utf8":    "a\xffb",
		"control": "a\x00b",
		"newline": "a\nb",
	}
	for name, v := range bad {
		if err := ID("id", v); apperr.CodeOf(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "id ") {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, v := range []string{"p1", "static_patient_uuid_1", "Ward 7 — bay 3", strings.Repeat("a", MaxID)} {
		if err := ID("id", v); err != nil {
			t.Errorf("%q refused: %v", v, err)
		}
	}
	if err := String("description", "", 10); err != nil {
		t.Errorf("String allows empty: %v", err)
	}
}
