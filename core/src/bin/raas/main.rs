//! `raas`: a RaaS node as a process.
//!
//! ```text
//! raas run CONFIG.json            check and deliver until SIGTERM/SIGINT (graceful)
//! raas cycle CONFIG.json          one sweep of due jobs and one delivery pass, then exit
//! raas register CONFIG.json JOB   register a job (JSON text or @file), print it; an array,
//!                                 or @file.jsonl (one job per line), registers them all
//! raas serve CONFIG.json          check, deliver and serve the HTTP API until SIGTERM
//! raas keys create --name N --scope client|admin [--tenant T] [--max-jobs N] [--rate R] CONFIG.json
//!                                 make an API key; its secret is printed only now
//! raas keys list CONFIG.json      the keys (never their secrets)
//! raas keys revoke ID CONFIG.json revoke a key
//! ```
//!
//! CONFIG is the node configuration of `RaasNode.open` (JSON). Verdict changes and sweep
//! reports are printed as JSON lines on standard output. Logs go to standard error: one line
//! per sweep and per delivery, human-readable, or JSON lines with `RAAS_LOG_FORMAT=json`;
//! the level comes from `RAAS_LOG` (default `info`, e.g. `RAAS_LOG=raas_core=debug`).

#[cfg(not(target_family = "wasm"))]
mod cli;

/// mimalloc instead of glibc's malloc: the API allocates and frees many small buffers per
/// request on every thread, where glibc's arenas showed in profiles (`malloc_consolidate`).
#[cfg(not(target_family = "wasm"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(not(target_family = "wasm"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

/// The node needs a database and sockets: there is nothing to run in wasm.
#[cfg(target_family = "wasm")]
fn main() {}
