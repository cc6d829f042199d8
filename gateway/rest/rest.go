// Package rest lets code outside the gateway module's tree (end-to-end
// tests, benchmarks) build the REST edge in-process: the same handler the
// gateway binary serves, on connections to services it runs itself.
package rest

import (
	"context"
	"net/http"

	"github.com/dhosauth/dhosauth/gateway/internal/edge"
	"github.com/dhosauth/dhosauth/pkg/service"
)

// Options configure the edge; see the fields' documentation.
type Options = edge.Options

// Conns are the client connections to the four services.
type Conns = edge.Conns

// VersionInfo is what GET /version reports.
type VersionInfo = edge.VersionInfo

// DefaultMaxBodyBytes bounds a request body unless Options says otherwise.
const DefaultMaxBodyBytes = edge.DefaultMaxBodyBytes

// Dial opens client connections to the services at addr (close them with
// Conns.Close).
func Dial(addr service.Addresses) (Conns, error) { return edge.Dial(addr) }

// Handler builds the edge handler. Cancel ctx when it is no longer used.
func Handler(ctx context.Context, o Options) (http.Handler, error) { return edge.Handler(ctx, o) }
