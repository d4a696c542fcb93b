#!/usr/bin/env bash
# Builds the browser package: bindings-wasm/pkg/web (everything), its Node twin pkg/node, and
# pkg/ids, the identifiers-only entry raas-web/ids (CIDs, CommP, aggregates and proofs; no
# chain clients), then the inlined entry and the size check.
# Uses rustup's wasm32 target when installed; otherwise Debian's rustc-web toolchain with
# -Zbuild-std (rustup here cannot download the wasm32 standard library).
set -euo pipefail
cd "$(dirname "$0")/.."
target=wasm32-unknown-unknown
target_dir=target/wasm
wasm="$target_dir/$target/wasm-release/raas_wasm.wasm"
export PATH="$HOME/.cargo/bin:$PATH"

build() {
  if rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    cargo build -p raas-wasm --profile wasm-release --target "$target" --target-dir "$target_dir" --config "$remap" "$@"
  else
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-19 \
      /usr/bin/cargo build -p raas-wasm --profile wasm-release --target "$target" --target-dir "$target_dir" \
      --config "$remap" -Zbuild-std=std,panic_abort "$@"
  fi
}

# Panic locations name source files: the registry's and this checkout's paths are cut to
# what follows them, so the package neither carries this machine's paths nor their bytes.
# Given with --config, the flags join .cargo/config.toml's (simd128, getrandom's backend);
# the RUSTFLAGS variables would replace them.
remap="target.$target.rustflags=['--remap-path-prefix=$HOME/.cargo/registry/src/=', '--remap-path-prefix=$PWD/=']"
# The names and producers sections only serve debuggers and tools: not shipped.
strip_sections=(--remove-name-section --remove-producers-section)

# Identifiers only first: both builds write the same artifact path.
build --no-default-features
wasm-bindgen --target web "${strip_sections[@]}" --out-dir bindings-wasm/pkg/ids "$wasm"
build
wasm-bindgen --target web "${strip_sections[@]}" --out-dir bindings-wasm/pkg/web "$wasm"
wasm-bindgen --target nodejs "${strip_sections[@]}" --out-dir bindings-wasm/pkg/node "$wasm"
# Each output states its module kind, whatever the enclosing package says.
echo '{ "type": "module" }' > bindings-wasm/pkg/web/package.json
echo '{ "type": "module" }' > bindings-wasm/pkg/ids/package.json
echo '{ "type": "commonjs" }' > bindings-wasm/pkg/node/package.json
node scripts/wasm-inline.mjs
node scripts/wasm-size.mjs
