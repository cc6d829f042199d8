package tokengrpc

import (
	"context"
	"fmt"
	"slices"
	"time"

	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit/auditgrpc"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"
)

// ServiceName is the full name of the service, as health reports it.
const ServiceName = "dhos.token.v1.TokenService"

// Rules are the access rules declared on the service's RPCs in its .proto.
func Rules() (auth.Rules, error) {
	// The process also serves the audit query API over its outbox.
	return auth.RulesOf(tokenv1.File_dhos_token_v1_token_proto.Services().ByName("TokenService"), auditgrpc.Descriptor())
}

// Options configure the server.
type Options struct {
	// JWKSMaxAge is how long a copy of the key set may be cached.
	JWKSMaxAge time.Duration
}

// Server implements tokenv1.TokenServiceServer.
type Server struct {
	tokenv1.UnimplementedTokenServiceServer
	issuer *token.Issuer
	o      Options
}

// New returns a Server over issuer.
func New(issuer *token.Issuer, o Options) *Server { return &Server{issuer: issuer, o: o} }

// Register adds the server to s.
func (s *Server) Register(g *grpc.Server) { tokenv1.RegisterTokenServiceServer(g, s) }

// IssueToken implements tokenv1.TokenServiceServer.
func (s *Server) IssueToken(ctx context.Context, req *tokenv1.IssueTokenRequest) (*tokenv1.IssueTokenResponse, error) {
	out, err := s.issuer.Issue(ctx, token.Request{
		Kind:              token.KindFromProto(req.GetKind()),
		SubjectID:         req.GetSubjectId(),
		ReferringDeviceID: req.GetReferringDeviceId(),
		Scopes:            req.GetScopes(),
		SessionID:         req.GetSessionId(),
	})
	if err != nil {
		return nil, err
	}
	return &tokenv1.IssueTokenResponse{Jwt: out.JWT, TokenId: out.ID, ExpiresAt: apitime.Format(out.ExpiresAt)}, nil
}

// IssueOIDCToken implements tokenv1.TokenServiceServer.
func (s *Server) IssueOIDCToken(ctx context.Context, req *tokenv1.IssueOIDCTokenRequest) (*tokenv1.IssueOIDCTokenResponse, error) {
	r := token.OIDCRequest{
		Audience:  req.GetAudience(),
		Subject:   req.GetSubject(),
		SessionID: req.GetSessionId(),
		Nonce:     req.GetNonce(),
		ACR:       req.GetAcr(),
		AMR:       req.GetAmr(),
		Claims:    req.GetClaims().AsMap(),
	}
	switch req.GetType() {
	case tokenv1.OIDCTokenType_OIDC_TOKEN_TYPE_ID:
		r.Type = token.IDToken
	case tokenv1.OIDCTokenType_OIDC_TOKEN_TYPE_LOGOUT:
		r.Type = token.LogoutToken
	}
	if at := req.GetAuthTime(); at > 0 {
		r.AuthTime = time.Unix(at, 0)
	}
	out, err := s.issuer.IssueOIDC(ctx, r)
	if err != nil {
		return nil, err
	}
	return &tokenv1.IssueOIDCTokenResponse{Jwt: out.JWT, TokenId: out.ID, ExpiresAt: apitime.Format(out.ExpiresAt)}, nil
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

// GetJWKS implements tokenv1.TokenServiceServer.
func (s *Server) GetJWKS(context.Context, *tokenv1.GetJWKSRequest) (*tokenv1.GetJWKSResponse, error) {
	keys := s.issuer.PublicKeys()
	resp := &tokenv1.GetJWKSResponse{Keys: make([]*tokenv1.JsonWebKey, 0, len(keys)), MaxAgeSeconds: int32(s.o.JWKSMaxAge / time.Second)}
	for _, k := range keys {
		resp.Keys = append(resp.Keys, &tokenv1.JsonWebKey{
			Kty: k.Kty, Kid: k.Kid, Alg: k.Alg, Use: k.Use,
			N: k.N, E: k.E, Crv: k.Crv, X: k.X, Y: k.Y,
		})
	}
	return resp, nil
}

// GetIssuer implements tokenv1.TokenServiceServer.
func (s *Server) GetIssuer(context.Context, *tokenv1.GetIssuerRequest) (*tokenv1.GetIssuerResponse, error) {
	cfg := s.issuer.Config()
	resp := &tokenv1.GetIssuerResponse{Issuer: cfg.Issuer, Audience: cfg.Audience}
	for _, k := range s.issuer.PublicKeys() {
		if !slices.Contains(resp.SigningAlgorithms, k.Alg) {
			resp.SigningAlgorithms = append(resp.SigningAlgorithms, k.Alg)
		}
	}
	if alg := s.issuer.Signer().Alg(); !slices.Contains(resp.SigningAlgorithms, alg) {
		resp.SigningAlgorithms = append(resp.SigningAlgorithms, alg)
	}
	return resp, nil
}

// ListKeys implements tokenv1.TokenServiceServer.
func (s *Server) ListKeys(context.Context, *tokenv1.ListKeysRequest) (*tokenv1.ListKeysResponse, error) {
	return &tokenv1.ListKeysResponse{Keys: keysToProto(s.issuer.Keys())}, nil
}

// RotateKeys implements tokenv1.TokenServiceServer.
func (s *Server) RotateKeys(ctx context.Context, _ *tokenv1.RotateKeysRequest) (*tokenv1.RotateKeysResponse, error) {
	next, created, err := s.issuer.RotateKeys(ctx)
	if err != nil {
		return nil, err
	}
	return &tokenv1.RotateKeysResponse{Next: keyToProto(next), Created: created, Keys: keysToProto(s.issuer.Keys())}, nil
}

// RevokePrincipal implements tokenv1.TokenServiceServer.
func (s *Server) RevokePrincipal(ctx context.Context, req *tokenv1.RevokePrincipalRequest) (*tokenv1.RevokePrincipalResponse, error) {
	before, err := s.issuer.Revoke(ctx, token.KindFromProto(req.GetKind()), req.GetPrincipalId(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return &tokenv1.RevokePrincipalResponse{RevokedBefore: apitime.Format(before)}, nil
}

// ListRevocations implements tokenv1.TokenServiceServer.
func (s *Server) ListRevocations(ctx context.Context, req *tokenv1.ListRevocationsRequest) (*tokenv1.ListRevocationsResponse, error) {
	page, err := s.issuer.Revocations(ctx, req.GetCursor())
	if err != nil {
		return nil, err
	}
	resp := &tokenv1.ListRevocationsResponse{
		Revocations: make([]*tokenv1.Revocation, 0, len(page.Revocations)),
		Cursor:      page.Cursor,
		FromStart:   page.Reset,
		More:        page.More,
		PruneBefore: apitime.Format(page.PruneBefore),
	}
	for _, r := range page.Revocations {
		resp.Revocations = append(resp.Revocations, &tokenv1.Revocation{Kind: r.Kind, PrincipalId: r.ID, RevokedBefore: apitime.Format(r.RevokedBefore)})
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

func keysToProto(keys []token.KeyInfo) []*tokenv1.SigningKey {
	out := make([]*tokenv1.SigningKey, len(keys))
	for i, k := range keys {
		out[i] = keyToProto(k)
	}
	return out
}

func keyToProto(k token.KeyInfo) *tokenv1.SigningKey {
	sk := &tokenv1.SigningKey{Kid: k.ID, Alg: k.Alg, Source: k.Source}
	switch k.State {
	case token.StateNext:
		sk.State = tokenv1.KeyState_KEY_STATE_NEXT
	case token.StateActive:
		sk.State = tokenv1.KeyState_KEY_STATE_ACTIVE
	case token.StateRetired:
		sk.State = tokenv1.KeyState_KEY_STATE_RETIRED
	}
	format := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return apitime.Format(t)
	}
	sk.CreatedAt, sk.ActivatesAt, sk.RetiresAt, sk.RemovedAt = format(k.CreatedAt), format(k.ActivatesAt), format(k.RetiresAt), format(k.RemovedAt)
	return sk
}
