package sessiongrpc_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	auditv1 "github.com/dhosauth/dhosauth/gen/go/dhos/audit/v1"
	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	sessionv1 "github.com/dhosauth/dhosauth/gen/go/dhos/session/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/audit/auditgrpc"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/pkg/service/servicetest"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/session/internal/session"
	"github.com/dhosauth/dhosauth/services/session/internal/sessiondb"
	"github.com/dhosauth/dhosauth/services/session/internal/sessiongrpc"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	testHSKey       = "test-only-hs512-key-for-the-session-service-tests-0123456789"
	testHSIssuer    = "https://issuer.test/"
	testInternalKey = "test-only-internal-service-key-0123456789abcdef"
)

// The fixed clock of the tests: today is 2026-03-26 (UTC).
var testNow = time.Date(2026, 3, 26, 12, 0, 0, 0, time.UTC)

// legacy mints the callers' tokens; as(tok) calls with any other token.
var legacy = servicetest.HSIssuer{Key: []byte(testHSKey), Issuer: testHSIssuer}

// auditTail reads the sign-in audit events through the AuditService.
type auditTail struct {
	client auditv1.AuditServiceClient
	cursor string
}

// take returns the sign-in events ("SEND entry login ...") recorded since
// the last call, as {event_type, event_data, subject, actor, outcome}.
func (a *auditTail) take(t *testing.T) []map[string]any {
	t.Helper()
	var events []*auditv1.AuditEvent
	events, a.cursor = servicetest.AuditEvents(t, legacy.Caller(t, "read:audit", map[string]any{"system_id": "auditor"}), a.client, a.cursor)
	var out []map[string]any
	for _, ev := range events {
		if !strings.HasPrefix(ev.GetEventType(), "SEND entry login") {
			continue
		}
		out = append(out, map[string]any{
			"event_type": ev.GetEventType(), "event_data": ev.GetEventData().AsMap(), "subject": ev.GetSubject(),
			"actor": ev.GetActor(), "outcome": ev.GetOutcome(), "reason": ev.GetReason(),
		})
	}
	return out
}

// checkInternal verifies that a peer call carries the session service's
// internal token with scope.
func checkInternal(ctx context.Context, v *auth.Verifier, scope string) error {
	raw, err := auth.BearerToken(ctx)
	if err != nil {
		return err
	}
	p, err := v.Verify(ctx, raw)
	if err != nil {
		return apperr.Unauthenticated("%v", err)
	}
	if p.Kind != authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM || p.ID != "session" || !p.HasScope(scope) {
		return apperr.PermissionDenied("fake peer: wrong caller %v %q %v", p.Kind, p.ID, p.Scopes)
	}
	return nil
}

// fakeDevices is a DeviceService peer: it knows devices and their active
// flag, or answers every call with failCode.
type fakeDevices struct {
	devicev1.UnimplementedDeviceServiceServer
	verifier *auth.Verifier
	mu       sync.Mutex
	active   map[string]bool
	failCode codes.Code
	calls    int
}

func (f *fakeDevices) GetDevice(ctx context.Context, req *devicev1.GetDeviceRequest) (*devicev1.GetDeviceResponse, error) {
	if err := checkInternal(ctx, f.verifier, "read:send_device"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failCode != codes.OK {
		return nil, status.Error(f.failCode, "fake device service failure with internal detail")
	}
	active, ok := f.active[req.GetDeviceId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "device not found")
	}
	return &devicev1.GetDeviceResponse{Device: &devicev1.Device{Uuid: req.GetDeviceId(), Active: active}}, nil
}

func (f *fakeDevices) fail(code codes.Code) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failCode = code
}

func (f *fakeDevices) set(id string, active bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active[id] = active
}

// fakeTokens is a TokenService peer that issues recognisable tokens.
type fakeTokens struct {
	tokenv1.UnimplementedTokenServiceServer
	verifier *auth.Verifier
	mu       sync.Mutex
	requests []*tokenv1.IssueTokenRequest
}

func (f *fakeTokens) IssueToken(ctx context.Context, req *tokenv1.IssueTokenRequest) (*tokenv1.IssueTokenResponse, error) {
	if err := checkInternal(ctx, f.verifier, "internal:issue_token"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	return &tokenv1.IssueTokenResponse{Jwt: "jwt:" + req.GetSubjectId() + "@" + req.GetReferringDeviceId(), TokenId: "t1"}, nil
}

func (f *fakeTokens) issued() []*tokenv1.IssueTokenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*tokenv1.IssueTokenRequest(nil), f.requests...)
}

type testEnv struct {
	client  sessionv1.SessionServiceClient
	store   *sessiondb.Store
	logs    *auditTail
	devices *fakeDevices
	tokens  *fakeTokens
}

type envOptions struct {
	allowDrop  bool
	production bool
	deviceAddr string // default: the fake device service
	tokenAddr  string // default: the fake token service
}

// start serves the session service on 127.0.0.1:0 over db, wired as main
// wires it, with fake peers.
func start(t *testing.T, db storage.DB, o envOptions) *testEnv {
	t.Helper()
	peerVerifier := auth.NewVerifier(auth.VerifierOptions{InternalKey: []byte(testInternalKey)})
	devices := &fakeDevices{verifier: peerVerifier, active: map[string]bool{}}
	tokens := &fakeTokens{verifier: peerVerifier}
	if o.deviceAddr == "" {
		o.deviceAddr = servicetest.ServePeer(t, func(s *grpc.Server) { devicev1.RegisterDeviceServiceServer(s, devices) })
	}
	if o.tokenAddr == "" {
		o.tokenAddr = servicetest.ServePeer(t, func(s *grpc.Server) { tokenv1.RegisterTokenServiceServer(s, tokens) })
	}
	creds := auth.NewInternalCredentials([]byte(testInternalKey), "session", "read:send_device", "internal:issue_token")
	deviceConn, err := service.Dial(o.deviceAddr, creds)
	if err != nil {
		t.Fatalf("dial devices: %v", err)
	}
	t.Cleanup(func() { deviceConn.Close() })
	tokenConn, err := service.Dial(o.tokenAddr, creds)
	if err != nil {
		t.Fatalf("dial tokens: %v", err)
	}
	t.Cleanup(func() { tokenConn.Close() })

	rules, err := sessiongrpc.Rules()
	if err != nil {
		t.Fatalf("rules: %v", err)
	}
	verifier := auth.NewVerifier(auth.VerifierOptions{HSKey: legacy.Key, HSIssuer: legacy.Issuer, InternalKey: []byte(testInternalKey)})
	store := sessiondb.New(db)
	svc := session.NewService(store,
		sessiongrpc.NewDeviceClient(devicev1.NewDeviceServiceClient(deviceConn)),
		sessiongrpc.NewTokenClient(tokenv1.NewTokenServiceClient(tokenConn)),
		session.Config{AllowDropData: o.allowDrop, Now: func() time.Time { return testNow }},
	)
	cc := servicetest.Dial(t, servicetest.Serve(t, service.ServerOptions{
		Name:     "session",
		Logger:   (&servicetest.LogBuffer{}).Logger(),
		Guard:    auth.NewGuard(verifier, rules, o.production),
		Services: []string{sessionv1.SessionService_ServiceDesc.ServiceName, auditgrpc.ServiceName},
		Register: func(g *grpc.Server) {
			sessiongrpc.New(svc).Register(g)
			auditgrpc.New(db).Register(g)
		},
		Ready: db.Ping,
	}))
	return &testEnv{client: sessionv1.NewSessionServiceClient(cc), store: store, logs: &auditTail{client: auditv1.NewAuditServiceClient(cc)}, devices: devices, tokens: tokens}
}

var as = servicetest.Bearer

// admin may write clinicians.
func admin(t *testing.T) context.Context {
	return legacy.Caller(t, "write:send_clinician", map[string]any{"system_id": "dhos-users-adapter"})
}

// onDevice is a device token as the token service issues them.
func onDevice(t *testing.T, deviceID string) context.Context {
	return legacy.Caller(t, "read:send_entry_identifier read:send_device", map[string]any{"device_id": deviceID})
}

func system(t *testing.T) context.Context {
	return legacy.Caller(t, "", map[string]any{"system_id": "dhos-robot"})
}

var wantCode = servicetest.WantCode

func list(vals ...any) *structpb.ListValue {
	lv, err := structpb.NewList(vals)
	if err != nil {
		panic(err)
	}
	return lv
}

func ptr(s string) *string { return &s }

// newClinician is a valid create request that signs in.
func newClinician(id, ident string) *sessionv1.CreateClinicianRequest {
	return &sessionv1.CreateClinicianRequest{
		ClinicianId:         id,
		LoginActive:         proto.Bool(true),
		Products:            list("SEND"),
		Groups:              list("SEND Clinician"),
		SendEntryIdentifier: proto.String(ident),
	}
}

func mustCreate(t *testing.T, e *testEnv, req *sessionv1.CreateClinicianRequest) {
	t.Helper()
	if _, err := e.client.CreateClinician(admin(t), req); err != nil {
		t.Fatalf("CreateClinician: %v", err)
	}
}

func get(t *testing.T, e *testEnv, id string) session.Clinician {
	t.Helper()
	c, err := e.store.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("store.Get %s: %v", id, err)
	}
	return c
}

// TestSessionService runs every rule through a real server on each backend.
func TestSessionService(t *testing.T) {
	storagetest.Each(t, sessiondb.Migrations(), func(t *testing.T, db storage.DB) {
		e := start(t, db, envOptions{})
		for _, tc := range []struct {
			name string
			fn   func(t *testing.T, e *testEnv)
		}{
			{"Auth", testAuth},
			{"Create", testCreate},
			{"CreateValidation", testCreateValidation},
			{"CreateConflicts", testCreateConflicts},
			{"Update", testUpdate},
			{"UpdateValidation", testUpdateValidation},
			{"JWTSuccess", testJWTSuccess},
			{"JWTOrderOfChecks", testJWTOrderOfChecks},
			{"JWTDevice", testJWTDevice},
			{"JWTClinicianRules", testJWTClinicianRules},
			{"JWTContractExpiry", testJWTContractExpiry},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := e.store.DropAll(context.Background(), audit.New(context.Background(), "session", audit.TypeDataDropped, "", nil)); err != nil {
					t.Fatalf("DropAll: %v", err)
				}
				e.logs.take(t)
				tc.fn(t, e)
			})
		}
	})
}

func testAuth(t *testing.T, e *testEnv) {
	_, err := e.client.CreateClinician(context.Background(), newClinician("c", "1"))
	wantCode(t, err, codes.Unauthenticated, "")
	_, err = e.client.GetClinicianJwt(context.Background(), &sessionv1.GetClinicianJwtRequest{SendEntryIdentifier: "1"})
	wantCode(t, err, codes.Unauthenticated, "")
	_, err = e.client.CreateClinician(onDevice(t, "dev-1"), newClinician("c", "1"))
	wantCode(t, err, codes.PermissionDenied, "write:send_clinician")
	_, err = e.client.UpdateClinician(onDevice(t, "dev-1"), &sessionv1.UpdateClinicianRequest{ClinicianId: "c"})
	wantCode(t, err, codes.PermissionDenied, "write:send_clinician")
	_, err = e.client.GetClinicianJwt(admin(t), &sessionv1.GetClinicianJwtRequest{SendEntryIdentifier: "1"})
	wantCode(t, err, codes.PermissionDenied, "read:send_entry_identifier")
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{
		"iss": testHSIssuer, "aud": testHSIssuer, "exp": time.Now().Add(-time.Hour).Unix(),
		"scope": "read:send_entry_identifier", "metadata": map[string]any{"device_id": "dev-1"},
	}).SignedString([]byte(testHSKey))
	_, err = e.client.GetClinicianJwt(as(expired), &sessionv1.GetClinicianJwtRequest{SendEntryIdentifier: "1"})
	wantCode(t, err, codes.Unauthenticated, "expired")
}

func testCreate(t *testing.T, e *testEnv) {
	req := &sessionv1.CreateClinicianRequest{
		ClinicianId:           "clin-1",
		LoginActive:           proto.Bool(true),
		Products:              list("SEND", "Gdm"),
		Groups:                list("SEND Clinician", "Ward Manager"),
		SendEntryIdentifier:   proto.String("123456"),
		ContractExpiryEodDate: proto.String("2027-02-28"),
		// Identifier fields are accepted and ignored.
		Uuid:       structpb.NewStringValue("ignored"),
		Created:    structpb.NewStringValue("2001-01-01T00:00:00.000Z"),
		CreatedBy:  structpb.NewNumberValue(3),
		Modified:   structpb.NewNullValue(),
		ModifiedBy: structpb.NewBoolValue(true),
	}
	resp, err := e.client.CreateClinician(admin(t), req)
	if err != nil {
		t.Fatalf("CreateClinician: %v", err)
	}
	if !proto.Equal(resp, &sessionv1.CreateClinicianResponse{}) {
		t.Fatalf("response %v, want empty", resp)
	}
	c := get(t, e, "clin-1")
	if !c.LoginActive || strings.Join(c.Products, ",") != "send,gdm" || strings.Join(c.Groups, ",") != "send clinician,ward manager" {
		t.Errorf("stored %+v", c)
	}
	if c.SendEntryIdentifier == nil || *c.SendEntryIdentifier != "123456" || c.ContractExpiryEODDate == nil || *c.ContractExpiryEODDate != "2027-02-28" {
		t.Errorf("stored identifier/date %+v", c)
	}
	if c.CreatedBy != "dhos-users-adapter" || c.ModifiedBy != "dhos-users-adapter" || !c.Created.Equal(testNow) || !c.Modified.Equal(testNow) {
		t.Errorf("identifier fields %+v", c)
	}

	// Minimal: no groups, null identifier and date, inactive login.
	mustCreate(t, e, &sessionv1.CreateClinicianRequest{ClinicianId: "clin-2", LoginActive: proto.Bool(false), Products: list()})
	c = get(t, e, "clin-2")
	if c.LoginActive || len(c.Products) != 0 || len(c.Groups) != 0 || c.SendEntryIdentifier != nil || c.ContractExpiryEODDate != nil {
		t.Errorf("minimal clinician %+v", c)
	}
	// An empty identifier is stored as null: several clinicians may have it.
	for _, id := range []string{"clin-3", "clin-4"} {
		mustCreate(t, e, &sessionv1.CreateClinicianRequest{ClinicianId: id, LoginActive: proto.Bool(true), Products: list(), SendEntryIdentifier: proto.String("")})
		if c := get(t, e, id); c.SendEntryIdentifier != nil {
			t.Errorf("%s identifier %q, want null", id, *c.SendEntryIdentifier)
		}
	}
}

func testCreateValidation(t *testing.T, e *testEnv) {
	long := strings.Repeat("x", 201)
	many := make([]any, 101)
	for i := range many {
		many[i] = "p"
	}
	mod := func(f func(r *sessionv1.CreateClinicianRequest)) *sessionv1.CreateClinicianRequest {
		r := newClinician("clin-1", "1234")
		f(r)
		return r
	}
	cases := []struct {
		name string
		req  *sessionv1.CreateClinicianRequest
		msg  string
	}{
		{"empty body", &sessionv1.CreateClinicianRequest{}, "clinician_id"},
		{"no clinician_id", mod(func(r *sessionv1.CreateClinicianRequest) { r.ClinicianId = "" }), "clinician_id"},
		{"long clinician_id", mod(func(r *sessionv1.CreateClinicianRequest) { r.ClinicianId = long }), "clinician_id"},
		{"control in clinician_id", mod(func(r *sessionv1.CreateClinicianRequest) { r.ClinicianId = "a\nb" }), "clinician_id"},
		{"no login_active", mod(func(r *sessionv1.CreateClinicianRequest) { r.LoginActive = nil }), "login_active"},
		{"no products", mod(func(r *sessionv1.CreateClinicianRequest) { r.Products = nil }), "products"},
		{"number in products", mod(func(r *sessionv1.CreateClinicianRequest) { r.Products = list("send", 3) }), "products must be a list of strings"},
		{"null in products", mod(func(r *sessionv1.CreateClinicianRequest) { r.Products = list(nil) }), "products"},
		{"list in products", mod(func(r *sessionv1.CreateClinicianRequest) { r.Products = list([]any{"a"}) }), "products"},
		{"long product", mod(func(r *sessionv1.CreateClinicianRequest) { r.Products = list(long) }), "products"},
		{"too many products", mod(func(r *sessionv1.CreateClinicianRequest) { r.Products = list(many...) }), "products"},
		{"object in groups", mod(func(r *sessionv1.CreateClinicianRequest) { r.Groups = list(map[string]any{"a": "b"}) }), "groups must be a list of strings"},
		{"control in group", mod(func(r *sessionv1.CreateClinicianRequest) { r.Groups = list("send\tclinician") }), "groups"},
		{"long identifier", mod(func(r *sessionv1.CreateClinicianRequest) { r.SendEntryIdentifier = ptr(long) }), "send_entry_identifier"},
		{"control in identifier", mod(func(r *sessionv1.CreateClinicianRequest) { r.SendEntryIdentifier = ptr("12\x0034") }), "send_entry_identifier"},
		{"bad date", mod(func(r *sessionv1.CreateClinicianRequest) { r.ContractExpiryEodDate = ptr("tomorrow") }), "contract_expiry_eod_date"},
		{"empty date", mod(func(r *sessionv1.CreateClinicianRequest) { r.ContractExpiryEodDate = ptr("") }), "contract_expiry_eod_date"},
		{"month 13", mod(func(r *sessionv1.CreateClinicianRequest) { r.ContractExpiryEodDate = ptr("2026-13-01") }), "contract_expiry_eod_date"},
		{"30 February", mod(func(r *sessionv1.CreateClinicianRequest) { r.ContractExpiryEodDate = ptr("2026-02-30") }), "contract_expiry_eod_date"},
		{"short date", mod(func(r *sessionv1.CreateClinicianRequest) { r.ContractExpiryEodDate = ptr("2026-3-1") }), "contract_expiry_eod_date"},
		{"timestamp", mod(func(r *sessionv1.CreateClinicianRequest) { r.ContractExpiryEodDate = ptr("2026-03-01T00:00:00Z") }), "contract_expiry_eod_date"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.CreateClinician(admin(t), tc.req)
			wantCode(t, err, codes.InvalidArgument, tc.msg)
		})
	}
	if _, err := e.store.Get(context.Background(), "clin-1"); err == nil {
		t.Fatal("an invalid clinician was stored")
	}
	// The limits themselves are accepted.
	max := make([]any, 100)
	for i := range max {
		max[i] = strings.Repeat("p", 200)
	}
	mustCreate(t, e, &sessionv1.CreateClinicianRequest{ClinicianId: strings.Repeat("c", 200), LoginActive: proto.Bool(true), Products: list(max...), SendEntryIdentifier: ptr(strings.Repeat("i", 200))})
}

func testCreateConflicts(t *testing.T, e *testEnv) {
	mustCreate(t, e, newClinician("clin-1", "1234"))
	_, err := e.client.CreateClinician(admin(t), newClinician("clin-1", "9999"))
	wantCode(t, err, codes.AlreadyExists, "clin-1")
	_, err = e.client.CreateClinician(admin(t), newClinician("clin-2", "1234"))
	wantCode(t, err, codes.AlreadyExists, "send_entry_identifier")
	if _, err := e.store.Get(context.Background(), "clin-2"); err == nil {
		t.Fatal("clin-2 stored despite the conflict")
	}
}

func testUpdate(t *testing.T, e *testEnv) {
	mustCreate(t, e, &sessionv1.CreateClinicianRequest{
		ClinicianId: "clin-1", LoginActive: proto.Bool(true), Products: list("send"), Groups: list("send clinician"),
		SendEntryIdentifier: ptr("1234"), ContractExpiryEodDate: ptr("2027-01-01"),
	})
	editor := legacy.Caller(t, "write:send_clinician", map[string]any{"clinician_id": "manager-7"})

	// login_active absent: unchanged; identifier and date absent: null.
	_, err := e.client.UpdateClinician(editor, &sessionv1.UpdateClinicianRequest{ClinicianId: "clin-1", Patch: &sessionv1.ClinicianPatch{
		Products: list("GDM"), Groups: list(),
		ClinicianId: structpb.NewStringValue("ignored"), Created: structpb.NewStringValue("ignored"),
	}})
	if err != nil {
		t.Fatalf("UpdateClinician: %v", err)
	}
	c := get(t, e, "clin-1")
	if !c.LoginActive || strings.Join(c.Products, ",") != "gdm" || len(c.Groups) != 0 || c.SendEntryIdentifier != nil || c.ContractExpiryEODDate != nil {
		t.Errorf("after first patch %+v", c)
	}
	if c.ModifiedBy != "manager-7" || c.CreatedBy != "dhos-users-adapter" {
		t.Errorf("*_by %+v", c)
	}

	// Everything given.
	_, err = e.client.UpdateClinician(editor, &sessionv1.UpdateClinicianRequest{ClinicianId: "clin-1", Patch: &sessionv1.ClinicianPatch{
		LoginActive: proto.Bool(false), Products: list("SEND"), Groups: list("SEND SuperClinician"),
		SendEntryIdentifier: ptr("5555"), ContractExpiryEodDate: ptr("2028-06-30"),
	}})
	if err != nil {
		t.Fatalf("UpdateClinician: %v", err)
	}
	c = get(t, e, "clin-1")
	if c.LoginActive || strings.Join(c.Groups, ",") != "send superclinician" || c.SendEntryIdentifier == nil || *c.SendEntryIdentifier != "5555" ||
		c.ContractExpiryEODDate == nil || *c.ContractExpiryEODDate != "2028-06-30" {
		t.Errorf("after second patch %+v", c)
	}
	// login_active true again.
	_, err = e.client.UpdateClinician(editor, &sessionv1.UpdateClinicianRequest{ClinicianId: "clin-1", Patch: &sessionv1.ClinicianPatch{
		LoginActive: proto.Bool(true), Products: list(), Groups: list(), SendEntryIdentifier: ptr("5555"),
	}})
	if err != nil || !get(t, e, "clin-1").LoginActive {
		t.Fatalf("reactivate: %v", err)
	}
}

func testUpdateValidation(t *testing.T, e *testEnv) {
	mustCreate(t, e, newClinician("clin-1", "1234"))
	mustCreate(t, e, newClinician("clin-2", "5678"))
	patch := func(f func(p *sessionv1.ClinicianPatch)) *sessionv1.ClinicianPatch {
		p := &sessionv1.ClinicianPatch{Products: list("send"), Groups: list("send clinician"), SendEntryIdentifier: ptr("1234")}
		f(p)
		return p
	}
	cases := []struct {
		name string
		id   string
		p    *sessionv1.ClinicianPatch
		code codes.Code
		msg  string
	}{
		{"no patch", "clin-1", nil, codes.InvalidArgument, "body required"},
		{"empty patch", "clin-1", &sessionv1.ClinicianPatch{}, codes.InvalidArgument, "products"},
		{"no products", "clin-1", patch(func(p *sessionv1.ClinicianPatch) { p.Products = nil }), codes.InvalidArgument, "products is required"},
		{"no groups", "clin-1", patch(func(p *sessionv1.ClinicianPatch) { p.Groups = nil }), codes.InvalidArgument, "groups is required"},
		{"bool in groups", "clin-1", patch(func(p *sessionv1.ClinicianPatch) { p.Groups = list(true) }), codes.InvalidArgument, "groups must be a list of strings"},
		{"bad date", "clin-1", patch(func(p *sessionv1.ClinicianPatch) { p.ContractExpiryEodDate = ptr("31/12/2026") }), codes.InvalidArgument, "contract_expiry_eod_date"},
		{"control in identifier", "clin-1", patch(func(p *sessionv1.ClinicianPatch) { p.SendEntryIdentifier = ptr("\x07") }), codes.InvalidArgument, "send_entry_identifier"},
		{"bad clinician_id", strings.Repeat("c", 201), patch(func(*sessionv1.ClinicianPatch) {}), codes.InvalidArgument, "clinician_id"},
		{"empty clinician_id", "", patch(func(*sessionv1.ClinicianPatch) {}), codes.InvalidArgument, "clinician_id"},
		{"unknown clinician", "clin-9", patch(func(p *sessionv1.ClinicianPatch) { p.SendEntryIdentifier = nil }), codes.NotFound, "clin-9"},
		{"identifier taken", "clin-2", patch(func(*sessionv1.ClinicianPatch) {}), codes.AlreadyExists, "send_entry_identifier"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.UpdateClinician(admin(t), &sessionv1.UpdateClinicianRequest{ClinicianId: tc.id, Patch: tc.p})
			wantCode(t, err, tc.code, tc.msg)
		})
	}
	if c := get(t, e, "clin-2"); *c.SendEntryIdentifier != "5678" || !c.Modified.Equal(testNow) || c.ModifiedBy != "dhos-users-adapter" {
		t.Errorf("clin-2 changed by a failed patch: %+v", c)
	}
	// Keeping one's own identifier is fine.
	if _, err := e.client.UpdateClinician(admin(t), &sessionv1.UpdateClinicianRequest{ClinicianId: "clin-1", Patch: patch(func(*sessionv1.ClinicianPatch) {})}); err != nil {
		t.Fatalf("keep own identifier: %v", err)
	}
}

// wantAudit checks the audit events logged since the last take.
func wantAudit(t *testing.T, e *testEnv, eventType string, data map[string]any) {
	t.Helper()
	events := e.logs.take(t)
	if len(events) != 1 {
		t.Fatalf("audit events %v, want one %s", events, eventType)
	}
	if events[0]["event_type"] != eventType {
		t.Fatalf("audit event %v, want %s", events[0], eventType)
	}
	wantOutcome := "success"
	if reason, ok := data["reason"].(string); ok {
		wantOutcome = "failure"
		if events[0]["reason"] != reason {
			t.Fatalf("audit event %v, want reason %s", events[0], reason)
		}
	}
	if events[0]["outcome"] != wantOutcome || events[0]["actor"] != data["device_id"] || events[0]["subject"] != orEmpty(data["clinician_id"]) {
		t.Fatalf("audit event %v: want outcome %s, the device as actor, the clinician as subject", events[0], wantOutcome)
	}
	got, _ := json.Marshal(events[0]["event_data"])
	want, _ := json.Marshal(data)
	if string(got) != string(want) {
		t.Fatalf("event_data %s, want %s", got, want)
	}
}

func orEmpty(v any) string {
	s, _ := v.(string)
	return s
}

func wantNoAudit(t *testing.T, e *testEnv) {
	t.Helper()
	if events := e.logs.take(t); len(events) != 0 {
		t.Fatalf("unexpected audit events %v", events)
	}
}

func jwtFor(t *testing.T, e *testEnv, deviceID, ident string) (string, error) {
	t.Helper()
	resp, err := e.client.GetClinicianJwt(onDevice(t, deviceID), &sessionv1.GetClinicianJwtRequest{SendEntryIdentifier: ident})
	return resp.GetJwt(), err
}

func testJWTSuccess(t *testing.T, e *testEnv) {
	e.devices.set("dev-1", true)
	mustCreate(t, e, newClinician("clin-1", "1234"))
	e.logs.take(t)
	got, err := jwtFor(t, e, "dev-1", "1234")
	if err != nil {
		t.Fatalf("GetClinicianJwt: %v", err)
	}
	if got != "jwt:clin-1@dev-1" {
		t.Fatalf("jwt %q", got)
	}
	reqs := e.tokens.issued()
	last := reqs[len(reqs)-1]
	if last.GetKind() != authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN || last.GetSubjectId() != "clin-1" || last.GetReferringDeviceId() != "dev-1" || len(last.GetScopes()) != 0 {
		t.Fatalf("IssueToken request %v", last)
	}
	wantAudit(t, e, session.EventLoginSuccess, map[string]any{"clinician_id": "clin-1", "device_id": "dev-1"})

	// Super clinicians sign in too, whatever the case of the group name.
	mustCreate(t, e, &sessionv1.CreateClinicianRequest{ClinicianId: "clin-2", LoginActive: proto.Bool(true), Products: list(), Groups: list("Other", "SEND SUPERCLINICIAN"), SendEntryIdentifier: ptr("2222")})
	if got, err := jwtFor(t, e, "dev-1", "2222"); err != nil || got != "jwt:clin-2@dev-1" {
		t.Fatalf("super clinician: %q %v", got, err)
	}
}

func testJWTOrderOfChecks(t *testing.T, e *testEnv) {
	ask := func(ctx context.Context, ident string) error {
		_, err := e.client.GetClinicianJwt(ctx, &sessionv1.GetClinicianJwtRequest{SendEntryIdentifier: ident})
		return err
	}
	notDevice := legacy.Caller(t, "read:send_entry_identifier", map[string]any{"clinician_id": "clin-x"})
	// Identifier missing: 400 before anything else, even for a non-device.
	wantCode(t, ask(notDevice, ""), codes.InvalidArgument, "send_entry_identifier")
	wantCode(t, ask(onDevice(t, "unknown-device"), ""), codes.InvalidArgument, "send_entry_identifier")
	wantCode(t, ask(onDevice(t, "dev-1"), strings.Repeat("1", 201)), codes.InvalidArgument, "send_entry_identifier")
	wantCode(t, ask(onDevice(t, "dev-1"), "12\n"), codes.InvalidArgument, "send_entry_identifier")
	// Not a device: 403, before the device or the identifier is looked at.
	wantCode(t, ask(notDevice, "unknown"), codes.PermissionDenied, "device")
	wantCode(t, ask(legacy.Caller(t, "read:send_entry_identifier", map[string]any{"system_id": "robot"}), "unknown"), codes.PermissionDenied, "device")
	wantCode(t, ask(legacy.Caller(t, "read:send_entry_identifier", map[string]any{"device_id": ""}), "unknown"), codes.PermissionDenied, "device")
	wantCode(t, ask(legacy.Caller(t, "read:send_entry_identifier", nil), "unknown"), codes.PermissionDenied, "device")
	wantNoAudit(t, e)
	// Unknown device before unknown identifier.
	wantCode(t, ask(onDevice(t, "unknown-device"), "unknown"), codes.PermissionDenied, "device")
	wantAudit(t, e, session.EventLoginFailure, map[string]any{"device_id": "unknown-device", "reason": "device not found"})
	// Known device, unknown identifier: 404, audited.
	e.devices.set("dev-1", true)
	wantCode(t, ask(onDevice(t, "dev-1"), "unknown"), codes.NotFound, "send_entry_identifier")
	wantAudit(t, e, session.EventLoginFailure, map[string]any{"device_id": "dev-1", "reason": "unknown send_entry_identifier"})
}

func testJWTDevice(t *testing.T, e *testEnv) {
	mustCreate(t, e, newClinician("clin-1", "1234"))
	e.devices.set("dev-off", false)
	e.logs.take(t)
	_, err := jwtFor(t, e, "dev-off", "1234")
	wantCode(t, err, codes.PermissionDenied, "not active")
	wantAudit(t, e, session.EventLoginFailure, map[string]any{"device_id": "dev-off", "reason": "device inactive"})

	// Deactivated since its token was issued, then active again.
	e.devices.set("dev-1", true)
	if _, err := jwtFor(t, e, "dev-1", "1234"); err != nil {
		t.Fatalf("active device: %v", err)
	}
	e.devices.set("dev-1", false)
	_, err = jwtFor(t, e, "dev-1", "1234")
	wantCode(t, err, codes.PermissionDenied, "")
	e.devices.set("dev-1", true)
	if _, err := jwtFor(t, e, "dev-1", "1234"); err != nil {
		t.Fatalf("reactivated device: %v", err)
	}
}

func testJWTClinicianRules(t *testing.T, e *testEnv) {
	e.devices.set("dev-1", true)
	mustCreate(t, e, &sessionv1.CreateClinicianRequest{ClinicianId: "clin-off", LoginActive: proto.Bool(false), Products: list(), Groups: list("send clinician"), SendEntryIdentifier: ptr("1111")})
	mustCreate(t, e, &sessionv1.CreateClinicianRequest{ClinicianId: "clin-nogroup", LoginActive: proto.Bool(true), Products: list("send"), Groups: list("gdm clinician", "send"), SendEntryIdentifier: ptr("2222")})
	mustCreate(t, e, &sessionv1.CreateClinicianRequest{ClinicianId: "clin-none", LoginActive: proto.Bool(true), Products: list("send"), SendEntryIdentifier: ptr("3333")})
	e.logs.take(t)
	before := len(e.tokens.issued())

	_, err := jwtFor(t, e, "dev-1", "1111")
	wantCode(t, err, codes.PermissionDenied, "not active")
	wantAudit(t, e, session.EventLoginFailure, map[string]any{"clinician_id": "clin-off", "device_id": "dev-1", "reason": "login inactive"})

	_, err = jwtFor(t, e, "dev-1", "2222")
	wantCode(t, err, codes.PermissionDenied, "group")
	wantAudit(t, e, session.EventLoginFailure, map[string]any{"clinician_id": "clin-nogroup", "device_id": "dev-1", "reason": "not in a SEND clinician group"})

	_, err = jwtFor(t, e, "dev-1", "3333")
	wantCode(t, err, codes.PermissionDenied, "group")
	wantAudit(t, e, session.EventLoginFailure, map[string]any{"clinician_id": "clin-none", "device_id": "dev-1", "reason": "not in a SEND clinician group"})

	if after := len(e.tokens.issued()); after != before {
		t.Fatalf("tokens issued for refused sign-ins: %d", after-before)
	}
}

func testJWTContractExpiry(t *testing.T, e *testEnv) {
	e.devices.set("dev-1", true)
	for id, date := range map[string]string{"clin-today": "2026-03-26", "clin-tomorrow": "2026-03-27", "clin-yesterday": "2026-03-25", "clin-long-ago": "1999-12-31"} {
		req := newClinician(id, "id-"+id)
		req.ContractExpiryEodDate = ptr(date)
		mustCreate(t, e, req)
	}
	e.logs.take(t)
	for _, id := range []string{"clin-today", "clin-tomorrow"} {
		if _, err := jwtFor(t, e, "dev-1", "id-"+id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		e.logs.take(t)
	}
	for _, id := range []string{"clin-yesterday", "clin-long-ago"} {
		_, err := jwtFor(t, e, "dev-1", "id-"+id)
		wantCode(t, err, codes.PermissionDenied, "expired")
		wantAudit(t, e, session.EventLoginFailure, map[string]any{"clinician_id": id, "device_id": "dev-1", "reason": "contract expired"})
		c := get(t, e, id)
		if c.LoginActive || c.ModifiedBy != "dev-1" || !c.Modified.Equal(testNow) {
			t.Fatalf("%s not marked inactive: %+v", id, c)
		}
		// Now the login itself is inactive.
		_, err = jwtFor(t, e, "dev-1", "id-"+id)
		wantCode(t, err, codes.PermissionDenied, "not active")
		wantAudit(t, e, session.EventLoginFailure, map[string]any{"clinician_id": id, "device_id": "dev-1", "reason": "login inactive"})
	}
}

// TestPeers checks what the caller sees when a peer fails.
func TestPeers(t *testing.T) {
	db := storagetest.OpenSQLite(t, sessiondb.Migrations())
	ctx := context.Background()
	seed := func(t *testing.T, e *testEnv) {
		t.Helper()
		if err := e.store.DropAll(ctx, audit.New(ctx, "session", audit.TypeDataDropped, "", nil)); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, e, newClinician("clin-1", "1234"))
		e.logs.take(t)
	}
	t.Run("device service down", func(t *testing.T) {
		e := start(t, db, envOptions{deviceAddr: servicetest.DeadAddr(t)})
		seed(t, e)
		_, err := jwtFor(t, e, "dev-1", "1234")
		wantCode(t, err, codes.Unavailable, "device service unavailable")
		wantNoAudit(t, e)
	})
	t.Run("token service down", func(t *testing.T) {
		e := start(t, db, envOptions{tokenAddr: servicetest.DeadAddr(t)})
		seed(t, e)
		e.devices.set("dev-1", true)
		_, err := jwtFor(t, e, "dev-1", "1234")
		wantCode(t, err, codes.Unavailable, "token service unavailable")
		wantNoAudit(t, e)
	})
	t.Run("device service failing", func(t *testing.T) {
		e := start(t, db, envOptions{})
		seed(t, e)
		for _, code := range []codes.Code{codes.Unavailable, codes.DeadlineExceeded} {
			e.devices.fail(code)
			_, err := jwtFor(t, e, "dev-1", "1234")
			wantCode(t, err, codes.Unavailable, "device service unavailable")
		}
		// A peer refusing us is masked, never passed on with its detail.
		for _, code := range []codes.Code{codes.PermissionDenied, codes.Unauthenticated, codes.Internal, codes.Unknown} {
			e.devices.fail(code)
			_, err := jwtFor(t, e, "dev-1", "1234")
			wantCode(t, err, codes.Internal, "")
			if st, _ := status.FromError(err); st.Message() != "internal error" {
				t.Fatalf("message %q leaks detail", st.Message())
			}
		}
		wantNoAudit(t, e)
	})
}

// TestDropData checks the drop-data switch, the principal rule and the
// production lock.
func TestDropData(t *testing.T) {
	storagetest.Each(t, sessiondb.Migrations(), func(t *testing.T, db storage.DB) {
		t.Run("not allowed", func(t *testing.T) {
			e := start(t, db, envOptions{})
			_, err := e.client.DropData(system(t), &sessionv1.DropDataRequest{})
			wantCode(t, err, codes.PermissionDenied, "drop data is not allowed")
		})
		t.Run("allowed", func(t *testing.T) {
			e := start(t, db, envOptions{allowDrop: true})
			mustCreate(t, e, newClinician("clin-1", "1234"))
			_, err := e.client.DropData(onDevice(t, "dev-1"), &sessionv1.DropDataRequest{})
			wantCode(t, err, codes.PermissionDenied, "")
			if _, err := e.client.DropData(system(t), &sessionv1.DropDataRequest{}); err != nil {
				t.Fatalf("DropData: %v", err)
			}
			if _, err := e.store.Get(context.Background(), "clin-1"); err == nil {
				t.Fatal("clinician left after DropData")
			}
		})
		t.Run("production", func(t *testing.T) {
			e := start(t, db, envOptions{allowDrop: true, production: true})
			_, err := e.client.DropData(system(t), &sessionv1.DropDataRequest{})
			wantCode(t, err, codes.NotFound, "")
		})
	})
}
