#!/usr/bin/env bash
# Every test of the project, as CI runs it: lint, Rust tests, the JS suite against the napi
# addon and the wasm package in Node, and the browser package in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "setup";            bash scripts/setup.sh
step "format";           cargo fmt --all --check
step "clippy";           cargo clippy --workspace --all-targets -- -D warnings
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  step "clippy (wasm32)"
  cargo clippy -p raas-core -p raas-wasm --target wasm32-unknown-unknown --target-dir target/wasm -- -D warnings
fi
step "contract artifact matches its sources"; node contracts/compile.mjs --check
step "build napi addon"; npm run -s build:node
step "build wasm";       npm run -s build:wasm
step "typecheck .d.ts";  npx tsc --noEmit -p tests/tsconfig.json
step "postgresql (throw-away cluster)"
RAAS_TEST_POSTGRES_URL="$(bash scripts/postgres.sh start)"
export RAAS_TEST_POSTGRES_URL RAAS_REQUIRE_POSTGRES=1
# The fault matrix runs its own cluster on 55433 (it stops that one mid-test).
trap 'bash scripts/postgres.sh stop; RAAS_PG_PORT=55433 bash scripts/postgres.sh stop' EXIT
step "rust tests";       cargo test --workspace --exclude raas-node -- --include-ignored --skip seeded_histories
step "TypeScript types match the Rust types"
cargo test -p raas-core --features ts --test ts_types
step "simulation (RAAS_SIM_SEEDS, RAAS_SIM_SEED to replay)"
cargo test -p raas-core --test simulation -- --nocapture
step "schemathesis against raas serve (OpenAPI document, stateful links)"
node scripts/schemathesis.mjs --max-examples 100
step "node tests (napi addon)";   BACKEND=node node --test tests/*.test.mjs
step "node tests (wasm package)"; BACKEND=wasm node --test tests/*.test.mjs
step "browser tests (headless chromium)"; node --test tests/browser/*.browser.mjs
step "all tests passed"
