package admin

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	tokenv1 "github.com/dhosauth/dhosauth/gen/go/dhos/token/v1"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/service"
)

// ScopeAdminKeys lets an operator list and rotate the signing keys.
const ScopeAdminKeys = "admin:keys"

// keysClient calls the token service at addr as the operator's tool with
// the scope admin:keys, signed with the internal key.
func keysClient(addr string, key []byte) (tokenv1.TokenServiceClient, func(), error) {
	cc, err := service.Dial(addr, auth.NewInternalCredentials(key, "dhosctl", ScopeAdminKeys))
	if err != nil {
		return nil, nil, err
	}
	return tokenv1.NewTokenServiceClient(cc), func() { _ = cc.Close() }, nil
}

// ListKeys returns the token service's signing keys, oldest first.
func ListKeys(ctx context.Context, addr string, key []byte) ([]*tokenv1.SigningKey, error) {
	c, done, err := keysClient(addr, key)
	if err != nil {
		return nil, err
	}
	defer done()
	resp, err := c.ListKeys(ctx, &tokenv1.ListKeysRequest{})
	if err != nil {
		return nil, fmt.Errorf("token service at %s: %w", addr, err)
	}
	return resp.GetKeys(), nil
}

// RotateKeys starts a key rotation (or reports the one under way).
func RotateKeys(ctx context.Context, addr string, key []byte) (*tokenv1.RotateKeysResponse, error) {
	c, done, err := keysClient(addr, key)
	if err != nil {
		return nil, err
	}
	defer done()
	resp, err := c.RotateKeys(ctx, &tokenv1.RotateKeysRequest{})
	if err != nil {
		return nil, fmt.Errorf("token service at %s: %w", addr, err)
	}
	return resp, nil
}

// WriteKeys prints keys as a table.
func WriteKeys(w io.Writer, keys []*tokenv1.SigningKey) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tSOURCE\tACTIVATES\tRETIRES\tREMOVED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.GetKid(), k.GetAlg(), stateName(k.GetState()), k.GetSource(),
			orDash(k.GetActivatesAt()), orDash(k.GetRetiresAt()), orDash(k.GetRemovedAt()))
	}
	return tw.Flush()
}

func stateName(s tokenv1.KeyState) string {
	switch s {
	case tokenv1.KeyState_KEY_STATE_NEXT:
		return "next"
	case tokenv1.KeyState_KEY_STATE_ACTIVE:
		return "active"
	case tokenv1.KeyState_KEY_STATE_RETIRED:
		return "retired"
	}
	return "-"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
