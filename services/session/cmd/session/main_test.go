package main

import (
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/service/servicetest"
)

// TestRunConfigErrors: every configuration problem is reported at once.
func TestRunConfigErrors(t *testing.T) {
	servicetest.RunRejects(t, map[string]string{
		"ENVIRONMENT": "NOWHERE", "LOG_LEVEL": "LOUD", "ALLOW_DROP_DATA": "perhaps", "DATABASE_MAX_CONNS": "0", "DATA_DIR": t.TempDir(),
	}, run, "ENVIRONMENT", "LOG_LEVEL", "ALLOW_DROP_DATA", "DATABASE_MAX_CONNS")
}

// TestRunServes starts the service on the embedded store and stops it.
func TestRunServes(t *testing.T) {
	r := servicetest.StartRun(t, map[string]string{"SESSION_GRPC_ADDR": "127.0.0.1:0", "SESSION_HTTP_ADDR": "127.0.0.1:0"}, run)
	r.Serving(300 * time.Millisecond)
	r.Stop()
}
