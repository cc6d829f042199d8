// Command tokenbench measures TokenService.VerifyToken on this machine,
// load generator included: it starts the real token binary, signs tokens
// with the key it mounts in the service (SIGNING_KEYS_DIR, ES256), and
// reports
//
//   - the in-process signature-verification rate (pkg/auth, no cache, one
//     goroutine per CPU): the ceiling for tokens never seen before;
//   - VerifyToken over gRPC for tokens seen before (answered from the
//     verify cache) and for tokens never seen (a signature check each);
//   - latency percentiles at a fixed rate (default 5,000/s).
//
// Run it with `make bench`.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tokenbench:", err)
		os.Exit(1)
	}
}

const issuer = "https://bench.dhos.example/"

type options struct {
	bin         string
	duration    time.Duration
	conns       int
	concurrency int
	rate        int
	seen        int
	ops         string
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tokenbench", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.bin, "token-bin", "bin/token", "the token service binary")
	fs.DurationVar(&o.duration, "duration", 8*time.Second, "length of each measurement")
	fs.IntVar(&o.conns, "conns", 4, "gRPC connections of the load generator")
	fs.IntVar(&o.concurrency, "concurrency", 64, "calls in flight in the throughput runs")
	fs.IntVar(&o.rate, "rate", 5000, "calls per second in the latency run")
	fs.IntVar(&o.seen, "seen", 1000, "distinct tokens in the seen-token runs")
	fs.StringVar(&o.ops, "ops", "off", "OPS_ADDR of the token service (metrics, pprof), off by default")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	pair, err := token.NewKeyPair(key)
	if err != nil {
		return err
	}
	addr, stopService, err := startService(ctx, o.bin, o.ops, key)
	if err != nil {
		return err
	}
	defer stopService()
	clients, closeClients, err := dial(addr, o.conns)
	if err != nil {
		return err
	}
	defer closeClients()

	fmt.Fprintf(out, "tokenbench: %d CPUs (GOMAXPROCS %d), token service %s (ES256, file key), load generator in this process\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), o.bin)
	// Enough distinct tokens for the unseen runs, signed in parallel.
	unseenN := 60000 * int(o.duration/time.Second)
	pool := signTokens(pair, unseenN+o.seen)
	seen, unseen := pool[:o.seen], pool[o.seen:]

	inproc := inProcessRate(pair, unseen, o.duration/2)
	fmt.Fprintf(out, "  in-process signature verification (pkg/auth, no cache): %8.0f /s\n", inproc)

	// Warm the cache with the seen tokens.
	for _, t := range seen {
		if _, err := clients[0].VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: t}); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	seenRate, seenLat, err := closedLoop(ctx, clients, o.concurrency, o.duration, cycle(seen))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  VerifyToken, seen tokens   (gRPC, %3d in flight):    %8.0f /s   p50 %s p99 %s\n", o.concurrency, seenRate, seenLat.p(50), seenLat.p(99))
	unseenRate, unseenLat, err := closedLoop(ctx, clients, o.concurrency, o.duration, once(unseen))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  VerifyToken, unseen tokens (gRPC, %3d in flight):    %8.0f /s   p50 %s p99 %s   (%.0f%% of in-process)\n",
		o.concurrency, unseenRate, unseenLat.p(50), unseenLat.p(99), 100*unseenRate/inproc)
	pacedSeen, err := paced(ctx, clients, o.rate, o.duration, cycle(seen))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  VerifyToken at %d/s, seen tokens:    p50 %s  p99 %s  max %s\n", o.rate, pacedSeen.p(50), pacedSeen.p(99), pacedSeen.p(100))
	pacedUnseen, err := paced(ctx, clients, o.rate, o.duration, once(unseen[len(unseen)/2:]))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  VerifyToken at %d/s, unseen tokens:  p50 %s  p99 %s  max %s\n", o.rate, pacedUnseen.p(50), pacedUnseen.p(99), pacedUnseen.p(100))

	verdict := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "MISSED"
	}
	fmt.Fprintf(out, "targets: seen >= 15000/s: %s; unseen >= 70%% of in-process: %s; p99 < 5ms at %d/s: %s\n",
		verdict(seenRate >= 15000), verdict(unseenRate >= 0.7*inproc), o.rate, verdict(pacedSeen.p(99) < 5*time.Millisecond))
	return nil
}

// startService runs the token binary with the bench key mounted, and
// returns its gRPC address once it is healthy.
func startService(ctx context.Context, bin, ops string, key *ecdsa.PrivateKey) (string, func(), error) {
	dir, err := os.MkdirTemp("", "tokenbench")
	if err != nil {
		return "", nil, err
	}
	keys := filepath.Join(dir, "keys")
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err == nil {
		err = os.MkdirAll(keys, 0o700)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(keys, "bench.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := lis.Addr().String()
	lis.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"ENVIRONMENT=TEST", "LOG_LEVEL=WARN", "LOG_FORMAT=json", "OPS_ADDR="+ops,
		"DATA_DIR="+dir, "TOKEN_GRPC_ADDR="+addr, "SIGNING_KEYS_DIR="+keys,
		"TOKEN_ISSUER="+issuer, "INTERNAL_AUTH_KEY=tokenbench-internal-key-0123456789abcdef")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("start %s: %w (run `make build` first)", bin, err)
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		stop()
		return "", nil, err
	}
	defer cc.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		r, err := healthpb.NewHealthClient(cc).Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return addr, stop, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return "", nil, errors.New("the token service did not become healthy")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dial(addr string, n int) ([]tokenv1.TokenServiceClient, func(), error) {
	var conns []*grpc.ClientConn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	var out []tokenv1.TokenServiceClient
	for range n {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		conns = append(conns, cc)
		out = append(out, tokenv1.NewTokenServiceClient(cc))
	}
	return out, closeAll, nil
}

// signTokens makes n distinct device tokens valid for an hour.
func signTokens(pair *token.KeyPair, n int) []string {
	out := make([]string, n)
	now := time.Now().Truncate(time.Second)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				raw, err := pair.Sign(token.Claims{
					Issuer: issuer, Audience: issuer, Subject: "device-bench", ID: fmt.Sprintf("jti-%d", i),
					IssuedAt: now, ExpiresAt: now.Add(time.Hour),
					Scopes:   []string{"read:send_entry_identifier", "read:send_device"},
					Metadata: map[string]string{"device_id": fmt.Sprintf("device-%d", i%5000)},
				})
				if err != nil {
					panic(err)
				}
				out[i] = raw
			}
		})
	}
	wg.Wait()
	return out
}

// inProcessRate verifies distinct tokens with pkg/auth (no cache) on every
// CPU for d.
func inProcessRate(pair *token.KeyPair, tokens []string, d time.Duration) float64 {
	v := auth.NewVerifier(auth.VerifierOptions{Issuer: issuer, Audience: issuer,
		Keys: auth.StaticKeys{pair.ID(): {Key: pair.Private.Public(), Alg: pair.Alg}}})
	var next, done atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Now().Before(stop) {
				i := next.Add(1) - 1
				if _, err := v.Verify(context.Background(), tokens[int(i)%len(tokens)]); err != nil {
					panic(err)
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds()
}

// source hands out tokens to send.
type source func() (string, bool)

func cycle(tokens []string) source {
	var i atomic.Int64
	return func() (string, bool) { return tokens[int(i.Add(1)-1)%len(tokens)], true }
}

func once(tokens []string) source {
	var i atomic.Int64
	return func() (string, bool) {
		n := int(i.Add(1) - 1)
		if n >= len(tokens) {
			return "", false
		}
		return tokens[n], true
	}
}

type latencies []time.Duration

func (l latencies) p(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(float64(len(l)-1) * q / 100)
	return l[i].Round(10 * time.Microsecond)
}

// closedLoop keeps n calls in flight for d and returns the rate.
func closedLoop(ctx context.Context, clients []tokenv1.TokenServiceClient, n int, d time.Duration, next source) (float64, latencies, error) {
	stop := time.Now().Add(d)
	var mu sync.Mutex
	var all latencies
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for w := range n {
		c := clients[w%len(clients)]
		wg.Go(func() {
			var mine latencies
			for time.Now().Before(stop) {
				tok, ok := next()
				if !ok {
					break
				}
				t0 := time.Now()
				if _, err := c.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: tok}); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(all)
	return float64(len(all)) / elapsed.Seconds(), all, firstErr
}

// paced sends rate calls per second for d (open loop: a call's latency is
// counted from when it was due, so a stall is not hidden).
func paced(ctx context.Context, clients []tokenv1.TokenServiceClient, rate int, d time.Duration, next source) (latencies, error) {
	total := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	lat := make(latencies, total)
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 512)
	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		tok, ok := next()
		if !ok {
			lat = lat[:i]
			break
		}
		sem <- struct{}{}
		c := clients[i%len(clients)]
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := c.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: tok})
			lat[i] = time.Since(due)
			if err != nil {
				mu.Lock()
				firstErr = cmpErr(firstErr, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(lat)
	return lat, firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
