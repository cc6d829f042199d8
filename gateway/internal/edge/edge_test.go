package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	sessionv1 "github.com/dhosauth/dhosauth/gen/go/dhos/session/v1"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/pkg/service/servicetest"
)

// env is the real edge handler in httptest in front of fake services.
type env struct {
	t   *testing.T
	rec *recorder
	h   http.Handler
	srv *httptest.Server
}

func devOptions(o *Options) {
	o.Environment = config.Development
	o.AllowDropData = true
}

func newEnv(t *testing.T, opts ...func(*Options)) *env {
	t.Helper()
	rec := &recorder{}
	return newEnvAt(t, rec, startFakes(t, rec), opts...)
}

func newEnvAt(t *testing.T, rec *recorder, addr service.Addresses, opts ...func(*Options)) *env {
	t.Helper()
	conns, err := Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conns.Close() })
	o := Options{Conns: conns, Version: VersionInfo{Version: "1.2.3", Build: "42", Hash: "abc123"}}
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := Handler(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, rec: rec, h: h, srv: srv}
}

type result struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request over HTTP; hdr is name, value pairs.
func (e *env) do(method, path, body string, hdr ...string) result {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b}
}

// serve calls the handler directly with a hand-made request.
func (e *env) serve(r *http.Request) result {
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return result{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

func (r result) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

func (r result) array(t *testing.T) []any {
	t.Helper()
	var a []any
	if err := json.Unmarshal(r.body, &a); err != nil || a == nil {
		t.Fatalf("body %q is not a JSON array: %v", r.body, err)
	}
	return a
}

// wantError checks the status and the contract's error body.
func (r result) wantError(t *testing.T, code int, msgContains string) errorBody {
	t.Helper()
	if r.status != code {
		t.Fatalf("status %d, want %d; body %s", r.status, code, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	var eb errorBody
	dec := json.NewDecoder(bytes.NewReader(r.body))
	if err := dec.Decode(&eb); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	if eb.Code != code {
		t.Errorf("body code %d, want %d", eb.Code, code)
	}
	if eb.Message == "" || !strings.Contains(eb.Message, msgContains) {
		t.Errorf("message %q, want it to contain %q", eb.Message, msgContains)
	}
	return eb
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestResponsesUseSnakeCaseNames(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/dhos/v1/patient/p1/activation", "", "Authorization", "Bearer x")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if got, want := keys(r.object(t)), []string{"activation_code", "expires_at", "otp"}; !reflect.DeepEqual(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}

	r = e.do("GET", "/dhos/v1/device/d1", "")
	m := r.object(t)
	want := []string{"active", "created", "created_by", "description", "location_id", "modified", "modified_by", "uuid"}
	if got := keys(m); !reflect.DeepEqual(got, want) {
		t.Errorf("device keys %v, want %v", got, want)
	}
	if m["active"] != false {
		t.Errorf("active = %v, want false emitted", m["active"])
	}

	// Optional fields that are unset stay out.
	r = e.do("POST", "/dhos/v1/activation/CODE?type=send_entry", "")
	if got, want := keys(r.object(t)), []string{"authorisation_code", "device_id"}; !reflect.DeepEqual(got, want) {
		t.Errorf("validate keys %v, want %v", got, want)
	}
	r = e.do("GET", "/dhos/v1/patient/p7/security-info", "")
	if m := r.object(t); m["patient_id_in_url"] != "p7" || m["jwt"] == nil {
		t.Errorf("security-info %s", r.body)
	}
}

func TestServiceErrorsMapToContractStatuses(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		code   string
		status int
		msg    string
	}{
		{"INVALID_ARGUMENT", 400, "canned invalid_argument"},
		{"UNAUTHENTICATED", 401, "canned unauthenticated"},
		{"PERMISSION_DENIED", 403, "canned permission_denied"},
		{"NOT_FOUND", 404, "canned not_found"},
		{"ALREADY_EXISTS", 409, "canned already_exists"},
		{"RESOURCE_EXHAUSTED", 429, "canned resource_exhausted"},
		{"FAILED_PRECONDITION", 400, "canned failed_precondition"},
		{"UNAVAILABLE", 503, "try again"},
		{"DEADLINE_EXCEEDED", 504, "took too long"},
		{"INTERNAL", 500, "internal error"},
		{"UNKNOWN", 500, "internal error"},
		{"DATA_LOSS", 500, "internal error"},
	}
	for _, c := range cases {
		t.Run(c.code, func(t *testing.T) {
			r := e.do("GET", "/dhos/v1/device/fail-"+c.code, "")
			eb := r.wantError(t, c.status, c.msg)
			if strings.Contains(string(r.body), "10.0.0.7") || strings.Contains(string(r.body), "password") {
				t.Errorf("internal detail leaked: %s", r.body)
			}
			if c.status == 500 && eb.Message != "internal error" {
				t.Errorf("500 message %q, want exactly %q", eb.Message, "internal error")
			}
			if got := r.header.Get("Retry-After"); (c.status == 503 || c.status == 429) != (got == "1") {
				t.Errorf("Retry-After %q for %d", got, c.status)
			}
			if c.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestClinicianCreateIs201WithEmptyBody(t *testing.T) {
	e := newEnv(t)
	body := `{"clinician_id":"c1","login_active":true,"products":[{"product_name":"SEND"}],"groups":["SEND Clinician"],"send_entry_identifier":null,"contract_expiry_eod_date":"2030-01-01","uuid":"ignored","created":"x","created_by":"y","modified":"z","modified_by":"w"}`
	r := e.do("POST", "/dhos/v1/clinician", body, "Authorization", "Bearer x")
	if r.status != http.StatusCreated || len(r.body) != 0 {
		t.Fatalf("status %d body %q, want 201 and no body", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "" {
		t.Errorf("empty body with Content-Type %q", ct)
	}
	req := e.rec.last(t, "CreateClinician").Req.(*sessionv1.CreateClinicianRequest)
	if req.GetClinicianId() != "c1" || !req.GetLoginActive() || len(req.GetGroups().GetValues()) != 1 || req.SendEntryIdentifier != nil || req.GetContractExpiryEodDate() != "2030-01-01" {
		t.Errorf("service got %v", req)
	}

	r = e.do("PATCH", "/dhos/v1/clinician/c1", `{"products":[],"groups":[]}`)
	if r.status != 200 || len(r.body) != 0 {
		t.Errorf("patch: status %d body %q, want 200 and no body", r.status, r.body)
	}
	r = e.do("GET", "/dhos/v1/patient/p1/security-test", "")
	if r.status != 200 || len(r.body) != 0 {
		t.Errorf("security-test: status %d body %q, want 200 and no body", r.status, r.body)
	}
	// An error on a 201 route is still the error's status.
	e.do("POST", "/dhos/v1/clinician", `{"clinician_id":"fail-ALREADY_EXISTS"}`).wantError(t, 409, "already_exists")
}

func TestListsAreJSONArrays(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/dhos/v1/device?active=true&location_id=L1,L2", "")
	if a := r.array(t); len(a) != 2 {
		t.Fatalf("devices %s", r.body)
	}
	lr := e.rec.last(t, "ListDevices").Req.(*devicev1.ListDevicesRequest)
	if lr.Active == nil || lr.GetActive() != "true" || lr.GetLocationId() != "L1,L2" {
		t.Errorf("query not passed on: %v", lr)
	}
	for _, path := range []string{"/dhos/v1/device?location_id=none", "/dhos/v1/patient/empty/activation"} {
		r := e.do("GET", path, "")
		if r.status != 200 || string(r.body) != "[]" {
			t.Errorf("%s: status %d body %q, want 200 []", path, r.status, r.body)
		}
	}
	r = e.do("GET", "/dhos/v1/patient/p1/activation", "")
	a := r.array(t)
	if len(a) != 2 {
		t.Fatalf("activations %s", r.body)
	}
	want := []string{"activation_completed", "created", "created_by", "modified", "modified_by", "uuid"}
	if got := keys(a[0].(map[string]any)); !reflect.DeepEqual(got, want) {
		t.Errorf("activation keys %v", got)
	}
}

func TestHeadersForwarded(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/dhos/v1/patient/p1/jwt", "",
		"X-Authorisation-Code", "CODE123",
		"Authorization", "Bearer tok",
		"Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"Tracestate", "vendor=x",
		"X-Secret-Stuff", "nope",
		"Grpc-Metadata-Sneaky", "nope",
		"Grpc-Timeout", "1000H")
	if r.status != 200 || r.object(t)["jwt"] != "jwt-for-p1-CODE123" {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	md := e.rec.last(t, "GetPatientJwt").MD
	for k, v := range map[string]string{
		"x-authorisation-code": "CODE123",
		"authorization":        "Bearer tok",
		"traceparent":          "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"tracestate":           "vendor=x",
	} {
		if got := md.Get(k); len(got) != 1 || got[0] != v {
			t.Errorf("metadata %s = %v, want [%s]", k, got, v)
		}
	}
	for _, k := range []string{"x-secret-stuff", "sneaky", "grpc-metadata-sneaky"} {
		if got := md.Get(k); len(got) != 0 {
			t.Errorf("metadata %s = %v forwarded", k, got)
		}
	}
	if dl := md.Get("grpc-timeout"); len(dl) == 1 && strings.HasSuffix(dl[0], "H") {
		t.Errorf("client-chosen grpc-timeout forwarded: %v", dl)
	}
	// Missing header: the service decides (400).
	e.do("GET", "/dhos/v1/patient/p1/jwt", "").wantError(t, 400, "x-authorisation-code")
}

func TestGetWithBodyIs400(t *testing.T) {
	e := newEnv(t)
	e.do("GET", "/dhos/v1/device", `{}`).wantError(t, 400, "GET request must not have a body")
	e.do("GET", "/dhos/v1/patient/p1/jwt", `{"a":1}`, "X-Authorisation-Code", "c").wantError(t, 400, "must not have a body")
	e.do("DELETE", "/dhos/v1/device/d1", `{}`).wantError(t, 400, "DELETE request must not have a body")

	// Chunked, no length.
	req := httptest.NewRequest("GET", "/running", io.NopCloser(strings.NewReader("{}")))
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	e.serve(req).wantError(t, 400, "GET request must not have a body")
	if calls := e.rec.all(); len(calls) != 0 {
		t.Errorf("services were called: %v", e.rec.methods())
	}
}

func TestBadBodiesAre400(t *testing.T) {
	e := newEnv(t)
	cases := []struct{ name, method, path, body, msg string }{
		{"unknown field", "POST", "/dhos/v1/device", `{"location_id":"L","description":"d","colour":"red"}`, `unknown field "colour"`},
		{"unknown field in clinician", "POST", "/dhos/v1/clinician", `{"clinician_id":"c","nope":1}`, `unknown field "nope"`},
		{"unknown field in patch", "PATCH", "/dhos/v1/device/d1", `{"activ":true}`, `unknown field "activ"`},
		{"wrong type", "POST", "/dhos/v1/device", `{"location_id":5,"description":"d"}`, "location_id"},
		{"wrong type bool", "PATCH", "/dhos/v1/device/d1", `{"active":"yes"}`, "active"},
		{"wrong type otp", "POST", "/dhos/v1/activation/CODE", `{"otp":1234}`, "otp"},
		{"malformed", "POST", "/dhos/v1/device", `{"location_id":"L",`, "not valid JSON"},
		{"not json", "POST", "/dhos/v1/activation/CODE", `otp=1234`, "not valid JSON"},
		{"trailing garbage", "POST", "/dhos/v1/activation/CODE", `{"otp":"a"} {"otp":"b"}`, "not valid JSON"},
		{"array body", "POST", "/dhos/v1/device", `[1,2]`, "must be a JSON object"},
		{"null body", "POST", "/dhos/v1/activation/CODE", `null`, "must be a JSON object"},
		{"string body", "PATCH", "/dhos/v1/clinician/c1", `"x"`, "must be a JSON object"},
		{"wrong list type", "POST", "/dhos/v1/clinician", `{"clinician_id":"c","products":"SEND"}`, "wrong type"},
		{"nested unknown", "PATCH", "/dhos/v1/clinician/c1", `{"products":[],"groups":[],"send_entry_identifier":{"a":1}}`, "send_entry_identifier"},
		{"duplicate field", "POST", "/dhos/v1/activation/CODE", `{"otp":"a","otp":"b"}`, "otp"},
		{"bad utf-8", "POST", "/dhos/v1/activation/CODE", "{\"otp\":\"\xff\"}", "UTF-8"},
		{"huge wrong value", "PATCH", "/dhos/v1/device/d1", `{"active":"` + strings.Repeat("y", 100000) + `"}`, "active"},
		{"huge unknown field", "POST", "/dhos/v1/device", `{"` + strings.Repeat("k", 100000) + `":1}`, "unknown field"},
		{"repeated query value", "GET", "/dhos/v1/device?active=true&active=false", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.method, c.path, c.body)
			eb := r.wantError(t, 400, c.msg)
			if len(eb.Message) > 400 {
				t.Errorf("message of %d bytes", len(eb.Message))
			}
			if strings.Contains(eb.Message, "proto:") || strings.Contains(eb.Message, "  ") || strings.Contains(eb.Message, "\u00a0") {
				t.Errorf("raw decoder text in %q", eb.Message)
			}
		})
	}
	// The identifier fields are accepted and ignored.
	r := e.do("POST", "/dhos/v1/activation/CODE", `{"otp":"abcd","uuid":"u","created":"2020-01-01","created_by":null,"modified":1,"modified_by":{}}`)
	if r.status != 200 {
		t.Errorf("identifier fields refused: %d %s", r.status, r.body)
	}
	// No body where one is optional reaches the service, which decides.
	e.do("POST", "/dhos/v1/activation/CODE", "").wantError(t, 400, "otp is required")
	// Form bodies are refused; JSON mislabelled as a form (curl -d) is not.
	req := httptest.NewRequest("POST", "/dhos/v1/patient/p1/activation", strings.NewReader("patient_id=p2"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	e.serve(req).wantError(t, 415, "JSON")
	req = httptest.NewRequest("POST", "/dhos/v1/activation/CODE", strings.NewReader(`{"otp":"abcd"}`))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := e.serve(req); r.status != 200 {
		t.Errorf("JSON labelled as a form: %d %s", r.status, r.body)
	}
}

func TestOversizedBodyIs413(t *testing.T) {
	e := newEnv(t)
	big := `{"otp":"` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}`
	e.do("POST", "/dhos/v1/activation/CODE", big).wantError(t, 413, "larger than")

	// Unknown length: the limit applies while reading.
	req := httptest.NewRequest("POST", "/dhos/v1/activation/CODE", io.NopCloser(strings.NewReader(big)))
	req.ContentLength = -1
	e.serve(req).wantError(t, 413, "larger than")

	// Just under the limit is fine (and reaches the service).
	ok := `{"otp":"` + strings.Repeat("a", DefaultMaxBodyBytes-20) + `"}`
	if r := e.do("POST", "/dhos/v1/activation/CODE", ok); r.status != 200 {
		t.Errorf("body under the limit: %d %s", r.status, r.body)
	}
}

func TestRoutingErrorsAreJSON(t *testing.T) {
	e := newEnv(t, devOptions)
	e.do("GET", "/nope", "").wantError(t, 404, "not found")
	e.do("GET", "/dhos/v1/unknown/thing", "").wantError(t, 404, "not found")
	e.do("GET", "/", "").wantError(t, 404, "not found")
	e.do("DELETE", "/dhos/v1/device/d1", "").wantError(t, 405, "DELETE")
	e.do("PUT", "/dhos/v1/clinician", "{}").wantError(t, 405, "PUT")
	e.do("POST", "/running", "").wantError(t, 405, "POST")
	e.do("GET", "/drop_data", "").wantError(t, 405, "GET")
	e.do("POST", "/version", "").wantError(t, 405, "POST")
}

func TestPlainEndpoints(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/running", "")
	if r.status != 200 || len(r.body) != 0 {
		t.Errorf("/running: %d %q", r.status, r.body)
	}
	r = e.do("GET", "/version", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("/version: %d %v", r.status, r.header)
	}
	if got := r.object(t); !reflect.DeepEqual(got, map[string]any{"version": "1.2.3", "build": "42", "hash": "abc123"}) {
		t.Errorf("/version = %v", got)
	}
	r = e.do("GET", "/openapi.json", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("/openapi.json: %d %v", r.status, r.header)
	}
	file, err := os.ReadFile("../apidocs/dhos.swagger.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.body, file) {
		t.Error("/openapi.json differs from the generated document")
	}
	if paths, _ := r.object(t)["paths"].(map[string]any); paths["/dhos/v1/clinician"] == nil {
		t.Error("/openapi.json has no /dhos/v1/clinician")
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no X-Content-Type-Options")
	}
}

func TestDocsOnlyOutsideProduction(t *testing.T) {
	dev := newEnv(t, devOptions)
	r := dev.do("GET", "/docs", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("/docs: %d %v", r.status, r.header)
	}
	page := string(r.body)
	for _, want := range []string{"/openapi.json", "<script>", "parameters", "renderSchema"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"http://", "https://", "src=", "<link"} {
		if strings.Contains(page, bad) {
			t.Errorf("page loads from outside (%q)", bad)
		}
	}
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'sha256-") || !strings.Contains(csp, "style-src 'sha256-") {
		t.Errorf("CSP %q", csp)
	}

	prod := newEnv(t, func(o *Options) { o.Environment = config.Production })
	prod.do("GET", "/docs", "").wantError(t, 404, "not found")
	unset := newEnv(t) // ENVIRONMENT unset means PRODUCTION
	unset.do("GET", "/docs", "").wantError(t, 404, "not found")
	// The contract's endpoints stay.
	if r := prod.do("GET", "/openapi.json", ""); r.status != 200 {
		t.Errorf("/openapi.json in production: %d", r.status)
	}
}

func TestDropDataFansOut(t *testing.T) {
	e := newEnv(t, devOptions)
	r := e.do("POST", "/drop_data", "", "Authorization", "Bearer system-token", "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if r.status != 200 {
		t.Fatalf("drop_data: %d %s", r.status, r.body)
	}
	m := r.object(t)
	if m["complete"] != true {
		t.Errorf("complete = %v", m["complete"])
	}
	if tt, _ := m["time_taken"].(string); !strings.HasSuffix(tt, "s") || len(tt) < 2 {
		t.Errorf("time_taken = %v", m["time_taken"])
	}
	want := []string{
		"/dhos.activation.v1.ActivationService/DropData",
		"/dhos.device.v1.DeviceService/DropData",
		"/dhos.token.v1.TokenService/DropData",
		"/dhos.session.v1.SessionService/DropData",
	}
	if got := e.rec.methods(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	for _, c := range e.rec.all() {
		if got := c.MD.Get("authorization"); len(got) != 1 || got[0] != "Bearer system-token" {
			t.Errorf("%s: authorization %v", c.Method, got)
		}
		if len(c.MD.Get("traceparent")) != 1 {
			t.Errorf("%s: no traceparent", c.Method)
		}
	}
}

func TestResetTestData(t *testing.T) {
	e := newEnv(t, devOptions)
	r := e.do("POST", "/reset_test_data", "", "Authorization", "Bearer system-token")
	if r.status != 200 || r.object(t)["complete"] != true {
		t.Fatalf("reset_test_data: %d %s", r.status, r.body)
	}
	got := e.rec.methods()
	if len(got) != 5 || got[4] != "/dhos.activation.v1.ActivationService/ResetTestData" {
		t.Errorf("calls %v", got)
	}
}

func TestDropDataRefusals(t *testing.T) {
	t.Run("service refuses", func(t *testing.T) {
		e := newEnv(t, devOptions)
		e.do("POST", "/drop_data", "", "Authorization", "Bearer refuse-PERMISSION_DENIED").wantError(t, 403, "refused")
		e.do("POST", "/drop_data", "", "Authorization", "Bearer refuse-UNAUTHENTICATED").wantError(t, 401, "refused")
		e.do("POST", "/reset_test_data", "", "Authorization", "Bearer refuse-NOT_FOUND").wantError(t, 404, "refused")
		for _, m := range e.rec.methods() {
			if !strings.HasPrefix(m, "/dhos.activation.v1.") {
				t.Errorf("kept going after a refusal: %s", m)
			}
		}
	})
	t.Run("no token", func(t *testing.T) {
		e := newEnv(t, devOptions)
		e.do("POST", "/drop_data", "").wantError(t, 401, "bearer")
		e.do("POST", "/drop_data", "", "Authorization", "Basic abc").wantError(t, 401, "bearer")
		if n := len(e.rec.all()); n != 0 {
			t.Errorf("%d calls", n)
		}
	})
	t.Run("ALLOW_DROP_DATA not true", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.Environment = config.Development })
		e.do("POST", "/drop_data", "", "Authorization", "Bearer t").wantError(t, 403, "ALLOW_DROP_DATA")
		e.do("POST", "/reset_test_data", "", "Authorization", "Bearer t").wantError(t, 403, "ALLOW_DROP_DATA")
		if n := len(e.rec.all()); n != 0 {
			t.Errorf("%d calls", n)
		}
	})
	t.Run("production", func(t *testing.T) {
		for _, env := range []config.Environment{config.Production, ""} {
			e := newEnv(t, func(o *Options) { o.Environment = env; o.AllowDropData = true })
			e.do("POST", "/drop_data", "", "Authorization", "Bearer t").wantError(t, 404, "not found")
			e.do("POST", "/reset_test_data", "", "Authorization", "Bearer t").wantError(t, 404, "not found")
			if n := len(e.rec.all()); n != 0 {
				t.Errorf("%d calls", n)
			}
		}
	})
}

func TestUnreachableServiceIs503(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	rec := &recorder{}
	e := newEnvAt(t, rec, service.Addresses{Activation: dead, Device: dead, Token: dead, Session: dead}, devOptions)
	r := e.do("GET", "/dhos/v1/device/d1", "")
	eb := r.wantError(t, 503, "try again")
	if strings.Contains(eb.Message, "127.0.0.1") || strings.Contains(eb.Message, "dial") {
		t.Errorf("transport detail leaked: %q", eb.Message)
	}
	if r.header.Get("Retry-After") != "1" {
		t.Error("no Retry-After")
	}
	e.do("POST", "/drop_data", "", "Authorization", "Bearer t").wantError(t, 503, "try again")
	// The edge itself is alive.
	if r := e.do("GET", "/running", ""); r.status != 200 {
		t.Errorf("/running %d", r.status)
	}
}

// TestOddBytesNeverCause5xx sends paths, queries and headers with bytes
// that have no place there, by hand-made requests and over raw TCP.
func TestOddBytesNeverCause5xx(t *testing.T) {
	e := newEnv(t, devOptions)
	paths := []string{
		"/dhos/v1/device/%00", "/dhos/v1/device/%FF", "/dhos/v1/device/%0A", "/dhos/v1/device/a%0Db",
		"/dhos/v1/device/%C3%28", "/dhos/v1/patient/%ED%A0%80/activation", "/dhos/v1/device/%7F",
		"/dhos/v1/device/%2F", "/dhos/v1/device/%252F", "/dhos/v1/device/..%2F..%2Fetc", "/dhos/v1/device/%",
		"/dhos/v1/device/%zz", "//dhos/v1/device", "/dhos/v1/device/d1/", "/dhos/v1/device?active=%FF",
		"/dhos/v1/device?location_id=%00", "/dhos/v1/device?%ZZ=1", "/dhos/v1/device?a=1;b=2",
		"/dhos/v1/clinician/jwt?send_entry_identifier=%E2%80%AE", "/running%00", "/dhos/v1/device/" + strings.Repeat("a", 8000),
	}
	for _, p := range paths {
		u, err := url.ParseRequestURI(p)
		if err != nil {
			// Not even a URL: the HTTP server refuses it (raw test below).
			continue
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.URL = u
		req.RequestURI = p
		r := e.serve(req)
		if r.status >= 500 {
			t.Errorf("GET %s: %d %s", p, r.status, r.body)
		}
	}
	for _, p := range []string{"/dhos/v1/device/%00", "/dhos/v1/device/%FF", "/dhos/v1/device?active=%FF", "/dhos/v1/device/%0A"} {
		u, _ := url.ParseRequestURI(p)
		req := httptest.NewRequest("GET", "/", nil)
		req.URL = u
		e.serve(req).wantError(t, 400, "")
	}

	headers := map[string]string{
		"X-Authorisation-Code": "abc\x00def",
		"Authorization":        "Bearer a\x01b",
		"Traceparent":          "00-\x7f",
		"X-Other":              "line\nbreak",
	}
	for k, v := range headers {
		req := httptest.NewRequest("GET", "/dhos/v1/patient/p1/jwt", nil)
		req.Header.Set(k, v)
		e.serve(req).wantError(t, 400, "control characters")
	}
	req := httptest.NewRequest("GET", "/dhos/v1/patient/p1/jwt", nil)
	req.Header.Set("X-Authorisation-Code", "caf\xc3\xa9")
	e.serve(req).wantError(t, 400, "printable ASCII")
	req = httptest.NewRequest("GET", "/dhos/v1/device", nil)
	req.Header.Set("Authorization", "Bearer \xff\xfe")
	e.serve(req).wantError(t, 401, "Bearer")
	// Tabs inside a value are legal HTTP.
	req = httptest.NewRequest("GET", "/dhos/v1/device/d1", nil)
	req.Header.Set("User-Agent", "a\tb")
	if r := e.serve(req); r.status != 200 {
		t.Errorf("tab in User-Agent: %d %s", r.status, r.body)
	}

	// Over the wire, including request lines net/url will not parse.
	raw := []string{
		"GET /dhos/v1/device/\xff HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /dhos/v1/device/%00 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /dhos/v1/device/a b HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /dhos/v1/device/% HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /dhos/v1/patient/p1/jwt HTTP/1.1\r\nHost: x\r\nX-Authorisation-Code: a\x00b\r\n\r\n",
		"GET /dhos/v1/patient/p1/jwt HTTP/1.1\r\nHost: x\r\nX-Authorisation-Code: \xc3\xa9\r\n\r\n",
		"GET /dhos/v1/device HTTP/1.1\r\nHost: x\r\nX-\xff: 1\r\n\r\n",
		"POST /dhos/v1/activation/C HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n\xff\xfe\x00",
		"POST /dhos/v1/activation/C HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{\"otp\":\"\xff\"}",
		"POST /dhos/v1/device HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n0\r\n\r\n",
		"GET /dhos/v1/device HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
		"BREW /dhos/v1/device HTTP/1.1\r\nHost: x\r\n\r\n",
	}
	for _, req := range raw {
		code := rawStatus(t, e.srv.Listener.Addr().String(), req)
		if code >= 500 || code < 400 {
			t.Errorf("%q: status %d, want 4xx", req, code)
		}
	}
}

// rawStatus writes req to addr and returns the response status.
func rawStatus(t *testing.T, addr, req string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestHandlerNeedsConnections(t *testing.T) {
	if _, err := Handler(context.Background(), Options{}); err == nil {
		t.Error("Handler without connections succeeded")
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeOptions{Addr: "127.0.0.1:0", Handler: e.h, ShutdownTimeout: 2 * time.Second, Listening: func(a net.Addr) { addrc <- a }})
	}()
	addr := <-addrc
	resp, err := http.Get(fmt.Sprintf("http://%s/running", addr))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/running %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	logs := &servicetest.LogBuffer{}
	e := newEnv(t, devOptions, func(o *Options) {
		o.Logger = logs.Logger()
	})
	secrets := []string{"fail-INTERNAL", "SECRETAUTHCODE", "SECRETTOKEN", "SECRETQUERY"}
	e.do("POST", "/dhos/v1/activation/fail-INTERNAL?type=SECRETQUERY", `{"otp":"abcd"}`).wantError(t, 500, "internal error")
	e.do("GET", "/dhos/v1/patient/p1/jwt", "", "X-Authorisation-Code", "SECRETAUTHCODE", "Authorization", "Bearer SECRETTOKEN")
	e.do("POST", "/drop_data", "", "Authorization", "Bearer SECRETTOKEN")
	e.do("POST", "/drop_data", "", "Authorization", "Bearer refuse-INTERNAL")
	out := logs.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("log contains %q:\n%s", s, out)
		}
	}
	for _, want := range []string{`"route":"/dhos/v1/activation/{activation_code=*}"`, `"route":"/drop_data"`, `"status":500`, `"level":"ERROR"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

func TestGRPCLoggerWritesThroughSlog(t *testing.T) {
	logs := &servicetest.LogBuffer{}
	g := GRPCLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	g.Info("quiet")
	g.Warningf("careful %d", 1)
	g.Errorln("broken")
	out := logs.String()
	if strings.Contains(out, "quiet") || !strings.Contains(out, `"msg":"careful 1"`) || !strings.Contains(out, `"level":"ERROR","msg":"broken"`) {
		t.Errorf("log:\n%s", out)
	}
	if !g.V(0) || g.V(2) {
		t.Error("verbosity")
	}
}

func TestHeadRunning(t *testing.T) {
	e := newEnv(t)
	if r := e.do("HEAD", "/running", ""); r.status != 200 {
		t.Errorf("HEAD /running: %d", r.status)
	}
}

func BenchmarkGetDevice(b *testing.B) {
	addr := startFakes(b, &recorder{})
	conns, err := Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conns.Close()
	h, err := Handler(context.Background(), Options{Conns: conns})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/dhos/v1/device/d1", nil))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
