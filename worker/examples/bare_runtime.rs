//! Bare deno_core baseline for scripts/bench: evaluates JavaScript in a plain `JsRuntime`.
//!
//! The runtime is `JsRuntime::new(RuntimeOptions::default())` on the same deno_core dependency and
//! backend feature as the worker (`quickjs` by default, `v8` with `--features v8`), with none of
//! the worker's bootstrap, ops, heap limit or watchdog. scripts/bench.d/bench.py uses it as the
//! "bare deno_core/QuickJS" side of the JS compute rows.
//!
//! A line protocol, so a driver can interleave runs here with runs in a session: after a first
//! line `{"engine":"quickjs"}` (or `"v8"`) on stdout, reads one JSON string per line on stdin, a
//! classic script, runs it with `execute_script` in the one runtime (global state persists from
//! line to line, as in a session), and answers with one line: `{"value":<number>}` when the
//! completion value reads as a number (the bench's snippets time themselves with `Date.now()` and
//! evaluate to the elapsed milliseconds), `{"value":"<String(value)>"}` otherwise, or
//! `{"error":"<message>"}` when it throws. Ends at end of input.
//!
//! ```sh
//! cargo build --release -p worker --example bare_runtime
//! echo '"1+1"' | target/release/examples/bare_runtime    # {"engine":"quickjs"} then {"value":2.0}
//! ```

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use deno_core::{JsRuntime, RuntimeOptions, v8};

const ENGINE: &str = if cfg!(feature = "v8") {
    "v8"
} else {
    "quickjs"
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bare_runtime: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    if let Some(arg) = std::env::args().nth(1) {
        bail!("unknown argument {arg:?} (usage: bare_runtime < scripts, one JSON string a line)");
    }
    // The worker runs its runtime inside a current-thread tokio runtime; do the same.
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")?;
    tokio.block_on(async { serve() })
}

fn serve() -> anyhow::Result<()> {
    let mut runtime = JsRuntime::new(RuntimeOptions::default());
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::json!({ "engine": ENGINE }))?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("cannot read stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let source: String =
            serde_json::from_str(&line).context("stdin: expected one JSON string a line")?;
        let answer = match runtime.execute_script("bench:script", source) {
            Ok(value) => {
                let text = {
                    deno_core::scope!(scope, &mut runtime);
                    let local = v8::Local::new(scope, value);
                    local.to_rust_string_lossy(scope)
                };
                match text.parse::<f64>() {
                    Ok(number) => serde_json::json!({ "value": number }),
                    Err(_) => serde_json::json!({ "value": text }),
                }
            }
            Err(err) => serde_json::json!({ "error": err.to_string() }),
        };
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    Ok(())
}
