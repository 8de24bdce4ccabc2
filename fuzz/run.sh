#!/usr/bin/env bash
# Fuzzes every target (or the ones named) under AFL++ through cargo-afl, on
# the stable toolchain, for a set time each; prints executions, coverage,
# crashes and hangs per target and fails when any target found a crash.
#
# Usage: fuzz/run.sh [seconds per target, default 60] [target ...]
# Targets: imgix_query signature asset_key cache_key admin_body
#          cache_envelope image_pipeline
# CI runs `fuzz/run.sh 10` (FUZZ_SECONDS=10 make fuzz); a crash or a hang
# fails it.
# Findings stay in the printed output directory; a crash input replays with
#   ${IMGMESH_FUZZ_TARGET_DIR:-~/.cache/imgmesh-fuzz-target}/debug/<target> < <crash file>
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(imgix_query signature asset_key cache_key admin_body cache_envelope image_pipeline)
fi
# A build directory of its own, whatever CARGO_TARGET_DIR the caller has
# (.ci/run exports the workspace's): the instrumented build takes the
# directory's lock for as long as it compiles (half an hour cold on 2
# cores), which would hold every other debug build waiting, and shares no
# artifact with them (other RUSTFLAGS).
export CARGO_TARGET_DIR=${IMGMESH_FUZZ_TARGET_DIR:-$HOME/.cache/imgmesh-fuzz-target}
jobs=${FUZZ_BUILD_JOBS:-2}

if ! command -v cargo-afl >/dev/null 2>&1; then
    cargo install --locked -j "$jobs" cargo-afl
fi
# Builds AFL++ (afl-fuzz and its LLVM runtime) once per Rust toolchain;
# it says so and does nothing when that is done already.
cargo afl config --build >/dev/null 2>&1 || true

cd "$here"
cargo afl build -j "$jobs" --bins

out=$(mktemp -d /tmp/imgmesh-fuzz.XXXXXX)
corpus="$out/corpus"
mkdir -p "$corpus"
cp -r corpus/* "$corpus/"
"$CARGO_TARGET_DIR/debug/make_seeds" "$corpus"

# A shared machine in a container: no CPU pinning, no frequency checks,
# and core dumps may go to a handler (crashes are still caught).
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export VIPS_CONCURRENCY=1
status=0
for target in "${targets[@]}"; do
    echo "== $target: ${seconds}s"
    cargo afl fuzz -V "$seconds" -t 5000 -m none \
        -i "$corpus/$target" -o "$out/$target" \
        "$CARGO_TARGET_DIR/debug/$target" >"$out/$target.log" 2>&1 || true
    stats="$out/$target/default/fuzzer_stats"
    if [ ! -f "$stats" ]; then
        echo "$target did not run; its log:"
        tail -30 "$out/$target.log"
        status=1
        continue
    fi
    crashes=$(find "$out/$target/default/crashes" -type f ! -name README.txt | wc -l)
    hangs=$(find "$out/$target/default/hangs" -type f | wc -l)
    execs=$(awk -F' *: *' '$1 == "execs_done" { print $2 }' "$stats")
    coverage=$(awk -F' *: *' '$1 == "bitmap_cvg" { print $2 }' "$stats")
    corpus_count=$(awk -F' *: *' '$1 == "corpus_count" { print $2 }' "$stats")
    echo "$target: $execs executions, coverage $coverage, corpus $corpus_count, $crashes crashes, $hangs hangs"
    if [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then
        status=1
        find "$out/$target/default/crashes" "$out/$target/default/hangs" -type f ! -name README.txt | sed 's/^/  found: /'
    fi
done
echo "findings in $out"
exit "$status"
