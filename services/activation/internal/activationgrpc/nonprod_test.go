package activationgrpc_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestStaticPatients(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		for n := 1; n <= 9; n++ {
			d := strconv.Itoa(n)
			for range 2 { // never used up
				v, err := e.validatePatient(d, strings.Repeat(d, 4))
				if err != nil {
					t.Fatalf("static %s: %v", d, err)
				}
				if v.GetAuthorisationCode() != d || v.GetPatientId() != "static_patient_uuid_"+d {
					t.Fatalf("static %s: %+v", d, v)
				}
			}
			if _, err := e.patientJwt("static_patient_uuid_"+d, d); err != nil {
				t.Fatalf("static %s jwt: %v", d, err)
			}
		}
		_, err := e.validatePatient("3", "4444")
		wantCode(t, err, codes.NotFound)
		_, err = e.validatePatient("0", "0000")
		wantCode(t, err, codes.NotFound)
		_, err = e.patientJwt("static_patient_uuid_3", "4")
		wantCode(t, err, codes.NotFound)
		_, err = e.patientJwt("static_patient_uuid_10", "10")
		wantCode(t, err, codes.NotFound)
		// Static activations never count attempts or lock.
		for range e.cfg.MaxAttempts + 1 {
			_, _ = e.validatePatient("5", "aaaa")
		}
		if _, err := e.validatePatient("5", "5555"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStaticDevices(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		for n := 1; n <= 9; n++ {
			d := strconv.Itoa(n)
			code := strings.Repeat(d, 9)
			id := "static_device_uuid_D" + d
			for range 2 {
				v, err := e.validateDevice(code)
				if err != nil || v.GetAuthorisationCode() != code || v.GetDeviceId() != id {
					t.Fatalf("static device %s: %+v, %v", d, v, err)
				}
			}
			// The device must exist and be active.
			_, err := e.deviceJwt(id, code)
			wantCode(t, err, codes.PermissionDenied)
			e.devices.set(id, false)
			_, err = e.deviceJwt(id, code)
			wantCode(t, err, codes.PermissionDenied)
			e.devices.set(id, true)
			if _, err := e.deviceJwt(id, code); err != nil {
				t.Fatalf("static device %s jwt: %v", d, err)
			}
			_, err = e.deviceJwt(id, strings.Repeat(d, 8))
			wantCode(t, err, codes.PermissionDenied)
		}
		_, err := e.deviceJwt("static_device_uuid_D1", "222222222")
		wantCode(t, err, codes.PermissionDenied)
		_, err = e.validateDevice("12345678")
		wantCode(t, err, codes.NotFound)
	})
}

// TestProduction: in PRODUCTION the static activations and the test
// operations do not exist.
func TestProduction(t *testing.T) {
	forEachBackend(t, options{production: true, allowDropData: true}, func(t *testing.T, e *env) {
		_, err := e.validatePatient("3", "3333")
		wantCode(t, err, codes.NotFound)
		_, err = e.patientJwt("static_patient_uuid_3", "3")
		wantCode(t, err, codes.NotFound)
		_, err = e.validateDevice("333333333")
		wantCode(t, err, codes.NotFound)
		e.devices.set("static_device_uuid_D3", true)
		_, err = e.deviceJwt("static_device_uuid_D3", "333333333")
		wantCode(t, err, codes.PermissionDenied)

		ctx := patientCtx(t, "p")
		_, err = e.client.GetSecurityInfo(ctx, &activationv1.GetSecurityInfoRequest{PatientId: "p"})
		wantCode(t, err, codes.NotFound)
		_, err = e.client.SecurityTest(ctx, &activationv1.SecurityTestRequest{PatientId: "p"})
		wantCode(t, err, codes.NotFound)
		_, err = e.client.DropData(systemCtx(t), &activationv1.DropDataRequest{})
		wantCode(t, err, codes.NotFound)
		_, err = e.client.ResetTestData(systemCtx(t), &activationv1.ResetTestDataRequest{})
		wantCode(t, err, codes.NotFound)

		// The ordinary flows work as usual.
		act := e.createPatient("p")
		v, err := e.validatePatient(act.GetActivationCode(), act.GetOtp())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.patientJwt("p", v.GetAuthorisationCode()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSecurityInfo(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		req := &activationv1.GetSecurityInfoRequest{PatientId: "p1"}
		_, err := e.client.GetSecurityInfo(context.Background(), req)
		wantCode(t, err, codes.Unauthenticated)
		_, err = e.client.GetSecurityInfo(bearer("garbage"), req)
		wantCode(t, err, codes.Unauthenticated)
		// The token is not verified: one signed with an unknown key works.
		tok := signToken(t, []byte("some-other-key-that-nobody-trusts-at-all"), jwt.MapClaims{
			"scope":    "read:gdm_patient",
			"metadata": map[string]any{"patient_id": "p2"},
		})
		resp, err := e.client.GetSecurityInfo(bearer(tok), req)
		if err != nil {
			t.Fatal(err)
		}
		claims := resp.GetJwt().AsMap()
		md, _ := claims["metadata"].(map[string]any)
		if resp.GetPatientIdInUrl() != "p1" || claims["scope"] != "read:gdm_patient" || md["patient_id"] != "p2" || claims["iss"] != testHSIssuer {
			t.Fatalf("response %+v", resp)
		}
	})
}

func TestSecurityTest(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		req := &activationv1.SecurityTestRequest{PatientId: "p1"}
		_, err := e.client.SecurityTest(context.Background(), req)
		wantCode(t, err, codes.Unauthenticated)
		if _, err := e.client.SecurityTest(patientCtx(t, "p1"), req); err != nil {
			t.Fatal(err)
		}
		_, err = e.client.SecurityTest(patientCtx(t, "p2"), req)
		wantCode(t, err, codes.PermissionDenied)
		_, err = e.client.SecurityTest(e.writer(), req)
		wantCode(t, err, codes.PermissionDenied)
		// A patient JWT obtained through the activation flow passes.
		act := e.createPatient("p1")
		v, err := e.validatePatient(act.GetActivationCode(), act.GetOtp())
		if err != nil {
			t.Fatal(err)
		}
		j, err := e.patientJwt("p1", v.GetAuthorisationCode())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.SecurityTest(bearer(j.GetJwt()), req); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDropDataNotAllowed(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		_, err := e.client.DropData(systemCtx(t), &activationv1.DropDataRequest{})
		wantCode(t, err, codes.PermissionDenied)
		if msg := status.Convert(err).Message(); msg != "drop data is not allowed" {
			t.Fatalf("message %q", msg)
		}
		_, err = e.client.ResetTestData(systemCtx(t), &activationv1.ResetTestDataRequest{})
		wantCode(t, err, codes.PermissionDenied)
	})
}

func TestDropData(t *testing.T) {
	forEachBackend(t, options{allowDropData: true}, func(t *testing.T, e *env) {
		act := e.createPatient("p")
		v, err := e.validatePatient(act.GetActivationCode(), act.GetOtp())
		if err != nil {
			t.Fatal(err)
		}
		e.devices.set("d", true)
		dev := e.createDevice("d")

		_, err = e.client.DropData(e.writer(), &activationv1.DropDataRequest{})
		wantCode(t, err, codes.PermissionDenied) // not a system token
		_, err = e.client.DropData(context.Background(), &activationv1.DropDataRequest{})
		wantCode(t, err, codes.Unauthenticated)
		if _, err := e.client.DropData(systemCtx(t), &activationv1.DropDataRequest{}); err != nil {
			t.Fatal(err)
		}
		_, err = e.patientJwt("p", v.GetAuthorisationCode())
		wantCode(t, err, codes.NotFound)
		_, err = e.validateDevice(dev.GetCode())
		wantCode(t, err, codes.NotFound)
		for _, table := range []string{"patient", "patient_activation", "device", "device_activation"} {
			var n int
			if err := e.db.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != 0 {
				t.Fatalf("%s: %d rows, %v", table, n, err)
			}
		}
	})
}

func TestResetTestData(t *testing.T) {
	forEachBackend(t, options{allowDropData: true}, func(t *testing.T, e *env) {
		e.createPatient("old")
		if _, err := e.client.ResetTestData(systemCtx(t), &activationv1.ResetTestDataRequest{}); err != nil {
			t.Fatal(err)
		}
		for n := 1; n <= 10; n++ {
			id := strconv.Itoa(n)
			if _, err := e.patientJwt(id, id); err != nil {
				t.Fatalf("patient %s: %v", id, err)
			}
			list, err := e.client.ListPatientActivations(e.reader(), &activationv1.ListPatientActivationsRequest{PatientId: id})
			if err != nil || len(list.GetActivations()) != 1 || list.GetActivations()[0].GetActivationCompleted() == "" {
				t.Fatalf("patient %s activations: %v, %v", id, list, err)
			}
		}
		_, err := e.patientJwt("1", "2")
		wantCode(t, err, codes.NotFound)
		list, err := e.client.ListPatientActivations(e.reader(), &activationv1.ListPatientActivationsRequest{PatientId: "old"})
		if err != nil || len(list.GetActivations()) != 0 {
			t.Fatalf("old data survived: %v, %v", list, err)
		}
		var stored []byte
		if err := e.db.QueryRow(context.Background(), "SELECT auth_code_hash FROM patient WHERE id = $1", "7").Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if string(stored) == "7" || len(stored) != 32 {
			t.Fatalf("patient 7's code is not stored as a hash: %x", stored)
		}
	})
}
