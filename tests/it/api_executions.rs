//! Executions (spec §4.9, §5, §7, §8.4): REPL and run-file, the ExecutionDetail shape, error
//! shapes, limits, paths, concurrency, cancel, listing, events and event streams.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tests::daemon::{Resp, TestDaemon};

use crate::api_conventions::{UNKNOWN_ID, assert_keys, assert_ts, expect_err, is_uuid_v4};
use crate::api_sessions::{eval, write};

const EXECUTION_KEYS: &[&str] = &[
    "id",
    "session_id",
    "kind",
    "status",
    "input",
    "path",
    "args",
    "env",
    "result",
    "error",
    "metrics",
    "started_at",
    "ended_at",
];

/// Asserts the shape of an Execution (without events) that has ended.
#[track_caller]
pub(crate) fn check_execution(e: &Value, ctx: &str) {
    assert_keys(e, EXECUTION_KEYS, ctx);
    assert!(is_uuid_v4(e["id"].as_str().unwrap_or("")), "{ctx}: {e}");
    assert_keys(
        &e["metrics"],
        &["wall_ms", "cpu_ms", "event_count", "output_bytes"],
        ctx,
    );
    for m in ["wall_ms", "cpu_ms", "event_count", "output_bytes"] {
        assert!(e["metrics"][m].is_u64(), "{ctx}: metrics.{m} in {e}");
    }
    assert_ts(e, "started_at", ctx);
    if e["status"] == "running" {
        assert!(e["ended_at"].is_null(), "{ctx}: {e}");
        return;
    }
    assert_ts(e, "ended_at", ctx);
    assert!(
        e["ended_at"].as_str() >= e["started_at"].as_str(),
        "{ctx}: ended before it started: {e}"
    );
    if e["status"] == "ok" {
        assert!(e["error"].is_null(), "{ctx}: {e}");
        assert_keys(&e["result"], &["type", "preview", "json"], ctx);
    } else {
        assert!(e["result"].is_null(), "{ctx}: {e}");
        assert_keys(&e["error"], &["code", "message", "name", "stack"], ctx);
        if e["error"]["code"] != "EXCEPTION" {
            assert!(
                e["error"]["name"].is_null() && e["error"]["stack"].is_null(),
                "{ctx}: name and stack are null unless EXCEPTION: {e}"
            );
        }
    }
}

/// Asserts the shape of an ExecutionDetail and the invariants of its events (§3, §7.5).
#[track_caller]
pub(crate) fn check_detail(e: &Value, ctx: &str) {
    let mut without = e.clone();
    let events = without
        .as_object_mut()
        .unwrap()
        .remove("events")
        .unwrap_or_else(|| panic!("{ctx}: no events in {e}"));
    check_execution(&without, ctx);
    let events = events.as_array().unwrap();
    assert!(!events.is_empty(), "{ctx}: no events");
    let mut bytes = 0;
    let mut last_ts = String::new();
    for (i, ev) in events.iter().enumerate() {
        assert_keys(ev, &["execution_id", "seq", "ts", "type", "payload"], ctx);
        assert_eq!(ev["execution_id"], e["id"], "{ctx}");
        assert_eq!(ev["seq"], json!(i + 1), "{ctx}: seq is contiguous from 1");
        assert_ts(ev, "ts", ctx);
        let ts = ev["ts"].as_str().unwrap().to_string();
        assert!(ts >= last_ts, "{ctx}: ts decreased at seq {}", i + 1);
        last_ts = ts;
        bytes += ev["payload"].to_string().len();
    }
    assert_eq!(events[0]["type"], "input_echo", "{ctx}");
    if e["status"] != "running" {
        assert_eq!(e["metrics"]["event_count"], json!(events.len()), "{ctx}");
        assert_eq!(
            e["metrics"]["output_bytes"],
            json!(bytes),
            "{ctx}: output_bytes is the sum of the compact payload sizes"
        );
        let last = events.last().unwrap();
        let want = match (e["status"].as_str(), e["error"]["code"].as_str()) {
            (Some("ok"), _) => "value",
            (_, Some("EXCEPTION")) => "exception",
            _ => "system",
        };
        assert_eq!(last["type"], want, "{ctx}: terminal event");
        match want {
            "value" => assert_eq!(last["payload"], e["result"], "{ctx}"),
            "exception" => assert_eq!(
                last["payload"],
                json!({"name": e["error"]["name"], "message": e["error"]["message"],
                       "stack": e["error"]["stack"]}),
                "{ctx}"
            ),
            _ => assert_eq!(
                last["payload"],
                json!({"level": "error", "message": e["error"]["message"]}),
                "{ctx}"
            ),
        }
    }
}

/// A 201 execution response, checked, and equal to what GET answers afterwards.
#[track_caller]
fn detail(d: &TestDaemon, r: &Resp, ctx: &str) -> Value {
    let e = r.ok(201).clone();
    check_detail(&e, ctx);
    assert_eq!(d.execution(e["id"].as_str().unwrap()), e, "{ctx}: GET");
    e
}

fn repl(d: &TestDaemon, s: &str, input: &str) -> Value {
    detail(d, &d.repl(s, input), input)
}

/// Texts of the console events of an execution.
fn console(e: &Value) -> Vec<String> {
    e["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|ev| ev["type"] == "console")
        .map(|ev| ev["payload"]["text"].as_str().unwrap().to_string())
        .collect()
}

/// A template with `limits` patched, and a ready session of it on worktree `name`.
fn limited(d: &TestDaemon, name: &str, limits: Value) -> (String, String) {
    let t = d.template(name);
    d.settings(&t, json!({ "limits": limits }));
    let wt = d.worktree(name);
    let r = d.session_resp(&t, &wt);
    let sid = r.ok(201)["id"].as_str().unwrap().to_string();
    (t, sid)
}

fn assert_ready(d: &TestDaemon, sid: &str) {
    let s = d.get_session(sid);
    assert_eq!(s["status"], "ready", "{s}");
    assert_eq!(eval(d, sid, "1 + 1"), json!(2), "the session still answers");
}

#[test]
fn repl_state_persists_across_calls() {
    let d = TestDaemon::start();
    let s = d.session(&d.template("continuity"));
    eval(&d, &s, "var a = 1");
    eval(&d, &s, "let b = 2");
    eval(&d, &s, "const c = 3");
    eval(&d, &s, "function f(x) { return x * 10; }");
    eval(&d, &s, "class K { get v() { return 100; } }");
    eval(&d, &s, "globalThis.g = 1000");
    assert_eq!(
        eval(&d, &s, "a + b + c + f(1) + new K().v + g"),
        json!(1116)
    );
    // `var x = 1` has completion value undefined.
    let e = repl(&d, &s, "var z = 1");
    assert_eq!(
        e["result"],
        json!({"type": "undefined", "preview": "undefined", "json": null})
    );
    // Declaring a lexical binding again is a SyntaxError, and the old one stays.
    let e = repl(&d, &s, "let b = 5");
    assert_eq!(e["status"], "error");
    assert_eq!(e["error"]["name"], "SyntaxError");
    assert_eq!(eval(&d, &s, "b"), json!(2));
    // Whitespace-only input is allowed; empty input is not.
    let e = repl(&d, &s, "   ");
    assert_eq!(e["status"], "ok");
    let r = d.repl(&s, "");
    assert_eq!(
        expect_err(&r, 400, "VALIDATION_ERROR", "empty input"),
        json!({"field": "input"})
    );
}

#[test]
fn execution_detail_has_the_documented_shape() {
    let d = TestDaemon::start();
    let s = d.session(&d.template("shape"));
    let input = "console.log('hi'); 40 + 2";
    let e = repl(&d, &s, input);
    assert_eq!(e["session_id"], json!(s));
    assert_eq!(e["kind"], "repl");
    assert_eq!(e["status"], "ok");
    assert_eq!(e["input"], input);
    assert!(e["path"].is_null() && e["args"].is_null() && e["env"].is_null());
    assert!(e["error"].is_null());
    assert_eq!(
        e["result"],
        json!({"type": "number", "preview": "42", "json": 42})
    );
    let id = e["id"].clone();
    let payloads: Vec<(Value, Value)> = e["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ev| (ev["type"].clone(), ev["payload"].clone()))
        .collect();
    assert_eq!(
        payloads,
        vec![
            (json!("input_echo"), json!({ "text": input })),
            (json!("console"), json!({"level": "log", "text": "hi"})),
            (
                json!("value"),
                json!({"type": "number", "preview": "42", "json": 42})
            ),
        ]
    );
    assert_eq!(e["metrics"]["event_count"], 3);
    assert_eq!(e["metrics"]["output_bytes"], 105, "the spec's example");
    assert!(e["metrics"]["wall_ms"].as_u64().unwrap() < 10_000);
    for ev in e["events"].as_array().unwrap() {
        assert_eq!(ev["execution_id"], id);
    }
    // Every console level is recorded at its own level.
    let e = repl(
        &d,
        &s,
        "console.info('i'); console.warn('w'); console.error('e'); console.debug('d'); 0",
    );
    let levels: Vec<&str> = e["events"].as_array().unwrap()[1..5]
        .iter()
        .map(|ev| ev["payload"]["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["info", "warn", "error", "debug"]);

    let r = d.get(&format!("/executions/{UNKNOWN_ID}"));
    assert_eq!(
        expect_err(&r, 404, "EXECUTION_NOT_FOUND", "unknown execution"),
        json!({ "execution_id": UNKNOWN_ID })
    );
}

#[test]
fn exceptions_and_promises() {
    let d = TestDaemon::start();
    let s = d.session(&d.template("errors"));

    let e = repl(&d, &s, "console.log('before'); throw new Error('boom')");
    assert_eq!(e["status"], "error");
    assert_eq!(e["error"]["code"], "EXCEPTION");
    assert_eq!(e["error"]["message"], "boom");
    assert_eq!(e["error"]["name"], "Error");
    let stack = e["error"]["stack"].as_str().unwrap();
    assert!(
        stack.contains("<repl>"),
        "script name in the stack: {stack}"
    );
    assert_eq!(console(&e), ["before"]);

    let e = repl(&d, &s, "throw 42");
    assert_eq!(
        e["error"],
        json!({"code": "EXCEPTION", "message": "42", "name": null, "stack": null})
    );
    let e = repl(&d, &s, "throw {name: 'Custom', message: 'm'}");
    assert_eq!(
        e["error"],
        json!({"code": "EXCEPTION", "message": "m", "name": "Custom", "stack": null})
    );

    let e = repl(&d, &s, "var = 1");
    assert_eq!(e["status"], "error");
    assert_eq!(e["error"]["code"], "EXCEPTION");
    assert_eq!(e["error"]["name"], "SyntaxError");

    let e = repl(&d, &s, "_.chunk([1], 1)");
    assert_eq!(e["error"]["name"], "ReferenceError");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not defined"),
        "{e}"
    );

    // Promises: the outcome of a native promise is the result.
    assert_eq!(repl(&d, &s, "Promise.resolve(7)")["result"]["json"], 7);
    let e = repl(&d, &s, "new Promise(r => setTimeout(() => r('late'), 20))");
    assert_eq!(
        e["result"],
        json!({"type": "string", "preview": "late", "json": "late"})
    );
    let e = repl(&d, &s, "Promise.reject(new TypeError('nope'))");
    assert_eq!(e["status"], "error");
    assert_eq!(e["error"]["name"], "TypeError");
    assert_eq!(e["error"]["message"], "nope");
    let e = repl(&d, &s, "new Promise(() => {})");
    assert_eq!(e["status"], "ok");
    assert_eq!(e["result"]["type"], "object");
    assert_eq!(e["result"]["preview"], "Promise { <pending> }");
    let e = repl(&d, &s, "Promise.reject(new Error('unhandled')); 1");
    assert_eq!(e["status"], "error");
    assert_eq!(e["error"]["message"], "unhandled");
    assert_ready(&d, &s);
}

#[test]
fn timers_run_before_the_execution_ends() {
    let d = TestDaemon::start();
    let s = d.session(&d.template("timers"));
    let e = repl(
        &d,
        &s,
        "setTimeout(() => console.log('b'), 20); setTimeout(() => console.log('a'), 5);\n\
         queueMicrotask(() => console.log('micro')); 'sync'",
    );
    assert_eq!(e["status"], "ok");
    assert_eq!(e["result"]["json"], "sync");
    assert_eq!(console(&e), ["micro", "a", "b"]);

    let e = repl(
        &d,
        &s,
        "var n = 0; var iv = setInterval(() => { console.log('tick ' + ++n); \
         if (n === 3) clearInterval(iv); }, 1); n",
    );
    assert_eq!(
        e["result"]["json"], 0,
        "the completion value is taken first"
    );
    assert_eq!(console(&e), ["tick 1", "tick 2", "tick 3"]);

    // An uncaught throw in a timer ends the execution; pending timers are cleared.
    let e = repl(
        &d,
        &s,
        "setTimeout(() => { throw new Error('in timer'); }, 5);\n\
         setTimeout(() => console.log('never'), 200); 1",
    );
    assert_eq!(e["status"], "error");
    assert_eq!(e["error"]["message"], "in timer");
    assert!(console(&e).is_empty(), "{e}");
    let e = repl(
        &d,
        &s,
        "new Promise(r => setTimeout(r, 300)).then(() => 'waited')",
    );
    assert_eq!(e["result"]["json"], "waited");
    assert!(
        !console(&e).contains(&"never".to_string()),
        "timers of an earlier execution were cleared"
    );
}

#[test]
fn wall_and_cpu_limits() {
    let d = TestDaemon::start();
    let (_, s) = limited(&d, "wall", json!({"wall_ms": 300}));
    let e = repl(&d, &s, "console.log('spin'); while (true) {}");
    assert_eq!(e["status"], "timeout");
    let message = "wall time limit exceeded (wall_ms=300)";
    assert_eq!(
        e["error"],
        json!({"code": "TIMEOUT", "message": message, "name": null, "stack": null})
    );
    assert_eq!(console(&e), ["spin"]);
    assert!(e["metrics"]["wall_ms"].as_u64().unwrap() < 2000, "{e}");
    assert_ready(&d, &s);
    // An interval that is never cleared runs until the wall limit.
    let e = repl(&d, &s, "setInterval(() => {}, 5); 'started'");
    assert_eq!(e["status"], "timeout");
    assert_eq!(e["error"]["code"], "TIMEOUT");
    assert_ready(&d, &s);

    let (_, s) = limited(&d, "cpu", json!({"cpu_ms": 300}));
    let start = Instant::now();
    let e = repl(&d, &s, "while (true) {}");
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(e["status"], "timeout");
    assert_eq!(
        e["error"],
        json!({"code": "CPU_LIMIT", "message": "cpu time limit exceeded (cpu_ms=300)",
               "name": null, "stack": null})
    );
    assert_ready(&d, &s);
}

#[test]
fn output_limits_stop_the_code_and_answer_422() {
    let d = TestDaemon::start();

    let (_, s) = limited(&d, "events", json!({"max_events": 5}));
    let before = d.executions(&s).len();
    let r = d.repl(&s, "for (let i = 0; i < 1000; i++) console.log(i); 'never'");
    let details = expect_err(&r, 422, "OUTPUT_LIMIT_EXCEEDED", "max_events");
    assert_keys(&details, &["execution_id", "limit"], "max_events");
    assert_eq!(details["limit"], "max_events");
    assert_eq!(
        d.executions(&s).len(),
        before + 1,
        "the execution is stored"
    );
    let e = d.execution(details["execution_id"].as_str().unwrap());
    check_detail(&e, "max_events");
    assert_eq!(e["status"], "error");
    assert_eq!(
        e["error"],
        json!({"code": "OUTPUT_LIMIT_EXCEEDED", "message": "output limit exceeded (max_events=5)",
               "name": null, "stack": null})
    );
    let events = e["events"].as_array().unwrap();
    assert_eq!(events.len(), 6, "5 stored events and the system event: {e}");
    assert_eq!(console(&e), ["0", "1", "2", "3"]);
    assert_eq!(e["metrics"]["event_count"], 6);
    assert_ready(&d, &s);
    // A terminal value that would exceed the limit ends the same way.
    let r = d.repl(
        &s,
        "console.log(1); console.log(2); console.log(3); console.log(4); 5",
    );
    let details = expect_err(&r, 422, "OUTPUT_LIMIT_EXCEEDED", "terminal value");
    let e = d.execution(details["execution_id"].as_str().unwrap());
    check_detail(&e, "terminal value over max_events");
    assert_eq!(e["events"].as_array().unwrap().len(), 6);
    assert!(e["result"].is_null());

    let (_, s) = limited(&d, "kb", json!({"max_output_kb": 1}));
    let r = d.repl(&s, "for (;;) console.log('x'.repeat(100))");
    let details = expect_err(&r, 422, "OUTPUT_LIMIT_EXCEEDED", "max_output_kb");
    assert_eq!(details["limit"], "max_output_kb");
    let e = d.execution(details["execution_id"].as_str().unwrap());
    check_detail(&e, "max_output_kb");
    assert_eq!(
        e["error"]["message"],
        "output limit exceeded (max_output_kb=1)"
    );
    let events = e["events"].as_array().unwrap();
    let stored: usize = events[..events.len() - 1]
        .iter()
        .map(|ev| ev["payload"].to_string().len())
        .sum();
    assert!(stored <= 1024, "stored payloads {stored} > 1024");
    assert!(
        stored + 127 > 1024,
        "the next console event would have fit: {stored}"
    );
    assert_ready(&d, &s);

    // An input whose input_echo alone exceeds the limit is never dispatched.
    let input = format!("globalThis.ran = true; /*{}*/ 1", " ".repeat(1100));
    let r = d.repl(&s, &input);
    let details = expect_err(&r, 422, "OUTPUT_LIMIT_EXCEEDED", "huge input_echo");
    assert_eq!(details["limit"], "max_output_kb");
    let e = d.execution(details["execution_id"].as_str().unwrap());
    check_detail(&e, "huge input_echo");
    assert_eq!(e["metrics"]["wall_ms"], 0);
    assert_eq!(e["metrics"]["cpu_ms"], 0);
    let events = e["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "input_echo and the system event: {e}");
    assert_eq!(events[0]["payload"], json!({ "text": input }));
    assert_eq!(eval(&d, &s, "typeof ran"), json!("undefined"), "never run");
}

#[test]
fn memory_limit_stops_the_code() {
    let d = TestDaemon::start();
    let (_, s) = limited(&d, "mem", json!({"mem_mb": 16}));
    let e = repl(
        &d,
        &s,
        "(function () { let h = null; while (true) h = { next: h, v: [1, 2, 3] }; })()",
    );
    assert_eq!(e["status"], "error", "{e}");
    assert_eq!(
        e["error"],
        json!({"code": "MEMORY_LIMIT", "message": "memory limit exceeded (mem_mb=16)",
               "name": null, "stack": null})
    );
    // The garbage is collectable, so the session recovers.
    assert_ready(&d, &s);
}

/// A worktree with the files and links used by the run-file tests.
fn run_file_worktree(d: &TestDaemon, name: &str) -> std::path::PathBuf {
    let wt = d.worktree(name);
    write(&wt, "sub/sum.js", "var a = 2;\nvar b = 40;\na + b\n");
    write(
        &wt,
        "main.js",
        "var seen = { args: __ARGS__, env: process.env.FOO,\n\
         frozen: [__ARGS__, __ARGS__.nested, __ARGS__.list].every(Object.isFrozen),\n\
         envFrozen: Object.isFrozen(process.env) };\n\
         try { __ARGS__.nested.x = 2; } catch (e) {}\n\
         seen.after = __ARGS__.nested.x;\n\
         seen\n",
    );
    write(
        &wt,
        "args.js",
        "[JSON.stringify(__ARGS__), process.env.FOO === undefined]",
    );
    write(&d.dir.path().join("worktrees"), "outside.js", "'outside'");
    symlink("/etc/passwd", wt.join("pw.js")).unwrap();
    symlink(wt.join("sub/sum.js"), wt.join("abs.js")).unwrap();
    symlink("../outside.js", wt.join("up.js")).unwrap();
    symlink("../does-not-exist.js", wt.join("dangling.js")).unwrap();
    symlink("../..", wt.join("escdir")).unwrap();
    symlink("sub/sum.js", wt.join("inside.js")).unwrap();
    symlink("sub", wt.join("subdir")).unwrap();
    wt
}

fn session_on(d: &TestDaemon, t: &str, wt: &Path) -> String {
    d.session_resp(t, wt).ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn run_file_args_env_and_completion_value() {
    let d = TestDaemon::start();
    let t = d.template("run-file");
    let wt = run_file_worktree(&d, "run-file");
    let s = session_on(&d, &t, &wt);

    let args = json!({"nested": {"x": 1}, "list": [1, "two", null], "n": null});
    let env = json!({"FOO": "bar", "_X1": ""});
    let r = d.run_file(&s, "main.js", Some(args.clone()), Some(env.clone()));
    let e = detail(&d, &r, "main.js");
    assert_eq!(e["status"], "ok", "{e}");
    assert_eq!(e["kind"], "run_file");
    assert!(e["input"].is_null());
    assert_eq!(e["path"], "main.js");
    assert_eq!(e["args"], args);
    assert_eq!(e["env"], env);
    assert_eq!(e["events"][0]["payload"], json!({"path": "main.js"}));
    assert_eq!(
        e["result"]["json"],
        json!({"args": args, "env": "bar", "frozen": true, "envFrozen": true, "after": 1})
    );
    // __ARGS__ and the env overlay are gone afterwards; the file's globals stay.
    assert_eq!(
        eval(
            &d,
            &s,
            "[typeof __ARGS__, process.env.FOO === undefined, typeof seen]"
        ),
        json!(["undefined", true, "object"])
    );

    // Defaults: `{}` for args and env; the path is stored cleaned.
    let r = d.run_file(&s, "./args.js", None, None);
    let e = detail(&d, &r, "args.js");
    assert_eq!(e["path"], "args.js");
    assert_eq!(e["args"], json!({}));
    assert_eq!(e["env"], json!({}));
    assert_eq!(e["result"]["json"], json!(["{}", true]));

    for (path, cleaned) in [
        ("sub/sum.js", "sub/sum.js"),
        ("./sub//sum.js", "sub/sum.js"),
        ("x/../sub/./sum.js", "sub/sum.js"),
        ("inside.js", "inside.js"),
        ("subdir/sum.js", "subdir/sum.js"),
    ] {
        let r = d.run_file(&s, path, None, None);
        let e = detail(&d, &r, path);
        assert_eq!(e["status"], "ok", "{path}: {e}");
        assert_eq!(e["path"], cleaned, "{path}");
        assert_eq!(e["events"][0]["payload"], json!({ "path": cleaned }));
        assert_eq!(
            e["result"],
            json!({"type": "number", "preview": "42", "json": 42}),
            "{path}: the completion value of the file"
        );
    }
    // The saved `process` is restored only if the file left the installed one in place.
    write(&wt, "setproc.js", "globalThis.process = { mine: true }; 1");
    let r = d.run_file(&s, "setproc.js", None, Some(json!({"A": "1"})));
    assert_eq!(r.ok(201)["status"], "ok");
    assert_eq!(eval(&d, &s, "process.mine"), json!(true));
    eval(&d, &s, "delete globalThis.process");

    // The script name in stacks is the relative path.
    write(&wt, "throws.js", "\n\nthrow new Error('from file');\n");
    let r = d.run_file(&s, "throws.js", Some(json!({"a": 1})), None);
    let e = detail(&d, &r, "throws.js");
    assert_eq!(
        eval(&d, &s, "typeof __ARGS__"),
        json!("undefined"),
        "removed after a throw"
    );
    assert_eq!(e["error"]["message"], "from file");
    assert!(
        e["error"]["stack"].as_str().unwrap().contains("throws.js"),
        "{e}"
    );
}

#[test]
fn run_file_path_checks_create_no_execution() {
    let d = TestDaemon::start();
    let t = d.template("paths");
    let wt = run_file_worktree(&d, "paths");
    let s = session_on(&d, &t, &wt);
    let before = d.executions(&s).len();

    let abs_inside = wt.join("sub/sum.js").to_str().unwrap().to_string();
    let cases: Vec<(String, &[&str], &str)> = vec![
        ("../x.js".into(), &["../x.js"], "traversal"),
        ("a/../../x".into(), &["a/../../x", "../x"], "traversal"),
        ("..".into(), &[".."], "traversal"),
        ("/etc/passwd".into(), &["/etc/passwd"], "absolute"),
        (abs_inside.clone(), &[], "absolute"),
        ("".into(), &[""], "empty"),
        ("   ".into(), &["   "], "empty"),
        (".".into(), &["."], "empty"),
        ("a/..".into(), &["a/..", "."], "empty"),
        ("sub".into(), &["sub"], "not_a_file"),
        ("sub/".into(), &["sub/", "sub"], "not_a_file"),
        ("pw.js".into(), &["pw.js"], "escapes_worktree"),
        ("abs.js".into(), &["abs.js"], "escapes_worktree"),
        ("up.js".into(), &["up.js"], "escapes_worktree"),
        ("dangling.js".into(), &["dangling.js"], "escapes_worktree"),
        (
            "escdir/etc/passwd".into(),
            &["escdir/etc/passwd"],
            "escapes_worktree",
        ),
    ];
    for (path, shown, reason) in &cases {
        let ctx = format!("path {path:?}");
        let r = d.run_file(&s, path, None, None);
        let details = expect_err(&r, 422, "INVALID_PATH", &ctx);
        assert_keys(&details, &["path", "reason"], &ctx);
        assert_eq!(details["reason"], json!(reason), "{ctx}");
        let got = details["path"].as_str().unwrap();
        assert!(
            got == path || shown.contains(&got),
            "{ctx}: details.path {got:?}"
        );
    }
    for path in ["nope.js", "sub/nope.js"] {
        let r = d.run_file(&s, path, None, None);
        let details = expect_err(&r, 404, "FILE_NOT_FOUND", path);
        assert_eq!(details, json!({"session_id": s, "path": path}));
    }
    assert_eq!(
        d.executions(&s).len(),
        before,
        "no execution row for a failed check"
    );
    // A NUL byte is the `invalid` reason.
    let r = d.run_file(&s, "a\u{0}b.js", None, None);
    assert_eq!(
        expect_err(&r, 422, "INVALID_PATH", "NUL")["reason"],
        "invalid"
    );
    assert_eq!(d.executions(&s).len(), before);
}

#[test]
fn the_execution_a_busy_answer_names_can_be_read_at_once() {
    // A short execution's row is committed with its end; a SESSION_BUSY answer must still name an
    // execution that GET can read the moment the answer arrives (spec §10.7).
    let d = TestDaemon::start();
    let t = d.template("busy-read");
    d.settings(&t, json!({"limits": {"wall_ms": 1500}}));
    let s = d.session(&t);
    std::thread::scope(|scope| {
        // The probe below may take the slot first; the long execution then retries.
        let long = scope.spawn(|| {
            d.wait_for("the long execution to run", || {
                let r = d.repl(&s, "while (true) {}");
                (r.status != 409).then_some(r)
            })
        });
        let running = d.wait_for("a SESSION_BUSY answer", || {
            let r = d.repl(&s, "1");
            (r.status == 409).then(|| {
                expect_err(&r, 409, "SESSION_BUSY", "busy")["execution_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
        });
        let e = d.get(&format!("/executions/{running}"));
        assert_eq!(e.ok(200)["status"], "running", "{}", e.text);
        let r = long.join().unwrap();
        assert_eq!(r.ok(201)["id"], json!(running));
    });
}

#[test]
fn one_execution_at_a_time_per_session() {
    let d = TestDaemon::start();
    let t = d.template("busy");
    d.settings(&t, json!({"limits": {"wall_ms": 2000}}));
    let wt = run_file_worktree(&d, "busy");
    let s = session_on(&d, &t, &wt);
    let other = d.session(&t);
    let before = d.executions(&s).len();

    std::thread::scope(|scope| {
        let long = scope.spawn(|| d.repl(&s, "while (true) {}"));
        let running = d.running_execution(&s);

        let r = d.repl(&s, "1");
        let details = expect_err(&r, 409, "SESSION_BUSY", "REPL while busy");
        assert_eq!(details, json!({"session_id": s, "execution_id": running}));
        let r = d.run_file(&s, "sub/sum.js", None, None);
        let details = expect_err(&r, 409, "SESSION_BUSY", "run-file while busy");
        assert_eq!(details["execution_id"], json!(running));
        // Path checks come before the busy check.
        let r = d.run_file(&s, "../x.js", None, None);
        expect_err(&r, 422, "INVALID_PATH", "bad path while busy");
        let r = d.run_file(&s, "nope.js", None, None);
        expect_err(&r, 404, "FILE_NOT_FOUND", "missing file while busy");

        // Other sessions run in parallel.
        assert_eq!(eval(&d, &other, "'free'"), json!("free"));

        let running_now: Vec<Value> = d
            .executions(&s)
            .into_iter()
            .filter(|e| e["status"] == "running")
            .collect();
        assert_eq!(running_now.len(), 1, "exactly one runs");
        let e = d.execution(&running);
        check_detail(&e, "running");
        assert_eq!(e["status"], "running");
        assert!(e["ended_at"].is_null() && e["result"].is_null() && e["error"].is_null());

        let r = long.join().unwrap();
        let e = detail(&d, &r, "long");
        assert_eq!(e["id"], json!(running));
        assert_eq!(e["status"], "timeout");
        assert_eq!(
            e["error"]["message"],
            "wall time limit exceeded (wall_ms=2000)"
        );
    });
    assert_eq!(
        d.executions(&s).len(),
        before + 1,
        "rejected requests created no rows"
    );
    assert_ready(&d, &s);
}

#[test]
fn cancel_ends_a_running_execution() {
    let d = TestDaemon::start();
    let t = d.template("cancel");
    let s = d.session(&t);

    for (what, code) in [
        ("a busy loop", "console.log('start'); while (true) {}"),
        ("a pending timer", "setTimeout(() => {}, 25000); 'waiting'"),
    ] {
        std::thread::scope(|scope| {
            let call = scope.spawn(|| d.repl(&s, code));
            let running = d.running_execution(&s);
            let r = d.post_raw(&format!("/executions/{running}/cancel"), "");
            let e = r.ok(200).clone();
            check_detail(&e, what);
            assert_eq!(e["id"], json!(running));
            assert_eq!(e["status"], "cancelled", "{what}");
            assert_eq!(
                e["error"],
                json!({"code": "CANCELLED", "message": "execution cancelled",
                       "name": null, "stack": null}),
                "{what}"
            );
            // The original request answers too.
            let original = call.join().unwrap();
            let o = original.ok(201).clone();
            assert_eq!(o, e, "{what}: the original request gets the same detail");
            assert_eq!(d.execution(&running), e);

            let r = d.post_raw(&format!("/executions/{running}/cancel"), "");
            let details = expect_err(&r, 409, "EXECUTION_FINISHED", "cancel again");
            assert_eq!(
                details,
                json!({"execution_id": running, "status": "cancelled"})
            );
        });
        let row = d.get_session(&s);
        assert_eq!(row["status"], "ready", "after cancelling {what}: {row}");
        assert_ready(&d, &s);
    }

    let e = repl(&d, &s, "'done'");
    let id = e["id"].as_str().unwrap();
    let r = d.post_raw(&format!("/executions/{id}/cancel"), "");
    let details = expect_err(&r, 409, "EXECUTION_FINISHED", "cancel of ok");
    assert_eq!(details, json!({"execution_id": id, "status": "ok"}));
    let e = repl(&d, &s, "throw 1");
    let id = e["id"].as_str().unwrap();
    let r = d.post_raw(&format!("/executions/{id}/cancel"), "");
    let details = expect_err(&r, 409, "EXECUTION_FINISHED", "cancel of error");
    assert_eq!(details["status"], "error");
    let r = d.post_raw(&format!("/executions/{UNKNOWN_ID}/cancel"), "");
    expect_err(&r, 404, "EXECUTION_NOT_FOUND", "cancel of unknown");
}

/// A detail with many events, or many payload bytes, is sent in pages (chunked, no length
/// known ahead) and is the same detail a small one would be: every event, contiguous, once.
#[test]
fn large_details_are_sent_whole_in_pages() {
    let d = TestDaemon::start();
    let (_, s) = limited(
        &d,
        "large",
        json!({"max_events": 10000, "max_output_kb": 8192}),
    );
    let chunked = |r: &Resp, ctx: &str| {
        assert_eq!(r.header("content-length"), None, "{ctx}: {:?}", r.headers);
        assert_eq!(r.header("content-type"), Some("application/json"), "{ctx}");
    };
    let small = d.repl(&s, "console.log('one'); 1");
    assert!(
        small.header("content-length").is_some(),
        "{:?}",
        small.headers
    );

    // Many events: the REPL answer and a read.
    let r = d.repl(
        &s,
        "for (let i = 0; i < 2500; i++) console.log('line', i); 'end'",
    );
    chunked(&r, "answer of 2,502 events");
    let e = r.ok(201).clone();
    check_detail(&e, "2,502 events");
    assert_eq!(e["events"].as_array().unwrap().len(), 2502);
    assert_eq!(console(&e)[2499], "line 2499");
    assert_eq!(e["result"]["json"], "end");
    let id = e["id"].as_str().unwrap();
    let read = d.get(&format!("/executions/{id}"));
    chunked(&read, "read of 2,502 events");
    assert_eq!(read.ok(200), &e, "a read sends the same detail");

    // Few events, over a megabyte of payloads.
    let r = d.repl(
        &s,
        "for (let i = 0; i < 3; i++) console.log(String(i).repeat(600000)); 'big'",
    );
    chunked(&r, "answer of 1.8 MB");
    let e = r.ok(201).clone();
    check_detail(&e, "1.8 MB of events");
    assert_eq!(e["events"].as_array().unwrap().len(), 5);
    assert!(
        e["metrics"]["output_bytes"].as_u64().unwrap() > 1 << 20,
        "{}",
        e["metrics"]
    );
    assert_eq!(d.execution(e["id"].as_str().unwrap()), e);

    // A running execution read in pages, then cancelled with many events.
    std::thread::scope(|scope| {
        let call = scope.spawn(|| {
            d.repl(
                &s,
                "for (let i = 0; i < 1500; i++) console.log(i); while (true) {}",
            )
        });
        let running = d.running_execution(&s);
        d.wait_for("1,500 console events", || {
            let r = d.get(&format!(
                "/executions/{running}/events?after_seq=1500&limit=1"
            ));
            (!r.ok(200).as_array().unwrap().is_empty()).then_some(())
        });
        let read = d.get(&format!("/executions/{running}"));
        chunked(&read, "read while running");
        let live = read.ok(200).clone();
        check_detail(&live, "read while running");
        assert_eq!(live["status"], "running");
        assert_eq!(
            live["events"].as_array().unwrap().len() as u64,
            live["metrics"]["event_count"].as_u64().unwrap(),
            "the events of one snapshot"
        );
        let r = d.post_raw(&format!("/executions/{running}/cancel"), "");
        chunked(&r, "cancel of 1,502 events");
        let e = r.ok(200).clone();
        check_detail(&e, "cancelled with 1,502 events");
        assert_eq!(e["status"], "cancelled");
        assert_eq!(e["events"].as_array().unwrap().len(), 1502);
        assert_eq!(
            call.join().unwrap().ok(201),
            &e,
            "the original request's answer"
        );
    });
    assert_ready(&d, &s);
}

#[test]
fn close_and_restart_cancel_the_running_execution() {
    let d = TestDaemon::start();
    let t = d.template("close-running");
    for (action, message) in [
        ("close", "execution cancelled: session closed"),
        ("restart", "execution cancelled: session restarted"),
    ] {
        let s = d.session(&t);
        std::thread::scope(|scope| {
            let call = scope.spawn(|| d.repl(&s, "while (true) {}"));
            let running = d.running_execution(&s);
            let r = if action == "close" {
                d.close(&s)
            } else {
                d.restart(&s)
            };
            let session = r.ok(200).clone();
            let e = detail(&d, &call.join().unwrap(), action);
            assert_eq!(e["id"], json!(running));
            assert_eq!(e["status"], "cancelled", "{action}");
            assert_eq!(
                e["error"],
                json!({"code": "CANCELLED", "message": message, "name": null, "stack": null})
            );
            if action == "close" {
                assert_eq!(session["status"], "closed");
            } else {
                assert_eq!(session["status"], "ready");
                assert_ready(&d, &s);
            }
        });
    }
}

#[test]
fn execution_list_and_events_paging() {
    let d = TestDaemon::start();
    let t = d.template("list");
    d.add_startup(&t, "init.js", 0);
    let wt = d.worktree("list");
    std::fs::write(wt.join("init.js"), "globalThis.ready = true;").unwrap();
    let s = session_on(&d, &t, &wt);
    let mut last = Value::Null;
    for i in 0..4 {
        let input = format!("console.log({i}); console.log({i} + 1); {i}");
        last = repl(&d, &s, &input);
    }
    let list = d
        .get(&format!("/executions?session_id={s}"))
        .ok(200)
        .clone();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 5, "4 REPLs and the startup execution");
    for e in list {
        check_execution(e, "list item");
    }
    let mut sorted = list.clone();
    sorted.sort_by(|x, y| {
        let kx = (x["started_at"].as_str().unwrap(), x["id"].as_str().unwrap());
        let ky = (y["started_at"].as_str().unwrap(), y["id"].as_str().unwrap());
        ky.cmp(&kx)
    });
    assert_eq!(list, &sorted, "newest first");
    assert_eq!(
        list[0]["started_at"], last["started_at"],
        "the newest first"
    );
    assert_eq!(list[4]["kind"], "startup", "the oldest last");

    let one = d
        .get(&format!("/executions?session_id={s}&limit=1"))
        .ok(200)
        .clone();
    assert_eq!(one, json!([list[0]]));
    let r = d.get(&format!("/executions?session_id={s}&limit=1000"));
    assert_eq!(r.ok(200).as_array().unwrap().len(), 5);
    for (query, field) in [
        (format!("session_id={s}&limit=0"), "limit"),
        (format!("session_id={s}&limit=1001"), "limit"),
        (format!("session_id={s}&limit=x"), "limit"),
        ("limit=5".to_string(), "session_id"),
        ("session_id=nope".to_string(), "session_id"),
    ] {
        let r = d.get(&format!("/executions?{query}"));
        assert_eq!(
            expect_err(&r, 400, "VALIDATION_ERROR", &query),
            json!({ "field": field }),
            "{query}"
        );
    }

    // Events: after_seq and limit.
    let id = last["id"].as_str().unwrap();
    let all = d.get(&format!("/executions/{id}/events")).ok(200).clone();
    let all = all.as_array().unwrap().clone();
    assert_eq!(all.len(), 4);
    assert_eq!(all, d.execution(id)["events"].as_array().unwrap().clone());
    let page = d
        .get(&format!("/executions/{id}/events?after_seq=1&limit=2"))
        .ok(200)
        .clone();
    assert_eq!(page, json!([all[1], all[2]]));
    let tail = d
        .get(&format!("/executions/{id}/events?after_seq=3"))
        .ok(200)
        .clone();
    assert_eq!(tail, json!([all[3]]));
    let none = d
        .get(&format!(
            "/executions/{id}/events?after_seq=100&follow=false"
        ))
        .ok(200)
        .clone();
    assert_eq!(none, json!([]));
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=10001", "limit"),
        ("after_seq=-1", "after_seq"),
        ("follow=yes", "follow"),
        ("follow=true&limit=5", "limit"),
    ] {
        let r = d.get(&format!("/executions/{id}/events?{query}"));
        assert_eq!(
            expect_err(&r, 400, "VALIDATION_ERROR", query),
            json!({ "field": field }),
            "{query}"
        );
    }
    let r = d.get(&format!("/executions/{UNKNOWN_ID}/events"));
    expect_err(&r, 404, "EXECUTION_NOT_FOUND", "events of unknown");
    let r = d.get(&format!("/executions/{UNKNOWN_ID}/events?follow=true"));
    expect_err(&r, 404, "EXECUTION_NOT_FOUND", "stream of unknown");
}

// ---- Server-sent events over a raw socket ----

/// Decodes an HTTP/1.1 chunked body.
struct Chunked<R> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            if line.trim().is_empty() {
                // The CRLF that ends the previous chunk.
                line.clear();
                self.inner.read_line(&mut line)?;
            }
            let size = line.trim().split(';').next().unwrap_or("");
            if size.is_empty() {
                self.done = true;
                return Ok(0);
            }
            self.left = usize::from_str_radix(size, 16)
                .map_err(|e| std::io::Error::other(format!("chunk size {line:?}: {e}")))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let n = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..n])?;
        if n == 0 {
            self.done = true;
        }
        self.left -= n;
        Ok(n)
    }
}

/// One SSE frame: its fields in order.
#[derive(Debug, Default)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

struct Sse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Box<dyn BufRead + Send>,
}

impl Sse {
    /// Opens `GET path` (under /api/v1) with `Connection: close`.
    fn open(d: &TestDaemon, path: &str, extra: &[(&str, &str)]) -> Sse {
        let stream = TcpStream::connect(&d.addr).unwrap();
        stream.set_read_timeout(Some(tests::DEADLINE)).unwrap();
        let mut request = format!(
            "GET /api/v1{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            d.addr
        );
        for (k, v) in extra {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        (&stream).write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body: Box<dyn BufRead + Send> = if chunked {
            Box::new(BufReader::new(Chunked {
                inner: reader,
                left: 0,
                done: false,
            }))
        } else {
            Box::new(reader)
        };
        Sse {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next frame, skipping comments; `None` at the end of the stream.
    fn next(&mut self) -> Option<Frame> {
        let mut frame = Frame::default();
        let mut any = false;
        loop {
            let mut line = String::new();
            let n = self.body.read_line(&mut line).unwrap();
            if n == 0 {
                assert!(!any, "stream ended inside a frame: {frame:?}");
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if any {
                    return Some(frame);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            any = true;
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_string();
            match field {
                "id" => frame.id = Some(value),
                "event" => frame.event = Some(value),
                "data" => {
                    if !frame.data.is_empty() {
                        frame.data.push('\n');
                    }
                    frame.data.push_str(&value);
                }
                other => panic!("unexpected SSE field {other:?}"),
            }
        }
    }

    /// Reads event frames until `end`; returns the events and the end's Execution, and checks
    /// that the stream then closes.
    fn drain(&mut self, mut events: Vec<Value>) -> (Vec<Value>, Value) {
        loop {
            let frame = self.next().expect("the stream ended without `end`");
            if frame.event.as_deref() == Some("end") {
                assert!(frame.id.is_none(), "end has no id: {frame:?}");
                let execution: Value = serde_json::from_str(&frame.data).unwrap();
                assert!(self.next().is_none(), "the stream closes after end");
                return (events, execution);
            }
            events.push(check_frame(&frame));
        }
    }
}

/// Checks an event frame (`id` = seq, `event` = type) and returns its Event.
#[track_caller]
fn check_frame(frame: &Frame) -> Value {
    let ev: Value = serde_json::from_str(&frame.data).unwrap();
    assert_keys(
        &ev,
        &["execution_id", "seq", "ts", "type", "payload"],
        "SSE data",
    );
    assert_eq!(frame.id.as_deref(), Some(ev["seq"].to_string().as_str()));
    assert_eq!(frame.event.as_deref(), ev["type"].as_str());
    ev
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

#[test]
fn follow_streams_events_while_the_execution_runs() {
    let d = TestDaemon::start();
    let s = d.session(&d.template("follow"));
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let call = scope.spawn(|| {
            let r = d.repl(
                &s,
                "var i = 0; var t = setInterval(() => { console.log('tick ' + i);\n\
                 if (++i === 20) clearInterval(t); }, 50); 'started'",
            );
            done.store(true, Ordering::SeqCst);
            r
        });
        let id = d.running_execution(&s);
        let mut sse = Sse::open(&d, &format!("/executions/{id}/events?follow=true"), &[]);
        assert_eq!(sse.status, 200);
        assert!(
            sse.header("content-type")
                .is_some_and(|v| v.starts_with("text/event-stream")),
            "{:?}",
            sse.headers
        );
        assert!(sse.header("x-request-id").is_some());

        let mut events = Vec::new();
        loop {
            let frame = sse.next().expect("stream ended early");
            assert_ne!(
                frame.event.as_deref(),
                Some("end"),
                "ended before a console event"
            );
            let ev = check_frame(&frame);
            let console = ev["type"] == "console";
            events.push(ev);
            if console {
                assert!(
                    !done.load(Ordering::SeqCst),
                    "the first console event must arrive while the execution runs"
                );
                break;
            }
        }
        let (events, end) = sse.drain(events);
        let r = call.join().unwrap();
        let e = detail(&d, &r, "followed");
        assert_eq!(e["status"], "ok");
        assert_eq!(
            seqs(&events),
            (1..=22).collect::<Vec<u64>>(),
            "input_echo, 20 console events and the value, in seq order"
        );
        assert_eq!(json!(events), e["events"]);
        let mut without = e.clone();
        without.as_object_mut().unwrap().remove("events");
        assert_eq!(end, without, "end's data is the Execution");
    });
}

#[test]
fn follow_on_an_ended_execution_replays_and_resumes() {
    let d = TestDaemon::start();
    let s = d.session(&d.template("replay"));
    let e = repl(&d, &s, "for (let k = 0; k < 10; k++) console.log(k); 'x'");
    let id = e["id"].as_str().unwrap();
    let all = e["events"].as_array().unwrap().clone();
    assert_eq!(all.len(), 12);
    let mut execution = e.clone();
    execution.as_object_mut().unwrap().remove("events");

    let path = format!("/executions/{id}/events?follow=true");
    let mut sse = Sse::open(&d, &path, &[]);
    assert_eq!(sse.status, 200);
    let (events, end) = sse.drain(Vec::new());
    assert_eq!(events, all);
    assert_eq!(end, execution);

    for (query, header, first) in [
        ("", Some("3"), 4),
        ("&after_seq=5", Some("3"), 6),
        ("&after_seq=2", Some("7"), 8),
        ("&after_seq=2", Some("abc"), 3),
        ("&after_seq=2", Some("-1"), 3),
        ("", Some("12"), 13),
        ("", Some("99999999999999999999999"), 13),
        ("&after_seq=4", None, 5),
    ] {
        let headers: Vec<(&str, &str)> = header.map(|h| ("Last-Event-ID", h)).into_iter().collect();
        let mut sse = Sse::open(&d, &format!("{path}{query}"), &headers);
        assert_eq!(sse.status, 200);
        let (events, end) = sse.drain(Vec::new());
        let want: Vec<u64> = (first..=12).collect();
        assert_eq!(
            seqs(&events),
            want,
            "query {query:?}, Last-Event-ID {header:?}"
        );
        assert_eq!(end, execution);
    }

    let r = d.get(&format!("/executions/{id}/events?follow=true&limit=5"));
    assert_eq!(
        expect_err(&r, 400, "VALIDATION_ERROR", "follow with limit"),
        json!({"field": "limit"})
    );
}

#[test]
fn run_file_sources_are_decoded_and_bounded() {
    let d = TestDaemon::start();
    let t = d.template("sources");
    let wt = d.worktree("sources");
    std::fs::write(wt.join("bom.js"), "\u{FEFF}'bom dropped'").unwrap();
    std::fs::write(wt.join("bad.js"), b"'a\xffb'").unwrap();
    std::fs::write(wt.join("shebang.js"), "#!/usr/bin/env node\n6 * 7").unwrap();
    let big = format!("/*{}*/ 1", " ".repeat(16 * 1024 * 1024));
    std::fs::write(wt.join("big.js"), big).unwrap();
    let s = session_on(&d, &t, &wt);
    let before = d.executions(&s).len();

    let e = detail(&d, &d.run_file(&s, "bom.js", None, None), "bom.js");
    assert_eq!(e["result"]["json"], "bom dropped");
    let e = detail(&d, &d.run_file(&s, "bad.js", None, None), "bad.js");
    assert_eq!(e["result"]["json"], "a\u{FFFD}b");
    let e = detail(&d, &d.run_file(&s, "shebang.js", None, None), "shebang.js");
    assert_eq!(e["result"]["json"], 42);

    let r = d.run_file(&s, "big.js", None, None);
    let details = expect_err(&r, 422, "INVALID_PATH", "over 16 MiB");
    assert_eq!(details, json!({"path": "big.js", "reason": "too_large"}));
    assert_eq!(d.executions(&s).len(), before + 3);
}

#[test]
fn a_running_execution_reads_as_running() {
    let d = TestDaemon::start();
    let s = d.session(&d.template("running"));
    std::thread::scope(|scope| {
        let call = scope.spawn(|| {
            d.repl(
                &s,
                "console.log('a'); console.log('b'); new Promise(r => setTimeout(r, 60000))",
            )
        });
        let id = d.running_execution(&s);
        let e = d.wait_for("the console events", || {
            let e = d.execution(&id);
            (e["events"].as_array().unwrap().len() == 3).then_some(e)
        });
        check_detail(&e, "running");
        assert_eq!(e["status"], "running");
        assert!(e["ended_at"].is_null() && e["result"].is_null() && e["error"].is_null());
        assert_eq!(e["metrics"]["event_count"], 3);
        let events = e["events"].as_array().unwrap();
        let bytes: usize = events
            .iter()
            .map(|ev| ev["payload"].to_string().len())
            .sum();
        assert_eq!(e["metrics"]["output_bytes"], json!(bytes));
        // wall_ms is computed at read time.
        let w1 = e["metrics"]["wall_ms"].as_u64().unwrap();
        let w2 = d.wait_for("wall_ms to grow", || {
            let w = d.execution(&id)["metrics"]["wall_ms"].as_u64().unwrap();
            (w > w1).then_some(w)
        });
        assert!(w2 > w1);
        // The events endpoint serves what is committed.
        let listed = d.get(&format!("/executions/{id}/events")).ok(200).clone();
        assert_eq!(&listed, &e["events"]);
        d.post_raw(&format!("/executions/{id}/cancel"), "").ok(200);
        assert_eq!(call.join().unwrap().ok(201)["status"], "cancelled");
    });
}

#[test]
fn racing_requests_get_one_slot() {
    use std::sync::Barrier;
    use std::sync::atomic::AtomicUsize;
    let d = TestDaemon::start();
    let s = d.session(&d.template("race"));
    let n = 8;
    let barrier = Barrier::new(n);
    let answered = AtomicUsize::new(0);
    let results: Vec<Resp> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..n)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let r = d.repl(&s, "while (true) {}");
                    answered.fetch_add(1, Ordering::SeqCst);
                    r
                })
            })
            .collect();
        let running = d.running_execution(&s);
        d.wait_for("the losers to be answered", || {
            (answered.load(Ordering::SeqCst) == n - 1).then_some(())
        });
        d.post_raw(&format!("/executions/{running}/cancel"), "")
            .ok(200);
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let winners: Vec<&Resp> = results.iter().filter(|r| r.status == 201).collect();
    assert_eq!(winners.len(), 1, "exactly one request runs");
    let id = winners[0].body["id"].clone();
    assert_eq!(winners[0].body["status"], "cancelled");
    for r in results.iter().filter(|r| r.status != 201) {
        let details = expect_err(r, 409, "SESSION_BUSY", "loser");
        assert_eq!(details, json!({"session_id": s, "execution_id": id}));
    }
    assert_eq!(d.executions(&s).len(), 1, "only the winner has a row");
}

#[test]
fn execution_list_defaults_to_50() {
    let d = TestDaemon::start();
    let s = d.session(&d.template("fifty"));
    for i in 0..52 {
        eval(&d, &s, &format!("{i}"));
    }
    let list = d
        .get(&format!("/executions?session_id={s}"))
        .ok(200)
        .clone();
    assert_eq!(list.as_array().unwrap().len(), 50);
    let all = d.executions(&s);
    assert_eq!(all.len(), 52);
    assert_eq!(list, json!(all[..50]), "the 50 newest");
}

/// A cancel that reaches the daemon just after the execution's row exists (possibly before the
/// worker began evaluating) must still stop it: the execution ends `cancelled` and the session
/// stays `ready` (the worker is not killed as unresponsive).
#[test]
fn an_immediate_cancel_is_not_lost() {
    let d = TestDaemon::start();
    let s = d.session(&d.template("immediate-cancel"));
    for round in 0..100 {
        std::thread::scope(|scope| {
            let call = scope.spawn(|| d.repl(&s, "console.log('start'); while (true) {}"));
            let running = d.running_execution(&s);
            let e = d
                .post_raw(&format!("/executions/{running}/cancel"), "")
                .ok(200)
                .clone();
            assert_eq!(e["status"], "cancelled");
            assert_eq!(call.join().unwrap().ok(201)["status"], "cancelled");
            let row = d.get_session(&s);
            assert_eq!(
                row["status"], "ready",
                "round {round}: the cancel must stop the code: {row}"
            );
        });
    }
}
