// Package sessiongrpc is the session service's gRPC side: the server that
// turns dhos.session.v1 requests into calls of the session domain, and the
// clients of its peers (the device and token services) that implement the
// domain's Devices and Tokens ports.
package sessiongrpc
