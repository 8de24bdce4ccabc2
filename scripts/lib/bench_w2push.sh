# shellcheck shell=bash
# W2 with pushed purges: `scripts/bench.sh w2-push` alone, and part of
# `make bench`. Sourced by scripts/bench.sh; w2push_section uses its
# settings (reps, w2_seconds, bin, state), its helpers (wrk_summary,
# cpu_ticks, median, mesh_tls, listening, free_port, wait_port) and its
# running mesh.
#
# Two more gateways join the mesh's on the same Redis and renderer: one
# with `--hot-trust-ms=0` (every hot copy confirmed by a Redis round trip,
# the behaviour before the purge feed) and one trusting its copies like the
# mesh's own. W2 runs $reps times on the trusting gateway and on the
# confirming one, alternately, with each run's CPU-µs per request of that
# gateway and of redis-server; nginx serves one W2-sized derivative from
# disk in the same run for the ratio. Then imgmesh-purge-window purges one
# asset through the admin API $w2push_rounds times with both trusting
# gateways polled back to back, and reports how long after the purge
# returned either still served the old copy. Writes $state/w2push.md, the
# `w2-push` section of docs/benchmarks.md.

w2push_rounds=${BENCH_PURGE_ROUNDS:-40}

# Starts a gateway on the mesh's Redis with extra flags $2…, its log named
# $1; prints nothing, sets w2push_addr and w2push_pid.
w2push_gateway() {
  local name=$1
  shift
  # shellcheck disable=SC2046
  "$bin/imgmesh-gateway" $(mesh_tls gateway) --listen 127.0.0.1:0 --ops-listen 127.0.0.1:0 \
    --registry-url "http://$registry" --renderer-url "http://$renderer" --base-domain localhost \
    --redis-url "redis://127.0.0.1:$redis_port" "$@" >"$state/logs/gateway-$name.log" 2>&1 &
  mesh_pids+=($!)
  w2push_pid=$!
  w2push_addr=$(listening "$state/logs/gateway-$name.log" http)
}

# nginx serving one W2-sized derivative from disk (the W2 yardstick),
# unless it is running already; sets nginx_port and nginx_pid.
start_nginx() {
  [[ -n ${nginx_port:-} ]] && return 0
  mkdir -p "$state/nginx/www" "$state/nginx/tmp"
  curl -fsS -H "Host: demo.localhost" "http://$gateway/2004default.jpg?w=640&q=80&fm=jpg" -o "$state/nginx/www/static.jpg"
  nginx_port=$(free_port 18080)
  cat >"$state/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $state/nginx/error.log;
pid $state/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $state/nginx/tmp;
  proxy_temp_path $state/nginx/tmp;
  fastcgi_temp_path $state/nginx/tmp;
  uwsgi_temp_path $state/nginx/tmp;
  scgi_temp_path $state/nginx/tmp;
  server { listen 127.0.0.1:$nginx_port; root $state/nginx/www; }
}
CONF
  nginx -c "$state/nginx/nginx.conf" &
  nginx_pid=$!
  wait_port "$nginx_port"
}

# W2 on gateway $1 (pid $2): prints "rps p99_ms non2xx gateway_us redis_us".
w2push_run() {
  local addr=$1 pid=$2 g0 r0 g1 r1 rps p99 n bad hz
  hz=$(getconf CLK_TCK)
  g0=$(cpu_ticks "$pid")
  r0=$(cpu_ticks "${mesh_pids[0]}")
  read -r rps _ p99 n bad < <(wrk -t1 -c32 -d"${w2_seconds}s" --latency -s bench/w2.lua "http://$addr" | wrk_summary)
  g1=$(cpu_ticks "$pid")
  r1=$(cpu_ticks "${mesh_pids[0]}")
  awk -v rps="$rps" -v p99="$p99" -v bad="$bad" -v g=$((g1 - g0)) -v r=$((r1 - r0)) -v n="$n" -v hz="$hz" \
    'BEGIN { n = n ? n : 1; printf "%s %s %s %.1f %.1f\n", rps, p99, bad, g * 1e6 / hz / n, r * 1e6 / hz / n }'
}

w2push_section() {
  local trusting=$gateway trusting_pid=${mesh_pids[5]} confirming confirming_pid second addr name w rep
  w2push_gateway confirming --hot-trust-ms 0
  confirming=$w2push_addr
  confirming_pid=$w2push_pid
  w2push_gateway second
  second=$w2push_addr
  start_nginx
  # Warm-up: each W2 URL three times on each gateway (miss, a read from
  # Redis into the hot copy, the copy).
  for addr in "$trusting" "$confirming" "$second"; do
    for name in 2004default firstgeneration rhythm string the-mouse; do
      for w in 400 640; do
        for _ in 1 2 3; do curl -fsS -o /dev/null -H "Host: demo.localhost" "http://$addr/$name.jpg?w=$w&q=80&fm=jpg"; done
      done
    done
  done
  local rows_trust="$state/w2push-trust.txt" rows_confirm="$state/w2push-confirm.txt" rows_nginx="$state/w2push-nginx.txt"
  # Within `make bench` the main loop's W2 (on the mesh's gateway, which
  # trusts its hot copies) and nginx runs wrote their rows to $rows_trust
  # and $rows_nginx, alternating with each other $reps times: they are this
  # section's trusting and nginx sides, and only the confirming side runs
  # here. Alone, all three alternate here.
  local shared_rows=""
  [[ -s $rows_trust && -s $rows_nginx ]] && shared_rows=1
  if [[ -z $shared_rows ]]; then
    : >"$rows_trust"
    : >"$rows_nginx"
  fi
  : >"$rows_confirm"
  for rep in $(seq 1 "$reps"); do
    w2push_run "$confirming" "$confirming_pid" >>"$rows_confirm"
    if [[ -z $shared_rows ]]; then
      w2push_run "$trusting" "$trusting_pid" >>"$rows_trust"
      wrk -t1 -c32 -d"${w2_seconds}s" --latency "http://127.0.0.1:$nginx_port/static.jpg" | wrk_summary >>"$rows_nginx"
    fi
    echo "  w2-push $rep/$reps: confirming $(tail -n 1 "$rows_confirm"), trusting $(sed -n "${rep}p" "$rows_trust") (rps p99 non-2xx gateway-µs redis-µs), nginx $(sed -n "${rep}p" "$rows_nginx" | cut -d' ' -f1) req/s"
  done
  local window
  window=$("$bin/imgmesh-purge-window" --gateways "$trusting,$second" --admin "$gateway_admin" \
    --admin-token-file "$state/admin-token" --rounds "$w2push_rounds")
  echo "$window" >"$state/w2push-window.txt"
  col() { awk -v c="$2" '{print $c}' "$1" | median; }
  v() { awk -v k="$1" '$1 == k {print $2}' <<<"$window"; }
  local t_rps t_p99 t_g t_r c_rps c_p99 c_g c_r n_rps bad
  t_rps=$(col "$rows_trust" 1); t_p99=$(col "$rows_trust" 2); t_g=$(col "$rows_trust" 4); t_r=$(col "$rows_trust" 5)
  c_rps=$(col "$rows_confirm" 1); c_p99=$(col "$rows_confirm" 2); c_g=$(col "$rows_confirm" 4); c_r=$(col "$rows_confirm" 5)
  n_rps=$(col "$rows_nginx" 1)
  bad=$(cat "$rows_trust" "$rows_confirm" | awk '{s += $3} END {print s + 0}')
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b ? a / b : 0 }'; }
  echo "  w2-push: trusting $t_rps req/s ($(ratio "$t_rps" "$n_rps") of nginx), confirming $c_rps; purge window p99 $(v p99_ms) ms"
  cat >"$state/w2push.md" <<DOC
<!-- section w2-push: written by scripts/bench.sh (alone: scripts/bench.sh w2-push) -->
## W2 with pushed purges, and the purge window

- date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), shared with other builds; commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)
- command: \`scripts/bench.sh w2-push\` (also part of \`make bench\`), release build, medians of $reps alternating runs of \`wrk -t1 -c32 -d${w2_seconds}s -s bench/w2.lua\` per gateway after a warm-up (each URL three times), services at \`IMGMESH_LOG=warn\`, \`TOKIO_WORKER_THREADS=$TOKIO_WORKER_THREADS\`; CPU-µs per request of the gateway under load and of redis-server (utime + stime)
- *trusting*: a gateway serving its hot copies on the purge feed's word (the default, \`--hot-trust-ms=5000\`); *confirming*: the same binary with \`--hot-trust-ms=0\`, one Redis round trip per hit (the hit path before the purge feed); docs/caching.md explains the feed
- non-2xx responses: $bad

| W2 hit | req/s | p99 | gateway CPU-µs/req | redis CPU-µs/req | ÷ nginx |
|---|---|---|---|---|---|
| trusting (purge feed) | **$t_rps** | $t_p99 ms | $t_g | $t_r | **$(ratio "$t_rps" "$n_rps")** |
| confirming (a round trip per hit) | $c_rps | $c_p99 ms | $c_g | $c_r | $(ratio "$c_rps" "$n_rps") |
| nginx static, one derivative from disk | $n_rps | $(col "$rows_nginx" 3) ms | — | — | 1 |

| purge window (\`imgmesh-purge-window\`, bench/src/bin/imgmesh-purge-window.rs) | result |
|---|---|
| what | $w2push_rounds rounds: both trusting gateways hold a trusted copy of \`rhythm.jpg?w=400&q=80&fm=jpg\` and are polled back to back while the asset is purged through the admin API (\`POST /v1/sources/demo/purge\`); a sample is how long after the purge's response was read the gateway's last hit of the old copy arrived (0 when before) |
| samples | $(v samples) |
| window p50 / p99 / max | **$(v p50_ms) / $(v p99_ms) / $(v max_ms) ms** |
| samples with a hit after the purge returned | $(v late_hits) |
| the purge call itself (admin API → registry → renderer → Redis), p50 | $(v purge_p50_ms) ms |
<!-- /section w2-push -->
DOC
}
