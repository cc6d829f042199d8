package edge

import (
	"context"
	"fmt"

	"github.com/dhosauth/dhosauth/pkg/service"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// HealthChecks are the edge's readiness checks: each of the four services
// answers its gRPC health check with SERVING (a service reports
// NOT_SERVING while its database does not answer and once it is
// stopping).
func HealthChecks(c Conns) []service.Check {
	check := func(cc *grpc.ClientConn) func(ctx context.Context) error {
		client := healthpb.NewHealthClient(cc)
		return func(ctx context.Context) error {
			resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				return fmt.Errorf("health check: %s", service.ToStatus(err).Message())
			}
			if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return fmt.Errorf("health check: %s", resp.GetStatus())
			}
			return nil
		}
	}
	return []service.Check{
		{Name: "activation", Fn: check(c.Activation)},
		{Name: "device", Fn: check(c.Device)},
		{Name: "token", Fn: check(c.Token)},
		{Name: "session", Fn: check(c.Session)},
	}
}
