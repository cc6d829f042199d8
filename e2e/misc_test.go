package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
)

func serviceEndpoints(t *testing.T, s *Suite) {
	Expect(t, s.Do("GET", "/running", "", nil), 200)
	v := Expect(t, s.Do("GET", "/version", "", nil), 200).JSON(t)
	for _, k := range []string{"version", "build", "hash"} {
		if _, ok := v[k]; !ok {
			t.Fatalf("/version lacks %s: %v", k, v)
		}
	}
	doc := Expect(t, s.Do("GET", "/openapi.json", "", nil), 200).JSON(t)
	paths, _ := doc["paths"].(map[string]any)
	for _, p := range []string{"/dhos/v1/patient/{patient_id}/activation", "/dhos/v1/device/{device_id}/jwt", "/dhos/v1/clinician", "/dhos/v1/activation/{activation_code}"} {
		if _, ok := paths[p]; !ok {
			t.Fatalf("/openapi.json lacks %s", p)
		}
	}
	if r := s.Do("GET", "/docs", "", nil); r.Status != 200 || !strings.Contains(string(r.Body), "openapi.json") {
		t.Fatalf("/docs outside production: %d", r.Status)
	}
	Expect(t, s.Do("GET", "/dhos/v1/nothing-here", "", nil), 404)
}

func callerAuthentication(t *testing.T, s *Suite) {
	path := "/dhos/v1/patient/" + Unique("p") + "/activation"
	Expect(t, s.Do("POST", path, "", nil), 401)
	Expect(t, s.Do("POST", path, "not-a-token", nil), 401)
	Expect(t, s.Do("POST", path, "", nil, "Authorization", "Basic dXNlcjpwdw=="), 401)
	admin := s.AdminToken(t)
	parts := strings.Split(admin, ".")
	Expect(t, s.Do("POST", path, parts[0]+"."+parts[1]+".AAAA", nil), 401) // bad signature
	Expect(t, s.Do("POST", path, "eyJhbGciOiJub25lIn0."+parts[1]+".", nil), 401)
	Expect(t, s.Do("POST", path, s.SystemToken(t, "read:gdm_activation"), nil), 403)
	Expect(t, s.Do("GET", path, s.SystemToken(t, "write:gdm_activation"), nil), 403)
	Expect(t, s.Do("POST", path, s.SystemToken(t, "write:gdm_activation"), nil), 200)
}

func malformedInput(t *testing.T, s *Suite) {
	admin := s.AdminToken(t)
	no5xx := func(r Response, what string) {
		t.Helper()
		if r.Status < 400 || r.Status >= 500 {
			t.Fatalf("%s: status %d, want 4xx; body %s", what, r.Status, r.Body)
		}
		var e map[string]any
		if err := json.Unmarshal(r.Body, &e); err != nil || e["message"] == nil {
			t.Fatalf("%s: error body %q", what, r.Body)
		}
	}
	Expect(t, s.Do("GET", "/dhos/v1/device", admin, `{"a":1}`), 400)
	Expect(t, s.Do("POST", "/dhos/v1/device", admin, `{"location_id": "a", "description": `), 400)
	Expect(t, s.Do("POST", "/dhos/v1/device", admin, `[1,2,3]`), 400)
	Expect(t, s.Do("POST", "/dhos/v1/device", admin, `{"location_id": ["a"], "description": "x"}`), 400)
	Expect(t, s.Do("POST", "/dhos/v1/clinician", admin, `{"clinician_id": "x", "login_active": "yes", "products": []}`), 400)
	Expect(t, s.Do("POST", "/dhos/v1/device", admin, map[string]any{"location_id": strings.Repeat("a", 2<<20), "description": "x"}), 413)
	no5xx(s.Do("POST", "/dhos/v1/device", admin, map[string]any{"location_id": strings.Repeat("a", 10000), "description": "x"}), "oversized field")
	no5xx(s.Do("GET", "/dhos/v1/device/%00abc", admin, nil), "NUL in path")
	no5xx(s.Do("GET", "/dhos/v1/device/%ff%fe", admin, nil), "invalid UTF-8 in path")
	no5xx(s.Do("GET", "/dhos/v1/device/"+strings.Repeat("x", 5000), admin, nil), "long path")
	no5xx(s.Do("POST", "/dhos/v1/patient/%0a%0d/activation", admin, nil), "control characters in patient id")
	no5xx(s.Do("GET", "/dhos/v1/patient/p1/jwt", "", nil, "x-authorisation-code", strings.Repeat("z", 4000)), "long header")
	no5xx(s.Do("POST", "/dhos/v1/activation/"+strings.Repeat("A", 3000), "", map[string]any{"otp": "abcd"}), "long code")
	no5xx(s.Do("POST", "/dhos/v1/activation/%e2%28%a1", "", map[string]any{"otp": "abcd"}), "bad UTF-8 code")
	no5xx(s.Do("GET", "/dhos/v1/device?active=true&location_id=%00", admin, nil), "NUL in query")

	// A raw request with a control byte in a header value.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /dhos/v1/patient/p1/jwt HTTP/1.1\r\nHost: x\r\nX-Authorisation-Code: a\x01b\r\nConnection: close\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.Contains(line, " 400 ") {
		t.Fatalf("control byte in header: %q", line)
	}
}

func grpcSurface(t *testing.T, s *Suite) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, addr := range s.Addr {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		hr, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: "dhos." + name + ".v1." + strings.ToUpper(name[:1]) + name[1:] + "Service"})
		if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%s health: %v %v", name, hr, err)
		}
		stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("%s reflection: %v", name, err)
		}
		found := false
		for _, sv := range resp.GetListServicesResponse().GetService() {
			found = found || strings.HasPrefix(sv.GetName(), "dhos."+name+".v1.")
		}
		if !found {
			t.Fatalf("%s reflection lists %v", name, resp.GetListServicesResponse().GetService())
		}
	}

	// VerifyToken over gRPC.
	cc, err := grpc.NewClient(s.Addr["token"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	tc := tokenv1.NewTokenServiceClient(cc)
	admin := s.AdminToken(t)
	v, err := tc.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: admin, RequiredScopes: []string{"write:send_device"}})
	if err != nil || v.GetPrincipalId() != "e2e" {
		t.Fatalf("VerifyToken: %v %v", v, err)
	}
	_, err = tc.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: admin + "x"})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("tampered: %v", err)
	}
	_, err = tc.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: admin, RequiredScopes: []string{"write:everything"}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("missing scope: %v", err)
	}
	// Issuing needs the internal scope: a user's token is refused.
	_, err = tc.IssueToken(ctx, &tokenv1.IssueTokenRequest{SubjectId: "x"})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("IssueToken without a token: %v", err)
	}
}

func nonProduction(t *testing.T, s *Suite) {
	admin := s.AdminToken(t)
	// Static activations.
	m := Expect(t, s.Do("POST", "/dhos/v1/activation/1", "", map[string]any{"otp": "1111"}), 200).JSON(t)
	if m["authorisation_code"] != "1" || m["patient_id"] != "static_patient_uuid_1" {
		t.Fatalf("static activation %v", m)
	}
	Expect(t, s.Do("POST", "/dhos/v1/activation/1", "", map[string]any{"otp": "1111"}), 200) // never used up
	jwt := Expect(t, patientJWT(t, s, "static_patient_uuid_1", "1"), 200).JSON(t)["jwt"].(string)
	info := Expect(t, s.Do("GET", "/dhos/v1/patient/static_patient_uuid_1/security-info", jwt, nil), 200).JSON(t)
	if info["patient_id_in_url"] != "static_patient_uuid_1" || info["jwt"].(map[string]any)["metadata"].(map[string]any)["patient_id"] != "static_patient_uuid_1" {
		t.Fatalf("security-info %v", info)
	}
	Expect(t, s.Do("GET", "/dhos/v1/patient/static_patient_uuid_1/security-test", jwt, nil), 200)
	Expect(t, s.Do("GET", "/dhos/v1/patient/static_patient_uuid_2/security-test", jwt, nil), 403)

	Expect(t, s.Do("POST", "/dhos/v1/device", admin, map[string]any{"uuid": "static_device_uuid_D3", "location_id": "w", "description": "static"}), 200)
	d := Expect(t, s.Do("POST", "/dhos/v1/activation/333333333?type=send_entry", "", nil), 200).JSON(t)
	if d["device_id"] != "static_device_uuid_D3" {
		t.Fatalf("static device activation %v", d)
	}
	Expect(t, s.Do("GET", "/dhos/v1/device/static_device_uuid_D3/jwt", "", nil, "x-authorisation-code", d["authorisation_code"].(string)), 200)

	// drop_data needs a system token; it empties every store.
	Expect(t, s.Do("POST", "/drop_data", "", nil), 401)
	_, deviceJWT := activeDeviceJWT(t, s, admin)
	Expect(t, s.Do("POST", "/drop_data", deviceJWT, nil), 403)
	r := Expect(t, s.Do("POST", "/drop_data", admin, nil), 200).JSON(t)
	if r["complete"] != true || r["time_taken"] == nil {
		t.Fatalf("drop_data %v", r)
	}
	Expect(t, s.Do("GET", "/dhos/v1/device/static_device_uuid_D3", admin, nil), 404)

	// reset_test_data: patients 1..10 get authorisation code = id.
	Expect(t, s.Do("POST", "/reset_test_data", admin, nil), 200)
	for _, p := range []string{"1", "10"} {
		Expect(t, patientJWT(t, s, p, p), 200)
	}
	Expect(t, patientJWT(t, s, "11", "11"), 404)
}
