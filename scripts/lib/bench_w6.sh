# shellcheck shell=bash
# W6, srcset traffic: `scripts/bench.sh w6` alone, and part of `make bench`.
# Sourced by scripts/bench.sh; w6_section uses its settings (reps, bin,
# state, corpus), its helpers (cpu_ticks, median, metric, listening,
# mesh_tls, reset_peak) and its running mesh (redis, registry, fetcher).
#
# The page: 20 originals (each corpus JPEG under 4 names, each copy made a
# different file by a comment segment of its own, so no two share a
# decode), each asked for at the 10 widths of a srcset (those of
# imgmesh-quality's W6), `q=80&fm=jpg`: 200 renders from cold (Redis
# flushed, names the fetcher never saw). They are sent in page order
# (original by original, widths ascending) over 6 connections: a browser's
# per-host limit, and the renderer's admission capacity on 2 cores (2
# workers + 4 queued), so no request is shed and retried.
#
# The same 200 renders go once to a renderer that batches the renders of
# one original waiting for a worker together ($w6_on_flags: a batch
# decodes its original once, at the JPEG shrink-on-load scale its largest
# width needs, and resizes the others from it in a cascade, on its worker
# and any worker free after the decode; see
# services/renderer/src/pipeline/render_set.rs and
# services/renderer/src/service/render_pool.rs; kept decodes are off)
# and once to one that does
# not ($w6_off_flags: every request an independent W1-style miss), each a
# fresh renderer behind a gateway of its own on the mesh's fetcher,
# registry and Redis, each on its own cold copies. BENCH_W6_ON_FLAGS and
# BENCH_W6_OFF_FLAGS replace the two sides' renderer flags. Per side: wall
# time of the 200, CPU-ms of the registry, fetcher, renderer, gateway and
# Redis (utime + stime), the renderer's derivatives made from a shared
# decode and its decodes (from its /metrics) and its peak RSS; the renders
# left out of their original's batch, by reason
# (imgmesh_render_batch_refused_total), are printed with each batched
# repetition. Pixels: the two sides' outputs of the first repetition (one copy of
# each corpus JPEG) are compared
# (mean and largest absolute difference per sample, with the vips CLI); the
# SSIM against a full-decode reference is imgmesh-quality's (section
# quality). Medians of $reps repetitions go to $state/w6.md, the `w6`
# section of docs/benchmarks.md.

w6_widths=(160 320 480 640 800 960 1120 1280 1600 1920)
w6_on_flags=${BENCH_W6_ON_FLAGS:---render-batch-max=16 --render-intermediate-bytes=0}
w6_off_flags=${BENCH_W6_OFF_FLAGS:---render-batch-max=1 --render-intermediate-bytes=0}

# Starts a renderer with flags "$2" and a gateway on it, named $1 (both in
# mesh_pids, so mesh_stop ends them); sets w6_pair_info to "renderer_pid
# gateway_pid gateway_addr renderer_metrics".
w6_pair() {
  local name=$1 flags=$2 renderer_addr renderer_pid
  # shellcheck disable=SC2046,SC2086
  "$bin/imgmesh-renderer" $(mesh_tls renderer) --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --fetcher-url "http://$fetcher" --redis-url "redis://127.0.0.1:$redis_port" $flags \
    >"$state/logs/renderer-$name.log" 2>&1 &
  renderer_pid=$!
  mesh_pids+=("$renderer_pid")
  renderer_addr=$(listening "$state/logs/renderer-$name.log" grpc)
  # shellcheck disable=SC2046
  "$bin/imgmesh-gateway" $(mesh_tls gateway) --listen 127.0.0.1:0 --ops-listen 127.0.0.1:0 \
    --registry-url "http://$registry" --renderer-url "http://$renderer_addr" --base-domain localhost \
    --redis-url "redis://127.0.0.1:$redis_port" >"$state/logs/gateway-$name.log" 2>&1 &
  mesh_pids+=($!)
  w6_pair_info="$renderer_pid $! $(listening "$state/logs/gateway-$name.log" http) $(listening "$state/logs/renderer-$name.log" metrics)"
}

# Copies corpus files to the bucket, each pair of arguments "source name"
# a different file named name (a JPEG comment segment naming it, right
# after the SOI marker) with the source's pixels. One python3 for all.
w6_copy() {
  python3 - "$state/s3/demo-bucket" "$@" <<'PY'
import os, sys
bucket, pairs = sys.argv[1], sys.argv[2:]
for src, name in zip(pairs[::2], pairs[1::2]):
    data = open(src, "rb").read()
    assert data[:2] == b"\xff\xd8"
    tag = name.encode()
    comment = b"\xff\xfe" + (len(tag) + 2).to_bytes(2, "big") + tag
    open(os.path.join(bucket, name), "wb").write(data[:2] + comment + data[2:])
PY
}

# One side's run of the page: side $1 (on|off), repetition $2, gateway $3,
# renderer metrics $4, pids to count "$5"; outputs kept in directory $6
# when given; the renderer's pid is the 4th of "$5". Prints "wall_ms cpu_ms
# hits decodes non200 renderer_cpu_ms".
w6_run() {
  local side=$1 rep=$2 gw=$3 metrics=$4 pids=$5 keep=${6:-} urls name copy w
  local before after started ended hits0 decodes0 bad renderer_pid r_before r_after copies=()
  local reason waits0 refused0=() refused=()
  urls="$state/w6-$side-$rep.urls"
  : >"$urls"
  for name in 2004default firstgeneration rhythm string the-mouse; do
    for copy in 1 2 3 4; do
      copies+=("$corpus/$name.jpg" "w6-$side-$rep-$copy-$name.jpg")
      for w in "${w6_widths[@]}"; do
        echo "w6-$side-$rep-$copy-$name.jpg?w=$w&q=80&fm=jpg" >>"$urls"
      done
    done
  done
  w6_copy "${copies[@]}"
  [[ -n $keep ]] && mkdir -p "$keep"
  redis-cli -p "$redis_port" FLUSHALL >/dev/null
  hits0=$(metric "$metrics" imgmesh_render_batched_total)
  decodes0=$(metric "$metrics" imgmesh_originals_decoded_total)
  waits0=$(metric "$metrics" imgmesh_render_batch_memory_waits_total)
  for reason in unshared full window running; do
    refused0+=("$(metric "$metrics" "imgmesh_render_batch_refused_total{reason=\"$reason\"}")")
  done
  renderer_pid=$(awk '{print $4}' <<<"$pids")
  r_before=$(cpu_ticks "$renderer_pid")
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids)
  started=$(date +%s%N)
  # shellcheck disable=SC2016
  bad=$(xargs -P 6 -I{} sh -c 'out=/dev/null; [ -n "$2" ] && out="$2/$(echo "$1" | tr "/?=&" "____")"; curl -sS -o "$out" -w "%{http_code}\n" -H "Host: demo.localhost" "http://$0/$1"' \
    "$gw" {} "$keep" <"$urls" | grep -cv '^200$' || true)
  ended=$(date +%s%N)
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pids)
  r_after=$(cpu_ticks "$renderer_pid")
  for reason in unshared full window running; do
    refused+=("$reason=$(($(metric "$metrics" "imgmesh_render_batch_refused_total{reason=\"$reason\"}") - refused0[${#refused[@]}]))")
  done
  [[ $side == on ]] && echo "  W6 $rep batched: renders left out of their batch: ${refused[*]}; batches that waited for running memory: $(($(metric "$metrics" imgmesh_render_batch_memory_waits_total) - waits0))" >&2
  ms() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", t * 1000 / hz }'; }
  echo "$(( (ended - started) / 1000000 )) $(ms $((after - before))) $(( $(metric "$metrics" imgmesh_render_batched_total) - hits0 )) $(( $(metric "$metrics" imgmesh_originals_decoded_total) - decodes0 )) $bad $(ms $((r_after - r_before)))"
}

# Mean and largest absolute sample difference between the outputs in
# directories $1 and $2 (same names after the side), over the pairs of the
# first copy of each corpus JPEG (50, two pairs at a time); prints
# "mean_of_means max pairs".
w6_compare() {
  local a=$1 b=$2 file other
  for file in "$a"/w6-on-1-1-*; do
    other="$b/$(basename "$file" | sed 's/^w6-on-/w6-off-/')"
    [[ -f $other ]] && printf '%s\n%s\n' "$file" "$other"
  done | xargs -d '\n' -n 2 -P 2 sh -c 'd=$(mktemp -d) &&
    vips subtract "$0" "$1" "$d/diff.v" 2>/dev/null && vips abs "$d/diff.v" "$d/abs.v" &&
    echo "$(vips avg "$d/abs.v") $(vips max "$d/abs.v")"; rm -rf "$d"' |
    awk '{s += $1; if ($2 > m) m = $2; n++} END { printf "%.3f %.0f %d\n", n ? s / n : 0, m + 0, n }'
}

# Waits (up to 11 s) until the renderers with metrics at "$@" keep no
# decodes (a kept decode lives 5 s, expired every 5 s), so that a repetition starts with
# nothing kept; at once when they keep none (kept decodes off).
w6_until_nothing_kept() {
  local tries=0 metrics kept
  while ((tries < 110)); do
    kept=0
    for metrics in "$@"; do
      kept=$((kept + $(metric "$metrics" imgmesh_render_intermediate_bytes)))
    done
    ((kept == 0)) && return
    sleep 0.1
    tries=$((tries + 1))
  done
}

w6_section() {
  local on off on_pids off_pids rep row rows_on rows_off cmp
  local common="${mesh_pids[0]} ${mesh_pids[2]} ${mesh_pids[3]}"
  w6_pair w6-on "$w6_on_flags"
  read -r -a on <<<"$w6_pair_info"
  w6_pair w6-off "$w6_off_flags"
  read -r -a off <<<"$w6_pair_info"
  on_pids="$common ${on[0]} ${on[1]}"
  off_pids="$common ${off[0]} ${off[1]}"
  rows_on="$state/w6-on.rows"
  rows_off="$state/w6-off.rows"
  : >"$rows_on"
  : >"$rows_off"
  for rep in $(seq 1 "$reps"); do
    local keep_on="" keep_off=""
    if ((rep == 1)); then keep_on="$state/w6-out-on"; keep_off="$state/w6-out-off"; fi
    # Each side's renderer starts its repetition with nothing kept.
    w6_until_nothing_kept "${on[3]}" "${off[3]}"
    reset_peak "${on[0]}"
    reset_peak "${off[0]}"
    row=$(w6_run on "$rep" "${on[2]}" "${on[3]}" "$on_pids" "$keep_on")
    echo "$row $(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/${on[0]}/status")" >>"$rows_on"
    echo "  W6 $rep/$reps batched:     wall_ms cpu_ms batched decodes non200 renderer_cpu_ms = $row"
    row=$(w6_run off "$rep" "${off[2]}" "${off[3]}" "$off_pids" "$keep_off")
    echo "$row $(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/${off[0]}/status")" >>"$rows_off"
    echo "  W6 $rep/$reps independent: wall_ms cpu_ms batched decodes non200 renderer_cpu_ms = $row"
  done
  cmp=$(w6_compare "$state/w6-out-on" "$state/w6-out-off")
  col6() { awk -v c="$2" '{print $c}' "$1" | median; }
  local on_ms on_cpu on_hits on_dec on_rss off_ms off_cpu off_dec off_rss bad speed cpu_ratio
  local on_rcpu off_rcpu rcpu_ratio
  on_ms=$(col6 "$rows_on" 1); on_cpu=$(col6 "$rows_on" 2); on_hits=$(col6 "$rows_on" 3)
  on_dec=$(col6 "$rows_on" 4); on_rcpu=$(col6 "$rows_on" 6); on_rss=$(col6 "$rows_on" 7)
  off_ms=$(col6 "$rows_off" 1); off_cpu=$(col6 "$rows_off" 2); off_dec=$(col6 "$rows_off" 4)
  off_rcpu=$(col6 "$rows_off" 6); off_rss=$(col6 "$rows_off" 7)
  rcpu_ratio=$(awk -v a="$off_rcpu" -v b="$on_rcpu" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
  bad=$(cat "$rows_on" "$rows_off" | awk '{s += $5} END {print s + 0}')
  speed=$(awk -v a="$off_ms" -v b="$on_ms" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
  cpu_ratio=$(awk -v a="$off_cpu" -v b="$on_cpu" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
  echo "  W6: batched $on_ms ms, $on_cpu CPU-ms ($on_hits from a shared decode, $on_dec decodes); independent $off_ms ms, $off_cpu CPU-ms ($off_dec decodes); ×$speed time, ×$cpu_ratio CPU; batched vs independent pixels (mean, max, pairs): $cmp"
  read -r cmp_mean cmp_max cmp_n <<<"$cmp"
  cat >"$state/w6.md" <<DOC
<!-- section w6: written by scripts/bench.sh (alone: scripts/bench.sh w6) -->
## W6: srcset traffic (batches of one original's renders)

- date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), shared with other builds; commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)
- command: \`scripts/bench.sh w6\` (also part of \`make bench\`; scripts/lib/bench_w6.sh), release build, services at \`IMGMESH_LOG=warn\`, \`TOKIO_WORKER_THREADS=$TOKIO_WORKER_THREADS\`, medians of $reps repetitions
- the page: 20 originals (the 5 corpus JPEGs, 3640–3840 × 2400, 4 distinct copies each), each at the widths ${w6_widths[*]} with \`q=80&fm=jpg\`: 200 renders from cold (Redis flushed, copies the fetcher never saw), in page order over 6 connections (a browser's per-host limit; the renderer's admission capacity, so nothing is shed)
- each side: a fresh renderer behind a gateway of its own, on the mesh's fetcher, registry and Redis; CPU-ms are those five processes' utime + stime over the 200 requests; decodes and derivatives made from a shared decode from the renderer's \`imgmesh_originals_decoded_total\` and \`imgmesh_render_batched_total\`

| 200 renders | wall time | CPU-ms | renderer CPU-ms | decodes | made from a shared decode | renderer peak RSS |
|---|---|---|---|---|---|---|
| batched (\`$w6_on_flags\`) | **$on_ms ms** | **$on_cpu** | $on_rcpu | $on_dec | $on_hits | $on_rss MB |
| independent (\`$w6_off_flags\`: 200 W1-style misses) | $off_ms ms | $off_cpu | $off_rcpu | $off_dec | 0 | $off_rss MB |
| independent ÷ batched | **×$speed** | **×$cpu_ratio** | ×$rcpu_ratio | | | |

- non-200 answers: $bad
- pixels, batched vs independent (repetition 1, the $cmp_n outputs of one copy of each corpus JPEG decoded and compared sample by sample): mean absolute difference $cmp_mean levels (of 255), largest $cmp_max: a batched width is resized from its batch's largest (or a larger width of it), not shrunk on load from the file. SSIM against a full-decode reference: the quality section (\`imgmesh-quality measure\`, W6).
<!-- /section w6 -->
DOC
}
