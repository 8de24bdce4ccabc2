# shellcheck shell=bash
# The cost of mutual TLS on W1 (miss) and W2 (hit): `scripts/bench.sh tls`
# alone, and the last part of `make bench`. Sourced by scripts/bench.sh;
# tls_section uses its settings (reps, w1_seconds, w2_seconds, bin, state),
# its helpers (wrk_summary, cpu_ticks, median, finish, fresh_cache,
# warn_hits) and its running mesh.
#
# W1 and W2 run $reps times on the mesh bench.sh started (mutual TLS on
# every internal hop; within `make bench` the main loop's own W1 and W2
# rows, written to $state/tls-mtls.txt, are that side); then that mesh is
# stopped, the same mesh is started
# with `--insecure-plaintext` on every process (mesh_plaintext, see
# scripts/lib/mesh.sh) and W1 and W2 run $reps times again. Medians and the
# mTLS ÷ plaintext ratios go to $state/tls.md, the `tls` section of
# docs/benchmarks.md. The mesh stays plaintext afterwards, so this runs
# last.
#
# What crosses mutual TLS: a W1 miss goes gateway → renderer → fetcher
# (→ registry once per Source, then cached), each hop on one long-lived
# HTTP/2 connection, so the handshakes happen once and a request pays only
# for encrypting its bytes; a W2 hit is read from Redis by the gateway
# itself and crosses no mTLS hop (the Source lookup is cached).

# One W1 and one W2 run on the running mesh, W1's URLs from offset $1;
# prints "w1_rps w1_p50 w1_p99 w1_cpu_ms w2_rps w2_p99 non2xx".
tls_round() {
  local offset=$1 pids=("${mesh_pids[@]:2:4}") before after cpu name w
  local w1_rps w1_p50 w1_p99 w1_n w1_bad w2_rps w2_p99 w2_bad
  # Nothing cached anywhere, the gateway's hot copies included (bench.sh's
  # fresh_cache: FLUSHALL alone leaves them).
  fresh_cache
  before=$(cpu_ticks "${pids[@]}")
  read -r w1_rps w1_p50 w1_p99 w1_n w1_bad < <(wrk -t1 -c4 -d"${w1_seconds}s" --latency -s bench/w1.lua "http://$gateway" -- "$offset" | tee "$state/tls-w1.txt" | wrk_summary)
  after=$(cpu_ticks "${pids[@]}")
  warn_hits "TLS W1" "$(sed -n 's/^hits //p' "$state/tls-w1.txt")"
  cpu=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$w1_n" 'BEGIN { printf "%.1f", t * 1000 / hz / (n ? n : 1) }')
  for name in 2004default firstgeneration rhythm string the-mouse; do
    for w in 400 640; do curl -fsS -o /dev/null -H "Host: demo.localhost" "http://$gateway/$name.jpg?w=$w&q=80&fm=jpg"; done
  done
  read -r w2_rps _ w2_p99 _ w2_bad < <(wrk -t1 -c32 -d"${w2_seconds}s" --latency -s bench/w2.lua "http://$gateway" | wrk_summary)
  echo "$w1_rps $w1_p50 $w1_p99 $cpu $w2_rps $w2_p99 $((w1_bad + w2_bad))"
}

# Runs $reps rounds into file $1, labelled $2 on the terminal.
tls_rounds() {
  local rows=$1 label=$2 rep row
  : >"$rows"
  for rep in $(seq 1 "$reps"); do
    row=$(tls_round "$((rep * 100000 + 300000))")
    echo "  $label $rep/$reps: W1 rps p50 p99 CPU-ms/req, W2 rps p99, non-2xx: $row"
    echo "$row" >>"$rows"
  done
}

tls_section() {
  if [[ -n ${mesh_plaintext:-} ]]; then
    echo "scripts/bench.sh tls compares mutual TLS with plaintext: run it without BENCH_PLAINTEXT" >&2
    return 1
  fi
  local mtls="$state/tls-mtls.txt" plain="$state/tls-plaintext.txt" mtls_source
  # Within `make bench` the main loop's W1 and W2 ran on this mTLS mesh with
  # the same commands and wrote their rows here: they are the mTLS side.
  if [[ -s $mtls ]]; then
    mtls_source="the main table's $(wc -l <"$mtls") repetitions of W1 and W2 (the same commands on this mTLS mesh)"
  else
    tls_rounds "$mtls" mTLS
    mtls_source="$reps runs on this mesh"
  fi
  mesh_stop
  mesh_plaintext=1
  IMGMESH_LOG=warn start_mesh "$state" "$bin"
  trap finish INT TERM EXIT
  tls_rounds "$plain" plaintext

  # Column $2's median of rows file $1.
  tls_col() { awk -v c="$2" '{print $c}' "$1" | median; }
  # a ÷ b, two decimals.
  tls_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }
  local c m p rows=""
  declare -A tm tp
  for c in 1 2 3 4 5 6; do
    tm[$c]=$(tls_col "$mtls" "$c")
    tp[$c]=$(tls_col "$plain" "$c")
  done
  local bad
  bad=$(cat "$mtls" "$plain" | awk '{s += $7} END {print s + 0}')
  for c in "1 W1 miss req/s" "2 W1 p50 ms" "3 W1 p99 ms" "4 W1 CPU-ms per request (registry, fetcher, renderer, gateway)" "5 W2 hit req/s" "6 W2 p99 ms"; do
    read -r m p <<<"${c%% *} ${c#* }"
    rows+="| $p | ${tm[$m]} | ${tp[$m]} | **×$(tls_ratio "${tm[$m]}" "${tp[$m]}")** |"$'\n'
  done
  echo "  tls: W1 ${tm[1]} vs ${tp[1]} req/s (×$(tls_ratio "${tm[1]}" "${tp[1]}")), W2 ${tm[5]} vs ${tp[5]} req/s (×$(tls_ratio "${tm[5]}" "${tp[5]}"))"
  cat >"$state/tls.md" <<DOC
<!-- section tls: written by scripts/bench.sh (alone: scripts/bench.sh tls) -->
## The cost of mutual TLS

- date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), shared with other builds; commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)
- command: \`scripts/bench.sh tls\` (also the last part of \`make bench\`), release build, medians of $reps runs each (W1 ${w1_seconds}s, W2 ${w2_seconds}s, as in the table above), services at \`IMGMESH_LOG=warn\`, \`TOKIO_WORKER_THREADS=$TOKIO_WORKER_THREADS\`; mutual TLS on every internal hop (development certificates): $mtls_source; then the same mesh restarted with \`--insecure-plaintext\` on every process, $reps runs
- a W1 miss crosses two mTLS hops (gateway → renderer → fetcher; the fetcher asks the registry once per Source), each on one long-lived HTTP/2 connection (no handshake per request); a W2 hit crosses none (the gateway reads Redis itself, the Source lookup is cached), so W2 shows the noise floor
- non-2xx responses across both: $bad

| workload | mTLS | plaintext | mTLS ÷ plaintext |
|---|---|---|---|
${rows}
<!-- /section tls -->
DOC
}
