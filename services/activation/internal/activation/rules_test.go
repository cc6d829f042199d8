package activation

import (
	"strings"
	"testing"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/secret"
	"google.golang.org/grpc/codes"
)

func TestCheckID(t *testing.T) {
	for _, ok := range []string{"a", "patient-1", strings.Repeat("x", 200), strings.Repeat("é", 100), "static_patient_uuid_1", "with space"} {
		if err := checkID("patient_id", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", 201), strings.Repeat("é", 101), "\xff\xfe", "a\x00", "a\tb", "a\u0085", "\x7f"} {
		err := checkID("patient_id", bad)
		if apperr.CodeOf(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "patient_id") {
			t.Errorf("%q: got %v, want INVALID_ARGUMENT naming the field", bad, err)
		}
	}
}

func TestCheckAuthHeader(t *testing.T) {
	if apperr.CodeOf(checkAuthHeader("")) != codes.InvalidArgument {
		t.Fatal("missing header accepted")
	}
	if apperr.CodeOf(checkAuthHeader(strings.Repeat("a", 201))) != codes.InvalidArgument {
		t.Fatal("oversized header accepted")
	}
	if checkAuthHeader("abc-_XYZ") != nil {
		t.Fatal("a code was refused")
	}
}

func TestStaticRecognition(t *testing.T) {
	dev := &Service{cfg: Config{OTPLength: 4}}
	prod := &Service{cfg: Config{OTPLength: 4, Production: true}}
	for _, c := range []struct {
		code string
		want bool
	}{{"1", true}, {"9", true}, {"0", false}, {"10", false}, {"a", false}, {"", false}} {
		if _, got := dev.staticPatientCode(c.code); got != c.want {
			t.Errorf("staticPatientCode(%q) = %v", c.code, got)
		}
		if _, got := prod.staticPatientCode(c.code); got {
			t.Errorf("production recognised static patient code %q", c.code)
		}
	}
	for _, c := range []struct {
		code string
		want bool
	}{{"111111111", true}, {"999999999", true}, {"000000000", false}, {"11111111", false}, {"1111111111", false}, {"111111112", false}} {
		if _, got := dev.staticDeviceCode(c.code); got != c.want {
			t.Errorf("staticDeviceCode(%q) = %v", c.code, got)
		}
		if _, got := prod.staticDeviceCode(c.code); got {
			t.Errorf("production recognised static device code %q", c.code)
		}
	}
	if !dev.isStaticPatient("static_patient_uuid_4", "4") || dev.isStaticPatient("static_patient_uuid_4", "5") ||
		dev.isStaticPatient("static_patient_uuid_0", "0") || dev.isStaticPatient("x_static_patient_uuid_4", "4") ||
		prod.isStaticPatient("static_patient_uuid_4", "4") {
		t.Error("isStaticPatient")
	}
	if !dev.isStaticDevice("static_device_uuid_D4", "444444444") || dev.isStaticDevice("static_device_uuid_D4", "4") ||
		dev.isStaticDevice("static_device_uuid_4", "444444444") || prod.isStaticDevice("static_device_uuid_D4", "444444444") {
		t.Error("isStaticDevice")
	}
}

func TestDerivedCodeIsStable(t *testing.T) {
	h, err := secret.NewHasher([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{hasher: h, cfg: DefaultConfig()}
	a, b := s.activationCode("id-1"), s.activationCode("id-1")
	if a != b || len(a) != 30 || s.activationCode("id-2") == a {
		t.Fatalf("derived codes: %q %q", a, b)
	}
	if !secret.Equal(s.activationCodeHash(strings.ToLower(a)), s.activationCodeHash(a)) {
		t.Fatal("activation code hashes are case-sensitive")
	}
	if !secret.Equal(s.otpHash("id", "abcd"), s.otpHash("id", "ABCD")) || secret.Equal(s.otpHash("id", "ABCD"), s.otpHash("id2", "ABCD")) {
		t.Fatal("OTP hashes: want case-insensitive and bound to the activation")
	}
}

func TestNewServiceChecks(t *testing.T) {
	if _, err := NewService(DefaultConfig(), Deps{}); err == nil {
		t.Fatal("missing dependencies accepted")
	}
}
