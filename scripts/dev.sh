#!/usr/bin/env bash
# `make dev`: runs the whole mesh locally on embedded defaults.
#
# Starts Redis, an S3 server (s3s-fs) holding a demo bucket with sample
# images, and the four services on loopback; registers the Source `demo`;
# prints a URL to open, and the dashboard's URL with the admin token to log
# in with. Ctrl-C stops everything it started. State lives in .dev/ (SQLite
# database, master key, admin token, bucket, logs) and survives restarts.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# shellcheck source=lib/mesh.sh
source scripts/lib/mesh.sh

state=.dev
mkdir -p "$state/s3/demo-bucket"
echo "building imgmesh…"
cargo build -j2 --workspace --bins --quiet

# Sample images: the benchmark corpus if it can be fetched, else generated.
if corpus=$(scripts/corpus.sh 2>/dev/null); then
  cp -n "$corpus"/*.jpg "$state/s3/demo-bucket/" 2>/dev/null || true
fi
if ! ls "$state/s3/demo-bucket/"*.jpg >/dev/null 2>&1; then
  vips gaussnoise "$state/s3/demo-bucket/noise.jpg[Q=90]" 2400 1600
fi
sample=$(cd "$state/s3/demo-bucket" && ls -- *.jpg | head -n 1)

start_mesh "$state" "$(target_dir)/debug"

cat <<MSG

imgmesh is running. Open:

    http://demo.localhost:${gateway##*:}/$sample?w=600&fm=webp

  dashboard  http://$gateway_admin/ui/   log in with the admin token: $(cat "$state/admin-token")

  gateway  $gateway (ops $gateway_ops, admin $gateway_admin)   registry $registry   fetcher $fetcher   renderer $renderer
  redis    127.0.0.1:$redis_port   s3 http://127.0.0.1:$s3_port (bucket demo-bucket = $state/s3/demo-bucket)
  admin    ${cli[*]} sources list
  logs     $state/logs/

Ctrl-C stops everything.
MSG
# Runs until Ctrl-C or until one of the processes exits.
wait -n "${mesh_pids[@]}" || true
# Still set unless Ctrl-C / SIGTERM already stopped everything.
if ((${#mesh_pids[@]})); then
  echo "a process of the mesh exited; see $state/logs" >&2
fi
