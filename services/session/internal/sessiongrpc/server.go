package sessiongrpc

import (
	"context"

	sessionv1 "github.com/dhosauth/dhosauth/gen/go/dhos/session/v1"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit/auditgrpc"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/services/session/internal/session"
	"github.com/dhosauth/dhosauth/services/session/internal/sso"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"
)

// Rules returns the access rules declared in session.proto and in
// audit.proto: the process also serves the audit query API over its
// outbox.
func Rules() (auth.Rules, error) {
	return auth.RulesOf(sessionv1.File_dhos_session_v1_session_proto.Services().Get(0), auditgrpc.Descriptor())
}

// Server implements sessionv1.SessionServiceServer over the domain.
type Server struct {
	sessionv1.UnimplementedSessionServiceServer
	svc *session.Service
	sso *sso.Service
}

// New returns a Server.
func New(svc *session.Service) *Server { return &Server{svc: svc} }

// WithSSO adds the browser sessions (ListSessions, EndSessions,
// SetLocalPassword); without them those RPCs answer FAILED_PRECONDITION.
func (s *Server) WithSSO(b *sso.Service) *Server {
	s.sso = b
	return s
}

// Register adds the server to g.
func (s *Server) Register(g *grpc.Server) { sessionv1.RegisterSessionServiceServer(g, s) }

// CreateClinician implements sessionv1.SessionServiceServer.
func (s *Server) CreateClinician(ctx context.Context, req *sessionv1.CreateClinicianRequest) (*sessionv1.CreateClinicianResponse, error) {
	products, err := stringList("products", req.GetProducts())
	if err != nil {
		return nil, err
	}
	groups, err := stringList("groups", req.GetGroups())
	if err != nil {
		return nil, err
	}
	err = s.svc.Create(ctx, session.NewClinician{
		ID:                    req.GetClinicianId(),
		LoginActive:           req.LoginActive,
		Products:              products,
		Groups:                groups,
		SendEntryIdentifier:   req.SendEntryIdentifier,
		ContractExpiryEODDate: req.ContractExpiryEodDate,
	})
	if err != nil {
		return nil, err
	}
	return &sessionv1.CreateClinicianResponse{}, nil
}

// UpdateClinician implements sessionv1.SessionServiceServer.
func (s *Server) UpdateClinician(ctx context.Context, req *sessionv1.UpdateClinicianRequest) (*sessionv1.UpdateClinicianResponse, error) {
	var p *session.ClinicianPatch
	if b := req.GetPatch(); b != nil {
		products, err := stringList("products", b.GetProducts())
		if err != nil {
			return nil, err
		}
		groups, err := stringList("groups", b.GetGroups())
		if err != nil {
			return nil, err
		}
		p = &session.ClinicianPatch{
			LoginActive:           b.LoginActive,
			Products:              products,
			Groups:                groups,
			SendEntryIdentifier:   b.SendEntryIdentifier,
			ContractExpiryEODDate: b.ContractExpiryEodDate,
		}
	}
	if err := s.svc.Update(ctx, req.GetClinicianId(), p); err != nil {
		return nil, err
	}
	return &sessionv1.UpdateClinicianResponse{}, nil
}

// GetClinicianJwt implements sessionv1.SessionServiceServer.
func (s *Server) GetClinicianJwt(ctx context.Context, req *sessionv1.GetClinicianJwtRequest) (*sessionv1.GetClinicianJwtResponse, error) {
	jwt, err := s.svc.ClinicianJWT(ctx, req.GetSendEntryIdentifier())
	if err != nil {
		return nil, err
	}
	return &sessionv1.GetClinicianJwtResponse{Jwt: jwt}, nil
}

// DropData implements sessionv1.SessionServiceServer.
func (s *Server) DropData(ctx context.Context, _ *sessionv1.DropDataRequest) (*sessionv1.DropDataResponse, error) {
	if err := s.svc.DropData(ctx); err != nil {
		return nil, err
	}
	return &sessionv1.DropDataResponse{}, nil
}

// stringList turns a JSON list into strings: nil when absent, an error
// when an element is not a string.
func stringList(field string, lv *structpb.ListValue) ([]string, error) {
	if lv == nil {
		return nil, nil
	}
	out := make([]string, 0, len(lv.GetValues()))
	for _, v := range lv.GetValues() {
		sv, ok := v.GetKind().(*structpb.Value_StringValue)
		if !ok {
			return nil, apperr.InvalidArgument("%s must be a list of strings", field)
		}
		out = append(out, sv.StringValue)
	}
	return out, nil
}
