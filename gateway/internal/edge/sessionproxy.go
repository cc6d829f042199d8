package edge

import (
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// sessionPaths are the browser-facing endpoints of the session service
// (sign-in, logout, the OpenID provider of the client apps), forwarded
// as they are to its HTTP listener under the suite's own origin: cookies
// and redirects stay on one site, and form bodies (the token endpoint,
// back-channel logout) reach it without the edge's JSON rules.
var sessionPaths = map[string]bool{
	"/oauth2/authorize":   true,
	"/oauth2/token":       true,
	"/oauth2/userinfo":    true,
	"/login":              true,
	"/login/upstream":     true,
	"/login/callback":     true,
	"/login/local":        true,
	"/logout":             true,
	"/backchannel-logout": true,
	"/session":            true,
}

// Paths of the OpenID provider, for the discovery document.
const (
	authorizePath = "/oauth2/authorize"
	tokenPath     = "/oauth2/token"
	userinfoPath  = "/oauth2/userinfo"
	endSession    = "/logout"
)

// sessionProxy forwards the session paths to addr (host:port) and
// everything else to next. The client's address (from X-Forwarded-For
// only when the peer is one of the trusted proxies) goes to the session
// service in ratelimit.ClientAddressHeader, for its per-address limits.
func sessionProxy(addr string, next http.Handler, errs *errorWriter, maxBody int64, trusted []netip.Prefix) http.Handler {
	target := &url.URL{Scheme: "http", Host: addr}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			// Never what the client sent under that name.
			pr.Out.Header.Del(ratelimit.ClientAddressHeader)
			if a := clientAddress(pr.In, trusted); a.IsValid() {
				pr.Out.Header.Set(ratelimit.ClientAddressHeader, a.String())
			}
			// The session service continues the edge's trace.
			otel.GetTextMapPropagator().Inject(pr.In.Context(), propagation.HeaderCarrier(pr.Out.Header))
		},
		Transport: &http.Transport{
			Proxy:                 nil,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			errs.write(w, http.StatusBadGateway, "the session service is not answering, try again")
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !sessionPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		if ri := routeInfoOf(r); ri != nil {
			ri.path = r.URL.Path
		}
		if strings.ContainsAny(r.URL.RawQuery, "\x00\r\n") {
			errs.write(w, http.StatusBadRequest, badQuery)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		r.Header.Del("Grpc-Timeout")
		rp.ServeHTTP(w, r)
	})
}
