# Sourced by the other scripts: the environment for building the wasm32 worker with
# Debian's rustc-web (std built from source) and llvm's wasm-ld, and for running
# wrangler without calls home.
export PATH="/usr/bin:$PWD/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export RUSTC_BOOTSTRAP=1
export CARGO_UNSTABLE_BUILD_STD=std,panic_abort
# std's smaller implementations (sorting, formatting, ...): 16 KB less gzipped wasm.
export CARGO_UNSTABLE_BUILD_STD_FEATURES=optimize_for_size
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-22/bin/wasm-ld
# No file:line:column strings for panics and only type names from derived Debug in the
# wasm (about 12 KB gzipped together): the worker does not panic on input, a panic
# aborts the isolate whatever its message says, and no reply prints a derived Debug.
# `-Cpanic=immediate-abort`: a panic traps at once, without formatting a message
# (13 KB gzipped less again).
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zlocation-detail=none -Zfmt-debug=shallow -Zunstable-options -Cpanic=immediate-abort"
# worker-build uses these instead of downloading its tools.
export WASM_BINDGEN_BIN="${CARGO_HOME:-$HOME/.cargo}/bin/wasm-bindgen"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
export WASM_OPT_BIN="$PWD/scripts/wasm-opt"
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
# Keep the wasm32 build apart from the native one so neither invalidates the other.
export CARGO_TARGET_DIR="$PWD/target"
