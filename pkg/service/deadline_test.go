package service

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// hangService's one method waits until its context ends, as a handler
// stuck on a stalled dependency does.
func registerHang(srv *grpc.Server) {
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "test.Hang",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Wait",
			Handler: func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
				in := new(emptypb.Empty)
				if err := dec(in); err != nil {
					return nil, err
				}
				h := func(ctx context.Context, _ any) (any, error) {
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return ic(ctx, in, &grpc.UnaryServerInfo{FullMethod: "/test.Hang/Wait"}, h)
			},
		}},
	}, struct{}{})
}

// TestServeCapsEveryCall: Serve bounds every unary call by RPCTimeout,
// whether the caller set no deadline or a later one, so a handler stuck
// on a dependency returns DEADLINE_EXCEEDED instead of holding its
// goroutine for as long as the caller waits.
func TestServeCapsEveryCall(t *testing.T) {
	const limit = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServerOptions{
			Name:            "test",
			Addr:            "127.0.0.1:0",
			Logger:          slog.New(slog.DiscardHandler),
			Guard:           auth.NewGuard(nil, auth.Rules{"/test.Hang/Wait": &authv1.AccessRule{Public: true}}, false),
			Register:        registerHang,
			RPCTimeout:      limit,
			ShutdownTimeout: time.Second,
			Listening:       func(a net.Addr) { addrc <- a },
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	cc, err := grpc.NewClient((<-addrc).String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	for name, callCtx := range map[string]func() (context.Context, context.CancelFunc){
		"no deadline": func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
		"later deadline": func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Hour)
		},
	} {
		t.Run(name, func(t *testing.T) {
			cctx, ccancel := callCtx()
			defer ccancel()
			start := time.Now()
			errc := make(chan error, 1)
			go func() { errc <- cc.Invoke(cctx, "/test.Hang/Wait", &emptypb.Empty{}, &emptypb.Empty{}) }()
			select {
			case err := <-errc:
				if status.Code(err) != codes.DeadlineExceeded {
					t.Fatalf("got %v, want DEADLINE_EXCEEDED", err)
				}
				if took := time.Since(start); took < limit || took > limit+2*time.Second {
					t.Fatalf("answered after %v, want about %v", took, limit)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the call was not capped: still running after 5s")
			}
		})
	}
	// A sooner deadline of the caller's is kept.
	short, scancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer scancel()
	start := time.Now()
	err = cc.Invoke(short, "/test.Hang/Wait", &emptypb.Empty{}, &emptypb.Empty{})
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > limit {
		t.Fatalf("caller's sooner deadline: %v after %v", err, time.Since(start))
	}
}

// TestServeBoundsMessageSize: a request over MaxMessageSize is refused
// with RESOURCE_EXHAUSTED before any handler sees it.
func TestServeBoundsMessageSize(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServerOptions{
			Name:            "test",
			Addr:            "127.0.0.1:0",
			Logger:          slog.New(slog.DiscardHandler),
			Guard:           auth.NewGuard(nil, auth.Rules{"/test.Hang/Wait": &authv1.AccessRule{Public: true}}, false),
			Register:        registerHang,
			RPCTimeout:      100 * time.Millisecond,
			ShutdownTimeout: time.Second,
			Listening:       func(a net.Addr) { addrc <- a },
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	cc, err := grpc.NewClient((<-addrc).String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	big := wrapperspb.Bytes(make([]byte, MaxMessageSize+1))
	err = cc.Invoke(context.Background(), "/test.Hang/Wait", big, &emptypb.Empty{})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a %d-byte message: %v, want RESOURCE_EXHAUSTED", MaxMessageSize+1, err)
	}
}
