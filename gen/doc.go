// Package gen holds the Go code generated from proto/ by `make generate`.
// Do not edit: change the .proto files and regenerate.
package gen
