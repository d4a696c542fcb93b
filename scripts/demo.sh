#!/usr/bin/env bash
# The main job, on embedded defaults: prints the identifiers of a file (default: README.md).
#   bash scripts/demo.sh [FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-README.md}
exec cargo run -q --release -p raas-core --example identify -- "$file"
