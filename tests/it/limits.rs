//! Limits and containment (spec §5, §6, §7.3, §7.8, §10.4; issue 5): a stopped worker ends via the
//! stop escalation, deep recursion and huge allocations stay inside the session, JavaScript without
//! modules has no host access, and a live worker of the daemon runs under the OS bounds.

use serde_json::{Value, json};
use tests::daemon::{TestDaemon, process_gone};

use crate::api_executions::check_detail;
use crate::api_sessions::{check_session, eval};

fn wait_status(d: &TestDaemon, sid: &str, status: &str) -> Value {
    d.wait_for(&format!("session {sid} to be {status}"), || {
        let s = d.get_session(sid);
        (s["status"] == status).then_some(s)
    })
}

/// The daemon is healthy and the witness session still answers.
#[track_caller]
fn assert_contained(d: &TestDaemon, witness: &str) {
    assert_eq!(d.get("/health").status, 200, "the daemon stays healthy");
    assert_eq!(eval(d, witness, "1+1"), json!(2), "another session answers");
}

#[test]
fn sigstopped_worker_ends_via_the_stop_escalation() {
    let d = TestDaemon::start();
    let t = d.template("sigstop");
    d.settings(&t, json!({"limits": {"wall_ms": 500}}));
    let witness = d.session(&t);
    let sid = d.session(&t);
    let pid = d.worker_pid(&sid);
    let (r, running) = std::thread::scope(|scope| {
        let call = scope.spawn(|| d.repl(&sid, "while (true) {}"));
        let running = d.running_execution(&sid);
        // SAFETY: kill(2) on a worker of our own daemon.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        (call.join().unwrap(), running)
    });
    let e = r.ok(201).clone();
    check_detail(&e, "stopped worker");
    assert_eq!(e["id"], json!(running));
    assert_eq!(e["status"], "timeout", "the stop cause decides: {e}");
    assert_eq!(
        e["error"],
        json!({"code": "TIMEOUT", "message": "wall time limit exceeded (wall_ms=500)",
               "name": null, "stack": null})
    );
    let s = wait_status(&d, &sid, "crashed");
    check_session(&s, "after the escalation");
    assert_eq!(s["last_error"], "worker unresponsive; killed");
    assert!(s["pid"].is_null(), "{s}");
    d.wait_for("the stopped worker to be gone", || {
        process_gone(pid).then_some(())
    });
    assert_contained(&d, &witness);
}

#[test]
fn deep_recursion_is_an_exception_and_the_session_stays_ready() {
    let d = TestDaemon::start();
    let t = d.template("recursion");
    let witness = d.session(&t);
    let sid = d.session(&t);
    eval(&d, &sid, "var kept = 41");
    let r = d.repl(&sid, "function f() { return f() } f()");
    let e = r.ok(201).clone();
    check_detail(&e, "deep recursion");
    assert_eq!(e["status"], "error", "{e}");
    assert_eq!(e["error"]["code"], "EXCEPTION", "{e}");
    let name = e["error"]["name"].as_str().unwrap_or("");
    assert!(
        name == "RangeError" || name == "InternalError",
        "a stack overflow error: {e}"
    );
    let message = e["error"]["message"].as_str().unwrap_or("").to_lowercase();
    assert!(message.contains("stack"), "stack overflow message: {e}");
    assert_eq!(d.get_session(&sid)["status"], "ready");
    assert_eq!(
        eval(&d, &sid, "kept + 1"),
        json!(42),
        "the session is usable"
    );
    assert_contained(&d, &witness);
}

#[test]
fn huge_string_allocation_does_not_take_the_daemon_down() {
    let d = TestDaemon::start();
    let t = d.template("huge");
    let witness = d.session(&t);
    let sid = d.session(&t);
    for input in [
        "'x'.repeat(2 ** 30)",
        "'x'.repeat(2 ** 29) + 'y'.repeat(2 ** 29)",
    ] {
        let r = d.repl(&sid, input);
        let e = r.ok(201).clone();
        check_detail(&e, input);
        assert_eq!(e["status"], "error", "{input}: {e}");
        let code = e["error"]["code"].as_str().unwrap();
        assert!(
            code == "EXCEPTION" || code == "MEMORY_LIMIT",
            "{input}: {e}"
        );
        let s = d.get_session(&sid);
        match s["status"].as_str().unwrap() {
            "ready" => assert_eq!(eval(&d, &sid, "1+1"), json!(2), "{input}: usable"),
            "crashed" => {
                assert_eq!(code, "MEMORY_LIMIT", "only a memory stop may crash: {s}");
                assert_eq!(s["last_error"], "memory limit exceeded (mem_mb=128)");
                assert_eq!(d.restart(&sid).ok(200)["status"], "ready");
            }
            other => panic!("{input}: session {other}: {s}"),
        }
        assert_contained(&d, &witness);
    }
}

/// Host-access names that must not be globals of a template without modules.
const HOST_NAMES: &[&str] = &[
    "Deno",
    "__bootstrap",
    "std",
    "os",
    "bjson",
    "fetch",
    "XMLHttpRequest",
    "WebSocket",
    "EventSource",
    "Worker",
    "SharedWorker",
    "Bun",
    "Buffer",
    "module",
    "exports",
    "__dirname",
    "__filename",
    "scriptArgs",
    "load",
    "loadFile",
    "readFile",
    "writeFile",
    "print",
    "gc",
    "performance",
    "WebAssembly",
    "ShadowRealm",
    "child_process",
    "fs",
    "net",
    "http",
    "Navigator",
    "navigator",
    "location",
    "importScripts",
];

#[test]
fn compiled_code_is_never_cached_on_the_host() {
    // The QuickJS backend would cache the bytecode of every compiled script under the worker's
    // temporary directory (`/tmp/v8x/quickjs-bytecode`, its environment being empty) and load it
    // back for the same source: session code on the host's disk, shared between sessions.
    let d = TestDaemon::start();
    let t = d.template("no-disk-cache");
    let sid = d.session(&t);
    let marker = format!("vm-system-marker-{}", std::process::id());
    for i in 0..3 {
        let r = d.repl(&sid, &format!("const m{i} = '{marker}-{i}'; m{i}.length"));
        assert_eq!(r.ok(201)["status"], "ok", "{}", r.text);
    }
    let cache = std::path::Path::new("/tmp/v8x/quickjs-bytecode");
    let Ok(entries) = std::fs::read_dir(cache) else {
        return; // No cache directory at all: nothing was written.
    };
    for entry in entries.flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{} holds session code",
            entry.path().display()
        );
    }
}

#[test]
fn javascript_without_modules_has_no_host_access() {
    let d = TestDaemon::start();
    let t = d.template("sandbox");
    let sid = d.session(&t);
    let truthy = |input: &str| {
        let r = d.repl(&sid, input);
        let e = r.ok(201);
        assert_eq!(e["status"], "ok", "{input}: {e}");
        assert_eq!(e["result"]["json"], json!(true), "{input}: {e}");
    };
    // require of any host module throws.
    for name in [
        "fs",
        "node:fs",
        "child_process",
        "net",
        "http",
        "os",
        "std",
        "process",
        "/etc/passwd",
        "../../../../etc/passwd",
    ] {
        let input = format!(
            "(() => {{ try {{ typeof require({name:?}); return false }} \
             catch (e) {{ return e instanceof Error && e.message.includes('not enabled') }} }})()"
        );
        truthy(&input);
    }
    truthy("typeof Deno === 'undefined'");
    truthy("typeof __bootstrap === 'undefined'");
    truthy("Function('return this')().Deno === undefined");
    truthy("Function('return this')().__bootstrap === undefined");
    truthy("(0, eval)('this').Deno === undefined");
    truthy("Object.keys(globalThis.process.env).length === 0");
    truthy("Object.getOwnPropertyNames(globalThis.process).join() === 'env'");
    truthy("Object.isFrozen(globalThis.process) && Object.isFrozen(globalThis.process.env)");
    let names = eval(
        &d,
        &sid,
        "Object.getOwnPropertyNames(globalThis).concat(\
         Object.getOwnPropertySymbols(globalThis).map(String))",
    );
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for host in HOST_NAMES {
        assert!(!names.contains(host), "global {host} exists: {names:?}");
    }
    for name in &names {
        assert!(!name.starts_with("__v8x"), "global {name}: {names:?}");
    }
    // Nothing reachable through the prototype chain of the global object either.
    truthy(&format!(
        "{}.every(n => !(n in globalThis))",
        json!(HOST_NAMES)
    ));
    // No module loader: dynamic import rejects (an EXCEPTION) or is a SyntaxError.
    for spec in [
        "fs",
        "node:fs",
        "os",
        "std",
        "/etc/passwd",
        "data:text/javascript,1",
    ] {
        let input = format!("import({spec:?})");
        let r = d.repl(&sid, &input);
        let e = r.ok(201);
        assert_eq!(e["status"], "error", "{input}: {e}");
        assert_eq!(e["error"]["code"], "EXCEPTION", "{input}: {e}");
    }
    let r = d.repl(&sid, "import fs from 'fs'");
    let e = r.ok(201);
    assert_eq!(e["error"]["code"], "EXCEPTION", "static import: {e}");
    assert_eq!(e["error"]["name"], "SyntaxError", "static import: {e}");
    // Worker-side reads of files through the engine would show up as text; nothing does.
    assert_eq!(d.get_session(&sid)["status"], "ready");
}

#[test]
fn a_live_worker_runs_under_the_os_bounds() {
    let d = TestDaemon::start();
    let t = d.template("bounds");
    let sid = d.session(&t);
    let pid = d.worker_pid(&sid);

    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(environ.is_empty(), "{}", String::from_utf8_lossy(&environ));

    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.replace(char::is_whitespace, "") == "NoNewPrivs:1"),
        "{status}"
    );

    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let row = |name: &str| -> Vec<String> {
        let line = limits
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {limits}"));
        line[name.len()..]
            .split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("Max core file size"), ["0", "0"]);
    assert_eq!(row("Max open files"), ["64", "64"]);
    assert_eq!(row("Max file size"), ["67108864", "67108864"]);
    assert_eq!(row("Max cpu time"), ["86400", "86460"]);

    for fd in [0, 1] {
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(target.to_str(), Some("/dev/null"), "fd {fd}");
    }

    // Its own process group and session (setsid).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state, ppid, pgrp, session.
    // Forked by the daemon's fork server, which reaps it for the daemon.
    let fork_server = tests::daemon::fork_server_of(d.pid()).expect("a fork server runs");
    assert_eq!(
        fields[1],
        fork_server.to_string(),
        "child of the fork server"
    );
    assert_eq!(fields[2], pid.to_string(), "process group leader");
    assert_eq!(fields[3], pid.to_string(), "session leader");

    // Its cwd is the worktree.
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    let wt = d.get_session(&sid)["worktree_path"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        cwd,
        std::fs::canonicalize(&wt).unwrap(),
        "cwd is the worktree"
    );
}
