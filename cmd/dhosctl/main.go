// Command dhosctl is the operator's tool for the suite.
//
//	dhosctl token [-scope "a b"] [-system-id name]   mint a system token
//	dhosctl keys                                     list the signing keys
//	dhosctl rotate-keys                              start a key rotation
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dhosauth/dhosauth/internal/admin"
	"github.com/dhosauth/dhosauth/pkg/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dhosctl:", err)
		os.Exit(1)
	}
}

const usage = `usage: dhosctl <command> [flags]

commands:
  token        mint a system token from the token service (TOKEN_GRPC_ADDR),
               authenticated with the suite's internal key (INTERNAL_AUTH_KEY,
               or DATA_DIR/internal-auth.key outside production)
  keys         list the token service's signing keys and their states
  rotate-keys  publish a new signing key now; it signs after the propagation
               period (KEY_PROPAGATION_PERIOD), the current one then retires`

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "token":
		return mintToken(ctx, args[1:], out)
	case "keys", "rotate-keys":
		return keys(ctx, args[0], args[1:], out)
	case "help", "-h", "--help":
		fmt.Fprintln(out, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

func mintToken(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	scope := fs.String("scope", strings.Join(admin.DefaultScopes, " "), "space-separated scopes")
	systemID := fs.String("system-id", "dhosctl", "metadata.system_id of the token")
	addr := fs.String("addr", envOr("TOKEN_GRPC_ADDR", service.DefaultTokenAddr), "token service gRPC address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, err := admin.InternalKey(os.Getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tok, err := admin.MintSystemToken(ctx, *addr, key, *systemID, strings.Fields(*scope))
	if err != nil {
		return err
	}
	fmt.Fprintln(out, tok)
	return nil
}

// keys lists the signing keys, or rotates them first (rotate-keys).
func keys(ctx context.Context, cmd string, args []string, out io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	addr := fs.String("addr", envOr("TOKEN_GRPC_ADDR", service.DefaultTokenAddr), "token service gRPC address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, err := admin.InternalKey(os.Getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if cmd == "keys" {
		list, err := admin.ListKeys(ctx, *addr, key)
		if err != nil {
			return err
		}
		return admin.WriteKeys(out, list)
	}
	resp, err := admin.RotateKeys(ctx, *addr, key)
	if err != nil {
		return err
	}
	if resp.GetCreated() {
		fmt.Fprintf(out, "published key %s; it signs from %s\n", resp.GetNext().GetKid(), resp.GetNext().GetActivatesAt())
	} else {
		fmt.Fprintf(out, "a rotation is already under way: key %s signs from %s\n", resp.GetNext().GetKid(), resp.GetNext().GetActivatesAt())
	}
	return admin.WriteKeys(out, resp.GetKeys())
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
