package edge

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	devicev1 "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	sessionv1 "github.com/dhosauth/dhosauth/gen/go/dhos/session/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"google.golang.org/grpc/metadata"
)

// testData serves the non-production POST /drop_data and
// POST /reset_test_data. The edge checks ALLOW_DROP_DATA and that a bearer
// token is present; each service checks the token is a system token and
// its own ALLOW_DROP_DATA.
type testData struct {
	allow      bool
	errs       *errorWriter
	log        *slog.Logger
	activation activationv1.ActivationServiceClient
	device     devicev1.DeviceServiceClient
	token      tokenv1.TokenServiceClient
	session    sessionv1.SessionServiceClient
}

// testDataResult is the body of a successful drop or reset.
type testDataResult struct {
	Complete  bool   `json:"complete"`
	TimeTaken string `json:"time_taken"`
}

func (t *testData) dropData(w http.ResponseWriter, r *http.Request) {
	t.run(w, r, "drop_data", t.drop)
}

func (t *testData) resetTestData(w http.ResponseWriter, r *http.Request) {
	t.run(w, r, "reset_test_data", func(ctx context.Context) error {
		if err := t.drop(ctx); err != nil {
			return err
		}
		_, err := t.activation.ResetTestData(ctx, &activationv1.ResetTestDataRequest{})
		return err
	})
}

func (t *testData) run(w http.ResponseWriter, r *http.Request, name string, do func(context.Context) error) {
	authz := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(strings.TrimSpace(authz), " ")
	if !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(tok) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dhos"`)
		t.errs.write(w, http.StatusUnauthorized, "a bearer token is required")
		return
	}
	if !t.allow {
		t.errs.write(w, http.StatusForbidden, "dropping data is not allowed here (ALLOW_DROP_DATA is not true)")
		return
	}
	pairs := []string{"authorization", authz}
	for _, h := range []string{"traceparent", "tracestate"} {
		if v := r.Header.Get(h); v != "" {
			pairs = append(pairs, h, v)
		}
	}
	ctx := metadata.NewOutgoingContext(r.Context(), metadata.Pairs(pairs...))
	start := time.Now()
	if err := do(ctx); err != nil {
		t.errs.writeError(ctx, w, r, err)
		return
	}
	took := time.Since(start)
	t.log.InfoContext(ctx, "test data endpoint done", "endpoint", name, "duration", took)
	body, _ := json.Marshal(testDataResult{
		Complete:  true,
		TimeTaken: strconv.FormatFloat(took.Seconds(), 'f', 3, 64) + "s",
	})
	writeJSON(w, http.StatusOK, body)
}

// drop empties every service's store, one after the other, stopping at
// the first refusal.
func (t *testData) drop(ctx context.Context) error {
	if _, err := t.activation.DropData(ctx, &activationv1.DropDataRequest{}); err != nil {
		return err
	}
	if _, err := t.device.DropData(ctx, &devicev1.DropDataRequest{}); err != nil {
		return err
	}
	if _, err := t.token.DropData(ctx, &tokenv1.DropDataRequest{}); err != nil {
		return err
	}
	_, err := t.session.DropData(ctx, &sessionv1.DropDataRequest{})
	return err
}
