package e2e

import (
	"regexp"
	"strings"
	"testing"
)

var deviceCodeRe = regexp.MustCompile(`^[0-9]{9}$`)

func createDevice(t *testing.T, s *Suite, token string, body map[string]any) map[string]any {
	t.Helper()
	return Expect(t, s.Do("POST", "/dhos/v1/device?type=send_entry", token, body), 200).JSON(t)
}

func devices(t *testing.T, s *Suite) {
	admin := s.AdminToken(t)
	loc1, loc2 := Unique("ward"), Unique("ward")
	d := createDevice(t, s, admin, map[string]any{"location_id": loc1, "description": "Tablet 1"})
	for _, k := range []string{"uuid", "created", "created_by", "modified", "modified_by", "location_id", "description", "active"} {
		if _, ok := d[k]; !ok {
			t.Fatalf("device lacks %s: %v", k, d)
		}
	}
	if d["active"] != true || d["location_id"] != loc1 || d["description"] != "Tablet 1" || d["created_by"] != "e2e" {
		t.Fatalf("device %v", d)
	}
	id := d["uuid"].(string)

	// Optional uuid in the body; taken → 409.
	own := Unique("static_device")
	d2 := createDevice(t, s, admin, map[string]any{"uuid": own, "location_id": loc2, "description": "Tablet 2"})
	if d2["uuid"] != own {
		t.Fatalf("uuid from body not used: %v", d2)
	}
	Expect(t, s.Do("POST", "/dhos/v1/device", admin, map[string]any{"uuid": own, "location_id": loc2, "description": "again"}), 409)

	// Required fields and body.
	Expect(t, s.Do("POST", "/dhos/v1/device", admin, nil), 400)
	Expect(t, s.Do("POST", "/dhos/v1/device", admin, map[string]any{"location_id": loc1}), 400)
	Expect(t, s.Do("POST", "/dhos/v1/device", admin, map[string]any{"description": "x"}), 400)
	Expect(t, s.Do("POST", "/dhos/v1/device", admin, map[string]any{"location_id": 5, "description": "x"}), 400)
	Expect(t, s.Do("POST", "/dhos/v1/device", admin, map[string]any{"location_id": loc1, "description": "x", "colour": "red"}), 400)

	// Get.
	got := Expect(t, s.Do("GET", "/dhos/v1/device/"+id, admin, nil), 200).JSON(t)
	if got["uuid"] != id || got["location_id"] != loc1 {
		t.Fatalf("get %v", got)
	}
	Expect(t, s.Do("GET", "/dhos/v1/device/"+Unique("nope"), admin, nil), 404)

	// Patch.
	p := Expect(t, s.Do("PATCH", "/dhos/v1/device/"+id, admin, map[string]any{"description": "Renamed"}), 200).JSON(t)
	if p["description"] != "Renamed" || p["location_id"] != loc1 || p["active"] != true {
		t.Fatalf("patch %v", p)
	}
	Expect(t, s.Do("PATCH", "/dhos/v1/device/"+id, admin, map[string]any{}), 400)
	Expect(t, s.Do("PATCH", "/dhos/v1/device/"+id, admin, nil), 400)
	Expect(t, s.Do("PATCH", "/dhos/v1/device/"+Unique("nope"), admin, map[string]any{"active": false}), 404)
	Expect(t, s.Do("PATCH", "/dhos/v1/device/"+own, admin, map[string]any{"active": false}), 200)

	// List: active defaults to true; location_id takes a comma-separated list.
	list := func(q string) []map[string]any {
		return Expect(t, s.Do("GET", "/dhos/v1/device?"+q, admin, nil), 200).List(t)
	}
	ids := func(l []map[string]any) string {
		var out []string
		for _, d := range l {
			out = append(out, d["uuid"].(string))
		}
		return strings.Join(out, ",")
	}
	if got := ids(list("location_id=" + loc1 + "," + loc2)); got != id {
		t.Fatalf("active devices at both wards = %s, want %s", got, id)
	}
	if got := ids(list("active=false&location_id=" + loc1 + "," + loc2)); got != own {
		t.Fatalf("inactive devices = %s, want %s", got, own)
	}
	if got := ids(list("active=true&location_id=" + loc2)); got != "" {
		t.Fatalf("active at ward 2 = %s, want none", got)
	}
	if l := list("location_id=" + Unique("empty-ward")); len(l) != 0 {
		t.Fatalf("empty ward: %v", l)
	}
	Expect(t, s.Do("GET", "/dhos/v1/device?active=maybe", admin, nil), 400)
	Expect(t, s.Do("GET", "/dhos/v1/device", "", nil), 401)
}

func deviceActivation(t *testing.T, s *Suite) {
	admin := s.AdminToken(t)
	id := createDevice(t, s, admin, map[string]any{"location_id": Unique("ward"), "description": "Tablet"})["uuid"].(string)
	Expect(t, s.Do("POST", "/dhos/v1/device/"+Unique("nope")+"/activation", admin, nil), 404)

	first := Expect(t, s.Do("POST", "/dhos/v1/device/"+id+"/activation", admin, nil), 200).JSON(t)
	second := Expect(t, s.Do("POST", "/dhos/v1/device/"+id+"/activation", admin, nil), 200).JSON(t)
	code := second["code"].(string)
	if !deviceCodeRe.MatchString(code) || !timestampRe.MatchString(second["expires_at"].(string)) {
		t.Fatalf("device activation %v", second)
	}
	s.Secret(code)
	if first["code"] != code {
		Expect(t, s.Do("POST", "/dhos/v1/activation/"+first["code"].(string)+"?type=send_entry", "", nil), 404)
	}

	m := Expect(t, s.Do("POST", "/dhos/v1/activation/"+code+"?type=send_entry", "", nil), 200).JSON(t)
	auth := m["authorisation_code"].(string)
	if m["device_id"] != id || m["patient_id"] != nil || auth == "" {
		t.Fatalf("device validation %v", m)
	}
	s.Secret(auth)
	Expect(t, s.Do("POST", "/dhos/v1/activation/"+code+"?type=send_entry", "", nil), 404)

	jwtPath := "/dhos/v1/device/" + id + "/jwt"
	Expect(t, s.Do("GET", jwtPath, "", nil), 400)
	Expect(t, s.Do("GET", jwtPath, "", nil, "x-authorisation-code", "wrong"), 403)
	Expect(t, s.Do("GET", "/dhos/v1/device/"+Unique("nope")+"/jwt", "", nil, "x-authorisation-code", auth), 403)
	jwt := Expect(t, s.Do("GET", jwtPath, "", nil, "x-authorisation-code", auth), 200).JSON(t)["jwt"].(string)
	s.Secret(jwt)
	c := Claims(t, jwt)
	if md := c["metadata"].(map[string]any); md["device_id"] != id {
		t.Fatalf("device claims %v", c)
	}
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 86400 {
		t.Fatalf("device token lifetime %v", exp-iat)
	}
	if !strings.Contains(c["scope"].(string), "read:send_entry_identifier") {
		t.Fatalf("device scope %v", c["scope"])
	}

	// Never activated → 403; deactivated → 403.
	other := createDevice(t, s, admin, map[string]any{"location_id": Unique("ward"), "description": "Tablet"})["uuid"].(string)
	Expect(t, s.Do("GET", "/dhos/v1/device/"+other+"/jwt", "", nil, "x-authorisation-code", auth), 403)
	Expect(t, s.Do("PATCH", "/dhos/v1/device/"+id, admin, map[string]any{"active": false}), 200)
	Expect(t, s.Do("GET", jwtPath, "", nil, "x-authorisation-code", auth), 403)
}

// activeDeviceJWT makes a device, activates it and returns its JWT.
func activeDeviceJWT(t *testing.T, s *Suite, admin string) (string, string) {
	t.Helper()
	id := createDevice(t, s, admin, map[string]any{"location_id": Unique("ward"), "description": "Tablet"})["uuid"].(string)
	code := Expect(t, s.Do("POST", "/dhos/v1/device/"+id+"/activation", admin, nil), 200).JSON(t)["code"].(string)
	s.Secret(code)
	auth := Expect(t, s.Do("POST", "/dhos/v1/activation/"+code+"?type=send_entry", "", nil), 200).JSON(t)["authorisation_code"].(string)
	s.Secret(auth)
	jwt := Expect(t, s.Do("GET", "/dhos/v1/device/"+id+"/jwt", "", nil, "x-authorisation-code", auth), 200).JSON(t)["jwt"].(string)
	s.Secret(jwt)
	return id, jwt
}
