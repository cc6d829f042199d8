#!/usr/bin/env bash
# Makes the annotation protos the contracts import available to buf without
# the Buf registry: they are read from the Go module cache (downloaded
# through the Go module proxy) and copied into .protodeps/:
#   - google/api (http rules) from the grpc-gateway v1 module;
#   - protoc-gen-openapiv2/options (OpenAPI annotations) from the
#     grpc-gateway v2 module, at the version of the pinned generator
#     (GRPC_GATEWAY_VERSION, set by the Makefile).
set -euo pipefail
cd "$(dirname "$0")/.."
moddir() {
  GOWORK=off GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}
dir=$(moddir github.com/grpc-ecosystem/grpc-gateway@v1.16.0)
src="$dir/third_party/googleapis/google/api"
[ -f "$src/annotations.proto" ] || { echo "protodeps: $src/annotations.proto not found" >&2; exit 1; }
mkdir -p .protodeps/google/api
for f in annotations.proto http.proto; do
  install -m 0644 "$src/$f" ".protodeps/google/api/$f"
done
dir=$(moddir "github.com/grpc-ecosystem/grpc-gateway/v2@${GRPC_GATEWAY_VERSION:-v2.33.0}")
src="$dir/protoc-gen-openapiv2/options"
[ -f "$src/annotations.proto" ] || { echo "protodeps: $src/annotations.proto not found" >&2; exit 1; }
mkdir -p .protodeps/protoc-gen-openapiv2/options
for f in annotations.proto openapiv2.proto; do
  install -m 0644 "$src/$f" ".protodeps/protoc-gen-openapiv2/options/$f"
done
