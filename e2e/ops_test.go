package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/jackc/pgx/v5"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// receiver is an OTLP trace collector: the processes export their spans
// to it exactly as they would to an OpenTelemetry collector.
type receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []exported
}

// exported is one span with the service.name of the process that sent it.
type exported struct {
	service string
	span    *tracepb.Span
}

func (r *receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		svc := attr(rs.GetResource().GetAttributes(), "service.name")
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				r.spans = append(r.spans, exported{service: svc, span: sp})
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// trace returns the spans of one trace received so far.
func (r *receiver) trace(id string) []exported {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []exported
	for _, e := range r.spans {
		if hex.EncodeToString(e.span.GetTraceId()) == id {
			out = append(out, e)
		}
	}
	return out
}

func (r *receiver) all() []exported {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exported(nil), r.spans...)
}

func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// startReceiver serves the OTLP trace service on a free port and returns
// the variables that point the processes at it.
func startReceiver(t *testing.T) (*receiver, map[string]string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, r)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return r, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + lis.Addr().String(),
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_BSP_SCHEDULE_DELAY":     "100",
	}
}

// newTraceparent makes a sampled W3C traceparent and returns its trace id.
func newTraceparent() (string, string) {
	tid, sid := make([]byte, 16), make([]byte, 8)
	_, _ = rand.Read(tid)
	_, _ = rand.Read(sid)
	id := hex.EncodeToString(tid)
	return "00-" + id + "-" + hex.EncodeToString(sid) + "-01", id
}

// TestTelemetry follows REST requests through the real processes: one
// trace from the edge through the gRPC services to the database, exported
// over OTLP; the trace id in the response, the error body and every log
// line of the request; per-route and per-RPC metrics on the ops
// listeners; and no secret in any span.
func TestTelemetry(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			rcv, env := startReceiver(t)
			for k, v := range b.env(t) {
				env[k] = v
			}
			s := Start(t, env)
			telemetry(t, s, rcv)
		})
	}
}

func telemetry(t *testing.T, s *Suite, rcv *receiver) {
	admin := s.AdminToken(t)
	dev := createDevice(t, s, admin, map[string]any{"location_id": Unique("ward"), "description": "traced"})
	id := dev["uuid"].(string)

	// A request with the caller's traceparent: the trace continues, and
	// the response names it.
	tp, traceID := newTraceparent()
	r := Expect(t, s.Do("GET", "/dhos/v1/device/"+id, admin, nil, "traceparent", tp), 200)
	if got := r.Header.Get("Traceparent"); !strings.Contains(got, traceID) || got == tp {
		t.Errorf("response traceparent %q, want the edge's span in trace %s", got, traceID)
	}
	// An error body quotes the trace.
	tp2, traceID2 := newTraceparent()
	e := Expect(t, s.Do("GET", "/dhos/v1/device/"+Unique("nope"), admin, nil, "traceparent", tp2), 404).JSON(t)
	if e["trace_id"] != traceID2 {
		t.Errorf("error body %v, want trace_id %s", e, traceID2)
	}
	// Without a traceparent the edge starts a trace of its own.
	e = Expect(t, s.Do("GET", "/dhos/v1/device/"+Unique("nope"), admin, nil), 404).JSON(t)
	if tid, _ := e["trace_id"].(string); len(tid) != 32 {
		t.Errorf("error body %v has no trace_id", e)
	}

	// A patient activation, validated with a wrong OTP, then the right one:
	// secrets travel through the edge and two services.
	patient := Unique("patient")
	a := createPatientActivation(t, s, admin, patient)
	Expect(t, validatePatient(s, a.Code, wrongOTP(a.OTP)), 404)
	auth := Expect(t, validatePatient(s, a.Code, a.OTP), 200).JSON(t)["authorisation_code"].(string)
	s.Secret(auth)
	jwt := Expect(t, patientJWT(t, s, patient, auth), 200).JSON(t)["jwt"].(string)
	s.Secret(jwt)

	// One trace: the edge's server span, the device service's server span
	// under the edge's client span, and a database statement under it.
	var spans []exported
	deadline := time.Now().Add(15 * time.Second)
	for {
		spans = rcv.trace(traceID)
		if hasSpans(spans) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !hasSpans(spans) {
		for _, sp := range spans {
			t.Logf("span %s %q kind %v", sp.service, sp.span.GetName(), sp.span.GetKind())
		}
		t.Fatalf("trace %s lacks the edge, device or database span (%d spans)", traceID, len(spans))
	}
	byID := map[string]exported{}
	for _, sp := range spans {
		byID[hex.EncodeToString(sp.span.GetSpanId())] = sp
	}
	for _, sp := range spans {
		if sp.service == "device" && sp.span.GetKind() == tracepb.Span_SPAN_KIND_SERVER {
			parent := byID[hex.EncodeToString(sp.span.GetParentSpanId())]
			if parent.service != "gateway" || parent.span.GetKind() != tracepb.Span_SPAN_KIND_CLIENT {
				t.Errorf("device server span's parent is %s %q, want the gateway's client span", parent.service, parent.span.GetName())
			}
		}
		if sp.service == "gateway" && sp.span.GetKind() == tracepb.Span_SPAN_KIND_SERVER {
			if sp.span.GetName() != "GET /dhos/v1/device/{device_id}" {
				t.Errorf("edge span name %q, want the route", sp.span.GetName())
			}
			if hex.EncodeToString(sp.span.GetParentSpanId()) != strings.Split(tp, "-")[2] {
				t.Errorf("edge span does not continue the caller's traceparent")
			}
		}
	}

	// No span of any trace names a secret, in its name or attributes
	// (once the spans of the requests that carried them have arrived).
	waitFor(t, 15*time.Second, "the activation spans", func() bool {
		var validations, jwts int
		for _, sp := range rcv.all() {
			if sp.service != "activation" || sp.span.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
				continue
			}
			switch sp.span.GetName() {
			case "dhos.activation.v1.ActivationService/ValidateActivation":
				validations++
			case "dhos.activation.v1.ActivationService/GetPatientJwt":
				jwts++
			}
		}
		return validations >= 2 && jwts >= 1
	})
	secrets := []string{a.Code, a.OTP, auth, jwt, admin}
	for _, sp := range rcv.all() {
		text := sp.span.GetName()
		for _, kv := range sp.span.GetAttributes() {
			text += " " + kv.GetValue().String()
		}
		for _, ev := range sp.span.GetEvents() {
			text += " " + ev.GetName()
			for _, kv := range ev.GetAttributes() {
				text += " " + kv.GetValue().String()
			}
		}
		for _, sec := range secrets {
			if strings.Contains(text, sec) {
				t.Errorf("span %s %q contains a secret (%d characters)", sp.service, sp.span.GetName(), len(sec))
			}
		}
	}

	// Every log line of the request carries its trace id.
	for _, p := range []string{"gateway", "device"} {
		if !strings.Contains(s.Log(p), `"trace_id":"`+traceID+`"`) {
			t.Errorf("the %s log has no line with trace_id %s", p, traceID)
		}
	}

	// Metrics, per route at the edge and per RPC in the services.
	wantMetrics := map[string][][]string{
		"gateway": {
			{`http_server_request_duration_seconds_count`, `http_route="/dhos/v1/device/{device_id}"`, `http_response_status_code="200"`},
			{`http_server_request_duration_seconds_count`, `http_route="/dhos/v1/device/{device_id}"`, `http_response_status_code="404"`},
			{`rpc_client_call_duration_seconds_count`, `rpc_method="dhos.device.v1.DeviceService/GetDevice"`},
		},
		"device": {
			{`rpc_server_call_duration_seconds_count`, `rpc_method="dhos.device.v1.DeviceService/GetDevice"`, `rpc_response_status_code="OK"`},
			{`rpc_server_call_duration_seconds_count`, `rpc_method="dhos.device.v1.DeviceService/GetDevice"`, `rpc_response_status_code="NOT_FOUND"`},
			{`db_client_connection_count`, `db_client_connection_state="idle"`},
			{`db_client_connection_max`},
		},
		"activation": {
			{`dhosauth_activation_failures_total`, `kind="patient"`, `reason="wrong_otp"`},
		},
		"token": {
			{`dhosauth_tokens_issued_total`, `kind="patient"`},
		},
	}
	for p, want := range wantMetrics {
		m := s.OpsGet(p, "/metrics")
		if m.Status != 200 {
			t.Fatalf("%s /metrics: %d %s", p, m.Status, m.Body)
		}
		for _, w := range want {
			if !hasSeries(string(m.Body), w[0], w[1:]...) {
				t.Errorf("%s /metrics has no series %s with %v", p, w[0], w[1:])
			}
		}
		if strings.Contains(string(m.Body), id) {
			t.Errorf("%s /metrics names a device id: labels must be bounded", p)
		}
	}

	// Every metric the Grafana dashboard queries is served (except those
	// that only appear once something happens: a rate-limit refusal, an
	// audit broker, a secret with an expiry date).
	var all strings.Builder
	for _, p := range processes {
		all.Write(s.OpsGet(p, "/metrics").Body)
	}
	for _, m := range dashboardMetrics(t) {
		switch m {
		case "dhosauth_ratelimit_refusals_total", "dhosauth_audit_outbox_depth", "dhosauth_audit_outbox_age_seconds",
			"dhosauth_token_secret_time_to_expiry_seconds":
			continue
		}
		if !strings.Contains(all.String(), "\n"+m) {
			t.Errorf("the dashboard queries %s, which no process serves", m)
		}
	}

	// Health of every process.
	for _, p := range processes {
		if r := s.OpsGet(p, "/livez"); r.Status != 200 {
			t.Errorf("%s /livez: %d %s", p, r.Status, r.Body)
		}
		if r := s.OpsGet(p, "/readyz"); r.Status != 200 {
			t.Errorf("%s /readyz: %d %s", p, r.Status, r.Body)
		}
	}
	if r := s.OpsGet("gateway", "/readyz"); !strings.Contains(string(r.Body), `"token":"ok"`) {
		t.Errorf("the edge's readiness does not check the services: %s", r.Body)
	}
}

// dashboardMetrics lists the metric names the Grafana dashboard queries.
func dashboardMetrics(t *testing.T) []string {
	b, err := os.ReadFile("../deploy/grafana/dhosauth.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range metricRe.FindAllStringSubmatch(tg.Expr, -1) {
				if !seen[m[1]] {
					seen[m[1]] = true
					out = append(out, m[1])
				}
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d metrics in the dashboard", len(out))
	}
	return out
}

// metricRe finds a metric selector in PromQL ("name{").
var metricRe = regexp.MustCompile(`([a-z_][a-z0-9_]*)\{`)

// hasSpans reports whether a trace has the edge's server span, a device
// service server span and a database statement.
func hasSpans(spans []exported) bool {
	var edge, svc, db bool
	for _, sp := range spans {
		switch {
		case sp.service == "gateway" && sp.span.GetKind() == tracepb.Span_SPAN_KIND_SERVER:
			edge = true
		case sp.service == "device" && sp.span.GetKind() == tracepb.Span_SPAN_KIND_SERVER:
			svc = true
		case sp.service == "device" && attr(sp.span.GetAttributes(), "db.system.name") != "":
			db = true
		}
	}
	return edge && svc && db
}

// hasSeries reports whether the Prometheus text has a sample of the
// metric carrying every one of the labels (name="value").
func hasSeries(text, metric string, labels ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, metric+"{")
		if !ok {
			continue
		}
		all := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// TestGracefulShutdown stops the device service and the edge with SIGTERM
// while a request is in flight (held by a table lock in PostgreSQL): both
// turn not ready at once, keep the request, answer it once the lock goes,
// and exit within the bound.
func TestGracefulShutdown(t *testing.T) {
	env := postgresEnv(t)
	env["SHUTDOWN_DELAY"] = "200ms"
	env["SHUTDOWN_TIMEOUT"] = "10s"
	s := Start(t, env)
	admin := s.AdminToken(t)
	id := createDevice(t, s, admin, map[string]any{"location_id": Unique("ward"), "description": "slow"})["uuid"].(string)

	u, err := url.Parse(storagetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + env["DATABASE_NAME"]
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, "LOCK TABLE device.devices IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	inflight := make(chan Response, 1)
	go func() { inflight <- s.Do("GET", "/dhos/v1/device/"+id, admin, nil) }()
	// Wait until the device service's query waits for the lock.
	waitFor(t, 5*time.Second, "the request to reach the database", func() bool {
		var n int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", env["DATABASE_NAME"]).Scan(&n)
		return err == nil && n > 0
	})

	stopped := time.Now()
	s.Signal("device", syscall.SIGTERM)
	s.Signal("gateway", syscall.SIGTERM)
	for _, p := range []string{"device", "gateway"} {
		waitFor(t, 2*time.Second, p+" to report not ready", func() bool {
			return s.OpsGet(p, "/readyz").Status == 503
		})
	}
	time.Sleep(500 * time.Millisecond) // past SHUTDOWN_DELAY: draining
	for _, p := range []string{"device", "gateway"} {
		select {
		case <-s.Exited(p):
			t.Fatalf("%s exited with a request in flight", p)
		default:
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-inflight:
		if got := Expect(t, r, 200).JSON(t); got["uuid"] != id {
			t.Errorf("in-flight request answered %v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight request was not answered")
	}
	for _, p := range []string{"device", "gateway"} {
		select {
		case <-s.Exited(p):
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not exit within the bound", p)
		}
		if code := s.procs[p].cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exit code %d", p, code)
		}
		if !strings.Contains(s.Log(p), "draining") {
			t.Errorf("%s did not log its drain", p)
		}
	}
	t.Logf("stopped %v after SIGTERM", time.Since(stopped).Round(time.Millisecond))
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loadResult is what a load loop saw.
type loadResult struct {
	mu       sync.Mutex
	statuses map[int]int
	// errs are transport errors other than a refused connection.
	errs []string
	// noRetry counts 503s without Retry-After.
	noRetry int
	done    chan struct{}
}

// load sends GET path from n goroutines until stop is closed or the edge
// refuses connections (it has stopped accepting).
func load(s *Suite, n int, path, token string, stop <-chan struct{}) *loadResult {
	res := &loadResult{statuses: map[int]int{}, done: make(chan struct{})}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := s.Do("GET", path, token, nil)
				res.mu.Lock()
				if r.Status == 0 {
					if !strings.Contains(string(r.Body), "connection refused") {
						res.errs = append(res.errs, string(r.Body))
					}
					res.mu.Unlock()
					return
				}
				res.statuses[r.Status]++
				if r.Status == 503 && r.Header.Get("Retry-After") == "" {
					res.noRetry++
				}
				res.mu.Unlock()
			}
		})
	}
	go func() { wg.Wait(); close(res.done) }()
	return res
}

// TestShutdownUnderLoad stops the device service, then the edge, with
// SIGTERM while clients keep calling: every call the device service
// accepted completes (its log has no failed GetDevice), every HTTP
// request the edge accepted is answered (200, or 503 with Retry-After once
// the device service is gone: a refusal, not a loss), and no connection
// breaks mid-request.
func TestShutdownUnderLoad(t *testing.T) {
	s := Start(t, map[string]string{"SHUTDOWN_DELAY": "300ms"})
	admin := s.AdminToken(t)
	id := createDevice(t, s, admin, map[string]any{"location_id": Unique("ward"), "description": "busy"})["uuid"].(string)
	path := "/dhos/v1/device/" + id

	// The device service stops under load.
	stop := make(chan struct{})
	res := load(s, 4, path, admin, stop)
	time.Sleep(300 * time.Millisecond)
	s.Signal("device", syscall.SIGTERM)
	select {
	case <-s.Exited("device"):
	case <-time.After(10 * time.Second):
		t.Fatal("device did not exit within the bound")
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	<-res.done
	if res.statuses[200] == 0 || len(res.errs) > 0 || res.noRetry > 0 {
		t.Fatalf("while the device service stopped: statuses %v, 503s without Retry-After %d, errors %v", res.statuses, res.noRetry, res.errs)
	}
	for status := range res.statuses {
		if status != 200 && status != 503 {
			t.Errorf("while the device service stopped: %d answers with status %d", res.statuses[status], status)
		}
	}
	var ok int
	for _, line := range strings.Split(s.Log("device"), "\n") {
		if !strings.Contains(line, `"method":"/dhos.device.v1.DeviceService/GetDevice"`) {
			continue
		}
		if strings.Contains(line, `"code":"OK"`) {
			ok++
		} else {
			t.Errorf("the device service failed a call it accepted: %s", line)
		}
	}
	if ok < res.statuses[200] {
		t.Errorf("the device service logged %d answered calls, the clients got %d", ok, res.statuses[200])
	}
	t.Logf("device stop: %v answers (%d calls completed by the device service)", res.statuses, ok)

	// The edge stops under load: it answers what it accepted, then
	// refuses connections.
	stop = make(chan struct{})
	res = load(s, 4, path, admin, stop)
	time.Sleep(200 * time.Millisecond)
	s.Signal("gateway", syscall.SIGTERM)
	select {
	case <-s.Exited("gateway"):
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not exit within the bound")
	}
	select {
	case <-res.done:
	case <-time.After(5 * time.Second):
		close(stop)
		<-res.done
		t.Fatal("clients were still answered after the edge exited")
	}
	if len(res.errs) > 0 || res.noRetry > 0 || res.statuses[503] == 0 {
		t.Fatalf("while the edge stopped: statuses %v, 503s without Retry-After %d, errors %v", res.statuses, res.noRetry, res.errs)
	}
	for status := range res.statuses {
		if status != 503 {
			t.Errorf("while the edge stopped: %d answers with status %d", res.statuses[status], status)
		}
	}
	t.Logf("edge stop: %v answers, then connections refused", res.statuses)
}
