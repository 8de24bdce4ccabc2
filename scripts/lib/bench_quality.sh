# shellcheck shell=bash
# Quality held equal, and where W1's CPU goes (issue 16):
# `scripts/bench.sh quality` and `scripts/bench.sh cpu-breakdown` alone,
# and parts of `make bench`. Sourced by scripts/bench.sh; uses its settings
# (bin, state, corpus, w1_seconds), its helpers (wrk_summary, cpu_ticks,
# metric) and its running mesh (mesh_pids, gateway, redis_port,
# renderer_pid, renderer_metrics).
#
# quality_section: imgmesh-quality (bench/src/quality.rs) fetches a sample
# of W1's, W5's and W6's outputs from the gateway and scores each with SSIM
# against the original decoded at full size and resized with Lanczos3 to
# the output's size, beside the libvips floor's output for the same image
# and width. A WARNING line (on stderr too) when the mesh is below the
# floor's quality by more than the threshold.
#
# cpu_breakdown_section: W1 with every process's utime + stime read from
# /proc/PID/stat before and after (CPU-ms per request of each), the floor's
# CPU-ms per render, the in-process cost of the floor's and the renderer's
# libvips settings (imgmesh-quality settings), and, when perf works, where
# the renderer's CPU goes during W1 (perf record, symbols grouped).

quality_samples=${BENCH_QUALITY_SAMPLES:-40}
breakdown_renders=${BENCH_SETTINGS_RENDERS:-24}
breakdown_perf_seconds=${BENCH_PERF_SECONDS:-6}

# Machine, commit and date line of a section.
quality_context() {
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), shared with other builds; libvips $(pkg-config --modversion vips); commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
}

quality_section() {
  local out rows name prefix
  # W6's originals under names never asked for: every width from cold.
  prefix="quality-w6-$(date +%s)-"
  for name in "$corpus"/*.jpg; do cp "$name" "$state/s3/demo-bucket/$prefix$(basename "$name")"; done
  # W1 and W5 from the mesh's gateway; W6 from a renderer that batches the
  # renders of one original ($w6_on_flags, scripts/lib/bench_w6.sh), so its
  # cascaded widths are what is scored.
  local w6
  w6_pair quality-w6 "$w6_on_flags"
  read -r -a w6 <<<"$w6_pair_info"
  out=$("$bin/imgmesh-quality" measure --gateway "$gateway" --samples "$quality_samples" --workloads w1,w5 "$corpus"/*.jpg)
  out+=$'\n'$("$bin/imgmesh-quality" measure --gateway "${w6[2]}" --samples "$quality_samples" --workloads w6 --w6-prefix "$prefix" "$corpus"/*.jpg)
  echo "$out" >"$state/quality.txt"
  grep '^WARNING' <<<"$out" >&2 || true
  rows=$(awk '$1 == "row" {
    printf "| %s | %s | %s | **%s** / %s | %s | %s / %s | %s | %s | %s |\n", toupper($2), $3, $4, $5, $6, $7, $8, $9, $10, $11, ($12 == "ok" ? "ok" : "**BELOW**")
  }' <<<"$out")
  echo "  quality: $(awk '$1 == "row" {printf "%s SSIM %s (floor %s) %s B; ", $2, $5, $8, $7}' <<<"$out")"
  cat >"$state/quality.md" <<DOC
<!-- section quality: written by scripts/bench.sh (alone: scripts/bench.sh quality) -->
## Quality held equal: SSIM against a full-decode reference

$(quality_context)
- command: \`imgmesh-quality measure --gateway \$gateway --samples $quality_samples corpus/*.jpg\` (bench/src/quality.rs), on the release mesh of \`make bench\`
- what is scored: each output is fetched from the gateway, decoded, and its luma (Rec. 601) compared with **SSIM** (Wang et al. 2004: Gaussian window 11 × 11, σ = 1.5, K1 0.01, K2 0.03, mean over the windows inside the image) against the **reference**: the corpus original decoded at full size (no shrink-on-load; through its ICC profile to sRGB when it has one) and resized with libvips \`resize\`, kernel Lanczos3, \`gap\` 0 (no box pre-shrink), to exactly the output's width and height. The **floor** column is the libvips floor's own output for the same original and width (\`thumbnail_buffer\` + \`jpegsave_buffer\` Q 80, what \`libvips-floor\` loops on), scored the same way.
- URLs: W1 — $quality_samples of W1's (image i % 5, w = 300 + ((i / 5) · 493) % 800, \`q=80&fm=jpg\`, bench/w1.lua), spread over its 4000 URLs; W5 — the same pairs with \`q=80&auto=format\` and \`Accept: image/avif,image/webp\`; W6 — W6's 10 srcset widths (160…1920) of each corpus original, \`q=80&fm=jpg\`, under fresh names (every width rendered from cold), the ten of one original fetched at once, from a renderer of its own that batches them (\`$w6_on_flags\`: one decode, the smaller widths resized from larger ones).
- threshold: a workload is **below** the floor when its mean SSIM is more than 0.005 under the floor's mean on the same pairs, or one output is more than 0.02 under the floor's output of its pair; \`make bench\` then prints a WARNING line. A speed-up that trips it does not count.

| workload | URLs | formats | SSIM mean / min | mean bytes | floor SSIM mean / min | floor mean bytes | worst pair (mesh − floor) | verdict |
|---|---|---|---|---|---|---|---|---|
$rows
<!-- /section quality -->
DOC
}

cpu_breakdown_section() {
  local names=(redis-server s3s-fs registry fetcher renderer gateway) cpu_pids=("${mesh_pids[@]:0:6}")
  local hz before=() i out rps p50 p99 n bad renders_before renders rows="" total=0 ms
  local floor_out floor_rps floor_cpu settings settings_rows perf_rows="" perf_note wrk_pid
  hz=$(getconf CLK_TCK)
  local split="$state/w1-split.rows" source
  # Within `make bench` the main loop measured W1 and the floor $reps times
  # on this mesh and kept each process's ticks ($split: "requests renders
  # rps p50 p99 non2xx ticks×6"): medians of those; alone, one W1 run and
  # one floor run here.
  if [[ ! -s $split ]]; then
    fresh_cache
    renders_before=$(metric "$renderer_metrics" imgmesh_renders_total)
    for i in "${!cpu_pids[@]}"; do before[i]=$(cpu_ticks "${cpu_pids[i]}"); done
    out=$(wrk -t1 -c4 -d"${w1_seconds}s" --latency -s bench/w1.lua "http://$gateway" -- 0)
    read -r rps p50 p99 n bad < <(wrk_summary <<<"$out")
    renders=$(($(metric "$renderer_metrics" imgmesh_renders_total) - renders_before))
    echo "$n $renders $rps $p50 $p99 $bad $(for i in "${!cpu_pids[@]}"; do echo -n "$(($(cpu_ticks "${cpu_pids[i]}") - before[i])) "; done)" >"$split"
    floor_out=$("$bin/libvips-floor" --threads 2 --seconds "$w1_seconds" "$corpus"/*.jpg)
    floor_rps=$(awk '/renders_per_second/ {print $2}' <<<"$floor_out")
    floor_cpu=$(awk '/cpu_ms_per_render/ {print $2}' <<<"$floor_out")
    source="one W1 run (\`wrk -t1 -c4 -d${w1_seconds}s -s bench/w1.lua\`, fresh_cache first: Redis flushed, the Source purged), then one \`libvips-floor --threads 2 --seconds $w1_seconds\` run"
  else
    floor_rps=$floor
    floor_cpu=$main_floor_cpu
    source="the main table's $(wc -l <"$split") W1 runs (\`wrk -t1 -c4 -d${w1_seconds}s -s bench/w1.lua\`, fresh_cache first: Redis flushed, the Source purged) and floor runs, medians per column"
  fi
  # Column $1's median over the W1 rows.
  split_col() { awk -v c="$1" '{print $c}' "$split" | median; }
  n=$(awk '{s += $1} END {print s}' "$split"); renders=$(awk '{s += $2} END {print s}' "$split")
  rps=$(split_col 3); p50=$(split_col 4); p99=$(split_col 5); bad=$(awk '{s += $6} END {print s}' "$split")
  for i in "${!cpu_pids[@]}"; do
    ms=$(awk -v c=$((i + 7)) -v hz="$hz" '{ printf "%.2f\n", $c * 1000 / hz / ($1 ? $1 : 1) }' "$split" | median)
    total=$(awk -v a="$total" -v b="$ms" 'BEGIN { printf "%.2f", a + b }')
    rows+="| ${names[i]} | $ms |"$'\n'
  done
  echo "  cpu breakdown: W1 $rps req/s, $total CPU-ms/req ($renders renders of $n requests); floor $floor_rps renders/s, $floor_cpu CPU-ms/render"
  # The same settings with glibc's malloc as the floor has it, then with
  # the mmap threshold the renderer fixes (pipeline/load/libvips.rs).
  "$bin/imgmesh-quality" settings --renders "$breakdown_renders" "$corpus"/*.jpg >"$state/settings.txt"
  "$bin/imgmesh-quality" settings --renders "$breakdown_renders" --mmap-threshold 131072 "$corpus"/*.jpg >"$state/settings-mmap.txt"
  settings_rows=$(awk '
    FNR == NR && $1 == "setting" { fixed[$2] = $4; next }
    $1 == "setting" { printf "| %s | %s | %s | %s | %s |\n", $2, $4, fixed[$2], ($8 == "" ? "—" : $8), ($10 == "" ? "—" : $10) }
  ' "$state/settings-mmap.txt" "$state/settings.txt")
  if command -v perf >/dev/null && perf record -q -o /dev/null -- true >/dev/null 2>&1; then
    fresh_cache
    wrk -t1 -c4 -d"$((breakdown_perf_seconds + 2))s" -s bench/w1.lua "http://$gateway" -- 2000 >/dev/null &
    wrk_pid=$!
    sleep 1
    perf record -q -F 199 --call-graph dwarf,16384 -p "$renderer_pid" -o "$state/perf.data" -- sleep "$breakdown_perf_seconds" >/dev/null 2>&1 || true
    wait "$wrk_pid" || true
    perf script -i "$state/perf.data" -F ip,sym,dso 2>/dev/null >"$state/perf.txt" || true
    perf_rows=$(python3 scripts/lib/perf_groups.py <"$state/perf.txt")
    perf_note="\`perf record -F 199 --call-graph dwarf,16384 -p \$renderer_pid -- sleep $breakdown_perf_seconds\` during W1 (\`wrk -t1 -c4\`, after fresh_cache), then \`perf script -F ip,sym,dso | python3 scripts/lib/perf_groups.py\` (each sample placed by the libjpeg entry points on its call chain, copies and allocation charged to themselves; see the script)"
  else
    perf_note="perf is not usable here (scripts/install-deps.sh bench installs linux-perf); no profile"
  fi
  cat >"$state/cpu-breakdown.md" <<DOC
<!-- section cpu-breakdown: written by scripts/bench.sh (alone: scripts/bench.sh cpu-breakdown) -->
## Where W1's CPU goes: per process, per libvips setting, per renderer function

$(quality_context)
- command: \`scripts/bench.sh cpu-breakdown\` (also part of \`make bench\`), release mesh: $source; utime + stime of each process from /proc/PID/stat before and after, divided by W1's requests.
- W1: **$rps req/s**, $n requests, $renders renders (the rest were hits), non-2xx $bad. Floor: **$floor_rps renders/s**, **$floor_cpu CPU-ms per render**.

| process | CPU-ms per W1 request |
|---|---|
${rows}| **all six** | **$total** (floor: $floor_cpu per render) |

The libvips calls alone, in one process on one thread (\`imgmesh-quality settings --renders $breakdown_renders corpus/*.jpg\`: $breakdown_renders of W1's (image, width) pairs per row; \`floor\` is libvips-floor's \`thumbnail_buffer(w)\` + \`jpegsave_buffer(Q 80)\`; \`mesh\` replays the renderer's calls for a W1 URL: \`thumbnail_buffer\` with \`height\`, \`size=force\`, \`no_rotate\`, \`fail_on=truncated\` and \`export_profile=srgb\` when the original has a profile (services/renderer/src/pipeline/load/source_image.rs, \`thumbnail\`), and \`jpegsave_buffer\` with Q 80, \`optimize_coding\`, \`interlace\` (imgix's default progressive JPEG), \`strip\` (pipeline/encoding/encode.rs, \`encode\`); \`mesh_without_export_profile\` is \`mesh\` without the ICC import/export (the corpus's one profile, in string.jpg, is sRGB IEC61966-2.1); the \`encode:\` rows encode the same in-memory thumbnails with one option at a time; \`renderer_pipeline\` is the renderer's own \`render_image\` for \`w=…&q=80&fm=jpg\` (header read, scan count, layout, thumbnail, encode; no gRPC, no Redis); the second CPU column repeats every row with \`--mmap-threshold 131072\` (glibc's mmap threshold fixed as services/renderer/src/pipeline/load/libvips.rs fixes it, so every block over 128 KiB is mapped and unmapped, and its pages faulted in and zeroed, on each render); SSIM against the full-decode Lanczos3 reference as in the quality section):

| setting | CPU-ms per render, glibc's malloc (as the floor) | CPU-ms per render, mmap threshold fixed at 128 KiB (as the renderer) | mean bytes | mean SSIM |
|---|---|---|---|---|
$settings_rows

What the renderer does for a W1 miss that the floor does not (read from the code; the rows above and below measure them):

| | floor (bench/src/main.rs) | renderer (W1: \`w=…&q=80&fm=jpg\`) |
|---|---|---|
| the original | read once, in memory | fetched for every miss: fetcher → renderer over mTLS gRPC (corpus mean 3.35 MB; 256 KiB chunks), collected into one \`Vec\` (services/renderer/src/service/origin_fetch.rs, \`extend_from_slice\`); the fetcher serves it from its memory cache |
| before decoding | nothing | \`jpeg_scan_count\` walks the whole file byte by byte (pipeline/load/input_format.rs), then a header-only libvips load (\`Header::read\`, pipeline/load/source_image.rs) |
| load | \`thumbnail_buffer(w)\` | \`thumbnail_buffer\` with \`height\`, \`size=force\`, \`no_rotate\`, \`fail_on=truncated\` (same shrink-on-load); **\`export_profile=srgb\` for string.jpg**, whose embedded profile is sRGB IEC61966-2.1: an lcms sRGB → sRGB transform on every render of it |
| encode | \`jpegsave_buffer(Q 80)\`: baseline, standard Huffman tables, metadata kept | Q 80, **\`interlace\`** (progressive: imgix's default, shared/imgix-params/src/plan.rs \`jpg-progressive\`), **\`optimize_coding\`**, \`strip\` (pipeline/encoding/encode.rs) |
| malloc | glibc's default: the mmap threshold rises to the largest block freed, so big buffers are reused from the heap | **mmap threshold fixed at 128 KiB** (pipeline/load/libvips.rs, \`return_large_buffers_to_the_kernel\`): every block over 128 KiB is mapped, faulted in, zeroed and unmapped on each render (RSS stays low) |
| after | nothing | ETag (hash of the output), Redis SET of the derivative, reply to the gateway over mTLS gRPC; the gateway keeps a hot copy and answers HTTP |

The renderer's CPU during W1 by function group: $perf_note.

| group | % of the renderer's samples |
|---|---|
$perf_rows
<!-- /section cpu-breakdown -->
DOC
}
