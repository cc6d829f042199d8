package service

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
)

func startOps(t *testing.T, delay time.Duration) *Ops {
	t.Helper()
	c := Common{Name: "test", Serve: ServeConfig{OpsAddr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second, ShutdownDelay: delay}}
	ops, err := StartOps(context.Background(), c, slog.New(slog.DiscardHandler), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ops.Close)
	return ops
}

func get(t *testing.T, ops *Ops, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + ops.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOpsEndpoints(t *testing.T) {
	ops := startOps(t, 0)
	if code, _ := get(t, ops, "/livez"); code != 200 {
		t.Errorf("/livez %d", code)
	}
	if code, body := get(t, ops, "/readyz"); code != 503 || !strings.Contains(body, "starting") {
		t.Errorf("/readyz before serving: %d %s", code, body)
	}
	dbUp := true
	ops.AddCheck(Check{Name: "database", Fn: func(context.Context) error {
		if dbUp {
			return nil
		}
		return errors.New("connection refused")
	}})
	ops.Serving()
	code, body := get(t, ops, "/readyz")
	var r struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || code != 200 || r.Checks["database"] != "ok" {
		t.Errorf("/readyz serving: %d %s", code, body)
	}
	dbUp = false
	if code, body := get(t, ops, "/readyz"); code != 503 || !strings.Contains(body, "connection refused") {
		t.Errorf("/readyz with the database down: %d %s", code, body)
	}
	dbUp = true
	ops.Draining()
	if code, body := get(t, ops, "/readyz"); code != 503 || !strings.Contains(body, "shutting down") {
		t.Errorf("/readyz draining: %d %s", code, body)
	}
	if code, body := get(t, ops, "/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics %d", code)
	}
	if code, body := get(t, ops, "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ %d", code)
	}
}

// slowService is a one-method gRPC service whose call waits for release.
type slowService struct{ release chan struct{} }

func (s *slowService) register(srv *grpc.Server) {
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "test.Slow",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Wait",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(emptypb.Empty)
				if err := dec(in); err != nil {
					return nil, err
				}
				<-s.release
				return &emptypb.Empty{}, nil
			},
		}},
	}, s)
}

// On shutdown a server turns not ready at once, goes on serving for the
// delay, lets the call in flight finish and stops within the bound.
func TestServeDrainsInFlightCalls(t *testing.T) {
	const delay = 300 * time.Millisecond
	ops := startOps(t, delay)
	slow := &slowService{release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServerOptions{
			Name:      "test",
			Addr:      "127.0.0.1:0",
			Logger:    slog.New(slog.DiscardHandler),
			Guard:     auth.NewGuard(nil, auth.Rules{"/test.Slow/Wait": &authv1.AccessRule{Public: true}}, false),
			Register:  slow.register,
			Ready:     func(context.Context) error { return nil },
			Ops:       ops,
			Listening: func(a net.Addr) { addrc <- a },
		})
	}()
	addr := <-addrc
	deadline := time.Now().Add(5 * time.Second)
	for {
		if code, _ := get(t, ops, "/readyz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cc, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	callErr := make(chan error, 1)
	go func() {
		callErr <- cc.Invoke(context.Background(), "/test.Slow/Wait", &emptypb.Empty{}, &emptypb.Empty{})
	}()
	time.Sleep(100 * time.Millisecond) // the call is in flight

	stopped := time.Now()
	cancel()
	time.Sleep(50 * time.Millisecond)
	if code, body := get(t, ops, "/readyz"); code != 503 {
		t.Errorf("/readyz after the stop signal: %d %s", code, body)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned with a call in flight: %v", err)
	case <-time.After(delay + 200*time.Millisecond):
	}
	close(slow.release)
	if err := <-callErr; err != nil {
		t.Errorf("the call in flight failed: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not stop within the bound")
	}
	if took := time.Since(stopped); took < delay {
		t.Errorf("stopped after %v, before the delay %v", took, delay)
	}
}
