package sessiongrpc

import (
	"context"
	"errors"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	sessionv1 "github.com/dhosauth/dhosauth/gen/go/dhos/session/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/services/session/internal/sso"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
)

// SSOTokens implements sso.Tokens with the token service: IssueToken
// (clinician tokens of a session), IssueOIDCToken and RevokePrincipal.
// The connection must carry the session service's internal credentials
// (internal:issue_token, internal:revoke).
type SSOTokens struct{ Client tokenv1.TokenServiceClient }

var _ sso.Tokens = SSOTokens{}

// AccessToken implements sso.Tokens.
func (t SSOTokens) AccessToken(ctx context.Context, clinicianID, sessionID string, scopes []string) (string, time.Time, error) {
	resp, err := t.Client.IssueToken(ctx, &tokenv1.IssueTokenRequest{
		Kind: authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN, SubjectId: clinicianID, SessionId: sessionID, Scopes: scopes,
	})
	if err != nil {
		return "", time.Time{}, peerError(ctx, err, "token service")
	}
	exp, err := time.Parse(apitime.Layout, resp.GetExpiresAt())
	if err != nil || resp.GetJwt() == "" {
		return "", time.Time{}, apperr.Internal(errors.New("token service returned no token or expiry"))
	}
	return resp.GetJwt(), exp, nil
}

// IDToken implements sso.Tokens.
func (t SSOTokens) IDToken(ctx context.Context, r sso.IDTokenRequest) (string, error) {
	claims, err := structpb.NewStruct(r.Claims)
	if err != nil {
		return "", apperr.Internal(err)
	}
	req := &tokenv1.IssueOIDCTokenRequest{
		Type: tokenv1.OIDCTokenType_OIDC_TOKEN_TYPE_ID, Audience: r.ClientID, Subject: r.Subject, SessionId: r.SessionID,
		Nonce: r.Nonce, Acr: r.ACR, Amr: r.AMR, Claims: claims,
	}
	if !r.AuthTime.IsZero() {
		req.AuthTime = r.AuthTime.Unix()
	}
	resp, err := t.Client.IssueOIDCToken(ctx, req)
	if err != nil {
		return "", peerError(ctx, err, "token service")
	}
	return resp.GetJwt(), nil
}

// LogoutToken implements sso.Tokens.
func (t SSOTokens) LogoutToken(ctx context.Context, clientID, subject, sessionID string) (string, error) {
	resp, err := t.Client.IssueOIDCToken(ctx, &tokenv1.IssueOIDCTokenRequest{
		Type: tokenv1.OIDCTokenType_OIDC_TOKEN_TYPE_LOGOUT, Audience: clientID, Subject: subject, SessionId: sessionID,
	})
	if err != nil {
		return "", peerError(ctx, err, "token service")
	}
	return resp.GetJwt(), nil
}

// RevokeClinician implements sso.Tokens.
func (t SSOTokens) RevokeClinician(ctx context.Context, clinicianID, reason string) error {
	return TokenRevoker(t).RevokeClinician(ctx, clinicianID, reason)
}

// ssoUnavailable is the answer of the session RPCs when browser sign-in
// is not set up (the issuer is not an http(s) URL).
func ssoUnavailable() error {
	return &apperr.Error{Code: codes.FailedPrecondition, Msg: "browser sign-in is not configured: TOKEN_ISSUER must be the edge's http(s) address"}
}

// ListSessions implements sessionv1.SessionServiceServer.
func (s *Server) ListSessions(ctx context.Context, req *sessionv1.ListSessionsRequest) (*sessionv1.ListSessionsResponse, error) {
	if s.sso == nil {
		return nil, ssoUnavailable()
	}
	list, err := s.sso.ListSessions(ctx, req.GetClinicianId())
	if err != nil {
		return nil, err
	}
	resp := &sessionv1.ListSessionsResponse{Sessions: make([]*sessionv1.BrowserSession, 0, len(list))}
	for _, v := range list {
		resp.Sessions = append(resp.Sessions, &sessionv1.BrowserSession{
			SessionId: v.ID, ClinicianId: v.ClinicianID, Provider: v.Provider,
			Created: apitime.Format(v.Created), LastSeen: apitime.Format(v.LastSeen), Expires: apitime.Format(s.sso.Expires(v)),
			Clients: v.Clients, Scopes: v.Scopes,
		})
	}
	return resp, nil
}

// EndSessions implements sessionv1.SessionServiceServer.
func (s *Server) EndSessions(ctx context.Context, req *sessionv1.EndSessionsRequest) (*sessionv1.EndSessionsResponse, error) {
	if s.sso == nil {
		return nil, ssoUnavailable()
	}
	n, err := s.sso.EndSessions(ctx, req.GetClinicianId(), req.GetSessionId())
	if err != nil {
		return nil, err
	}
	return &sessionv1.EndSessionsResponse{Ended: int32(n)}, nil
}

// SetLocalPassword implements sessionv1.SessionServiceServer.
func (s *Server) SetLocalPassword(ctx context.Context, req *sessionv1.SetLocalPasswordRequest) (*sessionv1.SetLocalPasswordResponse, error) {
	if s.sso == nil {
		return nil, ssoUnavailable()
	}
	if err := s.sso.SetLocalPassword(ctx, req.GetClinicianId(), req.GetPassword()); err != nil {
		return nil, err
	}
	return &sessionv1.SetLocalPasswordResponse{}, nil
}
