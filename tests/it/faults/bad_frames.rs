//! Protocol faults (spec §6, §7.4, §10.4): a worker that answers an execution with a garbage frame
//! or an oversized length prefix is killed as a protocol error; only its session crashes.

use serde_json::json;
use tests::bad_worker::{GARBAGE, OVERSIZED};
use tests::daemon::{TestDaemon, children_of};

use super::{wait_gone, wait_status};
use crate::api_conventions::expect_err;
use crate::api_executions::check_detail;
use crate::api_sessions::{check_session, eval};

/// A daemon whose workers all run behind the bad worker proxy.
fn bad_daemon() -> TestDaemon {
    let bin = tests::bin_path("bad-worker");
    TestDaemon::start_with(&["--worker-bin", bin.to_str().unwrap()])
}

/// Runs an execution whose source carries `marker` and checks that the daemon treats the answer as
/// a protocol error with `detail`, kills that worker, and keeps everything else running.
fn check_protocol_fault(marker: &str, detail: &str) {
    let d = bad_daemon();
    let t = d.template("bad-frames");
    let witness = d.session(&t);
    assert_eq!(eval(&d, &witness, "1+1"), json!(2));
    let sid = d.session(&t);
    // The proxy is transparent until asked to misbehave.
    assert_eq!(eval(&d, &sid, "var kept = 40; kept + 2"), json!(42));
    let pid = d.worker_pid(&sid);
    let real = children_of(pid);
    assert_eq!(real.len(), 1, "the proxy runs one real worker: {real:?}");

    let last_error = format!("worker protocol error: {detail}");
    let message = format!("worker crashed: {last_error}");
    let e = d.repl(&sid, &format!("'{marker}'")).ok(201).clone();
    check_detail(&e, marker);
    assert_eq!(e["status"], "error", "{e}");
    assert_eq!(
        e["error"],
        json!({"code": "WORKER_CRASHED", "message": message, "name": null, "stack": null})
    );
    assert!(e["result"].is_null(), "{e}");
    let last = e["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "system");
    assert_eq!(
        last["payload"],
        json!({"level": "error", "message": message})
    );
    assert_eq!(
        d.execution(e["id"].as_str().unwrap()),
        e,
        "stored as answered"
    );

    let s = wait_status(&d, &sid, "crashed");
    check_session(&s, marker);
    assert_eq!(s["last_error"], json!(last_error));
    assert!(s["pid"].is_null(), "{s}");
    // The worker was killed with its whole process group.
    wait_gone(&d, pid);
    wait_gone(&d, real[0]);

    assert_eq!(d.get("/health").status, 200, "the daemon stays healthy");
    assert_eq!(eval(&d, &witness, "1+1"), json!(2), "the witness answers");
    let r = d.repl(&sid, "1");
    let details = expect_err(&r, 409, "SESSION_NOT_READY", "after the protocol error");
    assert_eq!(details["status"], "crashed");
    // A restart revives the session with a new worker; its JavaScript state is gone.
    let s = d.restart(&sid).ok(200).clone();
    assert_eq!(s["status"], "ready");
    assert_ne!(s["pid"], json!(pid));
    assert_eq!(eval(&d, &sid, "typeof kept"), json!("undefined"));
}

#[test]
fn garbage_frame_is_a_protocol_error() {
    check_protocol_fault(GARBAGE, "unreadable frame: wrong msgpack marker Reserved");
}

#[test]
fn oversized_frame_is_a_protocol_error() {
    check_protocol_fault(OVERSIZED, "unreadable frame: frame size too big");
}
