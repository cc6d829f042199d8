package deploy

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// obj is one rendered Kubernetes object.
type obj map[string]any

func (o obj) kind() string { return str(o, "kind") }
func (o obj) name() string { return str(o, "metadata", "name") }

// dig follows keys through maps (and "0", "1" … through lists).
func dig(v any, path ...string) any {
	for _, p := range path {
		switch t := v.(type) {
		case map[string]any:
			v = t[p]
		case obj:
			v = t[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(t) {
				return nil
			}
			v = t[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, path ...string) string { s, _ := dig(v, path...).(string); return s }
func list(v any, path ...string) []any { l, _ := dig(v, path...).([]any); return l }
func dict(v any, path ...string) map[string]any {
	m, _ := dig(v, path...).(map[string]any)
	return m
}

// render builds a kustomization with the kustomize API, as
// `kustomize build` does.
func render(t *testing.T, dir string) []obj {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []obj
	for _, r := range m.Resources() {
		mm, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, obj(mm))
	}
	return out
}

// processes are the suite's workloads and their ports.
var processes = map[string]struct{ port, ops int }{
	"gateway":    {8080, 9190},
	"activation": {9091, 9191},
	"device":     {9092, 9192},
	"token":      {9093, 9193},
	"session":    {9094, 9194},
}

// selects reports whether a label selector (matchLabels, or a plain map)
// selects the labels.
func selects(sel map[string]any, labels map[string]any) bool {
	if ml, ok := sel["matchLabels"].(map[string]any); ok {
		sel = ml
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestOverlays(t *testing.T) {
	for _, overlay := range []string{"dev", "prod"} {
		t.Run(overlay, func(t *testing.T) {
			objs := render(t, "k8s/overlays/"+overlay)
			byKind := map[string][]obj{}
			for _, o := range objs {
				byKind[o.kind()] = append(byKind[o.kind()], o)
			}
			var config map[string]any
			for _, cm := range byKind["ConfigMap"] {
				if strings.HasPrefix(cm.name(), "dhosauth-config") {
					config = dict(cm, "data")
				}
			}
			if config == nil {
				t.Fatal("no dhosauth-config ConfigMap")
			}
			deployments := map[string]obj{}
			for _, d := range byKind["Deployment"] {
				deployments[d.name()] = d
			}
			for name := range processes {
				if deployments[name] == nil {
					t.Errorf("no Deployment %s", name)
				}
			}
			for name, d := range deployments {
				t.Run(name, func(t *testing.T) {
					checkWorkload(t, overlay, d, config, byKind)
				})
			}
			checkNetworkPolicies(t, byKind["NetworkPolicy"], deployments)
			if overlay == "prod" {
				if len(byKind["Ingress"]) != 1 || str(byKind["Ingress"][0], "spec", "rules", "0", "http", "paths", "0", "backend", "service", "name") != "gateway" {
					t.Error("prod: the one Ingress must lead to the gateway")
				}
			}
		})
	}
}

// checkWorkload asserts what every Deployment of the suite must have.
func checkWorkload(t *testing.T, overlay string, d obj, config map[string]any, byKind map[string][]obj) {
	name := d.name()
	pod := dict(d, "spec", "template", "spec")
	podLabels := dict(d, "spec", "template", "metadata", "labels")
	if !selects(dict(d, "spec", "selector"), podLabels) {
		t.Error("the selector does not select the pod template")
	}

	// Pod security: non-root, seccomp, no service account token.
	psc := dict(pod, "securityContext")
	if psc["runAsNonRoot"] != true || str(psc, "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("pod securityContext %v: want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	if uid, _ := psc["runAsUser"].(int); uid == 0 {
		if f, _ := psc["runAsUser"].(float64); f == 0 {
			t.Errorf("pod runAsUser %v: want a non-zero uid", psc["runAsUser"])
		}
	}
	if pod["automountServiceAccountToken"] != false {
		t.Error("the pod mounts a service account token it does not need")
	}

	containers := list(pod, "containers")
	if len(containers) == 0 {
		t.Fatal("no containers")
	}
	for _, c := range containers {
		csc := dict(c, "securityContext")
		if csc["allowPrivilegeEscalation"] != false || csc["readOnlyRootFilesystem"] != true || csc["runAsNonRoot"] != true {
			t.Errorf("container securityContext %v: want no privilege escalation, a read-only root and non-root", csc)
		}
		if drop := list(csc, "capabilities", "drop"); !slices.Contains(drop, any("ALL")) {
			t.Errorf("capabilities drop %v: want ALL", drop)
		}

		// Probes on the ops port.
		for probe, path := range map[string]string{"livenessProbe": "/livez", "readinessProbe": "/readyz", "startupProbe": "/livez"} {
			if got := str(c, probe, "httpGet", "path"); got != path {
				t.Errorf("%s path %q, want %s", probe, got, path)
			}
			if got := dig(c, probe, "httpGet", "port"); got != "ops" {
				t.Errorf("%s port %v, want the ops port", probe, got)
			}
		}

		// Requests and limits.
		res := dict(c, "resources")
		for _, k := range []string{"requests.cpu", "requests.memory", "limits.cpu", "limits.memory"} {
			parts := strings.Split(k, ".")
			if dig(res, parts...) == nil {
				t.Errorf("resources lack %s", k)
			}
		}

		// Configuration from the ConfigMap and the Secret.
		var cm, secret bool
		for _, ef := range list(c, "envFrom") {
			cm = cm || strings.HasPrefix(str(ef, "configMapRef", "name"), "dhosauth-config")
			secret = secret || strings.HasPrefix(str(ef, "secretRef", "name"), "dhosauth-secrets")
		}
		if !cm || !secret {
			t.Errorf("envFrom: ConfigMap %v, Secret %v; want both", cm, secret)
		}

		// The ports the process listens on are the ports declared.
		env := map[string]string{}
		for _, e := range list(c, "env") {
			env[str(e, "name")] = str(e, "value")
		}
		want := processes[name]
		ports := map[string]int{}
		for _, p := range list(c, "ports") {
			n, _ := dig(p, "containerPort").(int)
			if n == 0 {
				f, _ := dig(p, "containerPort").(float64)
				n = int(f)
			}
			ports[str(p, "name")] = n
		}
		if ports["ops"] != want.ops || portOf(env["OPS_ADDR"]) != want.ops {
			t.Errorf("ops port %d, OPS_ADDR %q; want %d", ports["ops"], env["OPS_ADDR"], want.ops)
		}
		if name == "gateway" {
			if ports["http"] != want.port {
				t.Errorf("http port %d, want %d", ports["http"], want.port)
			}
			checkTrustedProxies(t, env, config)
		} else {
			if ports["grpc"] != want.port || portOf(env["GRPC_LISTEN_ADDR"]) != want.port {
				t.Errorf("grpc port %d, GRPC_LISTEN_ADDR %q; want %d", ports["grpc"], env["GRPC_LISTEN_ADDR"], want.port)
			}
			addr, _ := config[strings.ToUpper(name)+"_GRPC_ADDR"].(string)
			if addr != fmt.Sprintf("%s:%d", name, want.port) {
				t.Errorf("%s_GRPC_ADDR %q: the others would not find it", strings.ToUpper(name), addr)
			}
		}
		if cmd := list(c, "command"); len(cmd) != 1 || cmd[0] != "/usr/local/bin/"+name {
			t.Errorf("command %v", cmd)
		}
		image := str(c, "image")
		if overlay == "prod" && (strings.HasSuffix(image, ":latest") || !strings.Contains(image, ":")) {
			t.Errorf("prod image %q is not pinned", image)
		}
	}

	// Graceful stop fits in the grace period.
	grace, _ := pod["terminationGracePeriodSeconds"].(int)
	delay, _ := time.ParseDuration(fmt.Sprint(config["SHUTDOWN_DELAY"]))
	timeout, _ := time.ParseDuration(fmt.Sprint(config["SHUTDOWN_TIMEOUT"]))
	if timeout == 0 || time.Duration(grace)*time.Second <= delay+timeout {
		t.Errorf("terminationGracePeriodSeconds %d does not cover SHUTDOWN_DELAY %v + SHUTDOWN_TIMEOUT %v", grace, delay, timeout)
	}

	// A Service, an autoscaler and a disruption budget for it.
	var svc, hpa, pdb bool
	for _, s := range byKind["Service"] {
		svc = svc || (s.name() == name && selects(dict(s, "spec", "selector"), podLabels))
	}
	for _, h := range byKind["HorizontalPodAutoscaler"] {
		if str(h, "spec", "scaleTargetRef", "kind") == "Deployment" && str(h, "spec", "scaleTargetRef", "name") == name {
			hpa = true
			minR, _ := dig(h, "spec", "minReplicas").(int)
			maxR, _ := dig(h, "spec", "maxReplicas").(int)
			if minR < 1 || maxR < minR || len(list(h, "spec", "metrics")) == 0 {
				t.Errorf("HPA %d..%d with %d metrics", minR, maxR, len(list(h, "spec", "metrics")))
			}
			if overlay == "prod" && minR < 2 {
				t.Errorf("prod HPA minReplicas %d: one replica is not highly available", minR)
			}
		}
	}
	for _, p := range byKind["PodDisruptionBudget"] {
		pdb = pdb || selects(dict(p, "spec", "selector"), podLabels)
	}
	if !svc || !hpa || !pdb {
		t.Errorf("Service %v, HorizontalPodAutoscaler %v, PodDisruptionBudget %v; want all", svc, hpa, pdb)
	}
}

// privateRanges are the address ranges no client outside the cluster
// reaches the edge from (RFC 1918, IPv6 unique local).
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
}

// checkTrustedProxies: the edge is told which proxies' X-Forwarded-For
// to believe (behind the Ingress, without it every client would share
// the controller's address for the per-address limits), and they are
// private ranges only: trusting a public address would let a client
// name any address it likes.
func checkTrustedProxies(t *testing.T, env map[string]string, config map[string]any) {
	v, ok := env["TRUSTED_PROXIES"]
	if !ok {
		v, _ = config["TRUSTED_PROXIES"].(string)
	}
	prefixes, err := ratelimit.ParsePrefixes(v)
	if err != nil || len(prefixes) == 0 {
		t.Fatalf("TRUSTED_PROXIES %q (%v): the gateway must be told its proxies", v, err)
	}
	for _, p := range prefixes {
		inside := slices.ContainsFunc(privateRanges, func(r netip.Prefix) bool {
			return r.Addr().Is4() == p.Addr().Is4() && r.Bits() <= p.Bits() && r.Contains(p.Addr())
		})
		if !inside {
			t.Errorf("TRUSTED_PROXIES has %s, which is not inside a private range", p)
		}
	}
}

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	var n int
	fmt.Sscan(p, &n)
	return n
}

// checkNetworkPolicies: ingress is denied by default; every workload has
// a policy of its own; only the edge takes traffic from anywhere, and
// only on its HTTP port; a service takes gRPC only from pods of the suite
// (and, for the token service, namespaces that opt in); ops ports only
// from the monitoring namespace.
func checkNetworkPolicies(t *testing.T, policies []obj, deployments map[string]obj) {
	var defaultDeny bool
	for _, np := range policies {
		if len(dict(np, "spec", "podSelector")) == 0 && slices.Contains(list(np, "spec", "policyTypes"), any("Ingress")) && len(list(np, "spec", "ingress")) == 0 {
			defaultDeny = true
		}
	}
	if !defaultDeny {
		t.Error("no default-deny ingress NetworkPolicy")
	}
	suite := map[string]bool{}
	for name := range deployments {
		suite[name] = true
	}
	for name, d := range deployments {
		labels := dict(d, "spec", "template", "metadata", "labels")
		var own []obj
		for _, np := range policies {
			sel := dict(np, "spec", "podSelector")
			if len(sel) > 0 && selects(sel, labels) {
				own = append(own, np)
			}
		}
		if len(own) == 0 {
			t.Errorf("%s: no NetworkPolicy selects it", name)
			continue
		}
		for _, np := range own {
			for _, rule := range list(np, "spec", "ingress") {
				ports := list(rule, "ports")
				if len(ports) == 0 {
					t.Errorf("%s: a rule opens every port", name)
				}
				for _, p := range ports {
					port := fmt.Sprint(dig(p, "port"))
					from := list(rule, "from")
					switch port {
					case "http":
						if name != "gateway" {
							t.Errorf("%s: an http rule", name)
						}
					case "signin":
						// The session service's browser sign-in, which
						// only the gateway forwards to.
						if name != "session" || len(from) != 1 || str(from[0], "podSelector", "matchLabels", "app.kubernetes.io/name") != "gateway" {
							t.Errorf("%s: sign-in port open to %v", name, from)
						}
					case "grpc":
						if len(from) == 0 {
							t.Errorf("%s: gRPC open to anyone", name)
						}
						for _, peer := range from {
							if ns := dict(peer, "namespaceSelector"); ns != nil {
								if name != "token" || dig(ns, "matchLabels", "dhosauth.io/token-verifier") != "true" {
									t.Errorf("%s: gRPC from namespaces %v", name, ns)
								}
								continue
							}
							if str(peer, "podSelector", "matchLabels", "app.kubernetes.io/name") == "" || dict(peer, "ipBlock") != nil {
								t.Errorf("%s: gRPC from %v", name, peer)
							} else if !suite[str(peer, "podSelector", "matchLabels", "app.kubernetes.io/name")] {
								t.Errorf("%s: gRPC from a pod outside the suite: %v", name, peer)
							}
						}
					case "ops":
						if len(from) != 1 || dig(from[0], "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") != "monitoring" {
							t.Errorf("%s: ops port open to %v", name, from)
						}
					default:
						t.Errorf("%s: a rule for port %s", name, port)
					}
				}
			}
		}
	}
}
