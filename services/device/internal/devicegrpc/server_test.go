package devicegrpc_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	auditv1 "github.com/dhosauth/dhosauth/gen/go/dhos/audit/v1"
	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/audit/auditgrpc"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/pkg/service/servicetest"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/device/internal/device"
	"github.com/dhosauth/dhosauth/services/device/internal/devicedb"
	"github.com/dhosauth/dhosauth/services/device/internal/devicegrpc"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	testHSKey    = "test-only-hs512-key-for-the-device-service-tests-0123456789"
	testHSIssuer = "https://issuer.test/"
)

// legacy mints the callers' tokens; as(tok) calls with any other token.
var legacy = servicetest.HSIssuer{Key: []byte(testHSKey), Issuer: testHSIssuer}

// auditEvents lists the service's audit events through its AuditService,
// as {event_type, event_data, actor, subject, outcome, reason}.
func (e *testEnv) auditEvents(t *testing.T) []map[string]any {
	t.Helper()
	events, _ := servicetest.AuditEvents(t, legacy.Caller(t, "read:audit", map[string]any{"system_id": "auditor"}), e.audit, "")
	var out []map[string]any
	for _, ev := range events {
		out = append(out, map[string]any{
			"event_type": ev.GetEventType(), "event_data": ev.GetEventData().AsMap(), "actor": ev.GetActor(),
			"subject": ev.GetSubject(), "outcome": ev.GetOutcome(), "reason": ev.GetReason(),
		})
	}
	return out
}

type testEnv struct {
	client devicev1.DeviceServiceClient
	audit  auditv1.AuditServiceClient
	logs   *servicetest.LogBuffer
}

type envOptions struct {
	allowDrop  bool
	production bool
}

// start serves the device service on 127.0.0.1:0 over db, wired as main
// wires it, and returns a client.
func start(t *testing.T, db storage.DB, o envOptions) *testEnv {
	t.Helper()
	logs := &servicetest.LogBuffer{}
	rules, err := devicegrpc.Rules()
	if err != nil {
		t.Fatalf("rules: %v", err)
	}
	verifier := auth.NewVerifier(auth.VerifierOptions{HSKey: legacy.Key, HSIssuer: legacy.Issuer})
	svc := device.NewService(devicedb.New(db), device.Config{AllowDropData: o.allowDrop})
	cc := servicetest.Dial(t, servicetest.Serve(t, service.ServerOptions{
		Name:     "device",
		Logger:   logs.Logger(),
		Guard:    auth.NewGuard(verifier, rules, o.production),
		Services: []string{devicev1.DeviceService_ServiceDesc.ServiceName, auditgrpc.ServiceName},
		Register: func(g *grpc.Server) {
			devicegrpc.New(svc).Register(g)
			auditgrpc.New(db).Register(g)
		},
		Ready: db.Ping,
	}))
	return &testEnv{client: devicev1.NewDeviceServiceClient(cc), audit: auditv1.NewAuditServiceClient(cc), logs: logs}
}

var as = servicetest.Bearer

// Callers used by the tests.
func admin(t *testing.T) context.Context {
	return legacy.Caller(t, "read:send_device write:send_device", map[string]any{"clinician_id": "admin-1"})
}

func reader(t *testing.T) context.Context {
	return legacy.Caller(t, "read:send_device", map[string]any{"clinician_id": "reader-1"})
}

func system(t *testing.T) context.Context {
	return legacy.Caller(t, "", map[string]any{"system_id": "dhos-robot"})
}

var wantCode = servicetest.WantCode

func mustCreate(t *testing.T, e *testEnv, nd *devicev1.NewDevice) *devicev1.Device {
	t.Helper()
	resp, err := e.client.CreateDevice(admin(t), &devicev1.CreateDeviceRequest{Device: nd})
	if err != nil {
		t.Fatalf("CreateDevice: %v", err)
	}
	return resp.GetDevice()
}

func uuids(ds []*devicev1.Device) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.GetUuid())
	}
	return out
}

// TestDeviceService runs every rule through a real server on each backend.
func TestDeviceService(t *testing.T) {
	storagetest.Each(t, devicedb.Migrations(), func(t *testing.T, db storage.DB) {
		e := start(t, db, envOptions{})
		reset := func(t *testing.T) {
			if err := devicedb.New(db).DropAll(context.Background(), audit.New(context.Background(), "device", audit.TypeDataDropped, "", nil)); err != nil {
				t.Fatalf("DropAll: %v", err)
			}
		}
		for _, tc := range []struct {
			name string
			fn   func(t *testing.T, e *testEnv)
		}{
			{"Auth", testAuth},
			{"Create", testCreate},
			{"CreateValidation", testCreateValidation},
			{"CreateWithUUID", testCreateWithUUID},
			{"List", testList},
			{"ListValidation", testListValidation},
			{"Get", testGet},
			{"Update", testUpdate},
			{"UpdateValidation", testUpdateValidation},
		} {
			t.Run(tc.name, func(t *testing.T) {
				reset(t)
				tc.fn(t, e)
			})
		}
	})
}

func testAuth(t *testing.T, e *testEnv) {
	req := &devicev1.ListDevicesRequest{}
	_, err := e.client.ListDevices(context.Background(), req)
	wantCode(t, err, codes.Unauthenticated, "")
	_, err = e.client.ListDevices(as("not-a-jwt"), req)
	wantCode(t, err, codes.Unauthenticated, "")
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{
		"iss": testHSIssuer, "aud": testHSIssuer, "exp": time.Now().Add(time.Hour).Unix(),
		"scope": "read:send_device", "metadata": map[string]any{"clinician_id": "x"},
	}).SignedString([]byte("some-other-key"))
	_, err = e.client.ListDevices(as(forged), req)
	wantCode(t, err, codes.Unauthenticated, "")
	_, err = e.client.ListDevices(legacy.Caller(t, "read:gdm_activation", map[string]any{"clinician_id": "x"}), req)
	wantCode(t, err, codes.PermissionDenied, "read:send_device")
	_, err = e.client.CreateDevice(reader(t), &devicev1.CreateDeviceRequest{Device: &devicev1.NewDevice{LocationId: "l", Description: "d"}})
	wantCode(t, err, codes.PermissionDenied, "write:send_device")
	_, err = e.client.UpdateDevice(reader(t), &devicev1.UpdateDeviceRequest{DeviceId: "x", Patch: &devicev1.DevicePatch{Active: proto.Bool(false)}})
	wantCode(t, err, codes.PermissionDenied, "write:send_device")
	if _, err := e.client.ListDevices(reader(t), req); err != nil {
		t.Fatalf("ListDevices as reader: %v", err)
	}
}

func testCreate(t *testing.T, e *testEnv) {
	before := time.Now().Add(-time.Second)
	resp, err := e.client.CreateDevice(admin(t), &devicev1.CreateDeviceRequest{Device: &devicev1.NewDevice{
		LocationId: "ward-7", Description: "Tablet, bay 3",
		// Identifier fields are accepted and ignored.
		Created:    structpb.NewStringValue("2001-01-01T00:00:00.000Z"),
		CreatedBy:  structpb.NewStringValue("someone"),
		Modified:   structpb.NewNumberValue(7),
		ModifiedBy: structpb.NewNullValue(),
	}})
	if err != nil {
		t.Fatalf("CreateDevice: %v", err)
	}
	d := resp.GetDevice()
	if len(d.GetUuid()) != 36 || strings.Count(d.GetUuid(), "-") != 4 {
		t.Errorf("uuid %q is not a UUID", d.GetUuid())
	}
	if d.GetLocationId() != "ward-7" || d.GetDescription() != "Tablet, bay 3" || !d.GetActive() {
		t.Errorf("device %v", d)
	}
	if d.GetCreatedBy() != "admin-1" || d.GetModifiedBy() != "admin-1" {
		t.Errorf("created_by %q modified_by %q, want admin-1", d.GetCreatedBy(), d.GetModifiedBy())
	}
	created, err := time.Parse(apitime.Layout, d.GetCreated())
	if err != nil || created.Before(before) || created.After(time.Now().Add(time.Second)) {
		t.Errorf("created %q: %v", d.GetCreated(), err)
	}
	if d.GetModified() != d.GetCreated() {
		t.Errorf("modified %q, created %q", d.GetModified(), d.GetCreated())
	}
	got, err := e.client.GetDevice(reader(t), &devicev1.GetDeviceRequest{DeviceId: d.GetUuid()})
	if err != nil {
		t.Fatalf("GetDevice: %v", err)
	}
	if !proto.Equal(got.GetDevice(), d) {
		t.Errorf("GetDevice %v, want %v", got.GetDevice(), d)
	}
	// Explicit type; a second device gets another id.
	resp2, err := e.client.CreateDevice(admin(t), &devicev1.CreateDeviceRequest{Type: "send_entry", Device: &devicev1.NewDevice{LocationId: "ward-7", Description: "another"}})
	if err != nil {
		t.Fatalf("CreateDevice type=send_entry: %v", err)
	}
	if resp2.GetDevice().GetUuid() == d.GetUuid() {
		t.Error("two devices got the same uuid")
	}
	list, err := e.client.ListDevices(reader(t), &devicev1.ListDevicesRequest{Type: "send_entry"})
	if err != nil || len(list.GetDevices()) != 2 {
		t.Fatalf("stored type: %v %v", list, err)
	}
}

func testCreateValidation(t *testing.T, e *testEnv) {
	long := strings.Repeat("x", 201)
	cases := []struct {
		name string
		req  *devicev1.CreateDeviceRequest
		msg  string
	}{
		{"no body", &devicev1.CreateDeviceRequest{}, "body required"},
		{"no location_id", &devicev1.CreateDeviceRequest{Device: &devicev1.NewDevice{Description: "d"}}, "location_id"},
		{"blank location_id", &devicev1.CreateDeviceRequest{Device: &devicev1.NewDevice{LocationId: "  ", Description: "d"}}, "location_id"},
		{"no description", &devicev1.CreateDeviceRequest{Device: &devicev1.NewDevice{LocationId: "l"}}, "description"},
		{"empty body", &devicev1.CreateDeviceRequest{Device: &devicev1.NewDevice{}}, "location_id"},
		{"bad type", &devicev1.CreateDeviceRequest{Type: "gdm", Device: &devicev1.NewDevice{LocationId: "l", Description: "d"}}, "type"},
		{"long location_id", &devicev1.CreateDeviceRequest{Device: &devicev1.NewDevice{LocationId: long, Description: "d"}}, "location_id"},
		{"long description", &devicev1.CreateDeviceRequest{Device: &devicev1.NewDevice{LocationId: "l", Description: strings.Repeat("d", 1001)}}, "description"},
		{"control in description", &devicev1.CreateDeviceRequest{Device: &devicev1.NewDevice{LocationId: "l", Description: "a\x00b"}}, "description"},
		{"newline in location_id", &devicev1.CreateDeviceRequest{Device: &devicev1.NewDevice{LocationId: "l\n", Description: "d"}}, "location_id"},
		{"long uuid", &devicev1.CreateDeviceRequest{Device: &devicev1.NewDevice{Uuid: long, LocationId: "l", Description: "d"}}, "uuid"},
		{"control in uuid", &devicev1.CreateDeviceRequest{Device: &devicev1.NewDevice{Uuid: "a\tb", LocationId: "l", Description: "d"}}, "uuid"},
		{"blank uuid", &devicev1.CreateDeviceRequest{Device: &devicev1.NewDevice{Uuid: " ", LocationId: "l", Description: "d"}}, "uuid"},
		{"long type", &devicev1.CreateDeviceRequest{Type: long, Device: &devicev1.NewDevice{LocationId: "l", Description: "d"}}, "type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.CreateDevice(admin(t), tc.req)
			wantCode(t, err, codes.InvalidArgument, tc.msg)
		})
	}
	// The limits themselves are accepted.
	mustCreate(t, e, &devicev1.NewDevice{Uuid: strings.Repeat("u", 200), LocationId: strings.Repeat("l", 200), Description: strings.Repeat("d", 1000)})
	list, err := e.client.ListDevices(reader(t), &devicev1.ListDevicesRequest{})
	if err != nil || len(list.GetDevices()) != 1 {
		t.Fatalf("only the valid device is stored: %v %v", list, err)
	}
}

func testCreateWithUUID(t *testing.T, e *testEnv) {
	d := mustCreate(t, e, &devicev1.NewDevice{Uuid: "static_device_uuid_D1", LocationId: "ward-1", Description: "static"})
	if d.GetUuid() != "static_device_uuid_D1" {
		t.Fatalf("uuid %q", d.GetUuid())
	}
	_, err := e.client.CreateDevice(admin(t), &devicev1.CreateDeviceRequest{Device: &devicev1.NewDevice{Uuid: "static_device_uuid_D1", LocationId: "ward-2", Description: "again"}})
	wantCode(t, err, codes.AlreadyExists, "static_device_uuid_D1")
	got, err := e.client.GetDevice(reader(t), &devicev1.GetDeviceRequest{DeviceId: "static_device_uuid_D1"})
	if err != nil || got.GetDevice().GetLocationId() != "ward-1" {
		t.Fatalf("after 409: %v %v", got, err)
	}
}

func testList(t *testing.T, e *testEnv) {
	ctx := admin(t)
	mustCreate(t, e, &devicev1.NewDevice{Uuid: "a", LocationId: "ward-1", Description: "a"})
	b := mustCreate(t, e, &devicev1.NewDevice{Uuid: "b", LocationId: "ward-2", Description: "b"})
	mustCreate(t, e, &devicev1.NewDevice{Uuid: "c", LocationId: "ward-3", Description: "c"})
	mustCreate(t, e, &devicev1.NewDevice{Uuid: "d", LocationId: "ward-1", Description: "d"})
	if _, err := e.client.UpdateDevice(ctx, &devicev1.UpdateDeviceRequest{DeviceId: "d", Patch: &devicev1.DevicePatch{Active: proto.Bool(false)}}); err != nil {
		t.Fatalf("UpdateDevice: %v", err)
	}
	cases := []struct {
		name string
		req  *devicev1.ListDevicesRequest
		want []string
	}{
		{"default active", &devicev1.ListDevicesRequest{}, []string{"a", "b", "c"}},
		{"active true", &devicev1.ListDevicesRequest{Active: proto.String("true")}, []string{"a", "b", "c"}},
		{"active false", &devicev1.ListDevicesRequest{Active: proto.String("false")}, []string{"d"}},
		{"one location", &devicev1.ListDevicesRequest{LocationId: "ward-1"}, []string{"a"}},
		{"location list", &devicev1.ListDevicesRequest{LocationId: "ward-3,ward-1"}, []string{"a", "c"}},
		{"location list with spaces", &devicev1.ListDevicesRequest{LocationId: "ward-3, ward-2"}, []string{"b", "c"}},
		{"inactive at location", &devicev1.ListDevicesRequest{Active: proto.String("false"), LocationId: "ward-1"}, []string{"d"}},
		{"unknown location", &devicev1.ListDevicesRequest{LocationId: "ward-9"}, []string{}},
		{"type", &devicev1.ListDevicesRequest{Type: "send_entry"}, []string{"a", "b", "c"}},
		{"other type", &devicev1.ListDevicesRequest{Type: "gdm"}, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.client.ListDevices(reader(t), tc.req)
			if err != nil {
				t.Fatalf("ListDevices: %v", err)
			}
			if got := strings.Join(uuids(resp.GetDevices()), ","); got != strings.Join(tc.want, ",") {
				t.Fatalf("got %s, want %s", got, strings.Join(tc.want, ","))
			}
		})
	}
	resp, err := e.client.ListDevices(reader(t), &devicev1.ListDevicesRequest{LocationId: "ward-2"})
	if err != nil || len(resp.GetDevices()) != 1 || !proto.Equal(resp.GetDevices()[0], b) {
		t.Fatalf("listed device differs: %v %v", resp, err)
	}
}

func testListValidation(t *testing.T, e *testEnv) {
	cases := []struct {
		name string
		req  *devicev1.ListDevicesRequest
		msg  string
	}{
		{"active yes", &devicev1.ListDevicesRequest{Active: proto.String("yes")}, "active"},
		{"active empty", &devicev1.ListDevicesRequest{Active: proto.String("")}, "active"},
		{"active upper", &devicev1.ListDevicesRequest{Active: proto.String("TRUE ")}, "active"},
		{"empty list item", &devicev1.ListDevicesRequest{LocationId: "a,,b"}, "location_id"},
		{"trailing comma", &devicev1.ListDevicesRequest{LocationId: "a,"}, "location_id"},
		{"long location", &devicev1.ListDevicesRequest{LocationId: strings.Repeat("l", 201)}, "location_id"},
		{"control in location", &devicev1.ListDevicesRequest{LocationId: "a\x01"}, "location_id"},
		{"too many locations", &devicev1.ListDevicesRequest{LocationId: strings.Repeat("l,", 1000) + "l"}, "location_id"},
		{"long type", &devicev1.ListDevicesRequest{Type: strings.Repeat("t", 201)}, "type"},
		{"control in type", &devicev1.ListDevicesRequest{Type: "\x7f"}, "type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.ListDevices(reader(t), tc.req)
			wantCode(t, err, codes.InvalidArgument, tc.msg)
		})
	}
	// 1000 locations is the most accepted.
	if _, err := e.client.ListDevices(reader(t), &devicev1.ListDevicesRequest{LocationId: strings.Repeat("l,", 999) + "l"}); err != nil {
		t.Fatalf("1000 locations: %v", err)
	}
}

func testGet(t *testing.T, e *testEnv) {
	_, err := e.client.GetDevice(reader(t), &devicev1.GetDeviceRequest{DeviceId: "missing"})
	wantCode(t, err, codes.NotFound, "not found")
	_, err = e.client.GetDevice(reader(t), &devicev1.GetDeviceRequest{})
	wantCode(t, err, codes.InvalidArgument, "device_id")
	_, err = e.client.GetDevice(reader(t), &devicev1.GetDeviceRequest{DeviceId: strings.Repeat("x", 201)})
	wantCode(t, err, codes.InvalidArgument, "device_id")
	_, err = e.client.GetDevice(reader(t), &devicev1.GetDeviceRequest{DeviceId: "a\rb"})
	wantCode(t, err, codes.InvalidArgument, "device_id")
}

func testUpdate(t *testing.T, e *testEnv) {
	d := mustCreate(t, e, &devicev1.NewDevice{LocationId: "ward-1", Description: "first"})
	time.Sleep(5 * time.Millisecond)
	editor := legacy.Caller(t, "write:send_device", map[string]any{"system_id": "ward-admin"})
	resp, err := e.client.UpdateDevice(editor, &devicev1.UpdateDeviceRequest{DeviceId: d.GetUuid(), Patch: &devicev1.DevicePatch{
		LocationId: proto.String("ward-2"), Active: proto.Bool(false),
		Uuid: structpb.NewStringValue("ignored"), Created: structpb.NewStringValue("ignored"),
	}})
	if err != nil {
		t.Fatalf("UpdateDevice: %v", err)
	}
	u := resp.GetDevice()
	if u.GetUuid() != d.GetUuid() || u.GetLocationId() != "ward-2" || u.GetActive() || u.GetDescription() != "first" {
		t.Errorf("updated device %v", u)
	}
	if u.GetCreated() != d.GetCreated() || u.GetCreatedBy() != "admin-1" {
		t.Errorf("created changed: %v", u)
	}
	if u.GetModifiedBy() != "ward-admin" || u.GetModified() <= d.GetModified() {
		t.Errorf("modified %q by %q, created %q", u.GetModified(), u.GetModifiedBy(), d.GetModified())
	}
	got, err := e.client.GetDevice(reader(t), &devicev1.GetDeviceRequest{DeviceId: d.GetUuid()})
	if err != nil || !proto.Equal(got.GetDevice(), u) {
		t.Fatalf("GetDevice after update: %v %v", got, err)
	}

	resp, err = e.client.UpdateDevice(editor, &devicev1.UpdateDeviceRequest{DeviceId: d.GetUuid(), Patch: &devicev1.DevicePatch{Description: proto.String("second"), Active: proto.Bool(true)}})
	if err != nil || resp.GetDevice().GetDescription() != "second" || !resp.GetDevice().GetActive() || resp.GetDevice().GetLocationId() != "ward-2" {
		t.Fatalf("second update: %v %v", resp, err)
	}

	events := e.auditEvents(t)
	var updates []map[string]any
	for _, ev := range events {
		data, _ := ev["event_data"].(map[string]any)
		if ev["event_type"] == device.EventDeviceUpdate && data["device_id"] == d.GetUuid() {
			updates = append(updates, ev)
		}
	}
	if len(updates) != 2 {
		t.Fatalf("audit events %v, want 2 device updates", events)
	}
	data, _ := updates[0]["event_data"].(map[string]any)
	if data["device_id"] != d.GetUuid() || data["modified_by"] != "ward-admin" || data["location_id"] != "ward-2" || data["active"] != false {
		t.Errorf("event_data %v", data)
	}
	if f, _ := json.Marshal(data["changed_fields"]); string(f) != `["location_id","active"]` {
		t.Errorf("changed_fields %s", f)
	}
	if updates[0]["actor"] != "ward-admin" || updates[0]["subject"] != d.GetUuid() || updates[0]["outcome"] != "success" {
		t.Errorf("event %v", updates[0])
	}
	data2, _ := updates[1]["event_data"].(map[string]any)
	if f, _ := json.Marshal(data2["changed_fields"]); string(f) != `["description","active"]` {
		t.Errorf("changed_fields %s", f)
	}
}

func testUpdateValidation(t *testing.T, e *testEnv) {
	d := mustCreate(t, e, &devicev1.NewDevice{LocationId: "ward-1", Description: "first"})
	before := len(e.auditEvents(t))
	cases := []struct {
		name string
		req  *devicev1.UpdateDeviceRequest
		code codes.Code
		msg  string
	}{
		{"no patch", &devicev1.UpdateDeviceRequest{DeviceId: d.GetUuid()}, codes.InvalidArgument, "body required"},
		{"empty patch", &devicev1.UpdateDeviceRequest{DeviceId: d.GetUuid(), Patch: &devicev1.DevicePatch{}}, codes.InvalidArgument, "location_id, description, active"},
		{"only identifier fields", &devicev1.UpdateDeviceRequest{DeviceId: d.GetUuid(), Patch: &devicev1.DevicePatch{Uuid: structpb.NewStringValue("x"), ModifiedBy: structpb.NewStringValue("y")}}, codes.InvalidArgument, "location_id"},
		{"empty location", &devicev1.UpdateDeviceRequest{DeviceId: d.GetUuid(), Patch: &devicev1.DevicePatch{LocationId: proto.String("")}}, codes.InvalidArgument, "location_id"},
		{"empty description", &devicev1.UpdateDeviceRequest{DeviceId: d.GetUuid(), Patch: &devicev1.DevicePatch{Description: proto.String("")}}, codes.InvalidArgument, "description"},
		{"long description", &devicev1.UpdateDeviceRequest{DeviceId: d.GetUuid(), Patch: &devicev1.DevicePatch{Description: proto.String(strings.Repeat("d", 1001))}}, codes.InvalidArgument, "description"},
		{"control in location", &devicev1.UpdateDeviceRequest{DeviceId: d.GetUuid(), Patch: &devicev1.DevicePatch{LocationId: proto.String("x\x1b")}}, codes.InvalidArgument, "location_id"},
		{"bad device id", &devicev1.UpdateDeviceRequest{DeviceId: strings.Repeat("x", 201), Patch: &devicev1.DevicePatch{Active: proto.Bool(true)}}, codes.InvalidArgument, "device_id"},
		{"unknown device", &devicev1.UpdateDeviceRequest{DeviceId: "missing", Patch: &devicev1.DevicePatch{Active: proto.Bool(true)}}, codes.NotFound, "not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.UpdateDevice(admin(t), tc.req)
			wantCode(t, err, tc.code, tc.msg)
		})
	}
	if after := len(e.auditEvents(t)); after != before {
		t.Errorf("failed patches were audited: %d events, want %d", after, before)
	}
	got, err := e.client.GetDevice(reader(t), &devicev1.GetDeviceRequest{DeviceId: d.GetUuid()})
	if err != nil || !proto.Equal(got.GetDevice(), d) {
		t.Fatalf("device changed by failed patches: %v %v", got, err)
	}
}

// TestDropData checks the drop-data switch, the principal rule and the
// production lock.
func TestDropData(t *testing.T) {
	storagetest.Each(t, devicedb.Migrations(), func(t *testing.T, db storage.DB) {
		t.Run("not allowed", func(t *testing.T) {
			e := start(t, db, envOptions{})
			_, err := e.client.DropData(system(t), &devicev1.DropDataRequest{})
			wantCode(t, err, codes.PermissionDenied, "drop data is not allowed")
		})
		t.Run("allowed", func(t *testing.T) {
			e := start(t, db, envOptions{allowDrop: true})
			mustCreate(t, e, &devicev1.NewDevice{LocationId: "l", Description: "d"})
			_, err := e.client.DropData(admin(t), &devicev1.DropDataRequest{})
			wantCode(t, err, codes.PermissionDenied, "")
			if _, err := e.client.DropData(system(t), &devicev1.DropDataRequest{}); err != nil {
				t.Fatalf("DropData: %v", err)
			}
			for _, active := range []string{"true", "false"} {
				resp, err := e.client.ListDevices(reader(t), &devicev1.ListDevicesRequest{Active: proto.String(active)})
				if err != nil || len(resp.GetDevices()) != 0 {
					t.Fatalf("after DropData: %v %v", resp, err)
				}
			}
		})
		t.Run("production", func(t *testing.T) {
			e := start(t, db, envOptions{allowDrop: true, production: true})
			_, err := e.client.DropData(system(t), &devicev1.DropDataRequest{})
			wantCode(t, err, codes.NotFound, "")
		})
	})
}
