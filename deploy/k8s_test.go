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
			checkEgress(t, overlay, byKind, deployments, config)
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

// What the network policies let through. The checks below do not look
// for particular rules: they evaluate the rendered policies as a CNI
// would (a pod selected by no policy of a direction is open in that
// direction; rules add up; named ports are the destination pod's) and
// ask whether one connection is allowed.

// endpoint is one end of a connection: a pod (its namespace, the
// namespace's labels, its labels and named ports) or, with no labels, an
// address outside the cluster.
type endpoint struct {
	ns       string
	nsLabels map[string]any
	labels   map[string]any
	ports    map[string]int
	ip       netip.Addr
}

func (e endpoint) String() string {
	if e.labels == nil {
		return e.ip.String()
	}
	return fmt.Sprintf("pod %v in namespace %s", e.labels, e.ns)
}

// dport is a destination port: its number, its name on the destination
// pod (if any) and the protocol.
type dport struct {
	num   int
	name  string
	proto string
}

func (p dport) String() string {
	if p.name != "" {
		return fmt.Sprintf("%s (%d/%s)", p.name, p.num, p.proto)
	}
	return fmt.Sprintf("%d/%s", p.num, p.proto)
}

// outside is an address on the internet; podIn a pod elsewhere in the
// cluster.
var outside = endpoint{ip: netip.MustParseAddr("203.0.113.10")}

func podIn(ns string, labels map[string]any) endpoint {
	return endpoint{ns: ns, nsLabels: map[string]any{"kubernetes.io/metadata.name": ns}, labels: labels, ip: netip.MustParseAddr("10.244.200.7")}
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case float64:
		return int(n), true
	}
	return 0, false
}

// matchSelector evaluates a label selector (matchLabels and
// matchExpressions; an empty selector matches everything).
func matchSelector(t *testing.T, sel map[string]any, labels map[string]any) bool {
	for k, v := range dict(sel, "matchLabels") {
		if labels[k] != v {
			return false
		}
	}
	for _, e := range list(sel, "matchExpressions") {
		v, has := labels[str(e, "key")]
		in := slices.Contains(list(e, "values"), v)
		switch op := str(e, "operator"); op {
		case "In":
			if !has || !in {
				return false
			}
		case "NotIn":
			if has && in {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		default:
			t.Fatalf("selector operator %q", op)
		}
	}
	return true
}

// types is a policy's policyTypes, defaulted as the API server does.
func types(np obj) []any {
	if pt := list(np, "spec", "policyTypes"); len(pt) > 0 {
		return pt
	}
	pt := []any{"Ingress"}
	if len(list(np, "spec", "egress")) > 0 {
		pt = append(pt, "Egress")
	}
	return pt
}

// peerMatches: does one entry of a rule's to/from match the endpoint?
func peerMatches(t *testing.T, peer any, policyNS string, e endpoint) bool {
	if ib := dict(peer, "ipBlock"); ib != nil {
		p, err := netip.ParsePrefix(str(ib, "cidr"))
		if err != nil {
			t.Fatalf("ipBlock %v: %v", ib, err)
		}
		if !p.Contains(e.ip) {
			return false
		}
		for _, x := range list(ib, "except") {
			if xp, err := netip.ParsePrefix(fmt.Sprint(x)); err == nil && xp.Contains(e.ip) {
				return false
			}
		}
		return true
	}
	if e.labels == nil {
		return false // selectors select pods only
	}
	if dig(peer, "namespaceSelector") != nil {
		if !matchSelector(t, dict(peer, "namespaceSelector"), e.nsLabels) {
			return false
		}
	} else if e.ns != policyNS {
		return false
	}
	return dig(peer, "podSelector") == nil || matchSelector(t, dict(peer, "podSelector"), e.labels)
}

// portMatches: does one entry of a rule's ports match the port?
func portMatches(p any, d dport) bool {
	proto := str(p, "protocol")
	if proto == "" {
		proto = "TCP"
	}
	if proto != d.proto {
		return false
	}
	switch v := dig(p, "port").(type) {
	case nil:
		return true
	case string:
		return v == d.name
	default:
		n, _ := toInt(v)
		end, ok := toInt(dig(p, "endPort"))
		if !ok {
			end = n
		}
		return d.num >= n && d.num <= end
	}
}

// allowed reports whether the policies let src open a connection to dst
// on the port: egress from src (if a policy isolates it) and ingress to
// dst (if dst is a pod of the policies' namespace that one isolates).
func allowed(t *testing.T, policies []obj, src, dst endpoint, port dport) bool {
	return allowedDir(t, policies, "Egress", src, dst, port) && allowedDir(t, policies, "Ingress", dst, src, port)
}

func allowedDir(t *testing.T, policies []obj, dir string, pod, peer endpoint, port dport) bool {
	if pod.labels == nil {
		return true // not a pod: no policy of ours applies
	}
	isolated := false
	key, peers := "egress", "to"
	if dir == "Ingress" {
		key, peers = "ingress", "from"
	}
	for _, np := range policies {
		ns := str(np, "metadata", "namespace")
		if ns != pod.ns || !slices.Contains(types(np), any(dir)) || !matchSelector(t, dict(np, "spec", "podSelector"), pod.labels) {
			continue
		}
		isolated = true
		for _, rule := range list(np, "spec", key) {
			from := list(rule, peers)
			okPeer := len(from) == 0 || slices.ContainsFunc(from, func(p any) bool { return peerMatches(t, p, ns, peer) })
			ports := list(rule, "ports")
			okPort := len(ports) == 0 || slices.ContainsFunc(ports, func(p any) bool { return portMatches(p, port) })
			if okPeer && okPort {
				return true
			}
		}
	}
	return !isolated
}

// egressPeers are the suite's processes each one dials, and on which
// ports (from the code: edge.Dial, each service's service.Dial calls and
// StartVerifier, which dials the token service).
var egressPeers = map[string][]string{
	"gateway":    {"activation/grpc", "device/grpc", "token/grpc", "session/grpc", "session/signin"},
	"activation": {"device/grpc", "token/grpc"},
	"device":     {"token/grpc"},
	"session":    {"device/grpc", "token/grpc"},
	"token":      {},
}

// ingressControllerNamespace is where the controller of an Ingress class
// runs: the prod overlay lets only that namespace reach the edge.
var ingressControllerNamespace = map[string]string{"nginx": "ingress-nginx"}

// checkEgress: egress is denied by default and every workload has an
// egress policy of its own; every process can resolve names and reach
// the collector; it reaches exactly the gRPC peers it calls; the services
// (not the edge) reach the database, the broker and HTTPS anywhere, and
// nothing else outside; and in prod the edge's HTTP port takes traffic
// from the ingress controller's namespace only.
func checkEgress(t *testing.T, overlay string, byKind map[string][]obj, deployments map[string]obj, config map[string]any) {
	policies := byKind["NetworkPolicy"]
	var defaultDeny bool
	for _, np := range policies {
		if len(dict(np, "spec", "podSelector")) == 0 && slices.Contains(types(np), any("Egress")) && len(list(np, "spec", "egress")) == 0 {
			defaultDeny = true
		}
	}
	if !defaultDeny {
		t.Error("no default-deny egress NetworkPolicy")
	}

	nsLabels := map[string]map[string]any{}
	for _, n := range byKind["Namespace"] {
		l := map[string]any{"kubernetes.io/metadata.name": n.name()}
		for k, v := range dict(n, "metadata", "labels") {
			l[k] = v
		}
		nsLabels[n.name()] = l
	}
	pods := map[string]endpoint{}
	for name, d := range deployments {
		ns := str(d, "metadata", "namespace")
		ports := map[string]int{}
		for _, c := range list(d, "spec", "template", "spec", "containers") {
			for _, p := range list(c, "ports") {
				n, _ := toInt(dig(p, "containerPort"))
				ports[str(p, "name")] = n
			}
		}
		l := nsLabels[ns]
		if l == nil {
			l = map[string]any{"kubernetes.io/metadata.name": ns}
		}
		pods[name] = endpoint{ns: ns, nsLabels: l, labels: dict(d, "spec", "template", "metadata", "labels"), ports: ports, ip: netip.MustParseAddr("10.244.1.10")}
	}

	// The collector, from OTEL_EXPORTER_OTLP_ENDPOINT (host service.namespace).
	var collector endpoint
	var collectorPort dport
	if ep, _ := config["OTEL_EXPORTER_OTLP_ENDPOINT"].(string); ep != "" {
		host, port, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(ep, "http://"), "https://"))
		if err != nil {
			t.Fatalf("OTEL_EXPORTER_OTLP_ENDPOINT %q: %v", ep, err)
		}
		svc, ns, ok := strings.Cut(host, ".")
		if !ok {
			ns = str(deployments["gateway"], "metadata", "namespace")
		}
		ns, _, _ = strings.Cut(ns, ".")
		collector = podIn(ns, map[string]any{"app.kubernetes.io/name": svc})
		collectorPort = dport{num: portOf(":" + port), proto: "TCP"}
	}
	dbPort := 5432
	if v, ok := config["DATABASE_PORT"].(string); ok {
		dbPort = portOf(":" + v)
	}
	// What a service may reach at any address: PostgreSQL, RabbitMQ
	// (amqp, amqps), HTTPS (identity providers, trusted issuers' keys).
	anywhere := map[string][]int{
		"activation": {dbPort, 5672, 5671, 443},
		"device":     {dbPort, 5672, 5671, 443},
		"token":      {dbPort, 5672, 5671, 443},
		"session":    {dbPort, 5672, 5671, 443},
		"gateway":    {},
	}
	dns := podIn("kube-system", map[string]any{"k8s-app": "kube-dns"})
	elsewhere := podIn("default", map[string]any{"app.kubernetes.io/name": "something-else"})
	probePorts := []int{22, 25, 53, 80, 443, 3306, 5432, 5671, 5672, 6379, 8080, 8443, 9093, 9193, 27017}

	for name, src := range pods {
		// A policy of its own that isolates its egress.
		var own bool
		for _, np := range policies {
			if dig(np, "spec", "podSelector", "matchLabels", "app.kubernetes.io/name") == name && slices.Contains(types(np), any("Egress")) && str(np, "metadata", "namespace") == src.ns {
				own = true
			}
		}
		if !own {
			t.Errorf("%s: no egress NetworkPolicy of its own", name)
		}

		for _, proto := range []string{"UDP", "TCP"} {
			if !allowed(t, policies, src, dns, dport{num: 53, proto: proto}) {
				t.Errorf("%s: cannot reach kube-dns on 53/%s", name, proto)
			}
		}
		if collector.labels != nil && !allowed(t, policies, src, collector, collectorPort) {
			t.Errorf("%s: cannot reach the collector (%s) on %v", name, collector, collectorPort)
		}

		// Exactly the suite's peers it calls, on exactly those ports: a
		// call needs both the caller's egress and the callee's ingress;
		// any other port must be closed by the caller's egress alone.
		for peer, dst := range pods {
			for pname, pnum := range dst.ports {
				want := slices.Contains(egressPeers[name], peer+"/"+pname)
				p := dport{num: pnum, name: pname, proto: "TCP"}
				if want && !allowed(t, policies, src, dst, p) {
					t.Errorf("%s: cannot reach %s's %s port, which it calls", name, peer, pname)
				}
				if !want && allowedDir(t, policies, "Egress", src, dst, p) {
					t.Errorf("%s: egress to %s's %s port, which it does not call", name, peer, pname)
				}
			}
		}

		// Outside the suite: the allowed ports anywhere, nothing else.
		for _, p := range probePorts {
			want := slices.Contains(anywhere[name], p)
			for _, dst := range []endpoint{outside, elsewhere} {
				if got := allowedDir(t, policies, "Egress", src, dst, dport{num: p, proto: "TCP"}); got != want {
					if want {
						t.Errorf("%s: cannot reach %d/TCP at %s", name, p, dst)
					} else {
						t.Errorf("%s: egress to %d/TCP at %s", name, p, dst)
					}
				}
			}
		}
		// No rule opens every port, or a range, or UDP, to any address.
		for _, np := range policies {
			if str(np, "metadata", "namespace") != src.ns || !slices.Contains(types(np), any("Egress")) || !matchSelector(t, dict(np, "spec", "podSelector"), src.labels) {
				continue
			}
			for _, rule := range list(np, "spec", "egress") {
				ports := list(rule, "ports")
				if len(ports) == 0 {
					t.Errorf("%s: policy %s has an egress rule for every port", name, np.name())
				}
				to := list(rule, "to")
				open := len(to) == 0 || slices.ContainsFunc(to, func(p any) bool { return dict(p, "ipBlock") != nil })
				if !open {
					continue
				}
				for _, p := range ports {
					n, isNum := toInt(dig(p, "port"))
					if !isNum || dig(p, "endPort") != nil || (str(p, "protocol") != "" && str(p, "protocol") != "TCP") || !slices.Contains(anywhere[name], n) {
						t.Errorf("%s: policy %s opens %v to addresses outside the cluster", name, np.name(), p)
					}
				}
			}
		}
	}

	// The edge's HTTP port.
	gw, ok := pods["gateway"]
	if !ok {
		return
	}
	web := dport{num: gw.ports["http"], name: "http", proto: "TCP"}
	switch overlay {
	case "prod":
		// Only the ingress controller, in its namespace.
		var class string
		if ing := byKind["Ingress"]; len(ing) > 0 {
			class = str(ing[0], "spec", "ingressClassName")
		}
		ctrlNS, ok := ingressControllerNamespace[class]
		if !ok {
			t.Fatalf("prod: Ingress class %q: which namespace does its controller run in? (ingressControllerNamespace)", class)
		}
		ctrl := podIn(ctrlNS, map[string]any{"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"})
		if !allowed(t, policies, ctrl, gw, web) {
			t.Errorf("prod: the ingress controller (namespace %s) cannot reach the edge's http port", ctrlNS)
		}
		// The edge's own ingress rules (a pod of the suite's namespace
		// would also be stopped by its own default-deny egress).
		for _, src := range []endpoint{outside, elsewhere, podIn(gw.ns, map[string]any{"app.kubernetes.io/name": "debug"})} {
			if allowedDir(t, policies, "Ingress", gw, src, web) {
				t.Errorf("prod: the edge's http port accepts %s: want the ingress controller only", src)
			}
		}
	case "dev":
		// Open: any controller a dev cluster has, a curl pod, a NodePort.
		if !allowed(t, policies, elsewhere, gw, web) {
			t.Error("dev: the edge's http port must stay open for local use")
		}
	}
}
