#!/usr/bin/env bash
# Installs what building, testing, running and benchmarking imgmesh need on a
# Debian/Ubuntu machine, skipping whatever is already there. Idempotent.
#
#   scripts/install-deps.sh          build + test + dev needs
#   scripts/install-deps.sh bench    also wrk and nginx for `make bench`
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libvips-dev libvips-tools pkg-config redis-server redis-tools gcc curl ca-certificates)
# A machine whose Node.js came from elsewhere already has npm (for buf).
command -v npm >/dev/null || packages+=(npm)
if [[ "${1:-}" == "bench" ]]; then
  packages+=(wrk nginx-light)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

export PATH="$HOME/.cargo/bin:$PATH"
# The S3 server tests and `make dev` run: 0.14.1 is the newest that builds on
# our pinned toolchain.
if ! s3s-fs --version 2>/dev/null | grep -q "0.14.1"; then
  echo "installing s3s-fs 0.14.1"
  cargo install s3s-fs --version 0.14.1 --features binary --locked -j2
fi
if ! command -v cargo-nextest >/dev/null; then
  echo "installing cargo-nextest"
  cargo install cargo-nextest --locked -j2
fi
if [[ ! -x tools/node_modules/.bin/buf ]]; then
  echo "installing buf (tools/package.json)"
  (cd tools && npm ci --no-audit --no-fund --loglevel=error)
fi
