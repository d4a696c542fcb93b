#!/usr/bin/env bash
# The main job, locally on embedded defaults: the identifiers of FILE (default README.md),
# then a RaaS node on a SQLite file keeping 2 copies of it on the devnet (anvil + the Lotus
# test server): short, one deal request, the hook makes the deals, satisfied.
#   bash scripts/demo.sh [FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-README.md}
cargo run -q --release -p raas-core --example identify -- "$file"
echo
# The devnet's anvil and its JS dependencies come from npm.
if [ ! -d node_modules/@foundry-rs/anvil-linux-amd64 ] || [ ! -d node_modules/multiformats ]; then
  npm ci --silent --no-audit --no-fund
fi
exec cargo run -q --release -p raas-core --example raas_demo -- "$file"
