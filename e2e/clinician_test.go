package e2e

import (
	"testing"
	"time"
)

func clinicianBody(id, identifier string, groups ...any) map[string]any {
	return map[string]any{
		"clinician_id": id, "login_active": true, "products": []any{"SEND"},
		"groups": groups, "send_entry_identifier": identifier, "contract_expiry_eod_date": nil,
	}
}

func clinicians(t *testing.T, s *Suite) {
	admin := s.AdminToken(t)
	id, ident := Unique("clin"), Unique("ident")
	r := Expect(t, s.Do("POST", "/dhos/v1/clinician", admin, clinicianBody(id, ident, "SEND Clinician")), 201)
	if len(r.Body) != 0 {
		t.Fatalf("create body %q, want empty", r.Body)
	}
	Expect(t, s.Do("POST", "/dhos/v1/clinician", admin, clinicianBody(id, Unique("ident"), "x")), 409)

	missing := func(field string) map[string]any {
		b := clinicianBody(Unique("clin"), Unique("ident"))
		delete(b, field)
		return b
	}
	Expect(t, s.Do("POST", "/dhos/v1/clinician", admin, missing("clinician_id")), 400)
	Expect(t, s.Do("POST", "/dhos/v1/clinician", admin, missing("login_active")), 400)
	Expect(t, s.Do("POST", "/dhos/v1/clinician", admin, missing("products")), 400)
	Expect(t, s.Do("POST", "/dhos/v1/clinician", admin, nil), 400)
	bad := clinicianBody(Unique("clin"), Unique("ident"))
	bad["contract_expiry_eod_date"] = "31/12/2030"
	Expect(t, s.Do("POST", "/dhos/v1/clinician", admin, bad), 400)
	bad = clinicianBody(Unique("clin"), Unique("ident"))
	bad["products"] = []any{1, 2}
	Expect(t, s.Do("POST", "/dhos/v1/clinician", admin, bad), 400)
	// Optional fields may be absent; identifier fields are ignored.
	Expect(t, s.Do("POST", "/dhos/v1/clinician", admin, map[string]any{"clinician_id": Unique("clin"), "login_active": false, "products": []any{}, "uuid": "x", "created": "y"}), 201)

	// Patch: products and groups required; 200 with an empty body.
	r = Expect(t, s.Do("PATCH", "/dhos/v1/clinician/"+id, admin, map[string]any{"products": []any{"send"}, "groups": []any{"SEND Clinician"}, "send_entry_identifier": ident}), 200)
	if len(r.Body) != 0 {
		t.Fatalf("patch body %q, want empty", r.Body)
	}
	Expect(t, s.Do("PATCH", "/dhos/v1/clinician/"+id, admin, map[string]any{"groups": []any{}}), 400)
	Expect(t, s.Do("PATCH", "/dhos/v1/clinician/"+id, admin, map[string]any{"products": []any{}}), 400)
	Expect(t, s.Do("PATCH", "/dhos/v1/clinician/"+Unique("nobody"), admin, map[string]any{"products": []any{}, "groups": []any{}}), 404)
	Expect(t, s.Do("POST", "/dhos/v1/clinician", "", clinicianBody(Unique("c"), Unique("i"))), 401)
	Expect(t, s.Do("POST", "/dhos/v1/clinician", s.SystemToken(t, "read:send_device"), clinicianBody(Unique("c"), Unique("i"))), 403)
}

func clinicianJWT(t *testing.T, s *Suite) {
	admin := s.AdminToken(t)
	deviceID, device := activeDeviceJWT(t, s, admin)
	make := func(groups []any, active bool, expiry any) string {
		id, ident := Unique("clin"), Unique("ident")
		b := clinicianBody(id, ident, groups...)
		b["login_active"] = active
		b["contract_expiry_eod_date"] = expiry
		Expect(t, s.Do("POST", "/dhos/v1/clinician", admin, b), 201)
		return ident
	}
	get := func(token, ident string) Response {
		return s.Do("GET", "/dhos/v1/clinician/jwt?send_entry_identifier="+ident, token, nil)
	}

	ok := make([]any{"SEND Clinician"}, true, time.Now().AddDate(1, 0, 0).Format("2006-01-02"))
	jwt := Expect(t, get(device, ok), 200).JSON(t)["jwt"].(string)
	s.Secret(jwt)
	c := Claims(t, jwt)
	md := c["metadata"].(map[string]any)
	if md["referring_device_id"] != deviceID || md["clinician_id"] == nil {
		t.Fatalf("clinician claims %v", c)
	}
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 900 {
		t.Fatalf("clinician token lifetime %v", exp-iat)
	}
	super := make([]any{"send superclinician"}, true, nil)
	Expect(t, get(device, super), 200)

	Expect(t, get("", ok), 401)
	Expect(t, s.Do("GET", "/dhos/v1/clinician/jwt", device, nil), 400)
	Expect(t, get(s.SystemToken(t, "read:send_entry_identifier"), ok), 403) // no device_id
	Expect(t, get(device, Unique("unknown")), 404)
	Expect(t, get(device, make([]any{"SEND Clinician"}, false, nil)), 403)
	expired := make([]any{"SEND Clinician"}, true, time.Now().AddDate(0, 0, -2).Format("2006-01-02"))
	Expect(t, get(device, expired), 403)
	Expect(t, get(device, make([]any{"GDM Clinician"}, true, nil)), 403)

	// Improvement: a device deactivated since its JWT was issued gets 403,
	// and 401 once the session service has polled the revocation of the
	// device's tokens (see TestDeactivatedDeviceRefused).
	Expect(t, s.Do("PATCH", "/dhos/v1/device/"+deviceID, admin, map[string]any{"active": false}), 200)
	if r := get(device, ok); r.Status != 403 && r.Status != 401 {
		t.Fatalf("deactivated device: status %d %s, want 403 or 401", r.Status, r.Body)
	}
}
