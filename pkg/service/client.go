package service

import (
	"context"
	"fmt"
	"time"

	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/telemetry"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
)

// CallTimeout is the deadline put on every call to another service that
// has none sooner.
const CallTimeout = 5 * time.Second

// roundRobin spreads calls over every address the name resolves to (a
// headless Kubernetes Service resolves to each ready replica).
const roundRobin = `{"loadBalancingConfig": [{"round_robin": {}}]}`

// Dial returns a client connection to another service that authenticates
// with creds (nil: the caller's own metadata only) and bounds every call.
// Calls continue the caller's trace and are measured (rpc.client.*).
func Dial(addr string, creds *auth.InternalCredentials) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(telemetry.GRPCClientHandler()),
		grpc.WithDefaultServiceConfig(roundRobin),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize)),
		grpc.WithChainUnaryInterceptor(deadline),
		// Reconnect soon after a restarted service is back: gRPC's
		// default backoff grows to two minutes during a long outage.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnectBackoff, MinConnectTimeout: CallTimeout}),
	}
	if creds != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(creds))
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return cc, nil
}

// reconnectBackoff is how a client retries a service that went away: from
// 100ms, growing to at most 2s between attempts.
var reconnectBackoff = backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second}

func deadline(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, inv grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, CallTimeout)
		defer cancel()
	}
	return inv(ctx, method, req, reply, cc, opts...)
}

// Verifier returns a verifier over the token service's public keys
// fetched over tok, legacy HS512, internal tokens and the trusted issuers,
// without revocations (services use StartVerifier, which adds them).
func (c Common) Verifier(tok tokenv1.TokenServiceClient) *auth.Verifier {
	return auth.NewVerifier(c.verifierOptions(tok, nil))
}

// JWKSFetcher reads the token service's key set.
func JWKSFetcher(tok tokenv1.TokenServiceClient) func(ctx context.Context) ([]auth.JWK, error) {
	return func(ctx context.Context) ([]auth.JWK, error) {
		// WaitForReady: a connection still backing off after the token
		// service started late waits (within ctx) instead of failing.
		resp, err := tok.GetJWKS(ctx, &tokenv1.GetJWKSRequest{}, grpc.WaitForReady(true))
		if err != nil {
			return nil, err
		}
		out := make([]auth.JWK, 0, len(resp.GetKeys()))
		for _, k := range resp.GetKeys() {
			out = append(out, auth.JWK{Kty: k.GetKty(), Kid: k.GetKid(), Alg: k.GetAlg(), Use: k.GetUse(), N: k.GetN(), E: k.GetE(), Crv: k.GetCrv(), X: k.GetX(), Y: k.GetY()})
		}
		return out, nil
	}
}
