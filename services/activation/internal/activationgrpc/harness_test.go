package activationgrpc_test

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/audit/auditgrpc"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/pkg/secret"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/pkg/service/servicetest"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/activation/internal/activation"
	"github.com/dhosauth/dhosauth/services/activation/internal/activationdb"
	"github.com/dhosauth/dhosauth/services/activation/internal/activationgrpc"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

var (
	testHSKey       = []byte("test-hs512-key-for-the-activation-service-tests-only")
	testHSIssuer    = "https://test.issuer/"
	testInternalKey = []byte("test-internal-key-for-service-to-service-calls-0123")
	testHashKey     = []byte("test-code-hash-key-0123456789abcdef0123456789")
)

// legacy mints the test tokens.
var legacy = servicetest.HSIssuer{Key: testHSKey, Issuer: testHSIssuer}

// fakeDevices is the device service peer: a registry in memory.
type fakeDevices struct {
	devicev1.UnimplementedDeviceServiceServer
	mu      sync.Mutex
	devices map[string]bool // id -> active
}

func (f *fakeDevices) set(id string, active bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices[id] = active
}

func (f *fakeDevices) GetDevice(ctx context.Context, req *devicev1.GetDeviceRequest) (*devicev1.GetDeviceResponse, error) {
	if p := auth.PrincipalFrom(ctx); p == nil || p.ID != "activation" {
		return nil, status.Error(codes.PermissionDenied, "expected the activation service")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	active, ok := f.devices[req.GetDeviceId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "device not found")
	}
	return &devicev1.GetDeviceResponse{Device: &devicev1.Device{Uuid: req.GetDeviceId(), Active: active, LocationId: "L1"}}, nil
}

// issued is one IssueToken call the fake token service answered.
type issued struct {
	Kind    authv1.PrincipalKind
	Subject string
}

// fakeTokens is the token service peer: it signs HS512 tokens with the
// test key, so the tokens it issues are accepted by the activation server.
type fakeTokens struct {
	tokenv1.UnimplementedTokenServiceServer
	mu     sync.Mutex
	issued []issued
}

func (f *fakeTokens) IssueToken(ctx context.Context, req *tokenv1.IssueTokenRequest) (*tokenv1.IssueTokenResponse, error) {
	if p := auth.PrincipalFrom(ctx); p == nil || p.ID != "activation" {
		return nil, status.Error(codes.PermissionDenied, "expected the activation service")
	}
	claim := map[authv1.PrincipalKind]string{
		authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT: auth.PatientIDClaim,
		authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE:  auth.DeviceIDClaim,
	}[req.GetKind()]
	if claim == "" {
		return nil, status.Error(codes.InvalidArgument, "unexpected kind")
	}
	f.mu.Lock()
	f.issued = append(f.issued, issued{req.GetKind(), req.GetSubjectId()})
	f.mu.Unlock()
	tok, err := legacy.Token(jwt.MapClaims{
		"jti":      "test",
		"sub":      req.GetSubjectId(),
		"scope":    "read:gdm_patient_abbreviated",
		"metadata": map[string]any{claim: req.GetSubjectId()},
	})
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &tokenv1.IssueTokenResponse{Jwt: tok}, nil
}

func (f *fakeTokens) calls() []issued {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]issued(nil), f.issued...)
}

// signToken signs an HS512 token with iss = aud = testHSIssuer and a
// lifetime of an hour, over the given claims.
func signToken(t testing.TB, key []byte, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"jti": "test"}
	maps.Copy(c, claims)
	return servicetest.HSIssuer{Key: key, Issuer: testHSIssuer}.Sign(t, c)
}

// startPeer serves a fake peer service behind a guard that accepts the
// internal service tokens, as the real peers do.
func startPeer(t *testing.T, sd *grpc.ServiceDesc, impl any, rules auth.Rules) string {
	t.Helper()
	guard := auth.NewGuard(auth.NewVerifier(auth.VerifierOptions{InternalKey: testInternalKey}), rules, false)
	return servicetest.ServePeer(t, func(s *grpc.Server) { s.RegisterService(sd, impl) }, grpc.UnaryInterceptor(guard.Unary()))
}

// options vary the environment under test.
type options struct {
	production    bool
	allowDropData bool
	cfg           func(*activation.Config)
	// peersDown points the clients at addresses where nothing listens.
	peersDown bool
	// revoker, when set, is the service's activation.Revoker.
	revoker activation.Revoker
}

// env is a running activation server with its peers and its database.
type env struct {
	t       *testing.T
	db      storage.DB
	client  activationv1.ActivationServiceClient
	devices *fakeDevices
	tokens  *fakeTokens
	logs    *servicetest.LogBuffer
	clock   *servicetest.Clock
	cfg     activation.Config
	hasher  *secret.Hasher
}

func newEnv(t *testing.T, db storage.DB, o options) *env {
	t.Helper()
	e := &env{
		t:       t,
		db:      db,
		devices: &fakeDevices{devices: map[string]bool{}},
		tokens:  &fakeTokens{},
		logs:    &servicetest.LogBuffer{},
		clock:   servicetest.NewClock(apitime.Now()),
	}
	tokenRules, err := auth.RulesOf(tokenv1.File_dhos_token_v1_token_proto.Services().Get(0))
	if err != nil {
		t.Fatal(err)
	}
	deviceRules, err := auth.RulesOf(devicev1.File_dhos_device_v1_device_proto.Services().Get(0))
	if err != nil {
		t.Fatal(err)
	}
	tokenAddr := startPeer(t, &tokenv1.TokenService_ServiceDesc, e.tokens, tokenRules)
	deviceAddr := startPeer(t, &devicev1.DeviceService_ServiceDesc, e.devices, deviceRules)
	if o.peersDown {
		tokenAddr, deviceAddr = servicetest.DeadAddr(t), servicetest.DeadAddr(t)
	}

	creds := auth.NewInternalCredentials(testInternalKey, "activation", "internal:issue_token", "read:send_device")
	tokenConn, err := service.Dial(tokenAddr, creds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tokenConn.Close() })
	deviceConn, err := service.Dial(deviceAddr, creds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deviceConn.Close() })

	e.hasher, err = secret.NewHasher(testHashKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := activation.DefaultConfig()
	cfg.Production = o.production
	cfg.AllowDropData = o.allowDropData
	// The brute-force limits are off unless a test sets them
	// (ratelimit_test.go), so other tests can fail as often as they like.
	cfg.Limits = activation.Limits{}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	e.cfg = cfg
	svc, err := activation.NewService(cfg, activation.Deps{
		Store:   activationdb.New(db),
		Hasher:  e.hasher,
		Devices: activationgrpc.DeviceClient{Client: devicev1.NewDeviceServiceClient(deviceConn)},
		Tokens:  activationgrpc.TokenClient{Client: tokenv1.NewTokenServiceClient(tokenConn)},
		Revoker: o.revoker,
		Limiter: ratelimit.New(db).WithClock(e.clock.Now),
		Now:     e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := activationgrpc.Rules()
	if err != nil {
		t.Fatal(err)
	}
	verifier := auth.NewVerifier(auth.VerifierOptions{HSKey: legacy.Key, HSIssuer: legacy.Issuer, InternalKey: testInternalKey})

	conn := servicetest.Dial(t, servicetest.Serve(t, service.ServerOptions{
		Name:     "activation",
		Logger:   e.logs.Logger(),
		Guard:    auth.NewGuard(verifier, rules, o.production),
		Services: []string{activationgrpc.ServiceName, auditgrpc.ServiceName},
		Register: func(s *grpc.Server) {
			activationgrpc.Register(s, svc)
			auditgrpc.New(db).Register(s)
		},
		Ready:           svc.Ping,
		ShutdownTimeout: 2 * time.Second,
	}))
	e.client = activationv1.NewActivationServiceClient(conn)
	return e
}

// forEachBackend runs fn with a fresh server on each storage backend.
func forEachBackend(t *testing.T, o options, fn func(t *testing.T, e *env)) {
	storagetest.Each(t, activationdb.Migrations(), func(t *testing.T, db storage.DB) {
		fn(t, newEnv(t, db, o))
	})
}

// Contexts carrying credentials.

var bearer = servicetest.Bearer

// clinician returns a context with a clinician token holding scopes.
func clinician(t testing.TB, scopes ...string) context.Context {
	return bearer(signToken(t, testHSKey, jwt.MapClaims{
		"sub":      "clinician-1",
		"scope":    strings.Join(scopes, " "),
		"metadata": map[string]any{auth.ClinicianIDClaim: "clinician-1"},
	}))
}

func systemCtx(t testing.TB) context.Context {
	return bearer(signToken(t, testHSKey, jwt.MapClaims{
		"sub":      "system:tester",
		"scope":    "",
		"metadata": map[string]any{auth.SystemIDClaim: "tester"},
	}))
}

func patientCtx(t testing.TB, patientID string) context.Context {
	return bearer(signToken(t, testHSKey, jwt.MapClaims{
		"sub":      patientID,
		"scope":    "read:gdm_patient_abbreviated",
		"metadata": map[string]any{auth.PatientIDClaim: patientID},
	}))
}

func withAuthCode(ctx context.Context, code string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-authorisation-code", code)
}

func (e *env) writer() context.Context { return clinician(e.t, "write:gdm_activation") }
func (e *env) reader() context.Context { return clinician(e.t, "read:gdm_activation") }
func (e *env) deviceAdmin() context.Context {
	return clinician(e.t, "write:send_device")
}

// wantCode fails the test unless err has the gRPC code want.
func wantCode(t testing.TB, err error, want codes.Code) {
	t.Helper()
	servicetest.WantCode(t, err, want, "")
}

// RPC shorthands.

func (e *env) createPatient(patientID string) *activationv1.CreatePatientActivationResponse {
	e.t.Helper()
	resp, err := e.client.CreatePatientActivation(e.writer(), &activationv1.CreatePatientActivationRequest{PatientId: patientID})
	if err != nil {
		e.t.Fatalf("CreatePatientActivation(%q): %v", patientID, err)
	}
	return resp
}

func (e *env) validatePatient(code, otp string) (*activationv1.ValidateActivationResponse, error) {
	return e.client.ValidateActivation(context.Background(), &activationv1.ValidateActivationRequest{
		ActivationCode: code,
		Body:           &activationv1.ValidateActivationBody{Otp: otp},
	})
}

func (e *env) validateDevice(code string) (*activationv1.ValidateActivationResponse, error) {
	return e.client.ValidateActivation(context.Background(), &activationv1.ValidateActivationRequest{
		ActivationCode: code,
		Type:           "send_entry",
	})
}

func (e *env) patientJwt(patientID, code string) (*activationv1.GetPatientJwtResponse, error) {
	return e.client.GetPatientJwt(withAuthCode(context.Background(), code), &activationv1.GetPatientJwtRequest{PatientId: patientID})
}

func (e *env) deviceJwt(deviceID, code string) (*activationv1.GetDeviceJwtResponse, error) {
	return e.client.GetDeviceJwt(withAuthCode(context.Background(), code), &activationv1.GetDeviceJwtRequest{DeviceId: deviceID})
}

func (e *env) createDevice(deviceID string) *activationv1.CreateDeviceActivationResponse {
	e.t.Helper()
	resp, err := e.client.CreateDeviceActivation(e.deviceAdmin(), &activationv1.CreateDeviceActivationRequest{DeviceId: deviceID})
	if err != nil {
		e.t.Fatalf("CreateDeviceActivation(%q): %v", deviceID, err)
	}
	return resp
}

// attempts reads the failed-attempt count of the activation with code.
func (e *env) attempts(code string) int {
	e.t.Helper()
	var n int
	h := e.hasher.Hash("activation-code", strings.ToUpper(code))
	if err := e.db.QueryRow(context.Background(), "SELECT attempts FROM patient_activation WHERE code_hash = $1", h).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// parseClaims decodes a token's claims without verifying it.
func parseClaims(t testing.TB, tok string) map[string]any {
	t.Helper()
	c, err := auth.ParseUnverified(tok)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// auditEvents returns the contract's device auth events recorded so far
// ("SEND entry ...", oldest first), read from the service's outbox.
func (e *env) auditEvents() []auditRecord {
	page, err := audit.List(context.Background(), e.db, audit.Query{PageSize: audit.MaxPageSize})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []auditRecord
	for _, ev := range page.Events {
		if strings.HasPrefix(ev.Type, "SEND entry") {
			out = append(out, auditRecord{EventType: ev.Type, EventData: ev.Data, Actor: ev.Actor, Subject: ev.Subject, Outcome: string(ev.Outcome)})
		}
	}
	return out
}

// activationConfig is the domain configuration options can adjust.
type activationConfig = activation.Config
