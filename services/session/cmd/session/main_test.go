package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRunConfigErrors: every configuration problem is reported at once.
func TestRunConfigErrors(t *testing.T) {
	t.Setenv("ENVIRONMENT", "NOWHERE")
	t.Setenv("LOG_LEVEL", "LOUD")
	t.Setenv("ALLOW_DROP_DATA", "perhaps")
	t.Setenv("DATABASE_MAX_CONNS", "0")
	t.Setenv("DATA_DIR", t.TempDir())
	err := run(context.Background())
	if err == nil {
		t.Fatal("run accepted a bad configuration")
	}
	for _, want := range []string{"ENVIRONMENT", "LOG_LEVEL", "ALLOW_DROP_DATA", "DATABASE_MAX_CONNS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

// TestRunServes starts the service on the embedded store and stops it.
func TestRunServes(t *testing.T) {
	t.Setenv("ENVIRONMENT", "DEVELOPMENT")
	t.Setenv("DATA_DIR", t.TempDir())
	t.Setenv("SESSION_GRPC_ADDR", "127.0.0.1:0")
	t.Setenv("SESSION_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("OPS_ADDR", "127.0.0.1:0")
	t.Setenv("LOG_LEVEL", "ERROR")
	t.Setenv("DATABASE_URL", "")
	t.Setenv("DATABASE_HOST", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("run stopped early: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
}
