package tokengrpc

import (
	"context"
	"fmt"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"
)

// ServiceName is the full name of the service, as health reports it.
const ServiceName = "dhos.token.v1.TokenService"

// Rules are the access rules declared on the service's RPCs in its .proto.
func Rules() (auth.Rules, error) {
	return auth.RulesOf(tokenv1.File_dhos_token_v1_token_proto.Services().ByName("TokenService"))
}

// Server implements tokenv1.TokenServiceServer.
type Server struct {
	tokenv1.UnimplementedTokenServiceServer
	issuer *token.Issuer
}

// New returns a Server over issuer.
func New(issuer *token.Issuer) *Server { return &Server{issuer: issuer} }

// Register adds the server to s.
func (s *Server) Register(g *grpc.Server) { tokenv1.RegisterTokenServiceServer(g, s) }

// IssueToken implements tokenv1.TokenServiceServer.
func (s *Server) IssueToken(ctx context.Context, req *tokenv1.IssueTokenRequest) (*tokenv1.IssueTokenResponse, error) {
	out, err := s.issuer.Issue(ctx, token.Request{
		Kind:              kindFromProto(req.GetKind()),
		SubjectID:         req.GetSubjectId(),
		ReferringDeviceID: req.GetReferringDeviceId(),
		Scopes:            req.GetScopes(),
	})
	if err != nil {
		return nil, err
	}
	return &tokenv1.IssueTokenResponse{Jwt: out.JWT, TokenId: out.ID, ExpiresAt: apitime.Format(out.ExpiresAt)}, nil
}

// VerifyToken implements tokenv1.TokenServiceServer.
func (s *Server) VerifyToken(ctx context.Context, req *tokenv1.VerifyTokenRequest) (*tokenv1.VerifyTokenResponse, error) {
	p, err := s.issuer.Verify(ctx, req.GetToken(), req.GetRequiredScopes())
	if err != nil {
		return nil, err
	}
	md, err := structpb.NewStruct(p.Metadata)
	if err != nil {
		return nil, apperr.Internal(fmt.Errorf("metadata of a verified token: %w", err))
	}
	resp := &tokenv1.VerifyTokenResponse{
		PrincipalKind: p.Kind,
		PrincipalId:   p.ID,
		Scopes:        p.Scopes,
		Metadata:      md,
		TokenId:       p.TokenID,
		Issuer:        p.Issuer,
	}
	if !p.ExpiresAt.IsZero() {
		resp.ExpiresAt = apitime.Format(p.ExpiresAt)
	}
	return resp, nil
}

// GetJwks implements tokenv1.TokenServiceServer.
func (s *Server) GetJwks(context.Context, *tokenv1.GetJwksRequest) (*tokenv1.GetJwksResponse, error) {
	keys := s.issuer.PublicKeys()
	resp := &tokenv1.GetJwksResponse{Keys: make([]*tokenv1.JsonWebKey, 0, len(keys))}
	for _, k := range keys {
		resp.Keys = append(resp.Keys, &tokenv1.JsonWebKey{
			Kty: k.Kty, Kid: k.Kid, Alg: k.Alg, Use: k.Use,
			N: k.N, E: k.E, Crv: k.Crv, X: k.X, Y: k.Y,
		})
	}
	return resp, nil
}

// DropData implements tokenv1.TokenServiceServer.
func (s *Server) DropData(ctx context.Context, _ *tokenv1.DropDataRequest) (*tokenv1.DropDataResponse, error) {
	if err := s.issuer.DropData(ctx); err != nil {
		return nil, err
	}
	return &tokenv1.DropDataResponse{}, nil
}

// kindFromProto maps the proto enum onto the domain's kinds; anything
// else (UNSPECIFIED, unknown numbers) becomes the invalid empty kind.
func kindFromProto(k authv1.PrincipalKind) token.Kind {
	switch k {
	case authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT:
		return token.KindPatient
	case authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE:
		return token.KindDevice
	case authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN:
		return token.KindClinician
	case authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM:
		return token.KindSystem
	}
	return ""
}
