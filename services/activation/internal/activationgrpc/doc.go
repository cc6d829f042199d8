// Package activationgrpc is the activation service's gRPC edge: it turns
// dhos.activation.v1 requests into calls of the activation domain and the
// results back into responses, and adapts the device and token services'
// gRPC clients to the domain's Devices and Tokens interfaces.
package activationgrpc
