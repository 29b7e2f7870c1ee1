//! A daemon killed with SIGKILL while eight sessions execute (spec §10.3, §10.4): every worker dies
//! within 1 s, and the next daemon on the same database sweeps the live state.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use tests::daemon::{TestDaemon, db_path, fork_server_of, process_gone, workers_of};

use crate::api_executions::check_detail;
use crate::api_sessions::check_session;

const BUSY: usize = 8;

/// `PRAGMA integrity_check` on the daemon's database, opened read-only.
fn integrity_check(db: &Path) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

/// Posts `while (true) {}` on `sid` from another thread; the answer never comes (the daemon dies).
fn spin(addr: String, sid: String) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let _ = agent
            .post(&format!("http://{addr}/api/v1/executions/repl"))
            .send(json!({"session_id": sid, "input": "while (true) {}"}).to_string());
    })
}

#[test]
fn daemon_kill9_with_eight_busy_sessions() {
    let mut d = TestDaemon::start();
    let t = d.template("busy-8");
    // Neither limit may end an execution before the kill does.
    d.settings(
        &t,
        json!({"limits": {"cpu_ms": 3_600_000, "wall_ms": 3_600_000}}),
    );
    let sessions: Vec<String> = (0..BUSY).map(|_| d.session(&t)).collect();
    let pids: Vec<i32> = sessions.iter().map(|sid| d.worker_pid(sid)).collect();
    let calls: Vec<_> = sessions
        .iter()
        .map(|sid| spin(d.addr.clone(), sid.clone()))
        .collect();
    let running: Vec<String> = sessions
        .iter()
        .map(|sid| d.running_execution(sid))
        .collect();
    // No worker is half-started when the daemon dies: the pool is full.
    d.wait_pool_full(2);
    let workers = workers_of(d.pid());
    assert_eq!(
        workers.len(),
        BUSY + 2,
        "8 busy and 2 pool workers: {workers:?}"
    );
    for pid in &pids {
        assert!(workers.contains(pid), "{pid} in {workers:?}");
    }
    // The fork server goes too.
    let mut watched = workers.clone();
    watched.extend(fork_server_of(d.pid()));

    d.signal(libc::SIGKILL);
    d.wait_exit();
    // Spec §10.4: the parent-death signal takes every worker down with the daemon.
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let alive: Vec<i32> = watched
            .iter()
            .copied()
            .filter(|p| !process_gone(*p))
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "workers {alive:?} still run 1 s after the daemon died"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for call in calls {
        call.join().unwrap();
    }
    let db = db_path(d.dir.path());
    assert_eq!(integrity_check(&db), "ok", "as the kill left it");

    d.respawn();
    for (sid, execution) in sessions.iter().zip(&running) {
        let s = d.get_session(sid);
        check_session(&s, "swept busy session");
        assert_eq!(s["status"], "crashed", "{s}");
        assert_eq!(s["last_error"], "daemon restarted", "{s}");
        assert!(s["pid"].is_null(), "{s}");
        for e in d.executions(sid) {
            assert_ne!(e["status"], "running", "{e}");
        }
        let e = d.execution(execution);
        check_detail(&e, "swept execution");
        assert_eq!(e["status"], "error", "{e}");
        assert_eq!(
            e["error"],
            json!({"code": "DAEMON_RESTARTED", "message": "daemon restarted", "name": null,
                   "stack": null})
        );
    }
    assert_eq!(integrity_check(&db), "ok", "after the sweep");
    assert_eq!(d.get("/health").status, 200);
}
