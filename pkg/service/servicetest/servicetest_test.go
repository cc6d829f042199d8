package servicetest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/pkg/service/servicetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

var legacy = servicetest.HSIssuer{Key: []byte("servicetest-hs512-key-0123456789abcdef"), Issuer: "https://servicetest.example/"}

// TestServeAndDial: the server answers health checks over the connection
// and tells the caller's Listening where it listens.
func TestServeAndDial(t *testing.T) {
	told := make(chan net.Addr, 1)
	addr := servicetest.Serve(t, service.ServerOptions{
		Name:      "probe",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Guard:     auth.NewGuard(auth.NewVerifier(auth.VerifierOptions{}), auth.Rules{}, false),
		Services:  []string{"probe.v1.Probe"},
		Register:  func(*grpc.Server) {},
		Listening: func(a net.Addr) { told <- a },
	})
	if a := <-told; a.String() != addr {
		t.Fatalf("Listening was told %v, Serve returned %s", a, addr)
	}
	h, err := healthpb.NewHealthClient(servicetest.Dial(t, addr)).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "probe.v1.Probe"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
}

// TestCallerToken: the legacy verifier accepts the caller's token and
// sees who the caller is.
func TestCallerToken(t *testing.T) {
	ctx := legacy.Caller(t, "read:x write:y", map[string]any{auth.DeviceIDClaim: "dev-1"})
	md, _ := metadata.FromOutgoingContext(ctx)
	raw, ok := strings.CutPrefix(strings.Join(md.Get("authorization"), ""), "Bearer ")
	if !ok {
		t.Fatalf("authorization %v", md.Get("authorization"))
	}
	v := auth.NewVerifier(auth.VerifierOptions{HSKey: legacy.Key, HSIssuer: legacy.Issuer})
	p, err := v.Verify(context.Background(), raw)
	if err != nil || p.ID != "dev-1" || !p.HasScope("read:x") || !p.HasScope("write:y") {
		t.Fatalf("principal %+v, %v", p, err)
	}
	other := servicetest.HSIssuer{Key: []byte("another-key-another-key-another-key"), Issuer: legacy.Issuer}
	if _, err := v.Verify(context.Background(), other.Sign(t, nil)); err == nil {
		t.Fatal("a token under another key verified")
	}
}

func TestClock(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := servicetest.NewClock(start)
	c.Add(time.Hour)
	if got := c.Now(); !got.Equal(start.Add(time.Hour)) {
		t.Fatalf("after Add: %v", got)
	}
	c.Set(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("after Set: %v", got)
	}
}

// TestStartServe runs a serve function that listens until cancelled, and
// stops it.
func TestStartServe(t *testing.T) {
	env := map[string]string{"NAME": "probe"}
	r, conn := servicetest.StartServe(t, env, func(ctx context.Context, lookup func(string) (string, bool), listening func(net.Addr)) error {
		if v, _ := lookup("NAME"); v != "probe" {
			return errors.New("NAME not set")
		}
		return service.Serve(ctx, service.ServerOptions{
			Name: "probe", Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Guard: auth.NewGuard(auth.NewVerifier(auth.VerifierOptions{}), auth.Rules{}, false), Register: func(*grpc.Server) {},
			Listening: listening,
		})
	})
	if conn == nil {
		t.Fatal("no connection")
	}
	r.Stop()
	r.Stop() // the second time does nothing
}

// TestStartRun: a run function that blocks until cancelled serves, sees
// the run environment, and stops.
func TestStartRun(t *testing.T) {
	sawEnv := make(chan string, 1)
	r := servicetest.StartRun(t, map[string]string{"LOG_LEVEL": "DEBUG"}, func(ctx context.Context) error {
		sawEnv <- lookupAll("ENVIRONMENT", "LOG_LEVEL", "DATABASE_URL")
		<-ctx.Done()
		return nil
	})
	r.Serving(10 * time.Millisecond)
	if got := <-sawEnv; got != "DEVELOPMENT,DEBUG," {
		t.Errorf("run saw %q", got)
	}
	r.Stop()
}

func lookupAll(names ...string) string {
	var out []string
	for _, n := range names {
		out = append(out, os.Getenv(n))
	}
	return strings.Join(out, ",")
}

func TestRunRejects(t *testing.T) {
	servicetest.RunRejects(t, map[string]string{"SOME_SETTING": "bad"}, func(context.Context) error {
		return errors.New("invalid configuration: SOME_SETTING and OTHER_SETTING")
	}, "SOME_SETTING", "OTHER_SETTING")
}

func TestWantCode(t *testing.T) {
	servicetest.WantCode(t, status.Error(codes.NotFound, "device d1 not found"), codes.NotFound, "not found")
	servicetest.WantCode(t, nil, codes.OK, "")
}

// TestDeadAddr: nothing answers there.
func TestDeadAddr(t *testing.T) {
	if c, err := net.DialTimeout("tcp", servicetest.DeadAddr(t), time.Second); err == nil {
		c.Close()
		t.Fatal("something listens at the dead address")
	}
}
