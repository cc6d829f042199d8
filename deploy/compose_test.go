package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// load parses a YAML file (anchors and merge keys resolved).
func load(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// TestCompose checks docker-compose.yml as `docker compose config` would
// see it: every dependency and every process of the suite, how each is
// built, configured, ordered and reached.
func TestCompose(t *testing.T) {
	c := load(t, "../docker-compose.yml")
	services := dict(c, "services")
	for _, dep := range []string{"postgres", "rabbitmq", "otel-collector", "jaeger", "prometheus", "grafana"} {
		s := dict(services, dep)
		if s == nil || str(s, "image") == "" {
			t.Errorf("compose: no %s with an image", dep)
		}
	}
	for _, dep := range []string{"postgres", "rabbitmq"} {
		if len(list(services, dep, "healthcheck", "test")) == 0 {
			t.Errorf("compose: %s has no healthcheck (the suite waits for it)", dep)
		}
	}
	// Files the dependencies mount are in the repository.
	for _, name := range []string{"otel-collector", "prometheus", "grafana"} {
		for _, v := range list(services, name, "volumes") {
			src, _, _ := strings.Cut(fmt.Sprint(v), ":")
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("compose: %s mounts %s: %v", name, src, err)
				}
			}
		}
	}

	opsPorts := map[string]string{}
	for name, want := range processes {
		s := dict(services, name)
		if s == nil {
			t.Errorf("compose: no %s", name)
			continue
		}
		if str(s, "image") == "" || str(s, "build", "dockerfile") == "" {
			t.Errorf("compose: %s lacks image and build", name)
		} else if _, err := os.Stat(filepath.Join("..", str(s, "build", "context"), str(s, "build", "dockerfile"))); err != nil {
			t.Errorf("compose: %s builds from a missing Dockerfile: %v", name, err)
		}
		if cmd := list(s, "command"); len(cmd) != 1 || cmd[0] != name {
			t.Errorf("compose: %s command %v", name, cmd)
		}
		if s["read_only"] != true || !strings.Contains(fmt.Sprint(s["cap_drop"]), "ALL") {
			t.Errorf("compose: %s is not read-only with every capability dropped", name)
		}
		env := map[string]string{}
		for k, v := range dict(s, "environment") {
			env[k] = fmt.Sprint(v)
		}
		for k, v := range map[string]string{
			"DATABASE_HOST":               "postgres",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4317",
			"OTEL_SERVICE_NAME":           name,
			"AMQP_URL":                    "amqp://guest:guest@rabbitmq:5672/",
		} {
			if env[k] != v {
				t.Errorf("compose: %s %s=%q, want %q", name, k, env[k], v)
			}
		}
		for _, k := range []string{"INTERNAL_AUTH_KEY", "CODE_HASH_KEY", "KEY_ENCRYPTION_KEY", "DATABASE_PASSWORD"} {
			if env[k] == "" {
				t.Errorf("compose: %s lacks %s (every container must share it)", name, k)
			}
		}
		for svc, p := range processes {
			if svc != "gateway" && env[strings.ToUpper(svc)+"_GRPC_ADDR"] != fmt.Sprintf("%s:%d", svc, p.port) {
				t.Errorf("compose: %s finds %s at %q", name, svc, env[strings.ToUpper(svc)+"_GRPC_ADDR"])
			}
		}
		if name != "gateway" && env["GRPC_LISTEN_ADDR"] != fmt.Sprintf("0.0.0.0:%d", want.port) {
			t.Errorf("compose: %s listens on %q", name, env["GRPC_LISTEN_ADDR"])
		}
		if env["OPS_ADDR"] != fmt.Sprintf("0.0.0.0:%d", want.ops) {
			t.Errorf("compose: %s OPS_ADDR %q", name, env["OPS_ADDR"])
		}
		opsPorts[name] = fmt.Sprint(want.ops)
		deps := dict(s, "depends_on")
		if str(deps, "postgres", "condition") != "service_healthy" || deps["otel-collector"] == nil {
			t.Errorf("compose: %s depends_on %v: want postgres healthy and the collector", name, deps)
		}
		if name == "gateway" {
			for svc := range processes {
				if svc != "gateway" && deps[svc] == nil {
					t.Errorf("compose: the gateway does not wait for %s", svc)
				}
			}
			if !strings.Contains(fmt.Sprint(s["ports"]), "8080:8080") {
				t.Errorf("compose: the edge is not published on 8080: %v", s["ports"])
			}
		} else if s["ports"] != nil {
			t.Errorf("compose: %s publishes ports %v; only the edge should", name, s["ports"])
		}
	}

	// Prometheus scrapes every ops listener; the collector sends traces
	// to Jaeger.
	prom := load(t, "prometheus.yml")
	targets := fmt.Sprint(dig(prom, "scrape_configs"))
	for name, port := range opsPorts {
		if !strings.Contains(targets, name+":"+port) {
			t.Errorf("prometheus.yml does not scrape %s:%s", name, port)
		}
	}
	col := load(t, "otel-collector.yaml")
	if dig(col, "receivers", "otlp", "protocols", "grpc") == nil {
		t.Error("otel-collector.yaml: no OTLP gRPC receiver")
	}
	if !strings.Contains(fmt.Sprint(dig(col, "service", "pipelines", "traces", "exporters")), "otlp/jaeger") ||
		!strings.Contains(str(col, "exporters", "otlp/jaeger", "endpoint"), "jaeger:4317") {
		t.Error("otel-collector.yaml: traces are not exported to Jaeger")
	}
}

// TestDockerfile: multi-stage, static, non-root, every binary.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("%d stages: want a build stage and a runtime stage", len(froms))
	}
	final := df[strings.LastIndex(df, "\nFROM "):]
	if base := froms[len(froms)-1][1]; !strings.Contains(base, "distroless/static") && base != "scratch" {
		t.Errorf("runtime stage on %s: want distroless static or scratch", base)
	}
	if !strings.Contains(df, "CGO_ENABLED=0") {
		t.Error("binaries are not built static (CGO_ENABLED=0)")
	}
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(final)
	if user == nil || strings.HasPrefix(user[1], "0") || user[1] == "root" {
		t.Errorf("runtime user %v: want a non-root uid", user)
	}
	for _, build := range []string{"for s in activation device token session", "./services/$s/cmd/$s", "./gateway/cmd/gateway", "./cmd/dhosctl"} {
		if !strings.Contains(df, build) {
			t.Errorf("the image does not build %s", build)
		}
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "bin", "data"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).Match(ignore) {
			t.Errorf(".dockerignore does not leave out %s", want)
		}
	}
}

// TestDashboard: the Grafana dashboard is valid and covers the suite's
// metrics (e2e checks that the processes serve the names it queries).
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/dhosauth.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" {
		t.Error("no uid")
	}
	ids := map[int]bool{}
	var exprs strings.Builder
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs.WriteString(tg.Expr + "\n")
		}
	}
	for _, m := range []string{
		"http_server_request_duration_seconds", "rpc_server_call_duration_seconds",
		"dhosauth_tokens_issued_total", "dhosauth_activation_failures_total", "dhosauth_ratelimit_refusals_total",
		"dhosauth_token_signing_key_age_seconds", "db_client_connection_count",
	} {
		if !strings.Contains(exprs.String(), m) {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}
