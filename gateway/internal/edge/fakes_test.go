package edge

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	sessionv1 "github.com/dhosauth/dhosauth/gen/go/dhos/session/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/service"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// The fakes are peers with canned answers, not a database. An id of the
// form "fail-<CODE>" (e.g. fail-NOT_FOUND) makes the call fail with that
// gRPC code; an authorization of "Bearer refuse-<CODE>" makes DropData and
// ResetTestData fail with it.

var codeByName = func() map[string]codes.Code {
	m := map[string]codes.Code{}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		m[strings.ToUpper(toSnake(c.String()))] = c
	}
	return m
}()

func toSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// internalDetail must never reach a client.
const internalDetail = "pq: password authentication failed for user dhos at 10.0.0.7"

func failFor(id string) error {
	name, ok := strings.CutPrefix(id, "fail-")
	if !ok {
		return nil
	}
	c, ok := codeByName[name]
	if !ok {
		panic("unknown code " + name)
	}
	msg := "canned " + strings.ToLower(name) + " for " + id
	if c == codes.Internal || c == codes.Unknown || c == codes.DataLoss || c == codes.Unavailable {
		msg = internalDetail
	}
	return status.Error(c, msg)
}

func refusal(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if name, ok := strings.CutPrefix(v, "Bearer refuse-"); ok {
			return status.Error(codeByName[name], "refused by the fake")
		}
	}
	return nil
}

// call is one RPC a fake received.
type call struct {
	Method string
	MD     metadata.MD
	Req    proto.Message
}

// recorder keeps every call the fakes receive.
type recorder struct {
	mu    sync.Mutex
	calls []call
}

func (r *recorder) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	r.mu.Lock()
	r.calls = append(r.calls, call{Method: info.FullMethod, MD: md.Copy(), Req: proto.Clone(req.(proto.Message))})
	r.mu.Unlock()
	return h(ctx, req)
}

func (r *recorder) all() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

func (r *recorder) methods() []string {
	var out []string
	for _, c := range r.all() {
		out = append(out, c.Method)
	}
	return out
}

// last returns the newest call of method (full name suffix), or fails.
func (r *recorder) last(t *testing.T, method string) call {
	t.Helper()
	calls := r.all()
	for i := len(calls) - 1; i >= 0; i-- {
		if strings.HasSuffix(calls[i].Method, "/"+method) {
			return calls[i]
		}
	}
	t.Fatalf("no call of %s; calls: %v", method, r.methods())
	return call{}
}

type fakeActivation struct {
	activationv1.UnimplementedActivationServiceServer
}

func (fakeActivation) CreatePatientActivation(_ context.Context, req *activationv1.CreatePatientActivationRequest) (*activationv1.CreatePatientActivationResponse, error) {
	if err := failFor(req.GetPatientId()); err != nil {
		return nil, err
	}
	return &activationv1.CreatePatientActivationResponse{Otp: "abcd", ActivationCode: "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123", ExpiresAt: "2026-03-26T23:59:59.000Z"}, nil
}

func (fakeActivation) ListPatientActivations(_ context.Context, req *activationv1.ListPatientActivationsRequest) (*activationv1.ListPatientActivationsResponse, error) {
	if err := failFor(req.GetPatientId()); err != nil {
		return nil, err
	}
	if req.GetPatientId() == "empty" {
		return &activationv1.ListPatientActivationsResponse{}, nil
	}
	return &activationv1.ListPatientActivationsResponse{Activations: []*activationv1.PatientActivation{
		{ActivationCompleted: "2026-03-20T10:00:00.000Z", Uuid: "a2", Created: "2026-03-20T09:00:00.000Z", CreatedBy: "system", Modified: "2026-03-20T10:00:00.000Z", ModifiedBy: "p1"},
		{ActivationCompleted: "2026-03-19T10:00:00.000Z", Uuid: "a1", Created: "2026-03-19T09:00:00.000Z", CreatedBy: "system", Modified: "2026-03-19T10:00:00.000Z", ModifiedBy: "p1"},
	}}, nil
}

func (fakeActivation) GetPatientJwt(ctx context.Context, req *activationv1.GetPatientJwtRequest) (*activationv1.GetPatientJwtResponse, error) {
	if err := failFor(req.GetPatientId()); err != nil {
		return nil, err
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("x-authorisation-code")
	if len(vals) == 0 {
		return nil, status.Error(codes.InvalidArgument, "the x-authorisation-code header is required")
	}
	return &activationv1.GetPatientJwtResponse{Jwt: "jwt-for-" + req.GetPatientId() + "-" + vals[0]}, nil
}

func (fakeActivation) ValidateActivation(_ context.Context, req *activationv1.ValidateActivationRequest) (*activationv1.ValidateActivationResponse, error) {
	if err := failFor(req.GetActivationCode()); err != nil {
		return nil, err
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(req.GetActivationCode(), "limited-")); err == nil {
		return nil, apperr.ResourceExhausted(d, "too many failed attempts")
	}
	if req.GetType() == "send_entry" {
		return &activationv1.ValidateActivationResponse{AuthorisationCode: "AUTH", DeviceId: proto.String("d1")}, nil
	}
	if req.GetBody().GetOtp() == "" {
		return nil, status.Error(codes.InvalidArgument, "otp is required")
	}
	return &activationv1.ValidateActivationResponse{AuthorisationCode: "AUTH", PatientId: proto.String("p1")}, nil
}

func (fakeActivation) GetSecurityInfo(_ context.Context, req *activationv1.GetSecurityInfoRequest) (*activationv1.GetSecurityInfoResponse, error) {
	claims, _ := structpb.NewStruct(map[string]any{"scope": "read:gdm_activation", "metadata": map[string]any{"patient_id": req.GetPatientId()}})
	return &activationv1.GetSecurityInfoResponse{PatientIdInUrl: req.GetPatientId(), Jwt: claims}, nil
}

func (fakeActivation) SecurityTest(_ context.Context, req *activationv1.SecurityTestRequest) (*activationv1.SecurityTestResponse, error) {
	if err := failFor(req.GetPatientId()); err != nil {
		return nil, err
	}
	return &activationv1.SecurityTestResponse{}, nil
}

func (fakeActivation) CreateDeviceActivation(_ context.Context, req *activationv1.CreateDeviceActivationRequest) (*activationv1.CreateDeviceActivationResponse, error) {
	if err := failFor(req.GetDeviceId()); err != nil {
		return nil, err
	}
	return &activationv1.CreateDeviceActivationResponse{Code: "123456789", ExpiresAt: "2026-03-26T23:59:59.000Z"}, nil
}

func (fakeActivation) GetDeviceJwt(_ context.Context, req *activationv1.GetDeviceJwtRequest) (*activationv1.GetDeviceJwtResponse, error) {
	if err := failFor(req.GetDeviceId()); err != nil {
		return nil, err
	}
	return &activationv1.GetDeviceJwtResponse{Jwt: "jwt-for-" + req.GetDeviceId()}, nil
}

func (fakeActivation) DropData(ctx context.Context, _ *activationv1.DropDataRequest) (*activationv1.DropDataResponse, error) {
	return &activationv1.DropDataResponse{}, refusal(ctx)
}

func (fakeActivation) ResetTestData(ctx context.Context, _ *activationv1.ResetTestDataRequest) (*activationv1.ResetTestDataResponse, error) {
	return &activationv1.ResetTestDataResponse{}, refusal(ctx)
}

type fakeDevice struct {
	devicev1.UnimplementedDeviceServiceServer
}

func device(id string) *devicev1.Device {
	return &devicev1.Device{Uuid: id, Created: "2026-03-20T09:00:00.000Z", CreatedBy: "system", Modified: "2026-03-20T09:00:00.000Z", ModifiedBy: "system", LocationId: "L1", Description: "ward tablet", Active: false}
}

func (fakeDevice) CreateDevice(_ context.Context, req *devicev1.CreateDeviceRequest) (*devicev1.CreateDeviceResponse, error) {
	d := device("d-new")
	d.LocationId, d.Description, d.Active = req.GetDevice().GetLocationId(), req.GetDevice().GetDescription(), true
	return &devicev1.CreateDeviceResponse{Device: d}, nil
}

func (fakeDevice) ListDevices(_ context.Context, req *devicev1.ListDevicesRequest) (*devicev1.ListDevicesResponse, error) {
	if err := failFor(req.GetLocationId()); err != nil {
		return nil, err
	}
	if req.GetLocationId() == "none" {
		return &devicev1.ListDevicesResponse{}, nil
	}
	return &devicev1.ListDevicesResponse{Devices: []*devicev1.Device{device("d1"), device("d2")}}, nil
}

func (fakeDevice) GetDevice(_ context.Context, req *devicev1.GetDeviceRequest) (*devicev1.GetDeviceResponse, error) {
	if err := failFor(req.GetDeviceId()); err != nil {
		return nil, err
	}
	return &devicev1.GetDeviceResponse{Device: device(req.GetDeviceId())}, nil
}

func (fakeDevice) UpdateDevice(_ context.Context, req *devicev1.UpdateDeviceRequest) (*devicev1.UpdateDeviceResponse, error) {
	if err := failFor(req.GetDeviceId()); err != nil {
		return nil, err
	}
	d := device(req.GetDeviceId())
	if req.GetPatch().Active != nil {
		d.Active = req.GetPatch().GetActive()
	}
	return &devicev1.UpdateDeviceResponse{Device: d}, nil
}

func (fakeDevice) DropData(ctx context.Context, _ *devicev1.DropDataRequest) (*devicev1.DropDataResponse, error) {
	return &devicev1.DropDataResponse{}, refusal(ctx)
}

type fakeToken struct {
	tokenv1.UnimplementedTokenServiceServer
}

func (fakeToken) DropData(ctx context.Context, _ *tokenv1.DropDataRequest) (*tokenv1.DropDataResponse, error) {
	return &tokenv1.DropDataResponse{}, refusal(ctx)
}

type fakeSession struct {
	sessionv1.UnimplementedSessionServiceServer
}

func (fakeSession) CreateClinician(_ context.Context, req *sessionv1.CreateClinicianRequest) (*sessionv1.CreateClinicianResponse, error) {
	if err := failFor(req.GetClinicianId()); err != nil {
		return nil, err
	}
	return &sessionv1.CreateClinicianResponse{}, nil
}

func (fakeSession) UpdateClinician(_ context.Context, req *sessionv1.UpdateClinicianRequest) (*sessionv1.UpdateClinicianResponse, error) {
	if err := failFor(req.GetClinicianId()); err != nil {
		return nil, err
	}
	return &sessionv1.UpdateClinicianResponse{}, nil
}

func (fakeSession) GetClinicianJwt(_ context.Context, req *sessionv1.GetClinicianJwtRequest) (*sessionv1.GetClinicianJwtResponse, error) {
	if err := failFor(req.GetSendEntryIdentifier()); err != nil {
		return nil, err
	}
	return &sessionv1.GetClinicianJwtResponse{Jwt: "clinician-jwt"}, nil
}

func (fakeSession) ListSessions(_ context.Context, req *sessionv1.ListSessionsRequest) (*sessionv1.ListSessionsResponse, error) {
	if err := failFor(req.GetClinicianId()); err != nil {
		return nil, err
	}
	return &sessionv1.ListSessionsResponse{Sessions: []*sessionv1.BrowserSession{{SessionId: "s1", ClinicianId: req.GetClinicianId(), Provider: "local"}}}, nil
}

func (fakeSession) EndSessions(_ context.Context, req *sessionv1.EndSessionsRequest) (*sessionv1.EndSessionsResponse, error) {
	if err := failFor(req.GetClinicianId()); err != nil {
		return nil, err
	}
	return &sessionv1.EndSessionsResponse{Ended: 1}, nil
}

func (fakeSession) SetLocalPassword(_ context.Context, req *sessionv1.SetLocalPasswordRequest) (*sessionv1.SetLocalPasswordResponse, error) {
	if err := failFor(req.GetClinicianId()); err != nil {
		return nil, err
	}
	return &sessionv1.SetLocalPasswordResponse{}, nil
}

func (fakeSession) DropData(ctx context.Context, _ *sessionv1.DropDataRequest) (*sessionv1.DropDataResponse, error) {
	return &sessionv1.DropDataResponse{}, refusal(ctx)
}

// startFakes runs each fake service on its own 127.0.0.1:0 listener and
// returns their addresses.
func startFakes(t testing.TB, rec *recorder) service.Addresses {
	t.Helper()
	start := func(register func(*grpc.Server)) string {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer(grpc.UnaryInterceptor(rec.intercept))
		register(s)
		go func() { _ = s.Serve(lis) }()
		t.Cleanup(s.Stop)
		return lis.Addr().String()
	}
	return service.Addresses{
		Activation: start(func(s *grpc.Server) { activationv1.RegisterActivationServiceServer(s, fakeActivation{}) }),
		Device:     start(func(s *grpc.Server) { devicev1.RegisterDeviceServiceServer(s, fakeDevice{}) }),
		Token:      start(func(s *grpc.Server) { tokenv1.RegisterTokenServiceServer(s, fakeToken{}) }),
		Session:    start(func(s *grpc.Server) { sessionv1.RegisterSessionServiceServer(s, fakeSession{}) }),
	}
}
