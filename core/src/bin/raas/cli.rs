//! The commands of `raas` (native only).

use std::process::ExitCode;

use raas_core::engine::RaasNode;
use raas_core::ErrorCode;
use serde_json::{json, Value};

fn usage() -> ExitCode {
    eprintln!(
        "usage: raas run|cycle|serve CONFIG.json | raas register CONFIG.json JOB\n       \
         raas keys create --name N --scope client|admin [--tenant T] [--max-jobs N] [--rate R] [CONFIG.json]\n       \
         raas keys list [CONFIG.json] | raas keys revoke ID [CONFIG.json]\n\
         (for keys, CONFIG.json may also come from --config or RAAS_CONFIG)"
    );
    ExitCode::from(2)
}

/// `raas keys …`: flags and positionals, the config from an argument, `--config` or
/// `RAAS_CONFIG`.
async fn keys(args: &[String]) -> ExitCode {
    let Some(action) = args.first() else {
        return usage();
    };
    let mut flags = std::collections::BTreeMap::new();
    let mut positional = Vec::new();
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        match a.strip_prefix("--") {
            Some(name) => match it.next() {
                Some(v) => {
                    flags.insert(name.to_string(), v.clone());
                }
                None => {
                    eprintln!("--{name} needs a value");
                    return ExitCode::from(2);
                }
            },
            None => positional.push(a.clone()),
        }
    }
    let id = if action == "revoke" {
        if positional.is_empty() {
            return usage();
        }
        Some(positional.remove(0))
    } else {
        None
    };
    let config = flags
        .remove("config")
        .or_else(|| positional.pop())
        .or_else(|| std::env::var("RAAS_CONFIG").ok());
    let Some(config) = config else {
        eprintln!("raas keys: name the node's CONFIG.json (argument, --config or RAAS_CONFIG)");
        return ExitCode::from(2);
    };
    let config = match read_json(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let node = match RaasNode::open_json(config).await {
        Ok(n) => n,
        Err(e) => return fail(&e),
    };
    match (action.as_str(), id) {
        ("create", _) => {
            let mut input = serde_json::Map::new();
            for (flag, field) in [("name", "name"), ("scope", "scope"), ("tenant", "tenant")] {
                if let Some(v) = flags.remove(flag) {
                    input.insert(field.into(), Value::String(v));
                }
            }
            for (flag, field) in [("max-jobs", "maxJobs"), ("rate", "ratePerSecond")] {
                if let Some(v) = flags.remove(flag) {
                    match v.parse::<u64>() {
                        Ok(n) => input.insert(field.into(), json!(n)),
                        Err(_) => {
                            eprintln!("--{flag}: not a number: {v:?}");
                            return ExitCode::from(2);
                        }
                    };
                }
            }
            if let Some(flag) = flags.keys().next() {
                eprintln!("unknown flag --{flag}");
                return ExitCode::from(2);
            }
            match node.create_api_key(Value::Object(input)).await {
                Ok(k) => say(json!({ "created": k })),
                Err(e) => return fail(&e),
            }
        }
        ("list", _) => match node.list_api_keys().await {
            Ok(keys) => say(json!({ "keys": keys })),
            Err(e) => return fail(&e),
        },
        ("revoke", Some(id)) => match node.revoke_api_key(&id).await {
            Ok(k) => say(json!({ "revoked": k })),
            Err(e) => return fail(&e),
        },
        _ => return usage(),
    }
    ExitCode::SUCCESS
}

/// A job list from `@file.jsonl` (one job per line), if the argument names one.
fn read_jsonl(arg: &str) -> Option<Result<Vec<Value>, String>> {
    let path = arg.strip_prefix('@').filter(|p| p.ends_with(".jsonl"))?;
    Some(
        std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: {e}"))
            .and_then(|text| {
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .enumerate()
                    .map(|(i, l)| {
                        serde_json::from_str(l).map_err(|e| format!("{path}:{}: {e}", i + 1))
                    })
                    .collect()
            }),
    )
}

/// Fields of this process's `/proc/self/status` in KiB (Linux): `VmRSS`, `VmHWM` (the
/// peak), `RssAnon` (private memory: heap, SQLite's page caches) and `RssFile` (file pages
/// mapped in, such as SQLite's memory map of the store, which the kernel can drop).
fn memory_kib<const N: usize>(names: [&str; N]) -> [Option<u64>; N] {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    names.map(|name| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    })
}

fn read_json(arg: &str) -> Result<Value, String> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
        None if arg.trim_start().starts_with('{') => arg.to_string(),
        None => std::fs::read_to_string(arg).map_err(|e| format!("{arg}: {e}"))?,
    };
    serde_json::from_str(&text).map_err(|e| format!("{arg}: not JSON: {e}"))
}

/// One line on standard output. A reader that went away (a closed pipe: `raas serve | head -1`,
/// a supervisor's log collector restarting) costs the line, not the node: `println!` would
/// panic there, in the middle of a sweep or of the shutdown.
fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn fail(e: &dyn ErrorCode) -> ExitCode {
    say(json!({"error": {"code": e.code(), "message": e.to_string()}}));
    ExitCode::FAILURE
}

async fn run(cmd: &str, args: &[String]) -> ExitCode {
    if cmd == "keys" {
        return keys(args).await;
    }
    let Some(config) = args.first() else {
        return usage();
    };
    let config = match read_json(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let node = match RaasNode::open_json(config).await {
        Ok(n) => n,
        Err(e) => return fail(&e),
    };
    match cmd {
        "register" => {
            let Some(job) = args.get(1) else {
                return usage();
            };
            let jobs = match read_jsonl(job).unwrap_or_else(|| {
                read_json(job).map(|v| match v {
                    Value::Array(a) => a,
                    one => vec![one],
                })
            }) {
                Ok(j) => j,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let (mut total, mut created) = (0usize, 0usize);
            for chunk in jobs.chunks(5_000) {
                match node.register_jobs(chunk.to_vec()).await {
                    Ok(r) if jobs.len() == 1 => say(json!({"registered": r[0]})),
                    Ok(r) => {
                        total += r.len();
                        created += r.iter().filter(|r| r.created).count();
                    }
                    Err(e) => return fail(&e),
                }
            }
            if jobs.len() != 1 {
                say(json!({"registered": total, "created": created}));
            }
        }
        "cycle" => {
            let [baseline] = memory_kib(["VmRSS"]);
            match node.run_cycle().await {
                Ok(r) => say(json!({"cycle": r})),
                Err(e) => return fail(&e),
            }
            match node.deliver().await {
                Ok(r) => say(json!({"delivery": r})),
                Err(e) => return fail(&e),
            }
            let [peak, anon, file] = memory_kib(["VmHWM", "RssAnon", "RssFile"]);
            say(json!({"memory": {"baselineKiB": baseline, "peakKiB": peak,
                "endAnonKiB": anon, "endFileKiB": file}}));
        }
        "run" => {
            let mut events = node.subscribe();
            if let Err(e) = node.start() {
                return fail(&e);
            }
            say(json!({"started": node.node_id()}));
            let stop = terminated();
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    ev = events.recv() => match ev {
                        Ok(ev) => say(json!({"verdict": ev})),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            say(json!({"eventsDropped": n}))
                        }
                        Err(_) => break,
                    },
                }
            }
            node.stop().await;
            say(json!({"stopped": node.node_id()}));
        }
        "serve" => {
            let node = std::sync::Arc::new(node);
            if let Err(e) = node.start() {
                return fail(&e);
            }
            let server = match raas_core::service::serve(node.clone(), Default::default()).await {
                Ok(s) => s,
                Err(e) => {
                    node.stop().await;
                    return fail(&e);
                }
            };
            say(json!({"serving": server.url, "nodeId": node.node_id()}));
            terminated().await;
            // Requests in flight are answered first, then the node's loops stop.
            let closed = server.close().await;
            node.stop().await;
            if let Err(e) = closed {
                return fail(&e);
            }
            say(json!({"stopped": node.node_id()}));
        }
        _ => return usage(),
    }
    ExitCode::SUCCESS
}

/// Logs on standard error (standard output carries the JSON-line protocol).
fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RAAS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second subscriber cannot be set; logs then stay off, which is not an error.
    let _ = if std::env::var("RAAS_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

/// SIGTERM or Ctrl-C.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Entry point.
pub(crate) fn main() -> ExitCode {
    init_logs();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first().cloned() else {
        return usage();
    };
    // A server answers on every core; the other commands are one sweep or one load.
    let built = if cmd == "serve" {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(&cmd, &args[1..]))
}
