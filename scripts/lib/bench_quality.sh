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
breakdown_renders=${BENCH_SETTINGS_RENDERS:-60}
breakdown_perf_seconds=${BENCH_PERF_SECONDS:-10}

# Machine, commit and date line of a section.
quality_context() {
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), shared with other builds; libvips $(pkg-config --modversion vips); commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
}

quality_section() {
  local out rows
  out=$("$bin/imgmesh-quality" measure --gateway "$gateway" --samples "$quality_samples" "$corpus"/*.jpg)
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
- URLs: W1 — $quality_samples of W1's (image i % 5, w = 300 + (i / 5) % 800, \`q=80&fm=jpg\`), spread over its 4000 URLs; W5 — the same pairs with \`q=80&auto=format\` and \`Accept: image/avif,image/webp\`; W6 — 10 srcset widths (160…1920) of each corpus original, \`q=80&fm=jpg\`, the ten of one original fetched at once.
- threshold: a workload is **below** the floor when its mean SSIM is more than 0.005 under the floor's mean on the same pairs, or one output is more than 0.02 under the floor's output of its pair; \`make bench\` then prints a WARNING line. A speed-up that trips it does not count.

| workload | URLs | formats | SSIM mean / min | mean bytes | floor SSIM mean / min | floor mean bytes | worst pair (mesh − floor) | verdict |
|---|---|---|---|---|---|---|---|---|
$rows
<!-- /section quality -->
DOC
}

# Renderer perf samples (perf report --sort dso,sym) grouped by what the
# code does; prints "| group | % |" rows.
perf_groups() {
  python3 -c '
import re, sys
groups = [
    ("JPEG decode (libjpeg-turbo)", lambda d, s: "libjpeg" in d and re.search(r"decode|decompress|idct|ycc_rgb|upsample|read_scanlines|read_markers|jpeg_read|merged|h2v|fill_bit_buffer|huff_decode|jpeg_fill", s)),
    ("JPEG encode (libjpeg-turbo)", lambda d, s: "libjpeg" in d and re.search(r"encode|compress|fdct|rgb_ycc|quantize|forward|emit|flush_bits|huff|write_scanlines|jpeg_write|finish_pass|convsamp|downsample|h2v|gather", s)),
    ("JPEG, unattributed (libjpeg-turbo without symbols)", lambda d, s: "libjpeg" in d),
    ("resize (libvips reduce/shrink)", lambda d, s: "libvips" in d and re.search(r"reduce|shrink|resample|interpolat|affine|mapim", s)),
    ("colour (lcms2, libvips colour)", lambda d, s: "lcms" in d or ("libvips" in d and re.search(r"icc|colour|lab|xyz|srgb", s, re.I))),
    ("libvips, other (regions, buffers, threads)", lambda d, s: "libvips" in d or "libglib" in d or "libgobject" in d),
    ("copies (memcpy/memmove)", lambda d, s: re.search(r"memcpy|memmove|memset|copy_user|copy_to_user|copy_from_user", s)),
    ("allocator (malloc/free, page faults)", lambda d, s: re.search(r"malloc|free|realloc|calloc|_int_|tcache|arena|mmap|munmap|brk|page_fault|clear_page|do_anonymous|handle_mm|alloc_pages|unmap", s)),
    ("TLS (aws-lc, rustls)", lambda d, s: re.search(r"aws_lc|aes|gcm|sha|chacha|poly1305|rustls|ghash|bn_", s, re.I)),
    ("gRPC / HTTP/2 / prost", lambda d, s: re.search(r"prost|tonic|h2::|hyper|http|bytes::|encode_varint|decode_varint|tower", s)),
    ("Redis client", lambda d, s: re.search(r"redis", s)),
    ("tokio, futures, threads", lambda d, s: re.search(r"tokio|futures|parking_lot|pthread|futex|sched|schedule|switch_to|wake", s)),
    ("kernel, other (syscalls, network)", lambda d, s: "kernel" in d),
]
totals = {}
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
    if not m:
        continue
    pct, dso, sym = float(m.group(1)), m.group(2), m.group(3).strip()
    name = next((n for n, f in groups if f(dso, sym)), "other")
    totals[name] = totals.get(name, 0.0) + pct
for name, _ in groups + [("other", None)]:
    if name in totals:
        print("| %s | %.1f |" % (name, totals[name]))
'
}

cpu_breakdown_section() {
  local names=(redis-server s3s-fs registry fetcher renderer gateway) cpu_pids=("${mesh_pids[@]:0:6}")
  local hz before=() i out rps p50 p99 n bad renders_before renders rows="" total=0 ticks ms
  local floor_out floor_rps floor_cpu settings settings_rows perf_rows="" perf_note wrk_pid
  hz=$(getconf CLK_TCK)
  redis-cli -p "$redis_port" FLUSHALL >/dev/null
  renders_before=$(metric "$renderer_metrics" imgmesh_renders_total)
  for i in "${!cpu_pids[@]}"; do before[i]=$(cpu_ticks "${cpu_pids[i]}"); done
  out=$(wrk -t1 -c4 -d"${w1_seconds}s" --latency -s bench/w1.lua "http://$gateway" -- 701000)
  for i in "${!cpu_pids[@]}"; do
    ticks=$(($(cpu_ticks "${cpu_pids[i]}") - before[i]))
    before[i]=$ticks
  done
  renders=$(($(metric "$renderer_metrics" imgmesh_renders_total) - renders_before))
  read -r rps p50 p99 n bad < <(wrk_summary <<<"$out")
  for i in "${!cpu_pids[@]}"; do
    ms=$(awk -v t="${before[i]}" -v hz="$hz" -v n="$n" 'BEGIN { printf "%.2f", t * 1000 / hz / (n ? n : 1) }')
    total=$(awk -v a="$total" -v b="$ms" 'BEGIN { printf "%.2f", a + b }')
    rows+="| ${names[i]} | $ms |"$'\n'
  done
  floor_out=$("$bin/libvips-floor" --threads 2 --seconds "$w1_seconds" "$corpus"/*.jpg)
  floor_rps=$(awk '/renders_per_second/ {print $2}' <<<"$floor_out")
  floor_cpu=$(awk '/cpu_ms_per_render/ {print $2}' <<<"$floor_out")
  echo "  cpu breakdown: W1 $rps req/s, $total CPU-ms/req ($renders renders of $n requests); floor $floor_rps renders/s, $floor_cpu CPU-ms/render"
  settings=$("$bin/imgmesh-quality" settings --renders "$breakdown_renders" "$corpus"/*.jpg)
  echo "$settings" >"$state/settings.txt"
  settings_rows=$(awk '$1 == "setting" { printf "| %s | %s | %s | %s |\n", $2, $4, ($8 == "" ? "—" : $8), ($10 == "" ? "—" : $10) }' <<<"$settings")
  if command -v perf >/dev/null && perf record -q -o /dev/null -- true >/dev/null 2>&1; then
    redis-cli -p "$redis_port" FLUSHALL >/dev/null
    wrk -t1 -c4 -d"$((breakdown_perf_seconds + 2))s" -s bench/w1.lua "http://$gateway" -- 803000 >/dev/null &
    wrk_pid=$!
    sleep 1
    perf record -q -F 499 -p "$renderer_pid" -o "$state/perf.data" -- sleep "$breakdown_perf_seconds" >/dev/null 2>&1 || true
    wait "$wrk_pid" || true
    perf report -i "$state/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null >"$state/perf.txt" || true
    perf_rows=$(perf_groups <"$state/perf.txt")
    perf_note="\`perf record -F 499 -p \$renderer_pid -- sleep $breakdown_perf_seconds\` during W1 (\`wrk -t1 -c4\`), then \`perf report --no-children --sort dso,sym\`, symbols grouped by scripts/lib/bench_quality.sh's perf_groups (first match wins)"
  else
    perf_note="perf is not usable here (scripts/install-deps.sh bench installs linux-perf); no profile"
  fi
  cat >"$state/cpu-breakdown.md" <<DOC
<!-- section cpu-breakdown: written by scripts/bench.sh (alone: scripts/bench.sh cpu-breakdown) -->
## Where W1's CPU goes: per process, per libvips setting, per renderer function

$(quality_context)
- command: \`scripts/bench.sh cpu-breakdown\` (also part of \`make bench\`): W1 \`wrk -t1 -c4 -d${w1_seconds}s -s bench/w1.lua\` on the release mesh (Redis flushed first), utime + stime of each process from /proc/PID/stat before and after, divided by W1's requests; then \`libvips-floor --threads 2 --seconds $w1_seconds\`.
- W1: **$rps req/s**, $n requests, $renders renders (the rest were hits), non-2xx $bad. Floor: **$floor_rps renders/s**, **$floor_cpu CPU-ms per render**.

| process | CPU-ms per W1 request |
|---|---|
${rows}| **all six** | **$total** (floor: $floor_cpu per render) |

The libvips calls alone, in one process on one thread (\`imgmesh-quality settings --renders $breakdown_renders corpus/*.jpg\`: $breakdown_renders of W1's (image, width) pairs per row; \`floor\` is libvips-floor's \`thumbnail_buffer(w)\` + \`jpegsave_buffer(Q 80)\`; \`mesh\` replays the renderer's calls for a W1 URL: \`thumbnail_buffer\` with \`height\`, \`size=force\`, \`no_rotate\`, \`fail_on=truncated\` and \`export_profile=srgb\` when the original has a profile (services/renderer/src/pipeline/load/source_image.rs, \`thumbnail\`), and \`jpegsave_buffer\` with Q 80, \`optimize_coding\`, \`interlace\` (imgix's default progressive JPEG), \`strip\` (pipeline/encoding/encode.rs, \`encode\`); the \`encode:\` rows encode the same in-memory thumbnails with one option at a time; SSIM against the full-decode Lanczos3 reference as in the quality section):

| setting | CPU-ms per render | mean bytes | mean SSIM |
|---|---|---|---|
$settings_rows

The renderer's CPU during W1 by function group: $perf_note.

| group | % of the renderer's samples |
|---|---|
$perf_rows
<!-- /section cpu-breakdown -->
DOC
}
