package service

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// ServeHTTP serves until ctx ends, goes on serving through ShutdownDelay,
// then lets a request already in flight finish before it returns.
func TestServeHTTPDrains(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	h := http.NewServeMux()
	h.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "done")
	})
	h.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })

	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- ServeHTTP(ctx, HTTPServeOptions{
			Name: "test", Addr: "127.0.0.1:0", Server: NewHTTPServer(ctx, h, nil),
			ShutdownDelay: 300 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
			Listening: func(a net.Addr) { addrc <- a },
		})
	}()
	base := fmt.Sprintf("http://%s", <-addrc)

	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	<-started
	cancel()
	// Within the delay, new requests are still served.
	time.Sleep(50 * time.Millisecond)
	resp, err := http.Get(base + "/fast")
	if err != nil {
		t.Fatalf("request during the shutdown delay: %v", err)
	}
	resp.Body.Close()
	select {
	case err := <-done:
		t.Fatalf("returned with a request in flight: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	close(release)
	if got := <-slow; got != "done" {
		t.Fatalf("in-flight request got %q", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeHTTP did not return after the drain")
	}
}

// A listener that cannot bind is an error at once.
func TestServeHTTPListenError(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	err = ServeHTTP(context.Background(), HTTPServeOptions{Name: "test", Addr: lis.Addr().String(), Server: NewHTTPServer(context.Background(), http.NotFoundHandler(), nil)})
	if err == nil {
		t.Fatal("ServeHTTP on a taken address succeeded")
	}
}
