# shellcheck shell=bash
# Shared by `make dev` and `make bench`: starts Redis, s3s-fs and the four
# imgmesh services on loopback and registers the Source `demo`.
#
# Source this file, then call `start_mesh STATE_DIR BIN_DIR`. Afterwards
# registry, fetcher, renderer, gateway, gateway_ops, gateway_admin (the admin
# API and dashboard, whose token is STATE_DIR/admin-token) (host:port), redis_port,
# s3_port are set, `cli` is an array that runs the admin CLI, `mesh_tls NAME`
# prints the mutual-TLS flags of identity NAME (certificates made at start
# under STATE_DIR/certs by `imgmesh dev-certs`), and a trap stops
# everything started when the calling script exits. Objects of the Source
# `demo` are files under STATE_DIR/s3/demo-bucket.
#
# With `mesh_plaintext` set (non-empty) before start_mesh, every process
# runs without TLS instead: `mesh_tls` prints `--insecure-plaintext` (the
# services log a warning). Only for measuring what mutual TLS costs
# (`scripts/bench.sh tls`, BENCH_PLAINTEXT=1).

mesh_pids=()
mesh_stop() {
  trap - INT TERM EXIT
  if ((${#mesh_pids[@]})); then
    echo "stopping the imgmesh mesh…" >&2
    kill "${mesh_pids[@]}" 2>/dev/null || true
    wait "${mesh_pids[@]}" 2>/dev/null || true
  fi
  mesh_pids=()
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints the first free loopback port at or after $1.
free_port() {
  local port=$1
  while port_in_use "$port"; do port=$((port + 1)); done
  echo "$port"
}

wait_port() {
  for _ in $(seq 1 200); do port_in_use "$1" && return 0; sleep 0.05; done
  echo "nothing listens on port $1" >&2
  return 1
}

# Waits for "imgmesh <service> <role> listening on ADDR" in a log; prints ADDR.
listening() {
  local log=$1 role=$2 addr
  for _ in $(seq 1 600); do
    addr=$(sed -n "s/^imgmesh [a-z-]* $role listening on \(.*\)$/\1/p" "$log" | tail -n 1)
    if [[ -n "$addr" ]]; then echo "$addr"; return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for $log ($role); last lines:" >&2
  tail -n 20 "$log" >&2
  return 1
}

# The mutual-TLS flags of identity $1 (after start_mesh made the
# certificates), or `--insecure-plaintext` when mesh_plaintext is set.
mesh_tls() {
  if [[ -n ${mesh_plaintext:-} ]]; then
    echo "--insecure-plaintext"
  else
    echo "--tls-cert $mesh_certs/$1.pem --tls-key $mesh_certs/$1-key.pem --tls-ca $mesh_certs/ca.pem"
  fi
}

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

start_mesh() {
  local state=$1 bin=$2
  trap mesh_stop INT TERM EXIT
  mkdir -p "$state/logs" "$state/s3/demo-bucket"

  # The registry's master key and the local S3 server's keys, made once.
  [[ -f "$state/master.key" ]] || random_hex 32 >"$state/master.key"
  [[ -f "$state/admin-token" ]] || random_hex 24 >"$state/admin-token"
  if [[ ! -f "$state/s3.env" ]]; then
    printf 'S3_ACCESS_KEY=DEV%s\nS3_SECRET_KEY=%s\n' "$(random_hex 8 | tr a-f A-F)" "$(random_hex 20)" >"$state/s3.env"
  fi
  chmod 600 "$state/master.key" "$state/s3.env" "$state/admin-token"
  # shellcheck source=/dev/null
  source "$state/s3.env"

  redis_port=$(free_port 16379)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    >"$state/logs/redis.log" 2>&1 &
  mesh_pids+=($!)
  s3_port=$(free_port 18014)
  s3s-fs --host 127.0.0.1 --port "$s3_port" --access-key "$S3_ACCESS_KEY" \
    --secret-key "$S3_SECRET_KEY" "$state/s3" >"$state/logs/s3.log" 2>&1 &
  mesh_pids+=($!)
  wait_port "$redis_port"
  wait_port "$s3_port"

  # A throwaway CA and a certificate per service, made at every start:
  # every hop speaks mutual TLS and each tier is told apart by its identity
  # (docs/security.md).
  "$bin/imgmesh" dev-certs "$state/certs" >/dev/null
  mesh_certs=$state/certs

  export IMGMESH_LOG=${IMGMESH_LOG:-info}
  # Free ports for every listener, the fixed metrics (9091…) and credentials
  # (50054) defaults included: a dev mesh, a bench run and extra replicas
  # may run side by side.
  # shellcheck disable=SC2046
  "$bin/imgmesh-source-registry" $(mesh_tls source-registry) --listen 127.0.0.1:0 --credentials-listen 127.0.0.1:0 \
    --metrics-listen 127.0.0.1:0 --database "$state/registry.db" \
    --master-key-file "$state/master.key" >"$state/logs/registry.log" 2>&1 &
  mesh_pids+=($!)
  registry=$(listening "$state/logs/registry.log" grpc)
  registry_credentials=$(listening "$state/logs/registry.log" credentials)

  # shellcheck disable=SC2046
  "$bin/imgmesh-fetcher" $(mesh_tls fetcher) --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --registry-url "http://$registry_credentials" >"$state/logs/fetcher.log" 2>&1 &
  mesh_pids+=($!)
  fetcher=$(listening "$state/logs/fetcher.log" grpc)

  # shellcheck disable=SC2046
  "$bin/imgmesh-renderer" $(mesh_tls renderer) --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --fetcher-url "http://$fetcher" --redis-url "redis://127.0.0.1:$redis_port" >"$state/logs/renderer.log" 2>&1 &
  mesh_pids+=($!)
  renderer=$(listening "$state/logs/renderer.log" grpc)

  # shellcheck disable=SC2046
  "$bin/imgmesh-gateway" $(mesh_tls gateway) --listen "127.0.0.1:$(free_port 8080)" --ops-listen 127.0.0.1:0 \
    --registry-url "http://$registry" --renderer-url "http://$renderer" --base-domain localhost \
    --redis-url "redis://127.0.0.1:$redis_port" \
    --admin-listen 127.0.0.1:0 --admin-token-file "$state/admin-token" >"$state/logs/gateway.log" 2>&1 &
  mesh_pids+=($!)
  gateway=$(listening "$state/logs/gateway.log" http)
  gateway_ops=$(listening "$state/logs/gateway.log" ops)
  gateway_admin=$(listening "$state/logs/gateway.log" admin)

  # shellcheck disable=SC2207
  cli=("$bin/imgmesh" $(mesh_tls cli) --registry-url "http://$registry")
  local source_args=(--bucket demo-bucket --region us-east-1
    --endpoint "http://127.0.0.1:$s3_port" --access-key-id "$S3_ACCESS_KEY")
  if "${cli[@]}" sources get demo >/dev/null 2>&1; then
    # The S3 keys persist in s3.env; only the endpoint's port may have changed.
    "${cli[@]}" sources update demo "${source_args[@]}" >/dev/null
  else
    IMGMESH_SECRET_ACCESS_KEY=$S3_SECRET_KEY "${cli[@]}" sources create --name demo \
      --subdomain demo "${source_args[@]}" >/dev/null
  fi
  # Only deployed Sources serve: the deploy checks the bucket with the keys
  # (and is needed again after the endpoint's port changed).
  "${cli[@]}" sources deploy demo --wait >/dev/null

  for _ in $(seq 1 200); do
    curl -fsS "http://$gateway_ops/ready" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "the gateway never became ready; see $state/logs" >&2
  return 1
}

# Prints the cargo target directory (honours CARGO_TARGET_DIR).
target_dir() {
  cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}
