package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1" // registers the descriptors read below
	_ "github.com/dhosauth/dhosauth/gen/go/dhos/audit/v1"
	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	_ "github.com/dhosauth/dhosauth/gen/go/dhos/device/v1"
	_ "github.com/dhosauth/dhosauth/gen/go/dhos/session/v1"
	_ "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// rpcRule is one RPC of the scope table: its access rule, the processes
// that serve it, and its REST routes (method, path template) if any.
type rpcRule struct {
	full    string // /pkg.Service/Method
	method  protoreflect.MethodDescriptor
	rule    *authv1.AccessRule
	procs   []string
	routes  [][2]string
	hasBody bool
}

// scopeTable reads every RPC of the suite's services from the generated
// descriptors: the dhos.auth.v1.access option and the google.api.http
// bindings. It is the test's only source of what to call and expect.
func scopeTable(t *testing.T) []rpcRule {
	t.Helper()
	var out []rpcRule
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		pkg := string(fd.Package())
		if !strings.HasPrefix(pkg, "dhos.") {
			return true
		}
		name := strings.Split(pkg, ".")[1]
		var procs []string
		switch {
		case name == "audit":
			procs = []string{"activation", "device", "session", "token"}
		case slices.Contains(processes[:4], name):
			procs = []string{name}
		}
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			if procs == nil {
				t.Errorf("no process serves %s: add it to scopeTable", sd.FullName())
				continue
			}
			for j := 0; j < sd.Methods().Len(); j++ {
				m := sd.Methods().Get(j)
				r := rpcRule{full: fmt.Sprintf("/%s/%s", sd.FullName(), m.Name()), method: m, procs: procs}
				r.rule, _ = proto.GetExtension(m.Options(), authv1.E_Access).(*authv1.AccessRule)
				if r.rule == nil {
					t.Errorf("%s has no access rule", r.full)
					continue
				}
				if h, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule); h != nil {
					for _, b := range append([]*annotations.HttpRule{h}, h.GetAdditionalBindings()...) {
						r.routes = append(r.routes, httpRoute(b))
						r.hasBody = r.hasBody || b.GetBody() != ""
					}
				}
				out = append(out, r)
			}
		}
		return true
	})
	if len(out) < 20 {
		t.Fatalf("only %d RPCs found: descriptors not registered?", len(out))
	}
	return out
}

func httpRoute(b *annotations.HttpRule) [2]string {
	switch p := b.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return [2]string{"GET", p.Get}
	case *annotations.HttpRule_Post:
		return [2]string{"POST", p.Post}
	case *annotations.HttpRule_Patch:
		return [2]string{"PATCH", p.Patch}
	case *annotations.HttpRule_Put:
		return [2]string{"PUT", p.Put}
	case *annotations.HttpRule_Delete:
		return [2]string{"DELETE", p.Delete}
	case *annotations.HttpRule_Custom:
		return [2]string{p.Custom.GetKind(), p.Custom.GetPath()}
	}
	return [2]string{}
}

var pathVar = regexp.MustCompile(`\{[^}]*\}`)

// matrixIssuer signs the test's tokens: the legacy HS512 issuer the suite
// is configured to accept, so that the test can make tokens of any kind,
// scope and expiry.
const (
	matrixIssuer = "https://matrix.example/"
	matrixKey    = "matrix-legacy-hs512-key-0123456789abcdef"
)

// matrixToken signs a token for kind with scopes, valid from now for life
// (negative: expired), with issuer iss and key.
func matrixToken(t *testing.T, iss, key string, kind authv1.PrincipalKind, scopes []string, life time.Duration) string {
	t.Helper()
	claim := map[authv1.PrincipalKind]string{
		authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT:   "patient_id",
		authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE:    "device_id",
		authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN: "clinician_id",
		authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM:    "system_id",
	}[kind]
	now := time.Now()
	iat := now
	if life < 0 {
		iat = now.Add(2 * life)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{
		"iss": iss, "aud": iss, "iat": iat.Unix(), "exp": now.Add(life).Unix(), "jti": Unique("jti"),
		"sub": "matrix", "scope": strings.Join(scopes, " "), "metadata": map[string]any{claim: "matrix"},
	}).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tokenCase is one column of the matrix.
type tokenCase struct {
	name  string
	token string // "" sends none
	// want: "401", "403" (naming scope when set), or "ok" (not refused
	// by the access rule).
	want  string
	scope string
}

// cases builds the columns for one rule.
func matrixCases(t *testing.T, r *authv1.AccessRule, allScopes []string) []tokenCase {
	kind := authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM
	if ks := r.GetPrincipalKinds(); len(ks) > 0 {
		kind = ks[0]
	}
	need := r.GetScopes()
	if r.GetPublic() {
		// Public RPCs ignore tokens: whatever is sent, the access rule
		// refuses nothing.
		return []tokenCase{
			{name: "no token", want: "ok"},
			{name: "expired", token: matrixToken(t, matrixIssuer, matrixKey, kind, need, -time.Hour), want: "ok"},
			{name: "other issuer", token: matrixToken(t, "https://evil.example/", "another-key-0123456789abcdef0123456789", kind, need, time.Hour), want: "ok"},
		}
	}
	out := []tokenCase{
		{name: "no token", want: "401"},
		{name: "expired", token: matrixToken(t, matrixIssuer, matrixKey, kind, need, -time.Hour), want: "401"},
		{name: "other issuer", token: matrixToken(t, "https://evil.example/", "another-key-0123456789abcdef0123456789", kind, need, time.Hour), want: "401"},
		{name: "forged with the issuer's name", token: matrixToken(t, matrixIssuer, "not-the-key-0123456789abcdef0123456789", kind, need, time.Hour), want: "401"},
		{name: "right token", token: matrixToken(t, matrixIssuer, matrixKey, kind, need, time.Hour), want: "ok"},
	}
	for _, s := range need {
		var rest []string
		for _, o := range allScopes {
			if o != s {
				rest = append(rest, o)
			}
		}
		out = append(out, tokenCase{name: "every scope but " + s, token: matrixToken(t, matrixIssuer, matrixKey, kind, rest, time.Hour), want: "403", scope: s})
	}
	if ks := r.GetPrincipalKinds(); len(ks) > 0 {
		for k := authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT; k <= authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM; k++ {
			if !slices.Contains(ks, k) {
				out = append(out, tokenCase{name: "principal " + k.String(), token: matrixToken(t, matrixIssuer, matrixKey, k, need, time.Hour), want: "403"})
				break
			}
		}
	}
	return out
}

// guardRefusal reports whether a message is the access rule's refusal.
func guardRefusal(msg string) bool {
	for _, m := range []string{"token lacks the scope", "this principal may not call", "method has no access rule", "invalid token", "missing bearer token", "authorization must be"} {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

func matrixSuite(t *testing.T) *Suite {
	return Start(t, map[string]string{"HS_KEY": matrixKey, "HS_ISSUER": matrixIssuer, "SIGNING_ALG": "ES256"})
}

func allScopes(table []rpcRule) []string {
	var out []string
	for _, r := range table {
		for _, s := range r.rule.GetScopes() {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// TestAuthorisationMatrix calls every RPC of every service over gRPC, and
// every REST route bound to one through the edge, with no token, an
// expired token, a token of another issuer, a forged one, a token with
// every scope but each one needed, a token of a principal kind the rule
// excludes, and the right token, and checks the answer against the access
// rule declared on the RPC: 401/UNAUTHENTICATED, 403/PERMISSION_DENIED
// naming the missing scope, or (right token, public RPCs) anything but the
// access rule's refusal: success or an error about the dummy input.
func TestAuthorisationMatrix(t *testing.T) {
	table := scopeTable(t)
	scopes := allScopes(table)
	s := matrixSuite(t)
	conns := map[string]*grpc.ClientConn{}
	for _, p := range processes[:4] {
		cc, err := grpc.NewClient(s.Addr[p], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		conns[p] = cc
	}
	restRoutes := 0
	for _, r := range table {
		for _, c := range matrixCases(t, r.rule, scopes) {
			// gRPC, on every process that serves the RPC.
			for _, p := range r.procs {
				if r.method.IsStreamingClient() || r.method.IsStreamingServer() {
					t.Errorf("%s streams: the matrix calls unary RPCs only", r.full)
					continue
				}
				in, err := protoregistry.GlobalTypes.FindMessageByName(r.method.Input().FullName())
				if err != nil {
					t.Fatal(err)
				}
				outT, err := protoregistry.GlobalTypes.FindMessageByName(r.method.Output().FullName())
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if c.token != "" {
					ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
				}
				err = conns[p].Invoke(ctx, r.full, in.New().Interface(), outT.New().Interface())
				cancel()
				st := status.Convert(err)
				where := fmt.Sprintf("gRPC %s on %s, %s", r.full, p, c.name)
				switch c.want {
				case "401":
					if st.Code() != codes.Unauthenticated {
						t.Errorf("%s: %v, want UNAUTHENTICATED", where, err)
					}
				case "403":
					if st.Code() != codes.PermissionDenied || (c.scope != "" && !strings.Contains(st.Message(), c.scope)) {
						t.Errorf("%s: %v, want PERMISSION_DENIED naming %q", where, err, c.scope)
					}
				case "ok":
					if st.Code() == codes.Unauthenticated && !r.rule.GetPublic() || guardRefusal(st.Message()) && !r.rule.GetPublic() ||
						st.Code() == codes.Internal || st.Code() == codes.Unknown {
						t.Errorf("%s: %v, want anything but a refusal by the access rule", where, err)
					}
				}
			}
			// REST, through the edge.
			for _, route := range r.routes {
				restRoutes++
				path := pathVar.ReplaceAllString(route[1], "matrix")
				body := ""
				if r.hasBody && route[0] != "GET" && route[0] != "DELETE" {
					body = "{}"
				}
				var hdr []string
				if c.token != "" {
					hdr = []string{"Authorization", "Bearer " + c.token}
				}
				resp := doAt(s.URL, route[0], path, body, hdr...)
				where := fmt.Sprintf("%s %s, %s", route[0], route[1], c.name)
				var msg string
				if resp.Status >= 400 {
					msg, _ = resp.JSON(t)["message"].(string)
				}
				switch c.want {
				case "401":
					if resp.Status != 401 {
						t.Errorf("%s: %d %s, want 401", where, resp.Status, resp.Body)
					}
				case "403":
					if resp.Status != 403 || (c.scope != "" && !strings.Contains(msg, c.scope)) {
						t.Errorf("%s: %d %s, want 403 naming %q", where, resp.Status, resp.Body, c.scope)
					}
				case "ok":
					if resp.Status >= 500 || !r.rule.GetPublic() && (resp.Status == 401 || guardRefusal(msg)) {
						t.Errorf("%s: %d %s, want success or an error about the input", where, resp.Status, resp.Body)
					}
				}
			}
		}
	}
	// The edge's own routes that call the services' guarded RPCs.
	rules := map[string]*authv1.AccessRule{}
	for _, r := range table {
		rules[r.full] = r.rule
	}
	for _, e := range []struct{ method, path, rpc string }{
		{"GET", AuditEventsPathForTest, "/dhos.audit.v1.AuditService/ListEvents"},
		{"POST", "/drop_data", "/dhos.activation.v1.ActivationService/DropData"},
		{"POST", "/reset_test_data", "/dhos.activation.v1.ActivationService/ResetTestData"},
	} {
		for _, c := range matrixCases(t, rules[e.rpc], scopes) {
			var hdr []string
			if c.token != "" {
				hdr = []string{"Authorization", "Bearer " + c.token}
			}
			resp := doAt(s.URL, e.method, e.path, "", hdr...)
			restRoutes++
			var msg string
			if resp.Status >= 400 {
				msg, _ = resp.JSON(t)["message"].(string)
			}
			where := fmt.Sprintf("%s %s, %s", e.method, e.path, c.name)
			switch {
			case c.want == "401" && resp.Status != 401,
				c.want == "403" && (resp.Status != 403 || !strings.Contains(msg, c.scope)),
				c.want == "ok" && (resp.Status >= 500 || resp.Status == 401 || guardRefusal(msg)):
				t.Errorf("%s: %d %s, want %s", where, resp.Status, resp.Body, c.want)
			}
		}
	}
	if restRoutes == 0 {
		t.Fatal("no REST route found in the descriptors")
	}
	t.Logf("%d RPCs, %d scopes, %d REST calls", len(table), len(scopes), restRoutes)
}

// AuditEventsPathForTest is the edge's audit query route.
const AuditEventsPathForTest = "/dhos/v1/audit/events"

// checkNonProductionGone calls, on a PRODUCTION suite, every RPC the scope
// table marks non_production, over gRPC and through its REST routes, with
// the token its rule asks for (signed by the legacy issuer iss with key):
// each answers NOT_FOUND / 404. And none of the static test activations
// works: patients static_patient_uuid_1..9 and devices
// static_device_uuid_D1..D9, at validation and at the JWT exchange.
func checkNonProductionGone(t *testing.T, s *Suite, iss, key string) {
	t.Helper()
	n := 0
	for _, r := range scopeTable(t) {
		if !r.rule.GetNonProduction() {
			continue
		}
		n++
		kind := authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM
		if ks := r.rule.GetPrincipalKinds(); len(ks) > 0 {
			kind = ks[0]
		}
		tok := matrixToken(t, iss, key, kind, r.rule.GetScopes(), time.Hour)
		for _, p := range r.procs {
			cc, err := grpc.NewClient(s.Addr[p], grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			in, _ := protoregistry.GlobalTypes.FindMessageByName(r.method.Input().FullName())
			out, _ := protoregistry.GlobalTypes.FindMessageByName(r.method.Output().FullName())
			ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok), 10*time.Second)
			err = cc.Invoke(ctx, r.full, in.New().Interface(), out.New().Interface())
			cancel()
			cc.Close()
			if status.Code(err) != codes.NotFound {
				t.Errorf("PRODUCTION: gRPC %s on %s: %v, want NOT_FOUND", r.full, p, err)
			}
		}
		for _, route := range r.routes {
			path := pathVar.ReplaceAllString(route[1], "static_patient_uuid_1")
			if resp := doAt(s.URL, route[0], path, "", "Authorization", "Bearer "+tok); resp.Status != 404 {
				t.Errorf("PRODUCTION: %s %s: %d %s, want 404", route[0], route[1], resp.Status, resp.Body)
			}
		}
	}
	if n == 0 {
		t.Fatal("the scope table has no non_production RPC")
	}
	for d := 1; d <= 9; d++ {
		ds := fmt.Sprint(d)
		Expect(t, s.Do("POST", "/dhos/v1/activation/"+ds, "", map[string]any{"otp": strings.Repeat(ds, 4)}), 404)
		Expect(t, s.Do("GET", "/dhos/v1/patient/static_patient_uuid_"+ds+"/jwt", "", nil, "x-authorisation-code", ds), 404)
		Expect(t, s.Do("POST", "/dhos/v1/activation/"+strings.Repeat(ds, 9)+"?type=send_entry", "", nil), 404)
		Expect(t, s.Do("GET", "/dhos/v1/device/static_device_uuid_D"+ds+"/jwt", "", nil, "x-authorisation-code", strings.Repeat(ds, 9)), 403)
	}
}
