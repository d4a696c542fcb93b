#!/usr/bin/env bash
# Installs every tool the build and the tests need. Quick when everything is already there.
#   - the wasm32 standard library: rustup's target when it can be had, else Debian's
#     rustc-web toolchain (scripts/build-wasm.sh then builds with -Zbuild-std)
#   - wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in Cargo.lock
#   - Debian's chromium for the browser tests, Debian's postgresql for the shared store,
#     the npm dev dependencies
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

apt_packages=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32 target through rustup"
  timeout 300 rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
fi
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  log "rustup has no wasm32 standard library here: using Debian's rustc-web"
  for p in rustc-web cargo-web rust-web-src lld-19; do have_pkg "$p" || apt_packages+=("$p"); done
fi
command -v chromium >/dev/null || apt_packages+=(chromium)
# PostgreSQL: the shared store of multi-node tests (scripts/postgres.sh runs a throw-away cluster).
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || apt_packages+=(postgresql)
# wrk: the load generator of `npm run bench:api`.
command -v wrk >/dev/null || apt_packages+=(wrk)
# python3-venv: Schemathesis (the API's property tests) runs in a virtual environment.
python3 -m venv --help >/dev/null 2>&1 || apt_packages+=(python3-venv)
for extra in ${RAAS_SETUP_APT_EXTRA:-}; do have_pkg "$extra" || apt_packages+=("$extra"); done

if ((${#apt_packages[@]})); then
  log "apt-get install ${apt_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $wb_version" ]]; then
  log "cargo install wasm-bindgen-cli $wb_version (a few minutes, once)"
  cargo install -q wasm-bindgen-cli --version "$wb_version"
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
# Schemathesis from PyPI, in .venv/ (kept between runs; the version is pinned).
st_version=4.32.5
if [[ "$(.venv/bin/st --version 2>/dev/null || true)" != *"$st_version"* ]]; then
  log "pip install schemathesis==$st_version into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "schemathesis==$st_version"
fi
log "tools ready"
