package devicegrpc

import (
	"context"

	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/audit/auditgrpc"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/services/device/internal/device"
	"google.golang.org/grpc"
)

// Rules returns the access rules declared in device.proto and in
// audit.proto: the process also serves the audit query API over its
// outbox.
func Rules() (auth.Rules, error) {
	return auth.RulesOf(devicev1.File_dhos_device_v1_device_proto.Services().Get(0), auditgrpc.Descriptor())
}

// Server implements devicev1.DeviceServiceServer over the domain.
type Server struct {
	devicev1.UnimplementedDeviceServiceServer
	svc *device.Service
}

// New returns a Server.
func New(svc *device.Service) *Server { return &Server{svc: svc} }

// Register adds the server to g.
func (s *Server) Register(g *grpc.Server) { devicev1.RegisterDeviceServiceServer(g, s) }

// CreateDevice implements devicev1.DeviceServiceServer.
func (s *Server) CreateDevice(ctx context.Context, req *devicev1.CreateDeviceRequest) (*devicev1.CreateDeviceResponse, error) {
	var in *device.NewDevice
	if b := req.GetDevice(); b != nil {
		in = &device.NewDevice{ID: b.GetUuid(), LocationID: b.GetLocationId(), Description: b.GetDescription()}
	}
	d, err := s.svc.Create(ctx, in, req.GetType())
	if err != nil {
		return nil, err
	}
	return &devicev1.CreateDeviceResponse{Device: toProto(d)}, nil
}

// ListDevices implements devicev1.DeviceServiceServer.
func (s *Server) ListDevices(ctx context.Context, req *devicev1.ListDevicesRequest) (*devicev1.ListDevicesResponse, error) {
	ds, err := s.svc.List(ctx, device.ListQuery{Active: req.Active, LocationID: req.GetLocationId(), Type: req.GetType()})
	if err != nil {
		return nil, err
	}
	out := make([]*devicev1.Device, len(ds))
	for i, d := range ds {
		out[i] = toProto(d)
	}
	return &devicev1.ListDevicesResponse{Devices: out}, nil
}

// GetDevice implements devicev1.DeviceServiceServer.
func (s *Server) GetDevice(ctx context.Context, req *devicev1.GetDeviceRequest) (*devicev1.GetDeviceResponse, error) {
	d, err := s.svc.Get(ctx, req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	return &devicev1.GetDeviceResponse{Device: toProto(d)}, nil
}

// UpdateDevice implements devicev1.DeviceServiceServer.
func (s *Server) UpdateDevice(ctx context.Context, req *devicev1.UpdateDeviceRequest) (*devicev1.UpdateDeviceResponse, error) {
	var c *device.Changes
	if p := req.GetPatch(); p != nil {
		c = &device.Changes{LocationID: p.LocationId, Description: p.Description, Active: p.Active}
	}
	d, err := s.svc.Update(ctx, req.GetDeviceId(), c)
	if err != nil {
		return nil, err
	}
	return &devicev1.UpdateDeviceResponse{Device: toProto(d)}, nil
}

// DropData implements devicev1.DeviceServiceServer.
func (s *Server) DropData(ctx context.Context, _ *devicev1.DropDataRequest) (*devicev1.DropDataResponse, error) {
	if err := s.svc.DropData(ctx); err != nil {
		return nil, err
	}
	return &devicev1.DropDataResponse{}, nil
}

func toProto(d device.Device) *devicev1.Device {
	return &devicev1.Device{
		Uuid:        d.ID,
		Created:     apitime.Format(d.Created),
		CreatedBy:   d.CreatedBy,
		Modified:    apitime.Format(d.Modified),
		ModifiedBy:  d.ModifiedBy,
		LocationId:  d.LocationID,
		Description: d.Description,
		Active:      d.Active,
	}
}
