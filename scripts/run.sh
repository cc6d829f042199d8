#!/usr/bin/env bash
# Starts the whole suite on this machine from bin/ (see `make run`): the
# token, device, session and activation services and the REST edge. Uses the
# embedded SQLite stores under DATA_DIR unless DATABASE_URL or DATABASE_HOST
# is set. Each process serves its ops listener (metrics, health, pprof) on
# its default OPS_ADDR, 127.0.0.1:9190 (edge) to :9194. Ctrl-C stops
# everything.
set -euo pipefail
cd "$(dirname "$0")/.."

export ENVIRONMENT="${ENVIRONMENT:-DEVELOPMENT}"
export LOG_FORMAT="${LOG_FORMAT:-colour}"
export DATA_DIR="${DATA_DIR:-$PWD/data}"
export ALLOW_DROP_DATA="${ALLOW_DROP_DATA:-true}"
HTTP_PORT="${HTTP_PORT:-8080}"
export HTTP_PORT
# Tokens name the edge the suite is reached at (jwks_uri in discovery).
export TOKEN_ISSUER="${TOKEN_ISSUER:-${HS_ISSUER:-http://localhost:${HTTP_PORT}/}}"
mkdir -p "$DATA_DIR"

pids=()
stop() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

for s in token device session activation gateway; do
  "./bin/$s" &
  pids+=($!)
done

url="http://localhost:${HTTP_PORT}"
for _ in $(seq 1 100); do
  if curl -fsS "$url/running" >/dev/null 2>&1; then break; fi
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "run: a process exited during start-up; see the log above" >&2; exit 1; }
  done
  sleep 0.1
done
curl -fsS "$url/running" >/dev/null || { echo "run: the edge did not answer on $url/running" >&2; exit 1; }

store="embedded SQLite in $DATA_DIR"
[ -n "${DATABASE_URL:-}${DATABASE_HOST:-}" ] && store="PostgreSQL"
cat <<MSG

  dhosauth is running ($ENVIRONMENT, $store)
    REST edge:   $url   (API docs: $url/docs, OpenAPI: $url/openapi.json)
    gRPC:        activation ${ACTIVATION_GRPC_ADDR:-127.0.0.1:9091}  device ${DEVICE_GRPC_ADDR:-127.0.0.1:9092}  token ${TOKEN_GRPC_ADDR:-127.0.0.1:9093}  session ${SESSION_GRPC_ADDR:-127.0.0.1:9094}
    Ops:         gateway http://127.0.0.1:9190  activation http://127.0.0.1:9191  device http://127.0.0.1:9192  token http://127.0.0.1:9193  session http://127.0.0.1:9194
                 (/metrics, /livez, /readyz, /debug/pprof/ on each)
    Traces:      ${OTEL_EXPORTER_OTLP_ENDPOINT:-not exported (set OTEL_EXPORTER_OTLP_ENDPOINT, or use docker compose up for a collector and Jaeger)}

  Try it (a system token with the admin scopes, then a patient activation):
    TOKEN=\$(./bin/dhosctl token) && curl -s -X POST -H "Authorization: Bearer \$TOKEN" $url/dhos/v1/patient/p1/activation

  Ctrl-C stops the suite.

MSG
wait -n "${pids[@]}" || true
echo "run: a process stopped; stopping the suite" >&2
