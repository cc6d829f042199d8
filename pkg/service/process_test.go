package service

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/audit/auditgrpc"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestMainExitCode runs Main in a child process (this test binary again):
// a failing run function is printed after the name, with exit status 1.
func TestMainExitCode(t *testing.T) {
	if os.Getenv("SERVICE_TEST_MAIN") == "fail" {
		Main("demo", func(context.Context) error { return errors.New("no luck") })
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainExitCode$")
	cmd.Env = append(os.Environ(), "SERVICE_TEST_MAIN=fail")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1", err)
	}
	if !strings.Contains(string(out), "demo: no luck\n") {
		t.Errorf("stderr %q does not say what failed", out)
	}
}

// TestStartReportsEveryProblem: the logger's problems join the loader's,
// all reported at once, and nothing is announced.
func TestStartReportsEveryProblem(t *testing.T) {
	l := config.NewLoaderFrom(config.MapLookup(map[string]string{
		"ENVIRONMENT": "NOWHERE", "LOG_LEVEL": "LOUD", "DATA_DIR": t.TempDir(),
	}))
	c := LoadCommon(l, "demo")
	announced := false
	_, err := Start(context.Background(), l, c, StartOptions{Announce: func(*slog.Logger, []any) { announced = true }})
	if err == nil || !strings.HasPrefix(err.Error(), "invalid configuration:\n") ||
		!strings.Contains(err.Error(), "ENVIRONMENT") || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Fatalf("Start: %v", err)
	}
	if announced {
		t.Error("an invalid configuration was announced")
	}
}

// TestProcess starts a process as a service's run function does, serves
// and stops it, and checks that Close undoes the steps the last first.
func TestProcess(t *testing.T) {
	l := config.NewLoaderFrom(config.MapLookup(map[string]string{
		"ENVIRONMENT":     "DEVELOPMENT",
		"DATA_DIR":        t.TempDir(),
		"OPS_ADDR":        "127.0.0.1:0",
		"LOG_LEVEL":       "ERROR",
		"TOKEN_GRPC_ADDR": "127.0.0.1:1", // nobody: the verifier polls in vain
		"DEMO_SETTING":    "true",
	}))
	c := LoadCommon(l, "demo")
	c.Serve.GRPCListen = "127.0.0.1:0"
	_ = l.Bool("DEMO_SETTING", false)
	var summary []any
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := Start(ctx, l, c, StartOptions{Announce: func(_ *slog.Logger, s []any) { summary = s }})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(summary, any("DEMO_SETTING")) || p.Ops.Addr() == nil {
		t.Errorf("summary %v, ops listener %v", summary, p.Ops.Addr())
	}
	var order []string
	p.Defer(func() { order = append(order, "first") })
	db, err := p.Open(ctx, storage.Migrations{Shared: []storage.NamedMigrations{audit.Migrations()}})
	if err != nil || p.DB != db {
		t.Fatalf("Open: %v", err)
	}
	conn, err := p.Dial("127.0.0.1:1", "read:nothing")
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.StartVerifier(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Defer(func() { order = append(order, "last") })

	addrc := make(chan string, 1)
	served := make(chan error, 1)
	go func() {
		served <- p.Serve(ctx, GRPCService{
			Name:      "demo.Demo",
			Rules:     func() (auth.Rules, error) { return auth.Rules{}, nil },
			Verifier:  v,
			Register:  func(*grpc.Server) {},
			Listening: func(a net.Addr) { addrc <- a.String() },
		})
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-served:
		t.Fatalf("Serve: %v", err)
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	for _, name := range []string{"demo.Demo", auditgrpc.ServiceName} {
		h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: name}, grpc.WaitForReady(true))
		if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %s: %v %v", name, h, err)
		}
	}

	cancel() // as SIGTERM does
	if err := <-served; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	p.Close()
	if !slices.Equal(order, []string{"last", "first"}) {
		t.Errorf("Close ran %v", order)
	}
	if err := db.Ping(context.Background()); err == nil {
		t.Error("the store is still open after Close")
	}
	if s := conn.GetState().String(); s != "SHUTDOWN" {
		t.Errorf("client connection %s after Close", s)
	}
	p.Close() // a second Close does nothing
}

// TestServeRefusesBadRules: a service whose access rules do not build is
// not served.
func TestServeRefusesBadRules(t *testing.T) {
	p := &Process{Common: Common{Name: "demo"}}
	err := p.Serve(context.Background(), GRPCService{Rules: func() (auth.Rules, error) { return nil, errors.New("bad rule") }})
	if err == nil || err.Error() != "bad rule" {
		t.Fatalf("Serve: %v", err)
	}
}
