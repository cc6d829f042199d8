package servicetest

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// HSIssuer mints legacy HS512 tokens as the trusted legacy issuer does:
// signed with Key, with Issuer as both iss and aud. A verifier built with
// auth.VerifierOptions{HSKey: Key, HSIssuer: Issuer} accepts them.
type HSIssuer struct {
	Key    []byte
	Issuer string
}

// Token signs claims on top of those of a valid token (iss, aud, iat now,
// exp an hour later); claims may replace any of them.
func (h HSIssuer) Token(claims jwt.MapClaims) (string, error) {
	now := time.Now()
	c := jwt.MapClaims{"iss": h.Issuer, "aud": h.Issuer, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	maps.Copy(c, claims)
	return jwt.NewWithClaims(jwt.SigningMethodHS512, c).SignedString(h.Key)
}

// Sign is Token, failing the test on an error.
func (h HSIssuer) Sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := h.Token(claims)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return tok
}

// Caller returns a context whose outgoing calls carry a token of h for
// the subject "test" with scope (scopes separated by spaces) and the
// metadata claim md, which says who the caller is (clinician_id,
// device_id, system_id, ...).
func (h HSIssuer) Caller(t testing.TB, scope string, md map[string]any) context.Context {
	t.Helper()
	return Bearer(h.Sign(t, jwt.MapClaims{"sub": "test", "scope": scope, "metadata": md}))
}

// Bearer returns a context whose outgoing calls carry tok as their bearer
// token.
func Bearer(tok string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
}

// WantCode fails the test unless err has the gRPC code want and, when msg
// is not empty, a message that contains msg.
func WantCode(t testing.TB, err error, want codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != want {
		t.Fatalf("code %v (%v), want %v", st.Code(), err, want)
	}
	if msg != "" && !strings.Contains(st.Message(), msg) {
		t.Fatalf("message %q does not contain %q", st.Message(), msg)
	}
}
