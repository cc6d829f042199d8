package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"
)

// The bare reference: the same ES256 verification (pkg/auth, no cache)
// behind a grpc-go server with nothing else (no interceptors, no
// telemetry, no revocation, no cache), in its own process like the token
// service. The load generator drives it exactly as it drives VerifyToken,
// so the pair shows what the gRPC transport itself costs on this machine,
// apart from anything the token service adds.

// bareArg is the first argument that runs the bench binary as the bare
// server; the key, kid and issuer come in the environment.
const (
	bareArg    = "-bare-verify-server"
	bareKeyEnv = "BENCH_BARE_KEY" // base64 of the PKIX public key
	bareKidEnv = "BENCH_BARE_KID"
	bareIssEnv = "BENCH_BARE_ISSUER"
)

type bareServer struct {
	tokenv1.UnimplementedTokenServiceServer
	v *auth.Verifier
}

func (s *bareServer) VerifyToken(ctx context.Context, req *tokenv1.VerifyTokenRequest) (*tokenv1.VerifyTokenResponse, error) {
	p, err := s.v.Verify(ctx, req.GetToken())
	if err != nil {
		return nil, err
	}
	md, err := structpb.NewStruct(p.Metadata)
	if err != nil {
		return nil, err
	}
	return &tokenv1.VerifyTokenResponse{PrincipalKind: p.Kind, PrincipalId: p.ID, Scopes: p.Scopes, Metadata: md, TokenId: p.TokenID, Issuer: p.Issuer}, nil
}

// serveBare runs the bare server on a free loopback port, prints the
// address on stdout, and serves until killed.
func serveBare() error {
	der, err := base64.StdEncoding.DecodeString(os.Getenv(bareKeyEnv))
	if err != nil {
		return err
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return err
	}
	iss := os.Getenv(bareIssEnv)
	v := auth.NewVerifier(auth.VerifierOptions{Issuer: iss, Audience: iss, Keys: auth.StaticKeys{os.Getenv(bareKidEnv): auth.StaticKey{Key: pub, Alg: auth.AlgES256}}})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	g := grpc.NewServer()
	tokenv1.RegisterTokenServiceServer(g, &bareServer{v: v})
	fmt.Println(lis.Addr().String())
	return g.Serve(lis)
}

// bareProcess is a running bare server.
type bareProcess struct {
	cmd  *exec.Cmd
	Addr string
}

// startBare starts the bench binary as the bare server for the signer's key.
func startBare(ctx context.Context, key *ecdsa.PrivateKey, kid, issuer string) (*bareProcess, error) {
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, bareArg)
	cmd.Env = append(os.Environ(), bareKeyEnv+"="+base64.StdEncoding.EncodeToString(der), bareKidEnv+"="+kid, bareIssEnv+"="+issuer)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("bare server did not start")
		}
		return &bareProcess{cmd: cmd, Addr: a}, nil
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("bare server did not start within 10s")
	}
}

// Pid is the bare server's process id.
func (p *bareProcess) Pid() int { return p.cmd.Process.Pid }

// Stop kills the bare server and waits for it.
func (p *bareProcess) Stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}
