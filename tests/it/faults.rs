//! Faults (spec §6, §7.4, §10.3, §10.6): workers killed while idle or busy, a daemon killed and
//! restarted on the same database, and a graceful shutdown while an execution runs. Protocol
//! faults (garbage and oversized frames) and a kill -9 with eight busy sessions are submodules.

mod bad_frames;
mod daemon_kill;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tests::daemon::{Resp, TestDaemon, process_gone, workers_of};

use crate::api_conventions::expect_err;
use crate::api_executions::check_detail;
use crate::api_sessions::{check_session, eval};

fn kill9(pid: i32) {
    // SAFETY: kill(2) on a worker of our own daemon.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

fn wait_status(d: &TestDaemon, sid: &str, status: &str) -> Value {
    d.wait_for(&format!("session {sid} to be {status}"), || {
        let s = d.get_session(sid);
        (s["status"] == status).then_some(s)
    })
}

fn wait_gone(d: &TestDaemon, pid: i32) {
    d.wait_for(&format!("process {pid} to be gone"), || {
        process_gone(pid).then_some(())
    });
}

const CRASH: &str = "worker killed by signal SIGKILL";

/// Kills the worker of `sid` while `busy` (a long execution runs) or idle, and checks that the
/// damage is contained to that session.
fn kill_and_check(d: &TestDaemon, sid: &str, witness: &str, busy: bool) {
    let pid = d.worker_pid(sid);
    let execution = std::thread::scope(|scope| {
        let call =
            busy.then(|| scope.spawn(|| d.repl(sid, "console.log('spinning'); while (true) {}")));
        let running = busy.then(|| d.running_execution(sid));
        kill9(pid);
        call.map(|c| (c.join().unwrap(), running.unwrap()))
    });
    if let Some((r, running)) = execution {
        let e = r.ok(201).clone();
        check_detail(&e, "killed mid-execution");
        assert_eq!(e["id"], json!(running));
        assert_eq!(e["status"], "error");
        let message = format!("worker crashed: {CRASH}");
        assert_eq!(
            e["error"],
            json!({"code": "WORKER_CRASHED", "message": message, "name": null, "stack": null})
        );
        let last = e["events"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["type"], "system");
        assert_eq!(
            last["payload"],
            json!({"level": "error", "message": message})
        );
        assert_eq!(d.execution(&running), e);
    }
    let s = wait_status(d, sid, "crashed");
    check_session(&s, "after kill");
    assert_eq!(s["last_error"], CRASH);
    assert!(s["pid"].is_null());
    wait_gone(d, pid);
    assert_eq!(d.get("/health").status, 200, "the daemon stays healthy");
    let before = eval(d, witness, "witness").as_i64().unwrap();
    assert_eq!(
        eval(d, witness, "witness += 1"),
        json!(before + 1),
        "another session keeps answering"
    );
    let r = d.repl(sid, "1");
    let details = expect_err(&r, 409, "SESSION_NOT_READY", "after kill");
    assert_eq!(details["status"], "crashed");
}

#[test]
fn killed_worker_mid_execution_is_worker_crashed() {
    let d = TestDaemon::start();
    let t = d.template("crash");
    let witness = d.session(&t);
    eval(&d, &witness, "var witness = 0");
    let sid = d.session(&t);
    kill_and_check(&d, &sid, &witness, true);
    // The witness's state survived.
    assert_eq!(eval(&d, &witness, "witness"), json!(1));
}

#[test]
fn repeated_worker_kills_are_each_contained() {
    let d = TestDaemon::start();
    let t = d.template("crash-loop");
    let witness = d.session(&t);
    eval(&d, &witness, "var witness = 0");
    let sid = d.session(&t);
    for round in 0..5 {
        let busy = round % 2 == 1;
        eval(&d, &sid, &format!("var round = {round}"));
        kill_and_check(&d, &sid, &witness, busy);
        let s = d.restart(&sid).ok(200).clone();
        assert_eq!(s["status"], "ready");
        assert!(s["last_error"].is_null());
        assert_eq!(eval(&d, &sid, "typeof round"), json!("undefined"));
    }
    assert_eq!(eval(&d, &witness, "witness"), json!(5));
    let crashes = d
        .executions(&sid)
        .into_iter()
        .filter(|e| e["error"]["code"] == "WORKER_CRASHED")
        .count();
    assert_eq!(crashes, 2, "two busy rounds");
}

#[test]
fn daemon_killed_and_restarted_sweeps_live_state() {
    let mut d = TestDaemon::start();
    let t = d.template("sweep");
    d.add_startup(&t, "init.js", 3);
    let detail_before = d.get(&format!("/templates/{t}")).ok(200).clone();

    let mk = |name: &str| {
        let wt = d.worktree(name);
        std::fs::write(wt.join("init.js"), "globalThis.booted = true;").unwrap();
        d.session_resp(&t, &wt).ok(201)["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let busy = mk("busy");
    let idle = mk("idle");
    let crashed = mk("crashed");
    let closed = mk("closed");
    eval(&d, &idle, "var lost = 1");
    kill9(d.worker_pid(&crashed));
    wait_status(&d, &crashed, "crashed");
    d.close(&closed).ok(200);
    let closed_row = d.get_session(&closed);
    let crashed_row = d.get_session(&crashed);
    let pids = [d.worker_pid(&busy), d.worker_pid(&idle)];
    let pool = workers_of(d.pid());

    // A long execution is running when the daemon is killed.
    let addr = d.addr.clone();
    let busy_id = busy.clone();
    let call = std::thread::spawn(move || {
        // The connection dies with the daemon; the result is irrelevant.
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let _ = agent
            .post(&format!("http://{addr}/api/v1/executions/repl"))
            .send(
                json!({"session_id": busy_id, "input": "console.log('x'); while (true) {}"})
                    .to_string(),
            );
    });
    let running = d.running_execution(&busy);
    // Wait until the console event is committed so it is part of what survives, and until the
    // execution's usage has been stored once (every 0.5 s while it runs).
    d.wait_for("the console event", || {
        (d.execution(&running)["events"].as_array().unwrap().len() >= 2).then_some(())
    });
    let db = rusqlite::Connection::open(tests::daemon::db_path(d.dir.path())).unwrap();
    d.wait_for("stored usage", || {
        let stored: i64 = db
            .query_row(
                "SELECT wall_ms FROM executions WHERE id = ?1",
                [&running],
                |row| row.get(0),
            )
            .ok()?;
        (stored > 0).then_some(())
    });
    drop(db);
    // And another session is still starting: its startup file loops.
    let t2 = d.template("sweep-starting");
    d.add_startup(&t2, "init.js", 0);
    let wt2 = d.worktree("starting");
    std::fs::write(wt2.join("init.js"), "while (true) {}").unwrap();
    let addr = d.addr.clone();
    let body = json!({"template_id": t2, "workspace_id": "w", "base_commit_oid": "c",
                      "worktree_path": wt2.to_str().unwrap()})
    .to_string();
    let create = std::thread::spawn(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let _ = agent
            .post(&format!("http://{addr}/api/v1/sessions"))
            .send(body);
    });
    let starting = d.wait_for("a starting session", || {
        let list = d.get("/sessions?status=starting").ok(200).clone();
        list[0]["id"].as_str().map(str::to_string)
    });
    let startup = d.running_execution(&starting);

    d.kill_and_restart();
    call.join().unwrap();
    create.join().unwrap();

    let s = d.get_session(&starting);
    check_session(&s, "swept while starting");
    assert_eq!(s["status"], "crashed");
    assert_eq!(s["last_error"], "daemon restarted");
    let e = d.execution(&startup);
    check_detail(&e, "swept startup execution");
    assert_eq!(e["kind"], "startup");
    assert_eq!(e["error"]["code"], "DAEMON_RESTARTED");
    let summary = d.get("/runtime/summary").ok(200).clone();
    assert_eq!(summary["active_sessions"], 0, "{summary}");

    // No execution is left running; the running one was swept.
    for sid in [&busy, &idle, &crashed, &closed, &starting] {
        for e in d.executions(sid) {
            assert_ne!(e["status"], "running", "{e}");
        }
    }
    let e = d.execution(&running);
    check_detail(&e, "swept");
    // The sweep keeps the last stored wall and CPU time (spec §10.3), not zero.
    assert!(e["metrics"]["wall_ms"].as_u64() > Some(0), "{e}");
    assert_eq!(e["status"], "error");
    assert_eq!(
        e["error"],
        json!({"code": "DAEMON_RESTARTED", "message": "daemon restarted", "name": null,
               "stack": null})
    );
    let events = e["events"].as_array().unwrap();
    assert_eq!(events[1]["payload"], json!({"level": "log", "text": "x"}));
    let last = events.last().unwrap();
    assert_eq!(last["type"], "system");
    assert_eq!(
        last["payload"],
        json!({"level": "error", "message": "daemon restarted"})
    );

    // Live sessions are crashed; crashed and closed rows are unchanged.
    for sid in [&busy, &idle] {
        let s = d.get_session(sid);
        check_session(&s, "swept session");
        assert_eq!(s["status"], "crashed");
        assert_eq!(s["last_error"], "daemon restarted");
        assert!(s["pid"].is_null());
    }
    assert_eq!(d.get_session(&crashed), crashed_row);
    assert_eq!(d.get_session(&closed), closed_row);
    // Templates are intact.
    assert_eq!(d.get(&format!("/templates/{t}")).ok(200), &detail_before);

    // The old workers died with the daemon.
    for pid in pids.iter().chain(&pool) {
        wait_gone(&d, *pid);
    }

    // A crashed session can be revived; its JS state is gone.
    for sid in [&idle, &busy, &crashed] {
        let s = d.restart(sid).ok(200).clone();
        assert_eq!(s["status"], "ready");
        assert!(s["last_error"].is_null());
    }
    assert_eq!(
        eval(&d, &idle, "[typeof lost, booted]"),
        json!(["undefined", true])
    );
    let r = d.restart(&closed);
    expect_err(&r, 409, "SESSION_NOT_READY", "closed stays closed");
    assert_eq!(d.get("/health").status, 200);
}

/// Runs `while (true) {}` on `sid` and returns the answer (when the execution is stopped).
fn spin(d: &TestDaemon, sid: &str) -> Result<Resp, String> {
    d.try_request(
        "POST",
        "/api/v1/executions/repl",
        Some(&json!({"session_id": sid, "input": "while (true) {}"}).to_string()),
    )
}

/// Starts a long execution on `sid`, sends `signals` to the daemon (waiting for requests to be
/// refused after the first), and returns the execution's answer (if any), its id, and the
/// response seen during shutdown (`None` when the connection was refused).
fn shutdown_during(
    d: &TestDaemon,
    sid: &str,
    signals: &[i32],
) -> (Result<Resp, String>, String, Option<Resp>) {
    std::thread::scope(|scope| {
        let call = scope.spawn(|| spin(d, sid));
        let running = d.running_execution(sid);
        let mut refused = None;
        for (i, signal) in signals.iter().enumerate() {
            d.signal(*signal);
            if i == 0 {
                // New requests are refused: 503 SHUTTING_DOWN, or the connection is refused.
                refused = d.wait_for("requests to be refused", || {
                    match d.try_request("GET", "/api/v1/health", None) {
                        Err(_) => Some(None),
                        Ok(r) if r.status == 503 => Some(Some(r)),
                        Ok(_) => None,
                    }
                });
            }
        }
        (call.join().unwrap(), running, refused)
    })
}

fn check_refused(refused: Option<Resp>) {
    if let Some(r) = refused {
        let details = expect_err(&r, 503, "SHUTTING_DOWN", "during shutdown");
        assert_eq!(details, json!({}));
        assert_eq!(r.body["error"]["message"], "daemon is shutting down");
    }
}

/// Two sessions and a full pool; returns the session ids and every worker pid.
fn two_sessions(d: &TestDaemon) -> (String, String, Vec<i32>) {
    let t = d.template("shutdown");
    // Neither limit may end the execution before the shutdown does.
    d.settings(&t, json!({"limits": {"cpu_ms": 60000, "wall_ms": 60000}}));
    let sid = d.session(&t);
    let idle = d.session(&t);
    d.wait_pool_full(2);
    let workers = workers_of(d.pid());
    assert_eq!(
        workers.len(),
        4,
        "2 sessions and 2 pool workers: {workers:?}"
    );
    assert!(workers.contains(&d.worker_pid(&sid)));
    assert!(workers.contains(&d.worker_pid(&idle)));
    (sid, idle, workers)
}

/// After a shutdown: the next start sweeps the sessions left `ready`.
fn check_after_shutdown(d: &mut TestDaemon, running: &str, sessions: [&str; 2]) {
    d.respawn();
    let e = d.execution(running);
    check_detail(&e, "after shutdown and restart");
    assert_eq!(
        e["error"]["message"], "execution cancelled: daemon shutting down",
        "the execution was finalised before the daemon exited: {e}"
    );
    for sid in sessions {
        let s = d.get_session(sid);
        assert_eq!(
            (s["status"].as_str(), s["last_error"].as_str()),
            (Some("crashed"), Some("daemon restarted")),
            "shutdown leaves session rows as they were, and the next start sweeps them: {s}"
        );
    }
}

#[test]
fn sigterm_cancels_the_running_execution_after_the_grace_period() {
    let mut d = TestDaemon::start();
    let (sid, idle, workers) = two_sessions(&d);
    let start = Instant::now();
    let (answer, running, refused) = shutdown_during(&d, &sid, &[libc::SIGTERM]);
    check_refused(refused);

    // The running execution's request is answered once it is cancelled (after 10 s).
    let r = answer.expect("the running execution's request must be answered");
    let e = r.ok(201).clone();
    check_detail(&e, "execution during shutdown");
    assert_eq!(e["id"], json!(running));
    assert_eq!(e["status"], "cancelled", "{e}");
    assert_eq!(
        e["error"],
        json!({"code": "CANCELLED", "message": "execution cancelled: daemon shutting down",
               "name": null, "stack": null})
    );
    assert!(
        start.elapsed() < Duration::from_secs(50),
        "cancelled by the shutdown, not by a limit"
    );

    let status = d.wait_exit();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    for pid in workers {
        assert!(process_gone(pid), "worker {pid} outlived the daemon");
    }
    check_after_shutdown(&mut d, &running, [&sid, &idle]);
}

#[test]
fn a_second_signal_skips_the_grace_period() {
    let mut d = TestDaemon::start();
    let (sid, idle, workers) = two_sessions(&d);
    let start = Instant::now();
    let (answer, running, refused) = shutdown_during(&d, &sid, &[libc::SIGTERM, libc::SIGINT]);
    check_refused(refused);
    let status = d.wait_exit();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        start.elapsed() < Duration::from_secs(9),
        "the second signal skips the 10 s wait"
    );
    if let Ok(r) = answer {
        let e = r.ok(201).clone();
        assert_eq!(e["status"], "cancelled", "{e}");
    }
    for pid in workers {
        wait_gone(&d, pid);
    }
    check_after_shutdown(&mut d, &running, [&sid, &idle]);
}

/// A second signal that comes while the workers' grace periods run (a worker that answers
/// nothing takes 2 s + 2 s to stop) skips what is left of them: SIGKILL at once (spec §10.6).
#[test]
fn a_second_signal_during_the_worker_stops_kills_them_at_once() {
    let mut d = TestDaemon::start();
    let sid = d.session(&d.template("stuck"));
    let pid = d.worker_pid(&sid);
    // SAFETY: kill with a pid and a signal number; a stopped process can only be killed.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    d.signal(libc::SIGTERM);
    // Nothing runs, so the drain ends at once and the worker stops begin; the listener closed.
    d.wait_for("new connections to be refused", || {
        std::net::TcpStream::connect(&d.addr).is_err().then_some(())
    });
    let second = Instant::now();
    d.signal(libc::SIGINT);
    let status = d.wait_exit();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    // Without the second signal the stuck worker alone holds the exit for 4 s after the first.
    assert!(
        second.elapsed() < Duration::from_secs(3),
        "exit {:?} after the second signal",
        second.elapsed()
    );
    assert!(process_gone(pid), "worker {pid} outlived the daemon");
}

/// A warm pool worker killed while idle: the next create still starts (with another worker),
/// whether or not the daemon noticed the death before handing the worker out.
#[test]
fn a_pool_worker_killed_while_idle_does_not_fail_the_next_start() {
    let d = TestDaemon::start_with(&["--pool-size", "1"]);
    let t = d.template("pool-kill");
    for round in 0..5 {
        d.wait_pool_full(1);
        let live: Vec<i32> = d.get("/runtime/summary").body["workers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| w["pid"].as_i64())
            .map(|pid| i32::try_from(pid).unwrap())
            .collect();
        let idle: Vec<i32> = workers_of(d.pid())
            .into_iter()
            .filter(|pid| !live.contains(pid))
            .collect();
        assert_eq!(idle.len(), 1, "round {round}: one pool worker: {idle:?}");
        kill9(idle[0]);
        let sid = d.session(&t);
        assert_eq!(eval(&d, &sid, "6 * 7"), json!(42), "round {round}");
        assert_ne!(d.worker_pid(&sid), idle[0]);
    }
}

/// A start that fails on its own during the shutdown's grace period is answered and recorded like
/// any failed start (spec §10.6 step 2: work in progress continues and is answered); only a start
/// the shutdown cut short answers 503 and stays `starting`.
#[test]
fn a_start_failing_during_the_grace_period_is_recorded() {
    let mut d = TestDaemon::start();
    let (t, wt) = d.template_with_startup(
        "grace-fail",
        "const t = Date.now(); while (Date.now() - t < 1500) {} throw new Error('boom')",
    );
    let sid = std::thread::scope(|scope| {
        let create = scope.spawn(|| d.session_resp(&t, &wt));
        let sid = d.wait_for("a starting session", || {
            let list = d.get("/sessions?status=starting").body;
            list.as_array()?.first()?["id"].as_str().map(str::to_string)
        });
        d.running_execution(&sid);
        d.signal(libc::SIGTERM);
        let r = create.join().unwrap();
        let details = expect_err(&r, 422, "STARTUP_FAILED", "a failing start during shutdown");
        assert_eq!(details["session_id"], json!(sid));
        sid
    });
    let status = d.wait_exit();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    d.respawn();
    let s = d.get_session(&sid);
    assert_eq!(s["status"], "crashed", "{s}");
    assert_eq!(s["last_error"], "startup failed: init.js: boom", "{s}");
}

/// The running gauge of `/metrics`.
fn running_gauge(d: &TestDaemon) -> String {
    d.get("/metrics")
        .text
        .lines()
        .find_map(|l| l.strip_prefix("vm_system_executions_running "))
        .unwrap_or_default()
        .to_string()
}

/// A database another process keeps locked past the busy timeout while an execution writes its
/// events: the request fails (500), but the execution is stopped on the worker, so the session
/// and the running gauge are not left behind, and the next execution runs once the lock is gone.
#[test]
fn an_execution_whose_events_cannot_be_written_is_stopped() {
    let d = TestDaemon::start();
    let t = d.template("locked-db");
    d.settings(&t, json!({"limits": {"wall_ms": 60000, "cpu_ms": 60000}}));
    let sid = d.session(&t);
    let db = rusqlite::Connection::open(tests::daemon::db_path(d.dir.path())).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Events to commit 50 ms in, then code that would run for a minute.
    let r = d.repl(
        &sid,
        "for (let i = 0; i < 20; i++) console.log(i); globalThis.ran = true; while (true) {}",
    );
    assert_eq!(r.status, 500, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "INTERNAL", "{:?}", r.body);
    db.execute_batch("ROLLBACK").unwrap();
    assert_eq!(running_gauge(&d), "0");
    // The worker is free: the next execution runs (and sees the stopped one's state).
    assert_eq!(eval(&d, &sid, "globalThis.ran === true"), json!(true));
    assert_eq!(d.get_session(&sid)["status"], "ready");
}

/// The database file deleted while the daemon runs: writes fail (500) instead of being
/// acknowledged and then lost with the deleted file; reads and health go on.
#[test]
fn writes_fail_once_the_database_file_is_deleted() {
    let d = TestDaemon::start();
    let t = d.template("before");
    let sid = d.session(&t);
    let db = tests::daemon::db_path(d.dir.path());
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.clone().into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
    let r = d.post("/templates", json!({"name": "after"}));
    assert_eq!(r.status, 500, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "INTERNAL", "{:?}", r.body);
    let r = d.repl(&sid, "1 + 1");
    assert_eq!(r.status, 500, "{:?}", r.body);
    assert_eq!(d.get("/health").status, 200);
    assert_eq!(d.get(&format!("/templates/{t}")).status, 200);
}

/// One request on a raw keep-alive connection: the status and the body.
fn raw_get(stream: &mut std::net::TcpStream, path: &str) -> (u16, Value) {
    use std::io::{BufRead, BufReader, Read, Write};
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[test]
fn a_connection_open_before_shutdown_gets_503_and_new_ones_are_refused() {
    let mut d = TestDaemon::start();
    let (sid, _idle, _workers) = two_sessions(&d);
    let mut open = std::net::TcpStream::connect(&d.addr).unwrap();
    open.set_read_timeout(Some(tests::DEADLINE)).unwrap();
    assert_eq!(raw_get(&mut open, "/api/v1/health").0, 200);
    std::thread::scope(|scope| {
        // A running execution keeps the daemon draining (spec §10.6 step 2).
        let call = scope.spawn(|| spin(&d, &sid));
        d.running_execution(&sid);
        d.signal(libc::SIGTERM);
        // The same connection, opened before the signal: answered 503 (spec §10.6 step 1).
        let (_, body) = d.wait_for("the open connection to get 503", || {
            let (status, body) = raw_get(&mut open, "/api/v1/health");
            (status == 503).then_some((status, body))
        });
        assert_eq!(body["error"]["code"], "SHUTTING_DOWN", "{body}");
        let (status, body) = raw_get(&mut open, "/api/v1/templates");
        assert_eq!(
            (status, &body["error"]["code"]),
            (503, &json!("SHUTTING_DOWN"))
        );
        // No new connection is accepted.
        d.wait_for("new connections to be refused", || {
            std::net::TcpStream::connect(&d.addr).is_err().then_some(())
        });
        d.signal(libc::SIGINT);
        let _ = call.join().unwrap();
    });
    let status = d.wait_exit();
    assert_eq!(status.code(), Some(0), "exit status {status}");
}

/// The fork server (spec §10.4 workers are forked from a pre-booted one): every session draws its
/// own `Math.random` numbers; a killed fork server takes the workers it forked down with it (their
/// sessions crash like any killed worker), and the next start forks from a new one.
#[test]
fn a_killed_fork_server_crashes_its_sessions_and_is_replaced() {
    let d = TestDaemon::start_with(&["--pool-size", "1"]);
    let t = d.template("forked");
    let a = d.session(&t);
    let b = d.session(&t);
    let first = tests::daemon::fork_server_of(d.pid()).expect("a fork server runs");
    let draw = "[Math.random(), Math.random()]";
    let (ra, rb) = (eval(&d, &a, draw), eval(&d, &b, draw));
    assert_ne!(ra, rb, "two sessions drew the same numbers");
    assert_ne!(eval(&d, &a, draw), ra, "a session repeated its numbers");
    let workers = workers_of(d.pid());
    assert_eq!(
        workers.len(),
        3,
        "2 sessions and 1 pool worker: {workers:?}"
    );

    kill9(first);
    for sid in [&a, &b] {
        let s = wait_status(&d, sid, "crashed");
        assert_eq!(s["last_error"], CRASH, "{s}");
        assert!(s["pid"].is_null(), "{s}");
    }
    for pid in &workers {
        wait_gone(&d, *pid);
    }
    d.get("/health").ok(200);

    // New workers come from a new fork server; a crashed session restarts on one of them.
    let c = d.session(&t);
    assert_eq!(eval(&d, &c, "40 + 2"), json!(42));
    let second = tests::daemon::fork_server_of(d.pid()).expect("a new fork server runs");
    assert_ne!(second, first);
    d.restart(&a).ok(200);
    assert_eq!(eval(&d, &a, "typeof globalThis.answer"), json!("undefined"));
    assert!(workers_of(d.pid()).contains(&d.worker_pid(&a)));
}
