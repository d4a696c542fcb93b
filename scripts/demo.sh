#!/usr/bin/env bash
# The main job, locally on embedded defaults: the identifiers of FILE (default README.md),
# then a RaaS node on a SQLite file with one job on it on the devnet (anvil + the Lotus test
# server), through all three job kinds on one chain timeline: replication (2 copies, made by
# an aggregating hook with inclusion proofs), renewal (a deal nears its end), repair (a
# sector stops being proven), then a verified retrieval and a summary table.
#   bash scripts/demo.sh [FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-README.md}
cargo run -q --profile demo-build -p raas-core --example identify -- "$file"
echo
# The devnet's anvil and its JS dependencies come from npm.
if [ ! -d node_modules/@foundry-rs/anvil-linux-amd64 ] || [ ! -d node_modules/multiformats ]; then
  npm ci --silent --no-audit --no-fund
fi
exec cargo run -q --profile demo-build -p raas-core --example raas_demo -- "$file"
