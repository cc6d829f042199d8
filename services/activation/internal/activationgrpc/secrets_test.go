package activationgrpc_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// tableColumns lists every column of every table.
var tableColumns = map[string][]string{
	"patient":            {"id", "auth_code_hash", "created", "created_by", "modified", "modified_by"},
	"patient_activation": {"id", "patient_id", "code_hash", "otp_hash", "attempts", "expires_at", "completed", "created", "created_by", "modified", "modified_by"},
	"device":             {"id", "auth_code_hash", "created", "created_by", "modified", "modified_by"},
	"device_activation":  {"id", "device_id", "code_hash", "expires_at", "completed", "created", "created_by", "modified", "modified_by"},
}

// dump reads every value stored in the database.
func (e *env) dump() []any {
	e.t.Helper()
	var out []any
	for table, cols := range tableColumns {
		rows, err := e.db.Query(context.Background(), "SELECT "+strings.Join(cols, ", ")+" FROM "+table)
		if err != nil {
			e.t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatal(err)
			}
			out = append(out, vals...)
		}
		if err := rows.Err(); err != nil {
			e.t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

// TestNoSecretsStored: no OTP, activation code or authorisation code
// appears in the database, nor in the logs.
func TestNoSecretsStored(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		var secrets []string
		p1 := e.createPatient("patient-1")
		p1again := e.createPatient("patient-1")
		v, err := e.validatePatient(p1again.GetActivationCode(), p1again.GetOtp())
		if err != nil {
			t.Fatal(err)
		}
		p2 := e.createPatient("patient-2") // left unused
		e.devices.set("device-1", true)
		d1 := e.createDevice("device-1")
		dv, err := e.validateDevice(d1.GetCode())
		if err != nil {
			t.Fatal(err)
		}
		d2 := e.createDevice("device-1") // left unused
		if _, err := e.deviceJwt("device-1", dv.GetAuthorisationCode()); err != nil {
			t.Fatal(err)
		}
		j, err := e.patientJwt("patient-1", v.GetAuthorisationCode())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{
			p1.GetOtp(), p1.GetActivationCode(), p1again.GetOtp(), v.GetAuthorisationCode(),
			p2.GetOtp(), p2.GetActivationCode(), d1.GetCode(), dv.GetAuthorisationCode(), d2.GetCode(),
		} {
			secrets = append(secrets, s, strings.ToUpper(s), strings.ToLower(s))
		}

		values := e.dump()
		if len(values) == 0 {
			t.Fatal("nothing stored")
		}
		for _, v := range values {
			text := fmt.Sprint(v)
			raw, _ := v.([]byte)
			for _, s := range secrets {
				if strings.Contains(text, s) || bytes.Contains(raw, []byte(s)) {
					t.Fatalf("a secret appears in the database: %v", v)
				}
			}
		}
		logs := e.logs.String()
		for _, s := range append(secrets, j.GetJwt()) {
			if strings.Contains(logs, s) {
				t.Fatal("a secret appears in the logs")
			}
		}
	})
}
