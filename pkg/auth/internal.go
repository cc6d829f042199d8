package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// InternalCredentials signs the short-lived tokens a service presents when
// it calls another service (gRPC per-RPC credentials). They carry
// metadata.system_id = the service's name and only the scopes it needs.
type InternalCredentials struct {
	key      []byte
	systemID string
	scopes   []string
	lifetime time.Duration

	mu     sync.Mutex
	cached string
	renew  time.Time
}

// NewInternalCredentials returns credentials for the named service.
func NewInternalCredentials(key []byte, systemID string, scopes ...string) *InternalCredentials {
	return &InternalCredentials{key: key, systemID: systemID, scopes: scopes, lifetime: 5 * time.Minute}
}

// Token returns a valid internal token, reusing one until it is half-way
// through its lifetime.
func (c *InternalCredentials) Token() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.cached != "" && now.Before(c.renew) {
		return c.cached, nil
	}
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	claims := jwt.MapClaims{
		"iss":      InternalIssuer,
		"aud":      InternalIssuer,
		"sub":      "system:" + c.systemID,
		"iat":      now.Unix(),
		"exp":      now.Add(c.lifetime).Unix(),
		"jti":      hex.EncodeToString(jti),
		"scope":    strings.Join(c.scopes, " "),
		"metadata": map[string]any{SystemIDClaim: c.systemID},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS512, claims).SignedString(c.key)
	if err != nil {
		return "", err
	}
	c.cached, c.renew = tok, now.Add(c.lifetime/2)
	return tok, nil
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c *InternalCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	tok, err := c.Token()
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials. The
// suite's internal hops run inside the cluster network (see NetworkPolicy);
// put a service mesh or mTLS in front where that is not enough.
func (c *InternalCredentials) RequireTransportSecurity() bool { return false }
