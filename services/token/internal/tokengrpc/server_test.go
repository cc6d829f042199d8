package tokengrpc_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/pkg/service/servicetest"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
	"github.com/dhosauth/dhosauth/services/token/internal/tokendb"
	"github.com/dhosauth/dhosauth/services/token/internal/tokengrpc"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

const (
	testIssuer   = "https://dhos.example/"
	testAudience = "https://dhos.example/api"
)

var internalKey = []byte("0123456789abcdef0123456789abcdef-internal")

var rsaKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var out [2]*rsa.PrivateKey
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		out[i] = k
	}
	return out
})

type options struct {
	hsKey      []byte
	hsIssuer   string
	allowDrop  bool
	production bool
	// managed: ES256 keys made and sealed in the store, on clock (when
	// set), instead of the fixed RSA key.
	managed bool
	clock   func() time.Time
}

// env is a token service on a real gRPC server on 127.0.0.1:0, with a
// real SQLite store.
type env struct {
	client  tokenv1.TokenServiceClient
	conn    *grpc.ClientConn
	store   token.Store
	signer  token.Signer
	kid     string
	cfg     token.Config
	revoked *auth.RevocationList
}

func tokenConfig(o options) token.Config {
	cfg := token.Config{
		Issuer:            testIssuer,
		Audience:          testAudience,
		PatientScopes:     []string{"read:gdm_message", "write:gdm_message"},
		DeviceScopes:      []string{"read:send_entry_identifier", "read:send_device"},
		ClinicianScopes:   []string{"read:send_clinician"},
		PatientLifetime:   900 * time.Second,
		DeviceLifetime:    86400 * time.Second,
		ClinicianLifetime: 900 * time.Second,
		SystemLifetime:    3600 * time.Second,
		AllowDropData:     o.allowDrop,
	}
	if len(o.hsKey) > 0 {
		cfg.Issuer, cfg.Audience = o.hsIssuer, o.hsIssuer
	}
	return cfg
}

func start(t *testing.T, o options) *env {
	t.Helper()
	db := storagetest.OpenSQLite(t, tokendb.Migrations())
	store := tokendb.New(db)
	cfg := tokenConfig(o)
	cfg.Now = o.clock
	var signer token.Signer
	var kid string
	var err error
	switch {
	case len(o.hsKey) > 0:
		signer, err = token.NewHSSigner(o.hsKey)
	case o.managed:
		sealer, serr := token.NewSealer([]byte("key-encryption-key-of-at-least-32-bytes!"))
		if serr != nil {
			t.Fatal(serr)
		}
		signer, err = token.NewManagedKeys(context.Background(), store, sealer, token.ManagedConfig{
			Alg: "ES256", RotationPeriod: 720 * time.Hour, PropagationPeriod: time.Hour, Retention: cfg.Retention(), Now: o.clock,
		})
	default:
		var pair *token.KeyPair
		pair, err = token.NewKeyPair(rsaKeys()[0])
		if err == nil {
			signer, kid = token.NewFixedKey(pair), pair.ID()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	revoked := auth.NewRevocationList(nil)
	verifier := auth.NewVerifier(auth.VerifierOptions{
		Issuer: cfg.Issuer, Audience: cfg.Audience, Keys: signer,
		HSKey: o.hsKey, HSIssuer: o.hsIssuer, InternalKey: internalKey,
		Revocations: revoked, CacheSize: 1000, Now: o.clock,
	})
	rules, err := tokengrpc.Rules()
	if err != nil {
		t.Fatal(err)
	}
	issuer := token.NewIssuer(cfg, signer, store, verifier, revoked)
	revoked.Fetch = issuer.Revocations
	srv := tokengrpc.New(issuer, tokengrpc.Options{JWKSMaxAge: 15 * time.Minute})

	addr := servicetest.Serve(t, service.ServerOptions{
		Name:     "token",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Guard:    auth.NewGuard(verifier, rules, o.production),
		Services: []string{tokengrpc.ServiceName},
		Register: srv.Register,
		Ready:    db.Ping,
	})
	conn, err := service.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &env{client: tokenv1.NewTokenServiceClient(conn), conn: conn, store: store, signer: signer, kid: kid, cfg: cfg, revoked: revoked}
}

// asService authenticates a call as an internal service with scopes.
func asService(name string, scopes ...string) grpc.CallOption {
	return grpc.PerRPCCredentials(auth.NewInternalCredentials(internalKey, name, scopes...))
}

var bearer = servicetest.Bearer

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	servicetest.WantCode(t, err, want, "")
}

func (e *env) issue(t *testing.T, req *tokenv1.IssueTokenRequest) *tokenv1.IssueTokenResponse {
	t.Helper()
	resp, err := e.client.IssueToken(context.Background(), req, asService("activation", "internal:issue_token"))
	if err != nil {
		t.Fatalf("IssueToken: %v", err)
	}
	return resp
}

func patientReq(id string) *tokenv1.IssueTokenRequest {
	return &tokenv1.IssueTokenRequest{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT, SubjectId: id}
}

func TestIssueAndVerify(t *testing.T) {
	e := start(t, options{})
	before := time.Now().Truncate(time.Second)
	iss := e.issue(t, patientReq("patient-42"))
	exp, err := time.Parse(apitime.Layout, iss.GetExpiresAt())
	if err != nil {
		t.Fatalf("expires_at %q: %v", iss.GetExpiresAt(), err)
	}
	if d := exp.Sub(before); d < 900*time.Second || d > 902*time.Second {
		t.Errorf("expires_at is %v after issuing, want 900s", d)
	}
	rec, err := e.store.Get(context.Background(), iss.GetTokenId())
	if err != nil || rec.Kind != token.KindPatient || rec.Subject != "patient-42" || !rec.ExpiresAt.Equal(exp) {
		t.Errorf("record = %+v, %v", rec, err)
	}

	v, err := e.client.VerifyToken(context.Background(), &tokenv1.VerifyTokenRequest{Token: iss.GetJwt(), RequiredScopes: []string{"read:gdm_message"}})
	if err != nil {
		t.Fatalf("VerifyToken: %v", err)
	}
	if v.GetPrincipalKind() != authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT || v.GetPrincipalId() != "patient-42" {
		t.Errorf("principal = %v %q", v.GetPrincipalKind(), v.GetPrincipalId())
	}
	if strings.Join(v.GetScopes(), " ") != "read:gdm_message write:gdm_message" {
		t.Errorf("scopes = %v", v.GetScopes())
	}
	if v.GetExpiresAt() != iss.GetExpiresAt() || v.GetTokenId() != iss.GetTokenId() || v.GetIssuer() != testIssuer {
		t.Errorf("expires_at %q token_id %q issuer %q; issued %q %q", v.GetExpiresAt(), v.GetTokenId(), v.GetIssuer(), iss.GetExpiresAt(), iss.GetTokenId())
	}
	if md := v.GetMetadata().AsMap(); len(md) != 1 || md["patient_id"] != "patient-42" {
		t.Errorf("metadata = %v", md)
	}

	// A clinician token: both metadata fields come back.
	c := e.issue(t, &tokenv1.IssueTokenRequest{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN, SubjectId: "clin-1", ReferringDeviceId: "dev-1"})
	v, err = e.client.VerifyToken(context.Background(), &tokenv1.VerifyTokenRequest{Token: c.GetJwt()})
	if err != nil {
		t.Fatalf("VerifyToken clinician: %v", err)
	}
	md := v.GetMetadata().AsMap()
	if v.GetPrincipalKind() != authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN || md["clinician_id"] != "clin-1" || md["referring_device_id"] != "dev-1" {
		t.Errorf("clinician: %v %v", v.GetPrincipalKind(), md)
	}

	// An internal service token verifies too.
	it, err := auth.NewInternalCredentials(internalKey, "device", "read:x").Token()
	if err != nil {
		t.Fatal(err)
	}
	v, err = e.client.VerifyToken(context.Background(), &tokenv1.VerifyTokenRequest{Token: it, RequiredScopes: []string{"read:x"}})
	if err != nil || v.GetPrincipalKind() != authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM || v.GetPrincipalId() != "device" {
		t.Errorf("internal token: %v %v", v, err)
	}
}

func TestVerifyTokenPermissionDenied(t *testing.T) {
	e := start(t, options{})
	iss := e.issue(t, &tokenv1.IssueTokenRequest{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE, SubjectId: "dev-1"})
	_, err := e.client.VerifyToken(context.Background(), &tokenv1.VerifyTokenRequest{Token: iss.GetJwt(), RequiredScopes: []string{"read:send_device", "write:send_device"}})
	wantCode(t, err, codes.PermissionDenied)
	if !strings.Contains(status.Convert(err).Message(), "write:send_device") {
		t.Errorf("message %q does not name the missing scope", status.Convert(err).Message())
	}
}

// sign makes a token with arbitrary claims and header under key.
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claimsFor(iss, aud string, exp time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": iss, "aud": aud, "sub": "p1", "jti": "j1",
		"iat": time.Now().Add(-time.Minute).Unix(), "exp": exp.Unix(),
		"scope": "read:gdm_message", "metadata": map[string]any{"patient_id": "p1"},
	}
}

func TestVerifyTokenUnauthenticated(t *testing.T) {
	e := start(t, options{})
	good := e.issue(t, patientReq("p1")).GetJwt()
	kid := e.kid
	key := rsaKeys()[0]
	other := rsaKeys()[1]
	otherKid, err := token.Thumbprint(&other.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	// Tampered: the payload says another patient, the signature is the
	// original's.
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"p1"`, `"p2"`, -1))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]

	// Expired: signed by the service's own issuer logic with a clock two
	// hours back.
	expiredCfg := tokenConfig(options{})
	expiredCfg.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expiredOut, err := token.NewIssuer(expiredCfg, e.signer, tokendb.New(storagetest.OpenSQLite(t, tokendb.Migrations())), nil, nil).
		Issue(context.Background(), token.Request{Kind: token.KindPatient, SubjectID: "p1"})
	if err != nil {
		t.Fatal(err)
	}

	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"`+kid+`"}`)) + "." + parts[1] + "."
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&key.PublicKey))})
	future := time.Now().Add(time.Hour)

	cases := map[string]string{
		"empty":              "",
		"garbage":            "not-a-jwt",
		"tampered payload":   tampered,
		"truncated":          good[:len(good)-10],
		"expired":            expiredOut.JWT,
		"other issuer":       sign(t, jwt.SigningMethodRS256, key, kid, claimsFor("https://evil.example/", testAudience, future)),
		"wrong audience":     sign(t, jwt.SigningMethodRS256, key, kid, claimsFor(testIssuer, "https://someone-else/", future)),
		"unknown key":        sign(t, jwt.SigningMethodRS256, other, otherKid, claimsFor(testIssuer, testAudience, future)),
		"other key, our kid": sign(t, jwt.SigningMethodRS256, other, kid, claimsFor(testIssuer, testAudience, future)),
		"no kid":             sign(t, jwt.SigningMethodRS256, key, "", claimsFor(testIssuer, testAudience, future)),
		"alg none":           none,
		"alg confusion":      sign(t, jwt.SigningMethodHS512, pubPEM, kid, claimsFor(testIssuer, testAudience, future)),
		"no exp":             sign(t, jwt.SigningMethodRS256, key, kid, jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "metadata": map[string]any{"patient_id": "p"}}),
		"wrong internal key": sign(t, jwt.SigningMethodHS512, []byte("not-the-internal-key-not-the-internal-key"), "", claimsFor(auth.InternalIssuer, auth.InternalIssuer, future)),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.client.VerifyToken(context.Background(), &tokenv1.VerifyTokenRequest{Token: tok, RequiredScopes: []string{"read:gdm_message"}})
			wantCode(t, err, codes.Unauthenticated)
			t.Logf("%s", status.Convert(err).Message())
			if msg := status.Convert(err).Message(); !strings.HasPrefix(msg, "invalid token: ") {
				t.Errorf("message %q gives no reason", msg)
			}
		})
	}
	// The control: the same construction with the right key passes.
	ok := sign(t, jwt.SigningMethodRS256, key, kid, claimsFor(testIssuer, testAudience, future))
	if _, err := e.client.VerifyToken(context.Background(), &tokenv1.VerifyTokenRequest{Token: ok}); err != nil {
		t.Errorf("control token refused: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestGetJWKSVerifiesWithGolangJWT: an independent consumer that knows
// only the published JWK set accepts the service's tokens.
func TestGetJWKSVerifiesWithGolangJWT(t *testing.T) {
	e := start(t, options{})
	jwks, err := e.client.GetJWKS(context.Background(), &tokenv1.GetJWKSRequest{})
	if err != nil {
		t.Fatalf("GetJWKS: %v", err)
	}
	if len(jwks.GetKeys()) != 1 {
		t.Fatalf("%d keys, want 1", len(jwks.GetKeys()))
	}
	jwk := jwks.GetKeys()[0]
	if jwk.GetKty() != "RSA" || jwk.GetAlg() != "RS256" || jwk.GetUse() != "sig" {
		t.Fatalf("jwk = %v", jwk)
	}
	n, err1 := base64.RawURLEncoding.DecodeString(jwk.GetN())
	eb, err2 := base64.RawURLEncoding.DecodeString(jwk.GetE())
	if err1 != nil || err2 != nil {
		t.Fatalf("jwk encoding: %v %v", err1, err2)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(eb).Int64())}

	// The kid is the RFC 7638 thumbprint of the published key.
	canonical, _ := json.Marshal(struct {
		E   string `json:"e"`
		Kty string `json:"kty"`
		N   string `json:"n"`
	}{jwk.GetE(), "RSA", jwk.GetN()})
	sum := sha256.Sum256(canonical)
	if want := base64.RawURLEncoding.EncodeToString(sum[:]); jwk.GetKid() != want {
		t.Errorf("kid %s, want the thumbprint %s", jwk.GetKid(), want)
	}

	issued := e.issue(t, &tokenv1.IssueTokenRequest{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE, SubjectId: "dev-9"})
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(issued.GetJwt(), claims, func(tk *jwt.Token) (any, error) {
		if tk.Header["kid"] != jwk.GetKid() {
			return nil, errors.New("unknown kid")
		}
		return pub, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(testIssuer), jwt.WithAudience(testAudience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil || !tok.Valid {
		t.Fatalf("golang-jwt rejects the token: %v", err)
	}
	if claims["aud"] != testAudience {
		t.Errorf("aud = %#v, want a single string", claims["aud"])
	}
	if md, _ := claims["metadata"].(map[string]any); md["device_id"] != "dev-9" {
		t.Errorf("metadata = %v", claims["metadata"])
	}
	if claims["jti"] != issued.GetTokenId() || claims["sub"] != "dev-9" || claims["scope"] != "read:send_entry_identifier read:send_device" {
		t.Errorf("claims = %v", claims)
	}
	exp, _ := claims.GetExpirationTime()
	iat, _ := claims.GetIssuedAt()
	if exp.Sub(iat.Time) != 86400*time.Second || apitime.Format(exp.Time) != issued.GetExpiresAt() {
		t.Errorf("exp %v iat %v expires_at %s", exp, iat, issued.GetExpiresAt())
	}
}

func TestIssueTokenAccess(t *testing.T) {
	e := start(t, options{})
	ctx := context.Background()
	_, err := e.client.IssueToken(ctx, patientReq("p"))
	wantCode(t, err, codes.Unauthenticated)

	_, err = e.client.IssueToken(ctx, patientReq("p"), asService("device", "read:send_device"))
	wantCode(t, err, codes.PermissionDenied)

	// A patient token, even one that somehow had the scope, is not a
	// system principal.
	patient := e.issue(t, patientReq("p"))
	_, err = e.client.IssueToken(bearer(patient.GetJwt()), patientReq("p"))
	wantCode(t, err, codes.PermissionDenied)

	bad := map[string]*tokenv1.IssueTokenRequest{
		"unspecified kind":      {SubjectId: "p"},
		"unknown kind":          {Kind: authv1.PrincipalKind(42), SubjectId: "p"},
		"empty subject":         {Kind: authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT},
		"long subject":          {Kind: authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT, SubjectId: strings.Repeat("x", 201)},
		"control in subject":    {Kind: authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT, SubjectId: "x\x1by"},
		"clinician no device":   {Kind: authv1.PrincipalKind_PRINCIPAL_KIND_CLINICIAN, SubjectId: "c"},
		"system no scopes":      {Kind: authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM, SubjectId: "s"},
		"system internal scope": {Kind: authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM, SubjectId: "s", Scopes: []string{"internal:issue_token"}},
	}
	for name, req := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := e.client.IssueToken(ctx, req, asService("activation", "internal:issue_token"))
			wantCode(t, err, codes.InvalidArgument)
		})
	}

	sys := e.issue(t, &tokenv1.IssueTokenRequest{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM, SubjectId: "robot", Scopes: []string{"read:send_device"}})
	v, err := e.client.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: sys.GetJwt(), RequiredScopes: []string{"read:send_device"}})
	if err != nil || v.GetPrincipalKind() != authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM || v.GetPrincipalId() != "robot" {
		t.Fatalf("system token: %v %v", v, err)
	}
	exp, _ := time.Parse(apitime.Layout, sys.GetExpiresAt())
	if d := time.Until(exp); d < 3590*time.Second || d > 3601*time.Second {
		t.Errorf("system token lives %v, want 3600s", d)
	}
}

func TestDropData(t *testing.T) {
	ctx := context.Background()
	t.Run("not allowed", func(t *testing.T) {
		e := start(t, options{})
		_, err := e.client.DropData(ctx, &tokenv1.DropDataRequest{}, asService("gateway"))
		wantCode(t, err, codes.PermissionDenied)
		if msg := status.Convert(err).Message(); msg != "drop data is not allowed" {
			t.Errorf("message %q", msg)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		e := start(t, options{allowDrop: true})
		iss := e.issue(t, patientReq("p"))
		_, err := e.client.DropData(ctx, &tokenv1.DropDataRequest{})
		wantCode(t, err, codes.Unauthenticated)
		_, err = e.client.DropData(bearer(iss.GetJwt()), &tokenv1.DropDataRequest{})
		wantCode(t, err, codes.PermissionDenied)
		if _, err := e.client.DropData(ctx, &tokenv1.DropDataRequest{}, asService("gateway")); err != nil {
			t.Fatalf("DropData: %v", err)
		}
		if _, err := e.store.Get(ctx, iss.GetTokenId()); !errors.Is(err, token.ErrNotFound) {
			t.Errorf("record still there: %v", err)
		}
	})
	t.Run("production", func(t *testing.T) {
		e := start(t, options{allowDrop: true, production: true})
		_, err := e.client.DropData(ctx, &tokenv1.DropDataRequest{}, asService("gateway"))
		wantCode(t, err, codes.NotFound)
	})
}

// TestHS512Server: with HS_KEY the service signs legacy tokens and
// publishes no keys.
func TestHS512Server(t *testing.T) {
	e := start(t, options{hsKey: []byte("legacy-polaris-shared-key"), hsIssuer: "polaris"})
	jwks, err := e.client.GetJWKS(context.Background(), &tokenv1.GetJWKSRequest{})
	if err != nil || len(jwks.GetKeys()) != 0 {
		t.Fatalf("GetJWKS: %v, %d keys", err, len(jwks.GetKeys()))
	}
	iss := e.issue(t, patientReq("p7"))
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(iss.GetJwt(), claims, func(*jwt.Token) (any, error) { return []byte("legacy-polaris-shared-key"), nil },
		jwt.WithValidMethods([]string{"HS512"}), jwt.WithIssuer("polaris"), jwt.WithAudience("polaris"))
	if err != nil {
		t.Fatalf("legacy consumer rejects the token: %v", err)
	}
	if claims["aud"] != "polaris" {
		t.Errorf("aud = %#v", claims["aud"])
	}
	v, err := e.client.VerifyToken(context.Background(), &tokenv1.VerifyTokenRequest{Token: iss.GetJwt()})
	if err != nil || v.GetPrincipalId() != "p7" || v.GetIssuer() != "polaris" {
		t.Fatalf("VerifyToken: %v %v", v, err)
	}
}

func TestHealth(t *testing.T) {
	e := start(t, options{})
	resp, err := healthpb.NewHealthClient(e.conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "dhos.token.v1.TokenService"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}
}
