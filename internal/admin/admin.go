// Package admin holds what the operator's command (dhosctl) does, so that
// the end-to-end tests drive the suite exactly as an operator would.
package admin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/service"
)

// DefaultScopes are the scopes of the administrator's system token: every
// scope the /dhos/v1 management endpoints ask for, and read:audit for the
// audit query endpoint.
var DefaultScopes = []string{
	"write:gdm_activation", "read:gdm_activation",
	"write:send_clinician", "write:send_device", "read:send_device",
	"read:audit", "admin:sessions",
}

// InternalKey reads the service-to-service key: INTERNAL_AUTH_KEY, or the
// file the services keep in DATA_DIR outside production. It never makes one.
func InternalKey(env func(string) string) ([]byte, error) {
	if k := env("INTERNAL_AUTH_KEY"); k != "" {
		return []byte(k), nil
	}
	dir := env("DATA_DIR")
	if dir == "" {
		dir = "data"
	}
	b, err := os.ReadFile(filepath.Join(dir, "internal-auth.key"))
	if err != nil {
		return nil, errors.New("no internal key: set INTERNAL_AUTH_KEY, or DATA_DIR to the suite's data folder (start the suite first)")
	}
	return []byte(strings.TrimSpace(string(b))), nil
}

// MintSystemToken asks the token service at addr for a system token.
func MintSystemToken(ctx context.Context, addr string, key []byte, systemID string, scopes []string) (string, error) {
	cc, err := service.Dial(addr, auth.NewInternalCredentials(key, "dhosctl", "internal:issue_token"))
	if err != nil {
		return "", err
	}
	defer cc.Close()
	resp, err := tokenv1.NewTokenServiceClient(cc).IssueToken(ctx, &tokenv1.IssueTokenRequest{
		Kind:      authv1.PrincipalKind_PRINCIPAL_KIND_SYSTEM,
		SubjectId: systemID,
		Scopes:    scopes,
	})
	if err != nil {
		return "", fmt.Errorf("token service at %s: %w", addr, err)
	}
	return resp.GetJwt(), nil
}
