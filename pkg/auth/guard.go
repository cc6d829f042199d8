package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Rules maps full method names ("/pkg.Service/Method") to access rules.
type Rules map[string]*authv1.AccessRule

// RulesOf reads the access option of every method of the services.
// A method without one is an error: the suite denies by default.
func RulesOf(services ...protoreflect.ServiceDescriptor) (Rules, error) {
	rules := Rules{}
	for _, sd := range services {
		methods := sd.Methods()
		for i := 0; i < methods.Len(); i++ {
			m := methods.Get(i)
			rule, _ := proto.GetExtension(m.Options(), authv1.E_Access).(*authv1.AccessRule)
			if rule == nil {
				return nil, fmt.Errorf("auth: %s has no dhos.auth.v1.access option", m.FullName())
			}
			rules[fmt.Sprintf("/%s/%s", sd.FullName(), m.Name())] = rule
		}
	}
	return rules, nil
}

// Guard enforces access rules in a gRPC interceptor.
type Guard struct {
	verifier   *Verifier
	rules      Rules
	production bool
}

// NewGuard returns a guard over rules.
func NewGuard(v *Verifier, rules Rules, production bool) *Guard {
	return &Guard{verifier: v, rules: rules, production: production}
}

// openPrefixes are infrastructure services every caller may use.
var openPrefixes = []string{"/grpc.health.v1.", "/grpc.reflection."}

// Unary is the server interceptor.
func (g *Guard) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		ctx, err := g.Authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
}

// Stream is the stream interceptor (reflection is the only stream).
func (g *Guard) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if _, err := g.Authorize(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return h(srv, ss)
	}
}

// Authorize applies the method's rule to the call in ctx.
func (g *Guard) Authorize(ctx context.Context, method string) (context.Context, error) {
	rule, ok := g.rules[method]
	if !ok {
		for _, p := range openPrefixes {
			if strings.HasPrefix(method, p) {
				return ctx, nil
			}
		}
		return ctx, apperr.PermissionDenied("method has no access rule")
	}
	if rule.GetNonProduction() && g.production {
		return ctx, apperr.NotFound("not found")
	}
	if rule.GetPublic() {
		return ctx, nil
	}
	raw, err := BearerToken(ctx)
	if err != nil {
		return ctx, err
	}
	p, err := g.verifier.Verify(ctx, raw)
	if err != nil {
		return ctx, apperr.Unauthenticated("%v", err)
	}
	for _, s := range rule.GetScopes() {
		if !p.HasScope(s) {
			return ctx, apperr.PermissionDenied("token lacks the scope %s", s)
		}
	}
	if kinds := rule.GetPrincipalKinds(); len(kinds) > 0 && !slices.Contains(kinds, p.Kind) {
		return ctx, apperr.PermissionDenied("this principal may not call this method")
	}
	return WithPrincipal(ctx, p), nil
}

// ErrNoToken: the call carries no bearer token.
var ErrNoToken = errors.New("missing bearer token")

// BearerToken returns the bearer token in the call's metadata.
func BearerToken(ctx context.Context) (string, error) {
	// Only the one key: FromIncomingContext would copy every key.
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(vals) == 0 {
		return "", apperr.Unauthenticated("%v", ErrNoToken)
	}
	tok, ok := bearerFromHeader(vals[0])
	if !ok {
		return "", apperr.Unauthenticated("authorization must be 'Bearer <token>'")
	}
	return tok, nil
}
