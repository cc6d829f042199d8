// Command dhosctl is the operator's tool for the suite.
//
//	dhosctl token [-scope "a b"] [-system-id name]   mint a system token
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
  token    mint a system token from the token service (TOKEN_GRPC_ADDR),
           authenticated with the suite's internal key (INTERNAL_AUTH_KEY,
           or DATA_DIR/internal-auth.key outside production)`

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "token":
		return mintToken(ctx, args[1:], out)
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

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
