#!/usr/bin/env bash
# Makes the google.api annotation protos available to buf without the Buf
# registry: they are read from the grpc-gateway v1 module in the Go module
# cache (downloaded through the Go module proxy) and linked into .protodeps/.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(GOWORK=off GOFLAGS=-mod=mod go mod download -json github.com/grpc-ecosystem/grpc-gateway@v1.16.0 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
src="$dir/third_party/googleapis/google/api"
[ -f "$src/annotations.proto" ] || { echo "protodeps: $src/annotations.proto not found" >&2; exit 1; }
mkdir -p .protodeps/google/api
for f in annotations.proto http.proto; do
  install -m 0644 "$src/$f" ".protodeps/google/api/$f"
done
