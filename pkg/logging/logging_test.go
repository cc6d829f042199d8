package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/dhosauth/dhosauth/pkg/logging"
	"go.opentelemetry.io/otel/trace"
)

const jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJwMSIsInNjb3BlIjoicmVhZCJ9.c2lnbmF0dXJlLWJ5dGVz"

// Every format redacts the same way: whatever the caller passes, no
// token, OTP, code or key reaches the output.
func TestRedaction(t *testing.T) {
	for _, format := range []string{"json", "plain", "colour"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			lg, err := logging.New(&buf, format, "DEBUG")
			if err != nil {
				t.Fatal(err)
			}
			secrets := []string{jwt, "OTP-9f3k", "ACT-CODE-77", "AUTHCODE-XYZ", "hs-key-material", "hunter2-password", "opaque-bearer-value"}
			lg.With("hs_key", "hs-key-material").Info("refused token "+jwt,
				"otp", "OTP-9f3k",
				"activation_code", "ACT-CODE-77",
				"x-authorisation-code", "AUTHCODE-XYZ",
				"header", "Bearer opaque-bearer-value",
				"error", errors.New("verify "+jwt+": expired"),
				slog.Group("db", "password", "hunter2-password"),
				"event_data", map[string]any{"device_id": "d1", "jwt": jwt, "nested": map[string]any{"authorisation_code": "AUTHCODE-XYZ"}},
				"code", "NOT_FOUND",
				"device_id", "d1",
			)
			out := buf.String()
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("output contains %q:\n%s", s, out)
				}
			}
			// What is not secret stays readable.
			for _, keep := range []string{"NOT_FOUND", "d1", "refused token", logging.Redacted} {
				if !strings.Contains(out, keep) {
					t.Errorf("output lost %q:\n%s", keep, out)
				}
			}
		})
	}
}

func TestRedactString(t *testing.T) {
	cases := map[string]string{
		"token " + jwt + " refused":             "token [REDACTED] refused",
		"Authorization: Bearer abc.def-ghi":     "Authorization: Bearer [REDACTED]",
		"bearer xyz":                            "bearer [REDACTED]",
		"a basic message with eyJ but no token": "a basic message with eyJ but no token",
	}
	for in, want := range cases {
		if got := logging.RedactString(in); got != want {
			t.Errorf("RedactString(%q) = %q, want %q", in, got, want)
		}
	}
}

// A line logged with a context that carries a span names the trace.
func TestTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	lg, err := logging.New(&buf, "json", "INFO")
	if err != nil {
		t.Fatal(err)
	}
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	lg.With("service", "x").InfoContext(ctx, "in a request")
	lg.Info("outside any request")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["trace_id"] != tid.String() || first["span_id"] != sid.String() || first["service"] != "x" {
		t.Errorf("first line %v", first)
	}
	if _, ok := second["trace_id"]; ok {
		t.Errorf("second line has a trace id: %v", second)
	}
}

func TestLevelsAndFormats(t *testing.T) {
	var buf bytes.Buffer
	lg, err := logging.New(&buf, "plain", "WARN")
	if err != nil {
		t.Fatal(err)
	}
	lg.Info("hidden")
	lg.Warn("shown")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
		t.Errorf("WARN level output %q", out)
	}
	if _, err := logging.New(&buf, "xml", "INFO"); err == nil {
		t.Error("LOG_FORMAT xml accepted")
	}
	if _, err := logging.New(&buf, "json", "LOUD"); err == nil {
		t.Error("LOG_LEVEL LOUD accepted")
	}
}
