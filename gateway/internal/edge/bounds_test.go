package edge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveEdge runs Serve on a free port until the test ends.
func serveEdge(t *testing.T, h http.Handler) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeOptions{Addr: "127.0.0.1:0", Handler: h, ShutdownTimeout: time.Second, Listening: func(a net.Addr) { addrc <- a }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return (<-addrc).String()
}

// TestSlowHeadersAreCutOff: a client that sends its headers slowly (or
// never finishes them) is disconnected after ReadHeaderTimeout, so idle
// half-open requests cannot hold connections and goroutines.
func TestSlowHeadersAreCutOff(t *testing.T) {
	addr := serveEdge(t, newEnv(t).h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "GET /running HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(ReadHeaderTimeout + 5*time.Second))
	_, err = io.ReadAll(c) // returns when the server closes the connection
	took := time.Since(start)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", took)
	}
	if took < ReadHeaderTimeout-time.Second || took > ReadHeaderTimeout+3*time.Second {
		t.Fatalf("closed after %v, want about ReadHeaderTimeout (%v)", took, ReadHeaderTimeout)
	}
}

// TestServerLimits: the edge's listener has every timeout and the header
// limit set, and refuses headers over MaxHeaderBytes with 431.
func TestServerLimits(t *testing.T) {
	srv := newHTTPServer(context.Background(), http.NotFoundHandler(), nil)
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Fatalf("an unbounded server: %+v", srv)
	}
	addr := serveEdge(t, newEnv(t).h)
	req := fmt.Sprintf("GET /running HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", MaxHeaderBytes+4096))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	go func() { _, _ = io.WriteString(c, req) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}
