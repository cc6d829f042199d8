package activationgrpc

import (
	"context"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit/auditgrpc"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/services/activation/internal/activation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

// AuthorisationCodeHeader is the metadata key (HTTP header at the edge)
// that carries an authorisation code.
const AuthorisationCodeHeader = "x-authorisation-code"

// Validation types of ValidateActivation.
const (
	typeGDM       = "gdm"
	typeSendEntry = "send_entry"
)

// ServiceName is the full gRPC name of the service (health checks).
var ServiceName = activationv1.ActivationService_ServiceDesc.ServiceName

// Rules returns the access rules declared on the service's RPCs.
func Rules() (auth.Rules, error) {
	return auth.RulesOf(activationv1.File_dhos_activation_v1_activation_proto.Services().Get(0), auditgrpc.Descriptor())
}

// Register registers a Server for svc on s.
func Register(s grpc.ServiceRegistrar, svc *activation.Service) {
	activationv1.RegisterActivationServiceServer(s, New(svc))
}

// Server implements activationv1.ActivationServiceServer.
type Server struct {
	activationv1.UnimplementedActivationServiceServer
	svc *activation.Service
}

// New returns a Server over svc.
func New(svc *activation.Service) *Server { return &Server{svc: svc} }

func actor(ctx context.Context) string { return auth.ActorName(ctx, activation.ServiceName) }

// withClient adds the caller's address (the edge's dhos-client-address
// metadata, or the peer) for the per-address limits.
func withClient(ctx context.Context) context.Context {
	return ratelimit.WithAddress(ctx, ratelimit.ClientAddress(ctx))
}

// authorisationCode returns the x-authorisation-code metadata value, or "".
func authorisationCode(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, AuthorisationCodeHeader); len(v) > 0 {
		return v[0]
	}
	return ""
}

// CreatePatientActivation implements the RPC.
func (s *Server) CreatePatientActivation(ctx context.Context, req *activationv1.CreatePatientActivationRequest) (*activationv1.CreatePatientActivationResponse, error) {
	a, err := s.svc.CreatePatientActivation(ctx, req.GetPatientId(), actor(ctx))
	if err != nil {
		return nil, err
	}
	return &activationv1.CreatePatientActivationResponse{
		Otp:            a.OTP,
		ActivationCode: a.ActivationCode,
		ExpiresAt:      apitime.Format(a.ExpiresAt),
	}, nil
}

// ListPatientActivations implements the RPC.
func (s *Server) ListPatientActivations(ctx context.Context, req *activationv1.ListPatientActivationsRequest) (*activationv1.ListPatientActivationsResponse, error) {
	list, err := s.svc.ListPatientActivations(ctx, req.GetPatientId())
	if err != nil {
		return nil, err
	}
	out := make([]*activationv1.PatientActivation, 0, len(list))
	for _, a := range list {
		out = append(out, &activationv1.PatientActivation{
			ActivationCompleted: apitime.FormatPtr(a.Completed),
			Uuid:                a.ID,
			Created:             apitime.Format(a.Created),
			CreatedBy:           a.CreatedBy,
			Modified:            apitime.Format(a.Modified),
			ModifiedBy:          a.ModifiedBy,
		})
	}
	return &activationv1.ListPatientActivationsResponse{Activations: out}, nil
}

// GetPatientJwt implements the RPC.
func (s *Server) GetPatientJwt(ctx context.Context, req *activationv1.GetPatientJwtRequest) (*activationv1.GetPatientJwtResponse, error) {
	ctx = withClient(ctx)
	jwt, err := s.svc.GetPatientJwt(ctx, req.GetPatientId(), authorisationCode(ctx))
	if err != nil {
		return nil, err
	}
	return &activationv1.GetPatientJwtResponse{Jwt: jwt}, nil
}

// ValidateActivation implements the RPC.
func (s *Server) ValidateActivation(ctx context.Context, req *activationv1.ValidateActivationRequest) (*activationv1.ValidateActivationResponse, error) {
	ctx = withClient(ctx)
	switch req.GetType() {
	case "", typeGDM:
		if req.GetBody() == nil {
			return nil, apperr.InvalidArgument("a JSON body with otp is required")
		}
		v, err := s.svc.ValidatePatientActivation(ctx, req.GetActivationCode(), req.GetBody().GetOtp())
		if err != nil {
			return nil, err
		}
		return &activationv1.ValidateActivationResponse{AuthorisationCode: v.AuthorisationCode, PatientId: &v.PatientID}, nil
	case typeSendEntry:
		v, err := s.svc.ValidateDeviceActivation(ctx, req.GetActivationCode())
		if err != nil {
			return nil, err
		}
		return &activationv1.ValidateActivationResponse{AuthorisationCode: v.AuthorisationCode, DeviceId: &v.DeviceID}, nil
	}
	return nil, apperr.InvalidArgument("type must be %s or %s", typeGDM, typeSendEntry)
}

// CreateDeviceActivation implements the RPC.
func (s *Server) CreateDeviceActivation(ctx context.Context, req *activationv1.CreateDeviceActivationRequest) (*activationv1.CreateDeviceActivationResponse, error) {
	a, err := s.svc.CreateDeviceActivation(ctx, req.GetDeviceId(), actor(ctx))
	if err != nil {
		return nil, err
	}
	return &activationv1.CreateDeviceActivationResponse{Code: a.Code, ExpiresAt: apitime.Format(a.ExpiresAt)}, nil
}

// GetDeviceJwt implements the RPC.
func (s *Server) GetDeviceJwt(ctx context.Context, req *activationv1.GetDeviceJwtRequest) (*activationv1.GetDeviceJwtResponse, error) {
	ctx = withClient(ctx)
	jwt, err := s.svc.GetDeviceJwt(ctx, req.GetDeviceId(), authorisationCode(ctx))
	if err != nil {
		return nil, err
	}
	return &activationv1.GetDeviceJwtResponse{Jwt: jwt}, nil
}

// GetSecurityInfo implements the RPC.
func (s *Server) GetSecurityInfo(ctx context.Context, req *activationv1.GetSecurityInfoRequest) (*activationv1.GetSecurityInfoResponse, error) {
	raw, err := auth.BearerToken(ctx)
	if err != nil {
		return nil, err
	}
	claims, err := s.svc.SecurityInfo(req.GetPatientId(), raw)
	if err != nil {
		return nil, err
	}
	st, err := structpb.NewStruct(claims)
	if err != nil {
		return nil, apperr.Unauthenticated("the token's claims are not valid JSON values")
	}
	return &activationv1.GetSecurityInfoResponse{PatientIdInUrl: req.GetPatientId(), Jwt: st}, nil
}

// SecurityTest implements the RPC.
func (s *Server) SecurityTest(ctx context.Context, req *activationv1.SecurityTestRequest) (*activationv1.SecurityTestResponse, error) {
	if err := s.svc.SecurityTest(req.GetPatientId(), auth.PrincipalFrom(ctx)); err != nil {
		return nil, err
	}
	return &activationv1.SecurityTestResponse{}, nil
}

// DropData implements the RPC.
func (s *Server) DropData(ctx context.Context, _ *activationv1.DropDataRequest) (*activationv1.DropDataResponse, error) {
	if err := s.svc.DropData(ctx); err != nil {
		return nil, err
	}
	return &activationv1.DropDataResponse{}, nil
}

// ResetTestData implements the RPC.
func (s *Server) ResetTestData(ctx context.Context, _ *activationv1.ResetTestDataRequest) (*activationv1.ResetTestDataResponse, error) {
	if err := s.svc.ResetTestData(ctx, actor(ctx)); err != nil {
		return nil, err
	}
	return &activationv1.ResetTestDataResponse{}, nil
}
