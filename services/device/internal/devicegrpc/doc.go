// Package devicegrpc is the device service's gRPC server: it turns
// dhos.device.v1 requests into calls of the device domain and devices into
// responses.
package devicegrpc
