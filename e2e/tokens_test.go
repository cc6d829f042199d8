package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/internal/admin"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// jwkSet is /.well-known/jwks.json as an independent consumer reads it.
type jwkSet struct {
	Keys []struct {
		Kty, Kid, Alg, Use, Crv, X, Y, N, E string
	} `json:"keys"`
}

// fetchJWKS reads the published key set over HTTP.
func fetchJWKS(t *testing.T, s *Suite) (jwkSet, Response) {
	t.Helper()
	r := Expect(t, s.Do("GET", "/.well-known/jwks.json", "", nil), 200)
	var set jwkSet
	if err := json.Unmarshal(r.Body, &set); err != nil {
		t.Fatalf("JWKS %s: %v", r.Body, err)
	}
	return set, r
}

// ecKey builds the P-256 key of kid from the set with the standard
// library only, as any consumer would.
func (set jwkSet) ecKey(t *testing.T, kid string) *ecdsa.PublicKey {
	t.Helper()
	for _, k := range set.Keys {
		if k.Kid != kid {
			continue
		}
		if k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" || k.N != "" {
			t.Fatalf("key %s is %+v", kid, k)
		}
		x, err1 := base64.RawURLEncoding.DecodeString(k.X)
		y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
		if err1 != nil || err2 != nil {
			t.Fatalf("key %s: %v %v", kid, err1, err2)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatalf("key %s: %v", kid, err)
		}
		return pub
	}
	t.Fatalf("kid %s is not published", kid)
	return nil
}

// staticPatientJWT signs in static patient 1 (outside production) and
// returns its JWT.
func staticPatientJWT(t *testing.T, s *Suite) string {
	t.Helper()
	Expect(t, validatePatient(s, "1", "1111"), 200)
	tok := Expect(t, patientJWT(t, s, "static_patient_uuid_1", "1"), 200).JSON(t)["jwt"].(string)
	s.Secret(tok)
	return tok
}

func headerOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.SplitN(tok, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// verifyWithJWKS checks tok with golang-jwt against the set.
func verifyWithJWKS(t *testing.T, set jwkSet, tok string) error {
	t.Helper()
	c := Claims(t, tok)
	_, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		return set.ecKey(t, kid), nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(c["iss"].(string)), jwt.WithAudience(c["aud"].(string)),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(time.Second))
	return err
}

func tokenClient(t *testing.T, s *Suite) tokenv1.TokenServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(s.Addr["token"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return tokenv1.NewTokenServiceClient(cc)
}

func (s *Suite) internalKey(t *testing.T) []byte {
	t.Helper()
	key, err := admin.InternalKey(func(k string) string {
		if k == "DATA_DIR" {
			return s.DataDir
		}
		return s.Env[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestPublishedKeys: a token the edge hands out verifies with golang-jwt
// against the key set fetched from /.well-known/jwks.json; the discovery
// document describes the issuer; VerifyToken over gRPC answers OK,
// UNAUTHENTICATED (tampered, foreign) and PERMISSION_DENIED.
func TestPublishedKeys(t *testing.T) {
	forEachBackend(t, nil, func(t *testing.T, s *Suite) {
		tok := staticPatientJWT(t, s)
		h := headerOf(t, tok)
		if h["alg"] != "ES256" || h["kid"] == nil {
			t.Fatalf("header %v: want ES256 with a kid", h)
		}
		set, r := fetchJWKS(t, s)
		if err := verifyWithJWKS(t, set, tok); err != nil {
			t.Fatalf("golang-jwt with the published key: %v", err)
		}
		for _, k := range set.Keys {
			if k.N != "" || strings.Contains(string(r.Body), `"d"`) {
				t.Fatalf("private or unexpected material published: %s", r.Body)
			}
		}
		if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=900" {
			t.Errorf("Cache-Control %q (propagation 1h: at most a quarter)", cc)
		}
		etag := r.Header.Get("ETag")
		if etag == "" || s.Do("GET", "/.well-known/jwks.json", "", nil, "If-None-Match", etag).Status != http.StatusNotModified {
			t.Errorf("ETag %q does not give a 304", etag)
		}

		doc := Expect(t, s.Do("GET", "/.well-known/openid-configuration", "", nil), 200).JSON(t)
		c := Claims(t, tok)
		if doc["issuer"] != c["iss"] || doc["jwks_uri"] != strings.TrimSuffix(c["iss"].(string), "/")+"/.well-known/jwks.json" {
			t.Errorf("discovery %v for iss %v", doc, c["iss"])
		}
		if algs, _ := doc["id_token_signing_alg_values_supported"].([]any); len(algs) == 0 || algs[0] != "ES256" {
			t.Errorf("algorithms %v", doc["id_token_signing_alg_values_supported"])
		}

		tc := tokenClient(t, s)
		ctx := context.Background()
		v, err := tc.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: tok, RequiredScopes: []string{"read:gdm_message"}})
		if err != nil || v.GetPrincipalKind() != authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT || v.GetPrincipalId() != "static_patient_uuid_1" ||
			v.GetMetadata().AsMap()["patient_id"] != "static_patient_uuid_1" || v.GetExpiresAt() == "" || len(v.GetScopes()) == 0 {
			t.Fatalf("VerifyToken: %v %v", v, err)
		}
		_, err = tc.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: tok, RequiredScopes: []string{"write:send_device"}})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("missing scope: %v", err)
		}
		parts := strings.Split(tok, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), "static_patient_uuid_1", "static_patient_uuid_2", 1))) + "." + parts[2]
		foreignKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		foreign := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims(c))
		foreign.Header["kid"] = h["kid"]
		foreignTok, _ := foreign.SignedString(foreignKey)
		for name, bad := range map[string]string{"tampered": tampered, "foreign key": foreignTok} {
			_, err := tc.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: bad})
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("%s: %v, want UNAUTHENTICATED", name, err)
			}
		}
	})
}

// TestKeyRotation: with a short propagation period and short lifetimes, a
// rotation publishes the next key at once, it signs after the propagation
// period, a token signed by the rotated-out key keeps verifying (golang-jwt
// on the published set, VerifyToken, another service's local verifier)
// until it expires, then fails; the retired key then leaves the set.
func TestKeyRotation(t *testing.T) {
	env := map[string]string{
		"KEY_PROPAGATION_PERIOD":                  "2s",
		"JWT_EXPIRY_IN_SECONDS":                   "5",
		"SEND_ENTRY_DEVICE_JWT_EXPIRY_IN_SECONDS": "5",
		"SYSTEM_JWT_EXPIRY_IN_SECONDS":            "10",
		"TOKEN_LEEWAY":                            "1s",
	}
	forEachBackend(t, env, func(t *testing.T, s *Suite) {
		ctx := context.Background()
		old := staticPatientJWT(t, s)
		oldKid := headerOf(t, old)["kid"].(string)

		rot, err := admin.RotateKeys(ctx, s.Addr["token"], s.internalKey(t))
		if err != nil || !rot.GetCreated() {
			t.Fatalf("rotate-keys: %v %v", rot, err)
		}
		nextKid := rot.GetNext().GetKid()
		set, r := fetchJWKS(t, s)
		if len(set.Keys) != 2 || r.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("after rotation: %d keys published, Cache-Control %q", len(set.Keys), r.Header.Get("Cache-Control"))
		}
		set.ecKey(t, nextKid)
		if kid := headerOf(t, staticPatientJWT(t, s))["kid"]; kid != oldKid {
			t.Fatalf("the next key signed before its propagation period (%v)", kid)
		}

		var fresh string
		waitFor(t, 10*time.Second, "the next key to sign", func() bool {
			fresh = staticPatientJWT(t, s)
			return headerOf(t, fresh)["kid"] == nextKid
		})
		set, _ = fetchJWKS(t, s)
		tc := tokenClient(t, s)
		for name, tok := range map[string]string{"old": old, "fresh": fresh} {
			if err := verifyWithJWKS(t, set, tok); err != nil {
				t.Errorf("%s token with golang-jwt: %v", name, err)
			}
			if _, err := tc.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: tok}); err != nil {
				t.Errorf("%s token with VerifyToken: %v", name, err)
			}
			// The activation service verifies locally with the keys it
			// fetched: the new kid is fetched on first sight.
			Expect(t, s.Do("GET", "/dhos/v1/patient/static_patient_uuid_1/security-test", tok, nil), 200)
		}
		keys, err := admin.ListKeys(ctx, s.Addr["token"], s.internalKey(t))
		if err != nil || len(keys) != 2 || keys[0].GetState() != tokenv1.KeyState_KEY_STATE_RETIRED || keys[1].GetState() != tokenv1.KeyState_KEY_STATE_ACTIVE {
			t.Fatalf("keys after the propagation period: %v %v", keys, err)
		}

		// The old token expires (5 s and the 1 s leeway): refused everywhere.
		exp := time.Unix(int64(Claims(t, old)["exp"].(float64)), 0)
		time.Sleep(time.Until(exp.Add(1500 * time.Millisecond)))
		if err := verifyWithJWKS(t, set, old); err == nil {
			t.Error("golang-jwt accepts the expired token")
		}
		_, err = tc.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: old})
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), "expired") {
			t.Errorf("expired token: %v", err)
		}
		Expect(t, s.Do("GET", "/dhos/v1/patient/static_patient_uuid_1/security-test", old, nil), 401)

		// Retention: the longest lifetime (10 s) and the leeway after
		// the retirement, the old key leaves the set.
		waitFor(t, 20*time.Second, "the retired key to be removed", func() bool {
			set, _ := fetchJWKS(t, s)
			return len(set.Keys) == 1 && set.Keys[0].Kid == nextKid
		})
	})
}

// TestDeactivatedDeviceRefused: a device's token works, the device is
// deactivated, VerifyToken refuses the token at once and every other
// service within the revocation poll interval (REVOCATION_POLL_INTERVAL,
// 2 s): the session service's clinician sign-in and the device service's
// own API answer 401.
func TestDeactivatedDeviceRefused(t *testing.T) {
	const poll = 2 * time.Second
	forEachBackend(t, map[string]string{"REVOCATION_POLL_INTERVAL": poll.String()}, func(t *testing.T, s *Suite) {
		adminTok := s.AdminToken(t)
		deviceID, device := activeDeviceJWT(t, s, adminTok)
		ident := Unique("ident")
		Expect(t, s.Do("POST", "/dhos/v1/clinician", adminTok, clinicianBody(Unique("clin"), ident, "SEND Clinician")), 201)
		signIn := func() Response {
			return s.Do("GET", "/dhos/v1/clinician/jwt?send_entry_identifier="+ident, device, nil)
		}
		clinician := Expect(t, signIn(), 200).JSON(t)["jwt"].(string)
		Expect(t, s.Do("GET", "/dhos/v1/device/"+deviceID, device, nil), 200)
		Expect(t, s.Do("GET", "/dhos/v1/device/"+deviceID, clinician, nil), 200)

		Expect(t, s.Do("PATCH", "/dhos/v1/device/"+deviceID, adminTok, map[string]any{"active": false}), 200)
		deactivated := time.Now()
		_, err := tokenClient(t, s).VerifyToken(context.Background(), &tokenv1.VerifyTokenRequest{Token: device})
		if status.Code(err) != codes.Unauthenticated || status.Convert(err).Message() != "invalid token: revoked" {
			t.Fatalf("VerifyToken right after deactivation: %v", err)
		}
		// The clinician signed in on the tablet falls with it.
		_, err = tokenClient(t, s).VerifyToken(context.Background(), &tokenv1.VerifyTokenRequest{Token: clinician})
		if status.Code(err) != codes.Unauthenticated || status.Convert(err).Message() != "invalid token: revoked" {
			t.Fatalf("VerifyToken of the tablet's clinician right after deactivation: %v", err)
		}
		for name, call := range map[string]func() Response{
			"session (clinician sign-in)":          signIn,
			"device (GET device)":                  func() Response { return s.Do("GET", "/dhos/v1/device/"+deviceID, device, nil) },
			"device (GET device, clinician token)": func() Response { return s.Do("GET", "/dhos/v1/device/"+deviceID, clinician, nil) },
		} {
			for {
				r := call()
				if r.Status == 401 {
					t.Logf("%s: refused %v after the deactivation", name, time.Since(deactivated).Round(time.Millisecond))
					break
				}
				// Before the poll: the sign-in finds the device inactive
				// (403); the device API still serves the device (200).
				if r.Status != 403 && r.Status != 200 {
					t.Fatalf("%s: status %d %s", name, r.Status, r.Body)
				}
				if time.Since(deactivated) > poll+time.Second {
					t.Fatalf("%s: the revoked token still works %v after the deactivation", name, time.Since(deactivated))
				}
				time.Sleep(25 * time.Millisecond)
			}
		}
	})
}
