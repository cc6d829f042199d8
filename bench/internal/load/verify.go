package load

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// StepVerify names the VerifyToken call.
const StepVerify = "VerifyToken"

// Signer signs device tokens with the key mounted in the token service,
// so that the load generator has as many distinct valid tokens as it
// needs (the "unseen" tokens: a signature check each).
type Signer struct {
	key    *ecdsa.PrivateKey
	kid    string
	issuer string
}

// NewSigner returns a signer of ES256 tokens for issuer; the kid is the
// key's RFC 7638 thumbprint, as the token service names file keys.
func NewSigner(key *ecdsa.PrivateKey, issuer string) (*Signer, error) {
	j, err := auth.JWKFromPublicKey("", "", key.Public())
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(`{"crv":"` + j.Crv + `","kty":"EC","x":"` + j.X + `","y":"` + j.Y + `"}`))
	return &Signer{key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:]), issuer: issuer}, nil
}

// Key is the public key and kid, for an in-process verifier.
func (s *Signer) Key() (string, auth.StaticKey) {
	return s.kid, auth.StaticKey{Key: s.key.Public(), Alg: auth.AlgES256}
}

// PrivateKey is the signing key (the bare reference server needs its
// public half).
func (s *Signer) PrivateKey() *ecdsa.PrivateKey { return s.key }

// Tokens signs n distinct device tokens valid for an hour, on every CPU.
func (s *Signer) Tokens(n int) []string {
	out := make([]string, n)
	now := time.Now().Truncate(time.Second)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
					"iss": s.issuer, "aud": s.issuer, "sub": fmt.Sprintf("device-bench-%d", i%5000), "jti": fmt.Sprintf("jti-%d-%d", now.UnixNano(), i),
					"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "read:send_entry_identifier read:send_device",
					"metadata": map[string]any{"device_id": fmt.Sprintf("device-bench-%d", i%5000)},
				})
				t.Header["kid"] = s.kid
				raw, err := t.SignedString(s.key)
				if err != nil {
					panic(err)
				}
				out[i] = raw
			}
		})
	}
	wg.Wait()
	return out
}

// InProcessVerify verifies distinct tokens with pkg/auth (no cache) on
// every CPU for d: the ceiling of VerifyToken for unseen tokens.
func InProcessVerify(ctx context.Context, s *Signer, tokens []string, d time.Duration) Result {
	kid, key := s.Key()
	v := auth.NewVerifier(auth.VerifierOptions{Issuer: s.issuer, Audience: s.issuer, Keys: auth.StaticKeys{kid: key}})
	var next atomic.Int64
	return Closed(ctx, []string{"verify"}, runtime.GOMAXPROCS(0), 0, d, func(ctx context.Context, t *Tally) error {
		i := next.Add(1) - 1
		t0 := t.Begin(0)
		if _, err := v.Verify(ctx, tokens[int(i)%len(tokens)]); err != nil {
			t.Failed(0)
			return err
		}
		t.Done(0, t0)
		return nil
	})
}

// VerifyClients are gRPC connections to the token service.
type VerifyClients struct {
	conns   []*grpc.ClientConn
	clients []tokenv1.TokenServiceClient
}

// DialToken opens n connections to the token service at addr.
func DialToken(addr string, n int) (*VerifyClients, error) {
	v := &VerifyClients{}
	for range n {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			v.Close()
			return nil, err
		}
		v.conns = append(v.conns, cc)
		v.clients = append(v.clients, tokenv1.NewTokenServiceClient(cc))
	}
	return v, nil
}

// Close closes the connections.
func (v *VerifyClients) Close() {
	for _, c := range v.conns {
		c.Close()
	}
}

// Warm verifies each token once (so that the verify cache holds them).
func (v *VerifyClients) Warm(ctx context.Context, tokens []string) error {
	for _, t := range tokens {
		if _, err := v.clients[0].VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: t}); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	return nil
}

// Source hands out the tokens to verify.
type Source func() (string, bool)

// Cycle repeats tokens for ever (tokens seen before).
func Cycle(tokens []string) Source {
	var i atomic.Int64
	return func() (string, bool) { return tokens[int(i.Add(1)-1)%len(tokens)], true }
}

// Once hands out each token once (tokens never seen), then reports none.
func Once(tokens []string) Source {
	var i atomic.Int64
	return func() (string, bool) {
		n := int(i.Add(1) - 1)
		if n >= len(tokens) {
			return "", false
		}
		return tokens[n], true
	}
}

// errExhausted ends a flow when an unseen-token source runs dry.
var errExhausted = fmt.Errorf("load: no unseen tokens left (lengthen the pool)")

// VerifyFlow is one VerifyToken call over gRPC for the next token.
func (v *VerifyClients) VerifyFlow(next Source) Flow {
	return func(ctx context.Context, t *Tally) error {
		tok, ok := next()
		if !ok {
			return errExhausted
		}
		c := v.clients[t.Worker%len(v.clients)]
		t0 := t.Begin(0)
		if _, err := c.VerifyToken(ctx, &tokenv1.VerifyTokenRequest{Token: tok}); err != nil {
			t.Failed(0)
			return err
		}
		t.Done(0, t0)
		return nil
	}
}
