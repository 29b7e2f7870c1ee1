//! Sessions (spec §4.8, §6, §9): creation and its shape, listing, the worktree checks, every
//! lifecycle transition, startup files and libraries, template deletion and parallel sessions.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tests::daemon::{TestDaemon, library_dir, process_gone};

use crate::api_conventions::{UNKNOWN_ID, assert_keys, assert_ts, expect_err, is_uuid_v4};

const SESSION_KEYS: &[&str] = &[
    "id",
    "template_id",
    "workspace_id",
    "base_commit_oid",
    "worktree_path",
    "status",
    "engine",
    "pid",
    "last_error",
    "created_at",
    "updated_at",
    "closed_at",
];

/// Asserts the shape of a Session (§3).
#[track_caller]
pub(crate) fn check_session(s: &Value, ctx: &str) {
    assert_keys(s, SESSION_KEYS, ctx);
    assert!(is_uuid_v4(s["id"].as_str().unwrap_or("")), "{ctx}: id {s}");
    assert_eq!(s["engine"], "quickjs", "{ctx}");
    assert_ts(s, "created_at", ctx);
    assert_ts(s, "updated_at", ctx);
    match s["status"].as_str() {
        Some("ready") => {
            assert!(s["pid"].is_u64(), "{ctx}: a ready session has a pid: {s}");
            assert!(s["last_error"].is_null(), "{ctx}: {s}");
            assert!(s["closed_at"].is_null(), "{ctx}: {s}");
        }
        Some("crashed") => {
            assert!(
                s["pid"].is_null(),
                "{ctx}: a crashed session has no pid: {s}"
            );
            assert!(s["last_error"].is_string(), "{ctx}: {s}");
            assert!(s["closed_at"].is_null(), "{ctx}: {s}");
        }
        Some("closed") => {
            assert!(
                s["pid"].is_null(),
                "{ctx}: a closed session has no pid: {s}"
            );
            assert_ts(s, "closed_at", ctx);
        }
        Some("starting") => assert!(s["closed_at"].is_null(), "{ctx}: {s}"),
        _ => panic!("{ctx}: bad status in {s}"),
    }
}

fn pid_of(s: &Value) -> i32 {
    i32::try_from(s["pid"].as_i64().unwrap_or_else(|| panic!("no pid in {s}"))).unwrap()
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Writes `text` to `rel` inside `dir`, creating parent directories.
pub(crate) fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Creates a session on `wt` and asserts it is ready.
fn ready(d: &TestDaemon, t: &str, wt: &Path) -> Value {
    let r = d.session_resp(t, wt);
    let s = r.ok(201).clone();
    check_session(&s, "created session");
    assert_eq!(s["status"], "ready", "{s}");
    s
}

/// The value (`result.json`) of a REPL input that must succeed.
#[track_caller]
pub(crate) fn eval(d: &TestDaemon, s: &str, input: &str) -> Value {
    let r = d.repl(s, input);
    let e = r.ok(201);
    assert_eq!(e["status"], "ok", "{input}: {e}");
    e["result"]["json"].clone()
}

fn sessions(d: &TestDaemon, query: &str) -> Vec<Value> {
    d.get(&format!("/sessions{query}"))
        .ok(200)
        .as_array()
        .unwrap()
        .clone()
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn create_returns_a_ready_session_with_every_field() {
    let d = TestDaemon::start();
    let t = d.template("create");
    let wt = d.worktree("create");
    let r = d.session_resp(&t, &wt);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let s = r.ok(201).clone();
    check_session(&s, "create");
    assert_eq!(s["status"], "ready");
    assert_eq!(s["template_id"], json!(t));
    assert_eq!(s["workspace_id"], "ws-1");
    assert_eq!(
        s["base_commit_oid"],
        "9fceb02d0ae598e95dc970b74767f19372d61af8"
    );
    assert_eq!(s["worktree_path"], json!(wt.to_str().unwrap()));
    assert_eq!(s["engine"], "quickjs");
    assert!(s["last_error"].is_null());
    assert!(s["closed_at"].is_null());
    let pid = pid_of(&s);
    assert!(alive(pid), "worker {pid} is a live process");
    assert_ne!(pid, d.pid(), "the worker is not the daemon");

    // GET answers the same row.
    let id = s["id"].as_str().unwrap();
    assert_eq!(d.get_session(id), s);

    // `worktree_path` is stored exactly as sent, not cleaned.
    let sent = format!("{}/./", wt.to_str().unwrap());
    let r = d.post(
        "/sessions",
        json!({"template_id": t, "workspace_id": "ws-2", "base_commit_oid": "abc",
               "worktree_path": sent}),
    );
    let s2 = r.ok(201).clone();
    assert_eq!(s2["worktree_path"], json!(sent));
    assert_eq!(s2["workspace_id"], "ws-2");
    assert_eq!(s2["base_commit_oid"], "abc");
    assert_ne!(s2["pid"], s["pid"], "each session has its own worker");
}

#[test]
fn list_is_newest_first_and_filters_by_status() {
    let d = TestDaemon::start();
    let t = d.template("list");
    assert_eq!(sessions(&d, ""), Vec::<Value>::new());
    let a = d.session(&t);
    let b = d.session(&t);
    let c = d.session(&t);
    d.close(&b).ok(200);

    let all = sessions(&d, "");
    for s in &all {
        check_session(s, "list item");
    }
    assert_eq!(all.len(), 3);
    // Newest first by created_at, ties by id descending.
    let mut sorted = all.clone();
    sorted.sort_by(|x, y| {
        let kx = (x["created_at"].as_str().unwrap(), x["id"].as_str().unwrap());
        let ky = (y["created_at"].as_str().unwrap(), y["id"].as_str().unwrap());
        ky.cmp(&kx)
    });
    assert_eq!(ids(&all), ids(&sorted), "newest first");
    assert_eq!(
        all.iter().map(|s| s["id"].clone()).collect::<Vec<_>>()[2],
        json!(a),
        "the oldest is last"
    );

    let closed = sessions(&d, "?status=closed");
    assert_eq!(ids(&closed), vec![b.clone()]);
    assert_eq!(closed[0]["status"], "closed");
    let mut ready = ids(&sessions(&d, "?status=ready"));
    ready.sort();
    let mut want = vec![a.clone(), c.clone()];
    want.sort();
    assert_eq!(ready, want);
    assert_eq!(sessions(&d, "?status=crashed"), Vec::<Value>::new());
    assert_eq!(sessions(&d, "?status=starting"), Vec::<Value>::new());

    for bad in ["?status=READY", "?status=", "?status=open", "?state=ready"] {
        let r = d.get(&format!("/sessions{bad}"));
        expect_err(&r, 400, "VALIDATION_ERROR", bad);
    }
    let r = d.get("/sessions?status=bogus");
    assert_eq!(
        expect_err(&r, 400, "VALIDATION_ERROR", "bogus status"),
        json!({"field": "status"})
    );
}

#[test]
fn unknown_sessions_are_404() {
    let d = TestDaemon::start();
    let want = json!({ "session_id": UNKNOWN_ID });
    for r in [
        d.get(&format!("/sessions/{UNKNOWN_ID}")),
        d.close(UNKNOWN_ID),
        d.delete(&format!("/sessions/{UNKNOWN_ID}")),
        d.restart(UNKNOWN_ID),
        d.repl(UNKNOWN_ID, "1"),
        d.run_file(UNKNOWN_ID, "a.js", None, None),
        d.get(&format!("/executions?session_id={UNKNOWN_ID}")),
    ] {
        let details = expect_err(&r, 404, "SESSION_NOT_FOUND", "unknown session");
        assert_eq!(details, want);
    }
    // Upper-case hex names the same (unknown) id, compared lowercased.
    let upper = UNKNOWN_ID.to_uppercase();
    let r = d.get(&format!("/sessions/{upper}"));
    expect_err(&r, 404, "SESSION_NOT_FOUND", "upper-case id");
}

#[test]
fn worktree_and_template_checks() {
    let d = TestDaemon::start();
    let t = d.template("wt");
    let base = d.worktree("base");
    std::fs::write(base.join("file.txt"), "x").unwrap();
    let missing = base.join("missing");
    let cases = [
        ("relative/path".to_string(), "not_absolute"),
        ("wt".to_string(), "not_absolute"),
        ("./wt".to_string(), "not_absolute"),
        (missing.to_str().unwrap().to_string(), "not_found"),
        (
            base.join("file.txt").to_str().unwrap().to_string(),
            "not_a_directory",
        ),
    ];
    for (path, reason) in &cases {
        let r = d.post(
            "/sessions",
            json!({"template_id": t, "workspace_id": "w", "base_commit_oid": "c",
                   "worktree_path": path}),
        );
        let ctx = format!("worktree {path:?}");
        let details = expect_err(&r, 422, "INVALID_WORKTREE", &ctx);
        assert_eq!(
            details,
            json!({"worktree_path": path, "reason": reason}),
            "{ctx}"
        );
    }

    // The template is looked up first (404 before the worktree check).
    let r = d.post(
        "/sessions",
        json!({"template_id": UNKNOWN_ID, "workspace_id": "w", "base_commit_oid": "c",
               "worktree_path": "relative"}),
    );
    let details = expect_err(&r, 404, "TEMPLATE_NOT_FOUND", "unknown template");
    assert_eq!(details, json!({ "template_id": UNKNOWN_ID }));

    // Validation (400) comes before the lookup.
    let long = format!("/{}", "a".repeat(4096));
    let good = base.to_str().unwrap().to_string();
    for (body, field) in [
        (
            json!({"template_id": UNKNOWN_ID, "workspace_id": " ", "base_commit_oid": "c",
                   "worktree_path": good}),
            "workspace_id",
        ),
        (
            json!({"template_id": t, "workspace_id": "w".repeat(257), "base_commit_oid": "c",
                   "worktree_path": good}),
            "workspace_id",
        ),
        (
            json!({"template_id": t, "workspace_id": "w", "base_commit_oid": "",
                   "worktree_path": good}),
            "base_commit_oid",
        ),
        (
            json!({"template_id": t, "workspace_id": "w", "base_commit_oid": "c",
                   "worktree_path": long}),
            "worktree_path",
        ),
        (
            json!({"template_id": t, "workspace_id": "w", "base_commit_oid": "c",
                   "worktree_path": format!("{good}\u{0}")}),
            "worktree_path",
        ),
        (
            json!({"template_id": "nope", "workspace_id": "w", "base_commit_oid": "c",
                   "worktree_path": good}),
            "template_id",
        ),
        (
            json!({"workspace_id": "w", "base_commit_oid": "c", "worktree_path": good}),
            "template_id",
        ),
    ] {
        let r = d.post("/sessions", body.clone());
        let details = expect_err(&r, 400, "VALIDATION_ERROR", &body.to_string());
        assert_eq!(details, json!({ "field": field }), "{body}");
    }

    // No row was inserted by any failed check.
    assert_eq!(sessions(&d, ""), Vec::<Value>::new());
}

#[test]
fn startup_file_that_throws_fails_the_start() {
    let d = TestDaemon::start();
    let t = d.template("boom");
    d.add_startup(&t, "init.js", 0);
    let wt = d.worktree("boom");
    std::fs::write(
        wt.join("init.js"),
        "globalThis.before = 1;\nthrow new Error('boom at start');\n",
    )
    .unwrap();
    let r = d.session_resp(&t, &wt);
    let details = expect_err(&r, 422, "STARTUP_FAILED", "throwing startup file");
    assert_keys(
        &details,
        &["session_id", "execution_id", "path", "library"],
        "STARTUP_FAILED",
    );
    assert_eq!(details["path"], "init.js");
    assert!(details["library"].is_null(), "{details}");
    let sid = details["session_id"].as_str().unwrap();
    let eid = details["execution_id"].as_str().unwrap();

    let s = d.get_session(sid);
    check_session(&s, "failed session");
    assert_eq!(s["status"], "crashed");
    assert_eq!(s["last_error"], "startup failed: init.js: boom at start");
    assert!(s["pid"].is_null());

    let e = d.execution(eid);
    assert_eq!(e["session_id"], json!(sid));
    assert_eq!(e["kind"], "startup");
    assert_eq!(e["status"], "error");
    assert_eq!(e["error"]["code"], "EXCEPTION");
    assert_eq!(e["error"]["message"], "boom at start");
    assert_eq!(e["error"]["name"], "Error");
    assert_eq!(e["path"], "init.js");
    let events = e["events"].as_array().unwrap();
    assert_eq!(events[0]["type"], "input_echo");
    assert_eq!(events[0]["payload"], json!({"path": "init.js"}));
    assert_eq!(events.last().unwrap()["type"], "exception");

    // The crashed session refuses executions.
    let r = d.repl(sid, "1");
    let details = expect_err(&r, 409, "SESSION_NOT_READY", "REPL on crashed");
    assert_eq!(details, json!({"session_id": sid, "status": "crashed"}));
}

#[test]
fn missing_startup_file_fails_with_file_not_found() {
    let d = TestDaemon::start();
    let t = d.template("missing-startup");
    d.add_startup(&t, "init.js", 0);
    let wt = d.worktree("missing-startup");
    let r = d.session_resp(&t, &wt);
    let details = expect_err(&r, 422, "STARTUP_FAILED", "missing startup file");
    assert_eq!(details["path"], "init.js");
    assert!(details["library"].is_null());
    let sid = details["session_id"].as_str().unwrap();
    let e = d.execution(details["execution_id"].as_str().unwrap());
    assert_eq!(e["kind"], "startup");
    assert_eq!(e["status"], "error");
    let message = "startup file init.js: not_found";
    assert_eq!(
        e["error"],
        json!({"code": "FILE_NOT_FOUND", "message": message, "name": null, "stack": null})
    );
    let last = e["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "system");
    assert_eq!(
        last["payload"],
        json!({"level": "error", "message": message})
    );
    let s = d.get_session(sid);
    assert_eq!(s["status"], "crashed");
    assert_eq!(
        s["last_error"],
        json!(format!("startup failed: init.js: {message}"))
    );

    // A startup path that is a directory is unusable too: INVALID_PATH, not_a_file.
    std::fs::create_dir(wt.join("init.js")).unwrap();
    let r = d.restart(sid);
    let details = expect_err(&r, 422, "STARTUP_FAILED", "directory startup file");
    let e = d.execution(details["execution_id"].as_str().unwrap());
    assert_eq!(e["error"]["code"], "INVALID_PATH");
    assert_eq!(e["error"]["message"], "startup file init.js: not_a_file");
}

#[test]
fn killed_worker_makes_the_session_crashed() {
    let d = TestDaemon::start();
    let t = d.template("kill");
    let sid = d.session(&t);
    let pid = d.worker_pid(&sid);
    // SAFETY: kill(2) on the worker of our own daemon.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let s = d.wait_for("the session to crash", || {
        let s = d.get_session(&sid);
        (s["status"] == "crashed").then_some(s)
    });
    check_session(&s, "crashed");
    assert_eq!(s["last_error"], "worker killed by signal SIGKILL");
    assert!(s["pid"].is_null());
    let r = d.repl(&sid, "1");
    let details = expect_err(&r, 409, "SESSION_NOT_READY", "REPL after kill");
    assert_eq!(details, json!({"session_id": sid, "status": "crashed"}));
    let r = d.run_file(&sid, "a.js", None, None);
    expect_err(&r, 409, "SESSION_NOT_READY", "run-file after kill");
    assert!(d.get("/health").status == 200);
}

#[test]
fn restart_gives_a_new_worker_and_fresh_state() {
    let d = TestDaemon::start();
    let t = d.template("restart");
    d.add_startup(&t, "init.js", 0);
    let wt = d.worktree("restart");
    std::fs::write(
        wt.join("init.js"),
        "globalThis.boots = (globalThis.boots || 0) + 1;",
    )
    .unwrap();
    let s = ready(&d, &t, &wt);
    let sid = s["id"].as_str().unwrap().to_string();
    let pid1 = pid_of(&s);
    eval(&d, &sid, "var kept = 41; let lexical = 1;");
    assert_eq!(eval(&d, &sid, "kept + lexical + boots"), json!(43));

    // ready → starting → ready.
    let r = d.restart(&sid);
    let s2 = r.ok(200).clone();
    check_session(&s2, "restarted");
    assert_eq!(s2["status"], "ready");
    assert_eq!(s2["id"], s["id"]);
    assert_eq!(s2["created_at"], s["created_at"]);
    let pid2 = pid_of(&s2);
    assert_ne!(pid1, pid2, "a new worker");
    assert!(alive(pid2));
    assert!(process_gone(pid1), "the old worker was stopped");
    assert!(s2["updated_at"].as_str() >= s["updated_at"].as_str());
    // JS state is lost; the startup file ran again in the new runtime.
    assert_eq!(
        eval(&d, &sid, "[typeof kept, typeof lexical, boots]"),
        json!(["undefined", "undefined", 1])
    );
    // `let lexical` can be declared again: it is a new global scope.
    eval(&d, &sid, "let lexical = 2; lexical");
    let startups: Vec<Value> = d
        .executions(&sid)
        .into_iter()
        .filter(|e| e["kind"] == "startup")
        .collect();
    assert_eq!(startups.len(), 2, "one startup execution per start");
    assert_ne!(startups[0]["id"], startups[1]["id"]);
    for e in &startups {
        assert_eq!(e["status"], "ok");
        assert_eq!(e["path"], "init.js");
    }
    // Execution history is kept.
    assert!(
        d.executions(&sid)
            .iter()
            .any(|e| e["input"] == "kept + lexical + boots")
    );

    // crashed → starting → ready, and last_error is cleared.
    // SAFETY: kill(2) on the worker of our own daemon.
    unsafe { libc::kill(pid2, libc::SIGKILL) };
    d.wait_for("the session to crash", || {
        (d.get_session(&sid)["status"] == "crashed").then_some(())
    });
    let s3 = d.restart(&sid).ok(200).clone();
    check_session(&s3, "restarted from crashed");
    assert_eq!(s3["status"], "ready");
    assert!(s3["last_error"].is_null(), "{s3}");
    assert_ne!(pid_of(&s3), pid2);
    assert_eq!(eval(&d, &sid, "boots"), json!(1));

    // A running session keeps the settings it started with; a restart takes the current ones.
    d.settings(&t, json!({"limits": {"max_events": 2}}));
    let noisy = "console.log(1); console.log(2); 3";
    assert_eq!(eval(&d, &sid, noisy), json!(3));
    d.restart(&sid).ok(200);
    let r = d.repl(&sid, noisy);
    let details = expect_err(&r, 422, "OUTPUT_LIMIT_EXCEEDED", "after restart");
    assert_eq!(details["limit"], "max_events");
}

#[test]
fn restart_and_close_of_a_closed_session() {
    let d = TestDaemon::start();
    let t = d.template("closed");
    let s = ready(&d, &t, &d.worktree("closed"));
    let sid = s["id"].as_str().unwrap().to_string();
    let pid = pid_of(&s);

    let before = Instant::now();
    let closed = d.close(&sid).ok(200).clone();
    // The worker is reaped before the answer.
    assert!(!alive(pid), "worker {pid} still exists right after close");
    assert!(before.elapsed() < Duration::from_secs(20));
    check_session(&closed, "closed");
    assert_eq!(closed["status"], "closed");
    assert!(closed["pid"].is_null());
    assert!(closed["last_error"].is_null(), "{closed}");
    assert_eq!(d.get_session(&sid), closed);

    // Idempotent: same row, closed_at set once.
    let again = d.close(&sid).ok(200).clone();
    assert_eq!(again, closed);
    let alias = d.delete(&format!("/sessions/{sid}")).ok(200).clone();
    assert_eq!(alias, closed, "DELETE is an alias of close");

    let r = d.restart(&sid);
    let details = expect_err(&r, 409, "SESSION_NOT_READY", "restart of closed");
    assert_eq!(details, json!({"session_id": sid, "status": "closed"}));
    let r = d.repl(&sid, "1");
    let details = expect_err(&r, 409, "SESSION_NOT_READY", "REPL on closed");
    assert_eq!(details, json!({"session_id": sid, "status": "closed"}));
    let r = d.run_file(&sid, "a.js", None, None);
    expect_err(&r, 409, "SESSION_NOT_READY", "run-file on closed");

    // DELETE closes a ready session too, and a crashed one can be closed.
    let s2 = d.session(&t);
    let pid2 = d.worker_pid(&s2);
    let c2 = d.delete(&format!("/sessions/{s2}")).ok(200).clone();
    assert_eq!(c2["status"], "closed");
    assert!(!alive(pid2));
    let s3 = d.session(&t);
    // SAFETY: kill(2) on the worker of our own daemon.
    unsafe { libc::kill(d.worker_pid(&s3), libc::SIGKILL) };
    d.wait_for("the session to crash", || {
        (d.get_session(&s3)["status"] == "crashed").then_some(())
    });
    let c3 = d.close(&s3).ok(200).clone();
    check_session(&c3, "closed after crash");
    assert_eq!(c3["status"], "closed");
    assert_eq!(
        c3["last_error"], "worker killed by signal SIGKILL",
        "close keeps the latest failure"
    );
}

#[test]
fn restart_with_a_deleted_worktree_crashes_the_session() {
    let d = TestDaemon::start();
    let t = d.template("gone");
    let wt = d.worktree("gone");
    let s = ready(&d, &t, &wt);
    let sid = s["id"].as_str().unwrap().to_string();
    let pid = pid_of(&s);
    std::fs::remove_dir_all(&wt).unwrap();
    let r = d.restart(&sid);
    let details = expect_err(&r, 422, "INVALID_WORKTREE", "restart without worktree");
    assert_eq!(
        details,
        json!({"worktree_path": wt.to_str().unwrap(), "reason": "not_found"})
    );
    let s = d.get_session(&sid);
    check_session(&s, "after failed restart");
    assert_eq!(s["status"], "crashed");
    assert_eq!(s["last_error"], "worktree invalid: not_found");
    assert!(s["pid"].is_null());
    assert!(process_gone(pid), "the old worker was stopped");

    // A file in its place is not_a_directory.
    std::fs::write(&wt, "x").unwrap();
    let r = d.restart(&sid);
    let details = expect_err(&r, 422, "INVALID_WORKTREE", "worktree is a file");
    assert_eq!(details["reason"], "not_a_directory");
    assert_eq!(
        d.get_session(&sid)["last_error"],
        "worktree invalid: not_a_directory"
    );

    // Once the worktree exists again, the session can be restarted.
    std::fs::remove_file(&wt).unwrap();
    std::fs::create_dir_all(&wt).unwrap();
    let s = d.restart(&sid).ok(200).clone();
    assert_eq!(s["status"], "ready");
    assert!(s["last_error"].is_null());
}

#[test]
fn startup_files_run_in_order_and_are_listed_as_startup_executions() {
    let d = TestDaemon::start();
    let t = d.template("order");
    let wt = d.worktree("order");
    // Added out of order; run order is order_index, then creation order.
    let files = [
        ("c.js", 5),
        ("a.js", -1),
        ("lib/b.js", 2),
        ("d.js", 2),
        ("e.js", 0),
    ];
    for (path, order) in files {
        d.add_startup(&t, path, order);
        write(
            &wt,
            path,
            &format!("(globalThis.order = globalThis.order || []).push({path:?});"),
        );
    }
    // Run order: order_index ascending, then created_at, then id (as the list endpoint says).
    let listed = d
        .get(&format!("/templates/{t}/startup-files"))
        .ok(200)
        .clone();
    let expected: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(expected[..2], ["a.js", "e.js"]);
    assert_eq!(expected[4], "c.js");
    let s = ready(&d, &t, &wt);
    let sid = s["id"].as_str().unwrap().to_string();
    assert_eq!(eval(&d, &sid, "order"), json!(expected), "run order");

    let list = d.executions(&sid);
    let startups: Vec<&Value> = list.iter().filter(|e| e["kind"] == "startup").collect();
    assert_eq!(startups.len(), 5, "{list:?}");
    let mut paths: Vec<&str> = startups
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    paths.sort_unstable();
    let mut want = expected.clone();
    want.sort_unstable();
    assert_eq!(paths, want);
    // Started in run order.
    let started: Vec<&str> = expected
        .iter()
        .map(|p| {
            startups.iter().find(|e| e["path"] == *p).unwrap()["started_at"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(started.windows(2).all(|w| w[0] <= w[1]), "{started:?}");
    for e in startups {
        assert_eq!(e["status"], "ok", "{e}");
        assert!(e["input"].is_null() && e["args"].is_null() && e["env"].is_null());
        let detail = d.execution(e["id"].as_str().unwrap());
        assert_eq!(detail["events"][0]["type"], "input_echo");
        assert_eq!(detail["events"][0]["payload"], json!({"path": e["path"]}));
    }
}

/// Writes the lodash stand-in library file and returns its path.
fn write_lodash(d: &TestDaemon, text: &str) -> std::path::PathBuf {
    let dir = library_dir(d.dir.path());
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lodash-4.17.21.js");
    std::fs::write(&path, text).unwrap();
    path
}

const LODASH: &str = "console.log('lodash stand-in loading');\n\
    globalThis._ = { chunk: function (a, n) { var out = []; \
    for (var i = 0; i < a.length; i += n) out.push(a.slice(i, i + n)); return out; } };\n\
    var libraryVar = 'kept';\n";

#[test]
fn libraries_load_before_startup_files() {
    let d = TestDaemon::start();
    write_lodash(&d, LODASH);
    let t = d.template("lib");
    d.post(
        &format!("/templates/{t}/libraries"),
        json!({"name": "lodash"}),
    )
    .ok(201);
    d.add_startup(&t, "init.js", 0);
    let wt = d.worktree("lib");
    std::fs::write(
        wt.join("init.js"),
        "globalThis.chunks = _.chunk([1, 2, 3], 2);",
    )
    .unwrap();
    let s = ready(&d, &t, &wt);
    let sid = s["id"].as_str().unwrap().to_string();
    assert_eq!(eval(&d, &sid, "chunks"), json!([[1, 2], [3]]));
    assert_eq!(
        eval(&d, &sid, "_.chunk(['a', 'b', 'c', 'd'], 3)"),
        json!([["a", "b", "c"], ["d"]])
    );
    // A classic script in the global scope: its `var` is a global.
    assert_eq!(eval(&d, &sid, "libraryVar"), json!("kept"));
    // Library loads are not executions; their console output is discarded.
    let list = d.executions(&sid);
    assert!(
        list.iter()
            .all(|e| e["kind"] != "startup" || e["path"] == "init.js"),
        "{list:?}"
    );
    for e in &list {
        let detail = d.execution(e["id"].as_str().unwrap());
        assert!(
            !detail.to_string().contains("lodash stand-in loading"),
            "library console output must be discarded: {detail}"
        );
    }
}

#[test]
fn missing_library_is_library_not_cached() {
    let d = TestDaemon::start();
    let t = d.template("nolib");
    d.post(
        &format!("/templates/{t}/libraries"),
        json!({"name": "lodash"}),
    )
    .ok(201);
    let wt = d.worktree("nolib");
    let r = d.session_resp(&t, &wt);
    let details = expect_err(&r, 422, "LIBRARY_NOT_CACHED", "missing library");
    let expected_path = library_dir(d.dir.path()).join("lodash-4.17.21.js");
    let sid = details["session_id"].as_str().unwrap().to_string();
    assert_eq!(
        details,
        json!({"session_id": sid, "library": "lodash@4.17.21",
               "expected_path": expected_path.to_str().unwrap()})
    );
    let s = d.get_session(&sid);
    check_session(&s, "library not cached");
    assert_eq!(s["status"], "crashed");
    assert_eq!(
        s["last_error"],
        json!(format!(
            "library not cached: lodash@4.17.21 (expected {})",
            expected_path.display()
        ))
    );
    // Once the file is in place, a restart succeeds.
    write_lodash(&d, LODASH);
    d.restart(&sid).ok(200);
    assert_eq!(eval(&d, &sid, "typeof _.chunk"), json!("function"));
}

/// A library file that is not a regular file (a FIFO nobody writes) is LIBRARY_NOT_CACHED at
/// once, not a start (and a shutdown) blocked on its open; a relative `--library-dir` still
/// reports an absolute `expected_path` (spec §9).
#[test]
fn unreadable_libraries_are_library_not_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let libs = tmp.path().join("libs");
    std::fs::create_dir(&libs).unwrap();
    let fifo = libs.join("ramda-0.29.0.js");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    // The same directory, relative to the daemon's working directory (this test's).
    let cwd = std::env::current_dir().unwrap();
    let relative = format!(
        "{}{}",
        "../".repeat(cwd.components().count() - 1),
        libs.strip_prefix("/").unwrap().display()
    );
    let mut d = TestDaemon::start_with(&["--library-dir", &relative]);
    let t = d.template("fifo");
    d.post(
        &format!("/templates/{t}/libraries"),
        json!({"name": "ramda"}),
    )
    .ok(201);
    let r = d.session_resp(&t, &d.worktree("fifo"));
    let details = expect_err(&r, 422, "LIBRARY_NOT_CACHED", "a FIFO");
    assert_eq!(details["library"], "ramda@0.29.0");
    let expected = Path::new(details["expected_path"].as_str().unwrap());
    assert!(expected.is_absolute(), "{details}");
    assert_eq!(
        expected.canonicalize().unwrap(),
        fifo.canonicalize().unwrap()
    );
    // Nothing is left blocked: the daemon shuts down as usual.
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit().code(), Some(0));
}

#[test]
fn failing_libraries_are_startup_failed() {
    let d = TestDaemon::start();
    let t = d.template("badlib");
    d.settings(&t, json!({"limits": {"wall_ms": 300}}));
    d.post(
        &format!("/templates/{t}/libraries"),
        json!({"name": "lodash@4.17.21"}),
    )
    .ok(201);
    d.add_startup(&t, "init.js", 0);
    let wt = d.worktree("badlib");
    std::fs::write(wt.join("init.js"), "globalThis.ranStartup = true;").unwrap();

    write_lodash(&d, "throw new Error('lib broke');");
    let r = d.session_resp(&t, &wt);
    let details = expect_err(&r, 422, "STARTUP_FAILED", "throwing library");
    let sid = details["session_id"].as_str().unwrap().to_string();
    assert_eq!(
        details,
        json!({"session_id": sid, "execution_id": null, "path": null,
               "library": "lodash@4.17.21"})
    );
    let s = d.get_session(&sid);
    assert_eq!(s["status"], "crashed");
    let last_error = s["last_error"].as_str().unwrap();
    assert!(
        last_error.starts_with("library failed: lodash@4.17.21:"),
        "{last_error}"
    );
    assert!(last_error.contains("lib broke"), "{last_error}");
    // No startup file ran: libraries come first.
    assert_eq!(d.executions(&sid), Vec::<Value>::new());

    // A library that never ends is stopped by the wall limit.
    write_lodash(&d, "while (true) {}");
    let start = Instant::now();
    let r = d.restart(&sid);
    let details = expect_err(&r, 422, "STARTUP_FAILED", "looping library");
    assert_eq!(details["library"], "lodash@4.17.21");
    assert!(start.elapsed() < Duration::from_secs(20));
    let s = d.get_session(&sid);
    assert_eq!(s["status"], "crashed");
    assert!(
        s["last_error"]
            .as_str()
            .unwrap()
            .starts_with("library failed: lodash@4.17.21:"),
        "{s}"
    );
}

#[test]
fn looping_startup_file_fails_the_start_within_the_wall_limit() {
    let d = TestDaemon::start();
    let t = d.template("loop");
    d.settings(&t, json!({"limits": {"wall_ms": 300}}));
    d.add_startup(&t, "init.js", 0);
    let wt = d.worktree("loop");
    std::fs::write(wt.join("init.js"), "while (true) {}").unwrap();
    let start = Instant::now();
    let r = d.session_resp(&t, &wt);
    let details = expect_err(&r, 422, "STARTUP_FAILED", "looping startup file");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "the start must not hang"
    );
    assert_eq!(details["path"], "init.js");
    let e = d.execution(details["execution_id"].as_str().unwrap());
    assert_eq!(e["status"], "timeout");
    assert_eq!(e["error"]["code"], "TIMEOUT");
    assert_eq!(
        e["error"]["message"],
        "wall time limit exceeded (wall_ms=300)"
    );
    assert!(e["metrics"]["wall_ms"].as_u64().unwrap() < 2000, "{e}");
    let s = d.get_session(details["session_id"].as_str().unwrap());
    assert_eq!(s["status"], "crashed");
    assert_eq!(
        s["last_error"],
        "startup failed: init.js: wall time limit exceeded (wall_ms=300)"
    );
}

#[test]
fn template_in_use_until_every_session_is_closed() {
    let d = TestDaemon::start();
    let t = d.template("in-use");
    let a = d.session(&t);
    let b = d.session(&t);
    // SAFETY: kill(2) on the worker of our own daemon.
    unsafe { libc::kill(d.worker_pid(&b), libc::SIGKILL) };
    d.wait_for("the session to crash", || {
        (d.get_session(&b)["status"] == "crashed").then_some(())
    });

    let r = d.delete(&format!("/templates/{t}"));
    let details = expect_err(&r, 409, "TEMPLATE_IN_USE", "ready and crashed");
    assert_eq!(details["template_id"], json!(t));
    let mut listed: Vec<String> = details["session_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(listed, want);

    d.close(&a).ok(200);
    let r = d.delete(&format!("/templates/{t}"));
    let details = expect_err(&r, 409, "TEMPLATE_IN_USE", "crashed only");
    assert_eq!(details["session_ids"], json!([b]));

    d.close(&b).ok(200);
    d.delete(&format!("/templates/{t}")).ok(200);
    // Closed sessions keep their rows and template_id.
    assert_eq!(d.get_session(&a)["template_id"], json!(t));
    assert_eq!(d.get_session(&b)["status"], "closed");
}

#[test]
fn parallel_sessions_are_independent() {
    let d = TestDaemon::start();
    let t = d.template("parallel");
    let results: Vec<(String, i64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6i64)
            .map(|i| {
                let d = &d;
                let t = &t;
                scope.spawn(move || {
                    let wt = d.worktree(&format!("par-{i}"));
                    let r = d.session_resp(t, &wt);
                    let s = r.ok(201).clone();
                    assert_eq!(s["status"], "ready");
                    let sid = s["id"].as_str().unwrap().to_string();
                    eval(d, &sid, &format!("var mine = {i}; let n = 0;"));
                    for _ in 0..5 {
                        eval(d, &sid, "n += mine");
                    }
                    (sid, i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut pids = Vec::new();
    for (sid, i) in &results {
        assert_eq!(eval(&d, sid, "[mine, n]"), json!([i, i * 5]));
        pids.push(d.worker_pid(sid));
    }
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 6, "one worker per session");
}

/// Starts creating a session whose startup file loops, and returns once its row is `starting`
/// and its startup execution runs: `(session_id, startup execution_id)`.
fn starting(d: &TestDaemon) -> (String, String) {
    let sid = d.wait_for("a starting session", || {
        sessions(d, "?status=starting")
            .first()
            .map(|s| s["id"].as_str().unwrap().to_string())
    });
    let eid = d.running_execution(&sid);
    (sid, eid)
}

fn looping_template(d: &TestDaemon, name: &str) -> (String, std::path::PathBuf) {
    d.template_with_startup(name, "if (!globalThis.skipLoop) { while (true) {} }")
}

#[test]
fn a_starting_session_refuses_work_and_can_be_closed() {
    let d = TestDaemon::start();
    let (t, wt) = looping_template(&d, "close-starting");
    std::thread::scope(|scope| {
        let create = scope.spawn(|| d.session_resp(&t, &wt));
        let (sid, eid) = starting(&d);
        let s = d.get_session(&sid);
        check_session(&s, "starting");
        assert_eq!(s["status"], "starting");

        let want = json!({"session_id": sid, "status": "starting"});
        let r = d.repl(&sid, "1");
        assert_eq!(expect_err(&r, 409, "SESSION_NOT_READY", "REPL"), want);
        let r = d.run_file(&sid, "init.js", None, None);
        assert_eq!(expect_err(&r, 409, "SESSION_NOT_READY", "run-file"), want);
        let r = d.restart(&sid);
        assert_eq!(expect_err(&r, 409, "SESSION_NOT_READY", "restart"), want);
        let r = d.delete(&format!("/templates/{t}"));
        expect_err(&r, 409, "TEMPLATE_IN_USE", "starting blocks deletion");

        let closed = d.close(&sid).ok(200).clone();
        check_session(&closed, "closed while starting");
        assert_eq!(closed["status"], "closed");
        let r = create.join().unwrap();
        let details = expect_err(&r, 409, "SESSION_NOT_READY", "create closed meanwhile");
        assert_eq!(details, json!({"session_id": sid, "status": "closed"}));
        assert_eq!(d.get_session(&sid)["status"], "closed");

        let e = d.execution(&eid);
        assert_eq!(e["kind"], "startup");
        assert_eq!(e["status"], "cancelled");
        assert_eq!(e["error"]["message"], "execution cancelled: session closed");
    });
}

#[test]
fn cancelling_a_startup_execution_fails_the_start() {
    let d = TestDaemon::start();
    let (t, wt) = looping_template(&d, "cancel-startup");
    std::thread::scope(|scope| {
        let create = scope.spawn(|| d.session_resp(&t, &wt));
        let (sid, eid) = starting(&d);
        let e = d
            .post_raw(&format!("/executions/{eid}/cancel"), "")
            .ok(200)
            .clone();
        assert_eq!(e["status"], "cancelled");
        assert_eq!(e["error"]["message"], "execution cancelled");
        let r = create.join().unwrap();
        let details = expect_err(&r, 422, "STARTUP_FAILED", "cancelled startup");
        assert_eq!(
            details,
            json!({"session_id": sid, "execution_id": eid, "path": "init.js", "library": null})
        );
        let s = d.get_session(&sid);
        assert_eq!(s["status"], "crashed");
        assert_eq!(
            s["last_error"],
            "startup failed: init.js: execution cancelled"
        );
    });
}

#[test]
fn restart_while_restarting_is_refused() {
    let d = TestDaemon::start();
    let (t, wt) = looping_template(&d, "restart-starting");
    std::fs::write(wt.join("init.js"), "globalThis.n = 1;").unwrap();
    let sid = ready(&d, &t, &wt)["id"].as_str().unwrap().to_string();
    std::fs::write(wt.join("init.js"), "while (true) {}").unwrap();
    std::thread::scope(|scope| {
        let restart = scope.spawn(|| d.restart(&sid));
        let (_, eid) = starting(&d);
        let r = d.restart(&sid);
        let details = expect_err(&r, 409, "SESSION_NOT_READY", "second restart");
        assert_eq!(details, json!({"session_id": sid, "status": "starting"}));
        d.post_raw(&format!("/executions/{eid}/cancel"), "").ok(200);
        let r = restart.join().unwrap();
        let details = expect_err(&r, 422, "STARTUP_FAILED", "restart's startup cancelled");
        assert_eq!(details["execution_id"], json!(eid));
    });
    assert_eq!(d.get_session(&sid)["status"], "crashed");
}

#[test]
fn startup_file_paths_are_checked_when_the_session_starts() {
    let d = TestDaemon::start();
    let t = d.template("startup-escape");
    d.add_startup(&t, "init.js", 0);
    let wt = d.worktree("startup-escape");
    std::os::unix::fs::symlink("/etc/passwd", wt.join("init.js")).unwrap();
    let r = d.session_resp(&t, &wt);
    let details = expect_err(&r, 422, "STARTUP_FAILED", "escaping startup file");
    let e = d.execution(details["execution_id"].as_str().unwrap());
    assert_eq!(
        e["error"],
        json!({"code": "INVALID_PATH", "message": "startup file init.js: escapes_worktree",
               "name": null, "stack": null})
    );
    assert_eq!(e["events"].as_array().unwrap().len(), 2, "{e}");
}

#[test]
fn a_symlinked_worktree_is_resolved_once_and_stored_as_sent() {
    let d = TestDaemon::start();
    let t = d.template("linked");
    let real = d.worktree("real");
    write(&real, "main.js", "'from the real dir'");
    let link = d.dir.path().join("worktrees/link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let s = ready(&d, &t, &link);
    assert_eq!(s["worktree_path"], json!(link.to_str().unwrap()));
    let sid = s["id"].as_str().unwrap();
    let r = d.run_file(sid, "main.js", None, None);
    assert_eq!(r.ok(201)["result"]["json"], "from the real dir");
}

#[test]
fn memory_not_recovered_crashes_the_session() {
    let d = TestDaemon::start();
    let t = d.template("mem-crash");
    d.settings(&t, json!({"limits": {"mem_mb": 16}}));
    // Garbage the collector cannot free, kept by a global: a linked list, and arrays whose
    // elements cost the heap more than the engine's estimate of the memory in use counts.
    for input in [
        "globalThis.h = null; while (true) h = { next: h, v: [1, 2, 3] };",
        "var a = []; while (true) a.push({ x: Math.random(), y: 's' + Math.random() });",
        "var b = []; while (true) b.push(1);",
    ] {
        let sid = d.session(&t);
        let r = d.repl(&sid, input);
        let e = r.ok(201).clone();
        assert_eq!(e["status"], "error", "{input}: {e}");
        assert_eq!(e["error"]["code"], "MEMORY_LIMIT", "{input}: {e}");
        let s = d.wait_for("the session to crash", || {
            let s = d.get_session(&sid);
            (s["status"] == "crashed").then_some(s)
        });
        assert_eq!(
            s["last_error"], "memory limit exceeded (mem_mb=16)",
            "{input}"
        );
        assert!(s["pid"].is_null());
    }
}

#[test]
fn a_worker_killed_during_startup_fails_the_start() {
    let d = TestDaemon::start();
    let (t, wt) = looping_template(&d, "kill-starting");
    std::thread::scope(|scope| {
        let create = scope.spawn(|| d.session_resp(&t, &wt));
        let (sid, eid) = starting(&d);
        let s = d.get_session(&sid);
        let pid = pid_of(&s);
        assert!(
            alive(pid),
            "a starting session with a worker shows its pid: {s}"
        );
        // SAFETY: kill(2) on the worker of our own daemon.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let r = create.join().unwrap();
        let details = expect_err(&r, 422, "STARTUP_FAILED", "worker killed at startup");
        assert_eq!(
            details,
            json!({"session_id": sid, "execution_id": eid, "path": "init.js", "library": null})
        );
        let s = d.get_session(&sid);
        check_session(&s, "killed while starting");
        assert_eq!(s["status"], "crashed");
        assert_eq!(s["last_error"], "worker killed by signal SIGKILL");
        let e = d.execution(&eid);
        assert_eq!(e["status"], "error");
        assert_eq!(e["error"]["code"], "WORKER_CRASHED");
        assert_eq!(
            e["error"]["message"],
            "worker crashed: worker killed by signal SIGKILL"
        );
    });
}

/// `500 WORKER_START_FAILED`: a worker program that passes the daemon's probe but fails every
/// later start (a wrapper that is no fork server, runs the real worker once, then exits 3).
#[test]
fn a_worker_that_cannot_start_fails_the_session_with_worker_start_failed() {
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("probed");
    let wrapper = scratch.path().join("flaky-worker");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --zygote ] || [ -e '{m}' ]; then exit 3; fi\n: > '{m}'\nexec '{w}' \"$@\"\n",
            m = marker.display(),
            w = tests::bin_path("worker-dup").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let d = TestDaemon::start_with(&[
        "--worker-bin",
        wrapper.to_str().unwrap(),
        "--pool-size",
        "0",
    ]);
    let t = d.template("flaky");
    let wt = d.worktree("flaky");
    let r = d.session_resp(&t, &wt);
    let details = r.err(500, "WORKER_START_FAILED").clone();
    let sid = details["session_id"].as_str().unwrap().to_string();
    assert_eq!(
        details.as_object().unwrap().len(),
        1,
        "only session_id: {details}"
    );
    assert_eq!(
        r.body["error"]["message"].as_str().map(str::is_empty),
        Some(false)
    );
    let s = d.get(&format!("/sessions/{sid}")).ok(200).clone();
    assert_eq!(s["status"], "crashed", "{s}");
    assert!(
        s["last_error"]
            .as_str()
            .unwrap()
            .starts_with("worker failed to start: "),
        "{s}"
    );
    assert_eq!(s["pid"], Value::Null);
    d.get("/health").ok(200);
}

/// Every catalog library loads from a stand-in bundle in the library directory, in template
/// order, as a classic script without `module`, `exports` or `define`, and defines its global.
#[test]
fn every_catalog_library_loads_from_its_file_and_defines_its_global() {
    let d = TestDaemon::start();
    let dir = library_dir(d.dir.path());
    std::fs::create_dir_all(&dir).unwrap();
    let bundles = [
        (
            "dayjs-1.11.10.js",
            "dayjs",
            "globalThis.dayjs = function (s) { return { year: () => Number(String(s).slice(0, 4)) }; };",
        ),
        (
            "lodash-4.17.21.js",
            "lodash",
            "globalThis._ = { chunk: (a, n) => [a.slice(0, n), a.slice(n)] };",
        ),
        (
            "moment-2.29.4.js",
            "moment",
            "globalThis.moment = { utc: (ms) => ({ year: () => new Date(ms).getUTCFullYear() }) };",
        ),
        (
            "ramda-0.29.0.js",
            "ramda",
            "globalThis.R = { sum: (xs) => xs.reduce((a, b) => a + b, 0) };",
        ),
    ];
    let t = d.template("all-libs");
    for (file, id, body) in bundles {
        // Each bundle also records the load order and that no module system is visible.
        let source = format!(
            "console.log('loading {id}'); (globalThis.loaded = globalThis.loaded || []).push(['{id}', typeof module, typeof exports, typeof define]); {body}"
        );
        std::fs::write(dir.join(file), source).unwrap();
        d.post(&format!("/templates/{t}/libraries"), json!({ "name": id }))
            .ok(201);
    }
    let wt = d.worktree("all-libs");
    let s = ready(&d, &t, &wt);
    let sid = s["id"].as_str().unwrap().to_string();
    assert_eq!(
        eval(
            &d,
            &sid,
            "[_.chunk([1, 2, 3], 2), dayjs('2020-01-01').year(), moment.utc(0).year(), R.sum([1, 2])]"
        ),
        json!([[[1, 2], [3]], 2020, 1970, 3])
    );
    assert_eq!(
        eval(&d, &sid, "loaded"),
        json!([
            ["dayjs", "undefined", "undefined", "undefined"],
            ["lodash", "undefined", "undefined", "undefined"],
            ["moment", "undefined", "undefined", "undefined"],
            ["ramda", "undefined", "undefined", "undefined"]
        ])
    );
}

/// Concurrent restarts (spec §4.8): the first sets the session `starting`, and from then on the
/// others are refused with `409 SESSION_NOT_READY` (`starting`) instead of waiting their turn.
#[test]
fn concurrent_restarts_run_once_and_refuse_the_rest() {
    let d = TestDaemon::start();
    let (t, wt) = d.template_with_startup("restart-once", "globalThis.booted = true");
    let sid = ready(&d, &t, &wt)["id"].as_str().unwrap().to_string();
    // From now on a start never finishes on its own.
    std::fs::write(wt.join("init.js"), "while (true) {}").unwrap();
    let barrier = std::sync::Barrier::new(3);
    let answers: Vec<_> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    d.restart(&sid)
                })
            })
            .collect();
        // One restart runs the looping startup file; the two others have their answers by now.
        d.running_execution(&sid);
        d.wait_for("two restarts to be refused", || {
            let done = calls.iter().filter(|c| c.is_finished()).count();
            (done == 2).then_some(())
        });
        d.close(&sid).ok(200);
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let mut refused = 0;
    for r in &answers {
        let details = expect_err(r, 409, "SESSION_NOT_READY", "restart");
        if details["status"] == "starting" {
            refused += 1;
        } else {
            assert_eq!(
                details["status"], "closed",
                "the running restart ends with the close"
            );
        }
    }
    assert_eq!(refused, 2, "{answers:?}");
}

/// A close racing a restart: whichever wins, the session's old worker is stopped and reaped.
#[test]
fn close_racing_restart_leaves_no_worker_behind() {
    let d = TestDaemon::start_with(&["--pool-size", "0"]);
    let t = d.template("close-restart");
    for round in 0..8 {
        let sid = d.session(&t);
        let pid = d.worker_pid(&sid);
        let barrier = std::sync::Barrier::new(2);
        std::thread::scope(|scope| {
            let close = scope.spawn(|| {
                barrier.wait();
                d.close(&sid)
            });
            let restart = scope.spawn(|| {
                barrier.wait();
                d.restart(&sid)
            });
            assert_eq!(close.join().unwrap().status, 200, "round {round}");
            let r = restart.join().unwrap();
            assert!(
                r.status == 200 || r.status == 409,
                "round {round}: restart answered {}: {:?}",
                r.status,
                r.body
            );
        });
        assert_eq!(d.get_session(&sid)["status"], "closed", "round {round}");
        d.wait_for(&format!("round {round}: worker {pid} to be reaped"), || {
            process_gone(pid).then_some(())
        });
        d.wait_for(&format!("round {round}: no worker left"), || {
            tests::daemon::workers_of(d.pid()).is_empty().then_some(())
        });
    }
}
