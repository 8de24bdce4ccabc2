# shellcheck shell=bash
# W4 alone, with where an admitted request's time goes:
# `scripts/bench.sh w4`. Sourced by scripts/bench.sh; w4_section uses its
# settings (reps, w1_seconds, w2_seconds, bin, state), its helpers
# (load_summary, wrk_summary, cpu_ticks, metric, fresh_cache, warn_hits)
# and its running mesh.
#
# Each of $reps repetitions: the unloaded run (`imgmesh-load
# --concurrency 1`), then W4 (`--concurrency 64`, a shed request resent at
# once), then W1 (`wrk -t1 -c4 -s bench/w1.lua`, right after W4 as a
# normal load after an overload would come), each from a fresh cache. For
# the unloaded run and W4 it reads the renderer's
# imgmesh_render_queue_wait_seconds (admission to a worker) and
# imgmesh_render_work_seconds (on the worker) from /metrics, so an admitted
# request's time splits into the wait for a worker, the render itself, and
# the rest (the gateway, Redis, the fetch). For W4 it also counts CPU ticks
# per process (the load generator's too) and the time the renderer's and
# the gateway's threads spent runnable but waiting for a core
# (/proc/PID/task/*/schedstat). Prints one `w4-raw` line per repetition
# (key=value) and a readable summary; writes nothing to docs/benchmarks.md.

# The p99 of the latencies in file $1 (one a line), as imgmesh-load
# computes it (the ceil(0.99 n)-th smallest); 0 for an empty file.
pooled_p99() {
  sort -g "$1" | awk '{v[NR] = $1} END { i = int(NR * 0.99); if (i < NR * 0.99) i++; if (i < 1) i = 1; printf "%.2f", NR ? v[i] : 0 }'
}

# Sum of (on-CPU ns, runnable-but-waiting ns) over the threads of pid $1.
w4_schedstat() {
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{c += $1; w += $2} END {printf "%d %d\n", c, w}'
}

# The renderer's pool histograms: "wait_sum wait_count work_sum work_count
# work_le_0.1 work_le_0.25 work_le_0.5 work_le_1 wait_le_0.1 wait_le_0.25".
w4_pool() {
  curl -fsS "http://$renderer_metrics/metrics" | awk '
    $1 == "imgmesh_render_queue_wait_seconds_sum" { ws = $2 } $1 == "imgmesh_render_queue_wait_seconds_count" { wn = $2 }
    $1 == "imgmesh_render_work_seconds_sum" { ks = $2 } $1 == "imgmesh_render_work_seconds_count" { kn = $2 }
    $1 == "imgmesh_render_work_seconds_bucket{le=\"0.1\"}" { k1 = $2 }
    $1 == "imgmesh_render_work_seconds_bucket{le=\"0.25\"}" { k2 = $2 }
    $1 == "imgmesh_render_work_seconds_bucket{le=\"0.5\"}" { k3 = $2 }
    $1 == "imgmesh_render_work_seconds_bucket{le=\"1.0\"}" { k4 = $2 }
    $1 == "imgmesh_render_queue_wait_seconds_bucket{le=\"0.1\"}" { w1 = $2 }
    $1 == "imgmesh_render_queue_wait_seconds_bucket{le=\"0.25\"}" { w2 = $2 }
    END { print ws + 0, wn + 0, ks + 0, kn + 0, k1 + 0, k2 + 0, k3 + 0, k4 + 0, w1 + 0, w2 + 0 }'
}

# "wait_mean_ms work_mean_ms renders work>0.25s work>0.5s wait>0.1s" between
# two w4_pool readings ($1, $2: quoted).
w4_pool_delta() {
  awk -v b="$1" -v a="$2" 'BEGIN {
    split(b, x); split(a, y); for (k = 1; k <= 10; k++) d[k] = y[k] - x[k]
    printf "%.0f %.0f %d %d %d %d\n", d[2] ? 1000 * d[1] / d[2] : 0, d[4] ? 1000 * d[3] / d[4] : 0,
      d[4], d[4] - d[6], d[4] - d[7], d[2] - d[9] }'
}

w4_section() {
  local fetcher_pid=${mesh_pids[3]} redis_pid=${mesh_pids[0]} rep load_start load_end
  local pool_before pool_after idle idle_pool w4 w4_pool ticks_before ticks_after client_pid client_ticks
  local r_sched_before r_sched_after g_sched_before g_sched_after split_before split_after w1 w1_pool
  local idle_offset=1000 w4_offset=1400 w1_offset=2400
  for rep in $(seq 1 "$reps"); do
    load_start=$(cut -d' ' -f1 /proc/loadavg)
    fresh_cache
    pool_before=$(w4_pool)
    idle=$("$bin/imgmesh-load" --target "$gateway" --concurrency 1 --seconds "$w2_seconds" --offset "$idle_offset" --latencies "$state/w4s-unloaded-ms.txt" | load_summary)
    pool_after=$(w4_pool)
    idle_pool=$(w4_pool_delta "$pool_before" "$pool_after")

    fresh_cache
    reset_peak "$renderer_pid"
    pool_before=$(w4_pool)
    read -r -a split_before < <(w4_split)
    ticks_before=$(for p in "$redis_pid" "$fetcher_pid" "$renderer_pid" "$gateway_pid"; do cpu_ticks "$p"; done | tr '\n' ' ')
    r_sched_before=$(w4_schedstat "$renderer_pid")
    g_sched_before=$(w4_schedstat "$gateway_pid")
    "$bin/imgmesh-load" --target "$gateway" --concurrency 64 --seconds "$w1_seconds" --offset "$w4_offset" --latencies "$state/w4s-admitted-ms.txt" >"$state/w4-$rep.txt" &
    client_pid=$!
    client_ticks=0
    # The client's own CPU, read until it exits (its last reading stands).
    while kill -0 "$client_pid" 2>/dev/null; do
      client_ticks=$(awk '{print $14 + $15}' "/proc/$client_pid/stat" 2>/dev/null || echo "$client_ticks")
      sleep 0.5
    done
    wait "$client_pid"
    ticks_after=$(for p in "$redis_pid" "$fetcher_pid" "$renderer_pid" "$gateway_pid"; do cpu_ticks "$p"; done | tr '\n' ' ')
    r_sched_after=$(w4_schedstat "$renderer_pid")
    g_sched_after=$(w4_schedstat "$gateway_pid")
    pool_after=$(w4_pool)
    read -r -a split_after < <(w4_split)
    w4=$(load_summary <"$state/w4-$rep.txt")
    w4_pool=$(w4_pool_delta "$pool_before" "$pool_after")
    sleep 1
    local left rss
    rss=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$renderer_pid/status")
    left=$(($(metric "$renderer_metrics" imgmesh_render_queue_depth) + $(metric "$renderer_metrics" imgmesh_renders_in_flight) + $(metric "$renderer_metrics" imgmesh_render_admitted_bytes)))

    fresh_cache
    pool_before=$(w4_pool)
    w1=$(wrk -t1 -c4 -d"${w1_seconds}s" --latency -s bench/w1.lua "http://$gateway" -- "$w1_offset" | tee "$state/w1-$rep.txt" | wrk_summary)
    warn_hits W1 "$(sed -n 's/^hits //p' "$state/w1-$rep.txt")"
    pool_after=$(w4_pool)
    w1_pool=$(w4_pool_delta "$pool_before" "$pool_after")
    load_end=$(cut -d' ' -f1 /proc/loadavg)

    awk -v idle="$idle" -v ip="$idle_pool" -v w4="$w4" -v wp="$w4_pool" -v tb="$ticks_before" -v ta="$ticks_after" \
      -v ct="$client_ticks" -v rb="$r_sched_before" -v ra="$r_sched_after" -v gb="$g_sched_before" -v ga="$g_sched_after" \
      -v sb="${split_before[*]}" -v sa="${split_after[*]}" -v w1="$w1" -v w1p="$w1_pool" -v rss="$rss" -v left="$left" \
      -v loadavg="$load_start-$load_end" -v tol="${IMGMESH_RENDER_STRETCH_TOLERANCE:-off}" 'BEGIN {
      split(idle, i); split(ip, p); split(w4, w); split(wp, q); split(tb, x); split(ta, y)
      split(rb, r0); split(ra, r1); split(gb, g0); split(ga, g1); split(sb, s0); split(sa, s1); split(w1, v); split(w1p, u)
      printf "w4-raw tolerance=%s load=%s unloaded_p50=%s unloaded_p99=%s unloaded_wait_ms=%s unloaded_work_ms=%s", tol, loadavg, i[3], i[4], p[1], p[2]
      printf " rps=%s ok=%s ok_p50=%s ok_p99=%s ratio=%.2f shed=%s shed_p99=%s other=%s hits=%s", w[1], w[2], w[3], w[4], i[4] ? w[4] / i[4] : 0, w[5], w[6], w[7], w[9]
      printf " wait_ms=%s work_ms=%s renders=%s work_gt_250ms=%s work_gt_500ms=%s wait_gt_100ms=%s", q[1], q[2], q[3], q[4], q[5], q[6]
      printf " ticks_redis=%d ticks_fetcher=%d ticks_renderer=%d ticks_gateway=%d ticks_client=%d", y[1] - x[1], y[2] - x[2], y[3] - x[3], y[4] - x[4], ct
      rc = r1[1] - r0[1]; gc = g1[1] - g0[1]
      printf " renderer_stretch=%.2f gateway_stretch=%.2f", rc ? (rc + r1[2] - r0[2]) / rc : 0, gc ? (gc + g1[2] - g0[2]) / gc : 0
      printf " shed_gateway=%d shed_renderer=%d limit_after=%s rss_mb=%s left=%s", s1[5] - s0[5], s1[6] - s0[6], s1[7], rss, left
      printf " w1_rps=%s w1_p50=%s w1_p99=%s w1_non2xx=%s w1_wait_ms=%s w1_work_ms=%s w1_wait_gt_100ms=%s\n", v[1], v[2], v[3], v[5], u[1], u[2], u[6] }' | tee -a "$state/w4-raw.txt"
  done
  # All repetitions' renders together: one unloaded run's p99 is the
  # maximum of its ~40 renders.
  local unloaded_p99 admitted_p99
  unloaded_p99=$(pooled_p99 "$state/w4s-unloaded-ms.txt")
  admitted_p99=$(pooled_p99 "$state/w4s-admitted-ms.txt")
  awk -v u="$unloaded_p99" -v a="$admitted_p99" -v un="$(wc -l <"$state/w4s-unloaded-ms.txt")" -v an="$(wc -l <"$state/w4s-admitted-ms.txt")" \
    'BEGIN { printf "w4-pooled unloaded_p99=%s unloaded_n=%d admitted_p99=%s admitted_n=%d ratio=%.2f\n", u, un, a, an, u ? a / u : 0 }'
}
