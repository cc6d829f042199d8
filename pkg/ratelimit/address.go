package ratelimit

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// ClientAddressMetadata is the gRPC metadata key in which the REST edge
// passes the client's address to the services. The edge always sets it
// itself (from the connection, or from X-Forwarded-For of a trusted
// proxy) and never forwards a client's value for it.
const ClientAddressMetadata = "dhos-client-address"

// ClientAddressHeader is the HTTP header in which the REST edge passes the
// client's address (decided as for ClientAddressMetadata) to the session
// service's browser sign-in listener, which only the edge can reach. The
// edge always sets it itself, replacing any value a client sent.
const ClientAddressHeader = "Dhos-Client-Address"

// ClientAddress returns the address a call came from: the edge's
// ClientAddressMetadata when present and an IP address, else the gRPC
// peer's address (a caller that reached the service directly). It
// returns the zero Addr when neither is known.
func ClientAddress(ctx context.Context) netip.Addr {
	if v := metadata.ValueFromIncomingContext(ctx, ClientAddressMetadata); len(v) > 0 {
		if a, err := netip.ParseAddr(strings.TrimSpace(v[len(v)-1])); err == nil {
			return a.Unmap()
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if tcp, ok := p.Addr.(*net.TCPAddr); ok {
			if a, ok := netip.AddrFromSlice(tcp.IP); ok {
				return a.Unmap()
			}
		}
		if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
			return ap.Addr().Unmap()
		}
	}
	return netip.Addr{}
}

// AddressKey is what a per-address limit counts: an IPv4 address, or the
// /64 network of an IPv6 address (one subscriber is usually given a whole
// /64, so counting single IPv6 addresses would let one client pick a new
// one per guess). The zero Addr is "unknown".
func AddressKey(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is4():
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// ParsePrefixes reads a comma-separated list of addresses and CIDR
// prefixes (TRUSTED_PROXIES); a bare address is a /32 or /128.
func ParsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ForwardedClient returns the client address of an HTTP request that
// arrived from peer with the X-Forwarded-For values xff: peer itself
// unless it is a trusted proxy; otherwise the right-most address in
// X-Forwarded-For that is not a trusted proxy (each trusted proxy appends
// the address it received the request from, so entries to the left of the
// first untrusted one may have been written by the client and are
// ignored). An entry that is not an IP address stops the walk at the last
// address that was.
func ForwardedClient(peer netip.Addr, xff []string, trusted []netip.Prefix) netip.Addr {
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return peer
	}
	var hops []string
	for _, v := range xff {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = a.Unmap()
		if !isTrusted(client, trusted) {
			break
		}
	}
	return client
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	a = a.WithZone("")
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

type addressKey struct{}

// WithAddress returns ctx carrying the client address a request came from,
// as the transport decided it (ClientAddress for gRPC, the edge's
// ClientAddressHeader for HTTP), for AddressBucket further down.
func WithAddress(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, addressKey{}, a)
}

// AddressBucket is the bucket of limit l for the client address ctx
// carries (WithAddress); a request without one counts as "unknown".
func AddressBucket(ctx context.Context, l Limit) Bucket {
	a, _ := ctx.Value(addressKey{}).(netip.Addr)
	return Bucket{Limit: l, Key: AddressKey(a)}
}
