// Package servicetest is test support for the services' tests, and for
// tests only: no production code imports it (it fails tests through
// testing.TB). It holds the scaffolding the services' tests share:
//
//   - a service's gRPC server, wired as its main wires it, run by
//     service.Serve on a loopback port until the test ends (Serve), a
//     client connection to it (Dial), fake peers (ServePeer) and an address
//     where nothing listens (DeadAddr);
//   - legacy HS512 tokens for the callers of the tests (HSIssuer, Bearer)
//     and the checks of a call's outcome (WantCode);
//   - a service's run function started as its main starts it and stopped
//     as SIGTERM stops it (StartRun, StartServe, RunRejects);
//   - a log sink, a settable clock and the audit events a service
//     recorded (LogBuffer, Clock, AuditEvents).
//
// It lives in the pkg module, in ordinary files rather than _test.go
// files, so that every service module can import it from its _test.go
// files.
package servicetest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/service"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// StartTimeout bounds how long a server or a run function may take to
// listen (a run function on PostgreSQL migrates its store first).
const StartTimeout = 20 * time.Second

// StopTimeout bounds how long a run function may take to return once its
// context is cancelled.
const StopTimeout = 15 * time.Second

// Serve runs service.Serve(o) until the test ends, on 127.0.0.1:0 unless
// o.Addr says otherwise, and returns the address it listens on (o.Listening,
// when set, is told it too). It fails the test if the server does not
// listen within StartTimeout; the test's cleanup stops the server and fails
// the test if Serve returned an error.
func Serve(t testing.TB, o service.ServerOptions) string {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	addrc := make(chan net.Addr, 1)
	listening := o.Listening
	o.Listening = func(a net.Addr) {
		if listening != nil {
			listening(a)
		}
		addrc <- a
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Serve(ctx, o) }()
	select {
	case a := <-addrc:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve %s: %v", o.Name, err)
			}
		})
		return a.String()
	case err := <-done:
		cancel()
		t.Fatalf("serve %s: %v", o.Name, err)
	case <-time.After(StartTimeout):
		cancel()
		t.Fatalf("server %s did not start within %v", o.Name, StartTimeout)
	}
	return ""
}

// Dial returns a plain client connection to addr (no credentials of its
// own: calls carry their caller's metadata), closed when the test ends.
func Dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// ServePeer serves a fake peer service (register registers it) on a plain
// gRPC server with opts, on 127.0.0.1:0 until the test ends, and returns
// its address.
func ServePeer(t testing.TB, register func(*grpc.Server), opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer(opts...)
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// DeadAddr returns a loopback address where nothing listens: a peer that
// is down.
func DeadAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}
