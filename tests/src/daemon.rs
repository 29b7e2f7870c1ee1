//! `TestDaemon`: a real `vm-system serve` on port 0 with its own temp directory, and a small
//! HTTP client for it. The daemon is killed and reaped on drop.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::DEADLINE;

/// A response: status, headers and the body (parsed as JSON when it is JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The error code of an error envelope.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// `details` of an error envelope.
    pub fn details(&self) -> &Value {
        &self.body["error"]["details"]
    }

    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected status; body {}", self.text);
        &self.body
    }

    /// Asserts an error envelope with this status and code.
    #[track_caller]
    pub fn err(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "body {}",
            self.text
        );
        self.details()
    }
}

/// A running daemon.
pub struct TestDaemon {
    pub child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
    agent: ureq::Agent,
    extra: Vec<String>,
    /// Soft `RLIMIT_NOFILE` the daemon is started with, if not the test process's own.
    open_files: Option<u64>,
}

/// Paths of a daemon's state inside its temp directory.
pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("state/vm-system.db")
}

pub fn library_dir(dir: &Path) -> PathBuf {
    dir.join("libraries")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .new_agent()
}

impl TestDaemon {
    /// Starts a daemon with a fresh state directory.
    pub fn start() -> TestDaemon {
        Self::start_with(&[])
    }

    /// Starts a daemon with extra `serve` flags.
    pub fn start_with(extra: &[&str]) -> TestDaemon {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra.iter().map(|s| s.to_string()).collect(), None)
    }

    /// Starts a daemon whose soft limit on open files is `soft` (the hard limit stays as is).
    pub fn start_with_open_files(soft: u64) -> TestDaemon {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, Vec::new(), Some(soft))
    }

    fn spawn(
        dir: &Path,
        extra: &[String],
        open_files: Option<u64>,
    ) -> Result<(Child, String), String> {
        let mut command = Command::new(crate::bin_path("orchestrator-dup"));
        command.arg("serve");
        if !extra.iter().any(|a| a == "--listen") {
            command.arg("--listen").arg("127.0.0.1:0");
        }
        command.arg("--db").arg(db_path(dir));
        if !extra.iter().any(|a| a == "--library-dir") {
            command.arg("--library-dir").arg(library_dir(dir));
        }
        command
            .args(extra)
            .env("VM_SYSTEM_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if !extra.iter().any(|a| a == "--worker-bin") {
            command
                .arg("--worker-bin")
                .arg(crate::bin_path("worker-dup"));
        }
        if let Some(soft) = open_files {
            // SAFETY: only getrlimit/setrlimit run between fork and exec; both are
            // async-signal-safe and touch no memory the parent shares.
            unsafe {
                command.pre_exec(move || {
                    let mut limit = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    limit.rlim_cur = soft.min(limit.rlim_max);
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(DEADLINE) {
            Ok(line) if line.starts_with("vm-system listening on http://") => {
                let addr = line
                    .trim()
                    .trim_start_matches("vm-system listening on http://")
                    .to_string();
                Ok((child, addr))
            }
            Ok(line) => {
                let status = child.wait().unwrap();
                Err(format!("no ready line: {line:?}, exit {status}"))
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err("no ready line in time".into())
            }
        }
    }

    fn start_in(dir: tempfile::TempDir, extra: Vec<String>, open_files: Option<u64>) -> TestDaemon {
        let (child, addr) = Self::spawn(dir.path(), &extra, open_files).unwrap();
        TestDaemon {
            child,
            addr,
            dir,
            agent: agent(),
            extra,
            open_files,
        }
    }

    /// Runs `serve` on this daemon's state and returns its exit status and stderr, expecting it to
    /// fail before printing a ready line.
    pub fn try_start(dir: &Path, extra: &[&str]) -> Result<(Child, String), String> {
        Self::spawn(
            dir,
            &extra.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            None,
        )
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: i32) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.pid(), signal) };
    }

    /// Waits (with the deadline) for the daemon to exit.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "daemon did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the daemon with SIGKILL and starts a new one on the same state.
    pub fn kill_and_restart(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait_exit();
        let (child, addr) = Self::spawn(self.dir.path(), &self.extra, self.open_files).unwrap();
        self.child = child;
        self.addr = addr;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Any request. `body` is sent verbatim when given.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(body.unwrap_or("").to_string()).unwrap();
        let response = self.agent.run(request).unwrap();
        // A body that cannot be read is an empty text here (the status is what tests check).
        read_resp(response, |_| Ok(String::new())).unwrap()
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", &format!("/api/v1{path}"), None, &[])
    }

    pub fn post(&self, path: &str, body: Value) -> Resp {
        self.request(
            "POST",
            &format!("/api/v1{path}"),
            Some(&body.to_string()),
            &[],
        )
    }

    pub fn post_raw(&self, path: &str, body: &str) -> Resp {
        self.request("POST", &format!("/api/v1{path}"), Some(body), &[])
    }

    pub fn patch(&self, path: &str, body: Value) -> Resp {
        self.request(
            "PATCH",
            &format!("/api/v1{path}"),
            Some(&body.to_string()),
            &[],
        )
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.request("DELETE", &format!("/api/v1{path}"), None, &[])
    }

    /// Creates a template and returns its id.
    pub fn template(&self, name: &str) -> String {
        let r = self.post("/templates", json!({ "name": name }));
        r.ok(201)["id"].as_str().unwrap().to_string()
    }

    /// A fresh worktree directory under the daemon's temp dir.
    pub fn worktree(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join("worktrees").join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// Creates a session of `template` on a new worktree `name`.
    pub fn session_resp(&self, template: &str, worktree: &Path) -> Resp {
        self.post(
            "/sessions",
            json!({
                "template_id": template,
                "workspace_id": "ws-1",
                "base_commit_oid": "9fceb02d0ae598e95dc970b74767f19372d61af8",
                "worktree_path": worktree.to_str().unwrap(),
            }),
        )
    }

    /// Creates a ready session and returns its id.
    pub fn session(&self, template: &str) -> String {
        let wt = self.worktree(&format!("wt-{}", uuid_ish()));
        let r = self.session_resp(template, &wt);
        let body = r.ok(201);
        assert_eq!(body["status"], "ready");
        body["id"].as_str().unwrap().to_string()
    }

    /// Runs a REPL input.
    pub fn repl(&self, session: &str, input: &str) -> Resp {
        self.post(
            "/executions/repl",
            json!({ "session_id": session, "input": input }),
        )
    }

    /// Waits until the warm pool holds `warm` workers.
    pub fn wait_pool_full(&self, warm: u64) {
        self.wait_for("the pool to fill", || {
            let s = self.get("/runtime/summary").ok(200).clone();
            (s["pool"]["warm"] == warm).then_some(())
        });
    }

    /// Polls `f` until it returns `Some`, failing after the deadline.
    pub fn wait_for<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(value) = f() {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A unique-enough suffix for names within one test.
pub fn uuid_ish() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Helpers for the session, execution and fault tests.
impl TestDaemon {
    /// Like [`TestDaemon::request`], but a transport failure (connection refused or reset, as
    /// during shutdown or after a kill) is returned instead of panicking.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<Resp, String> {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path))
            .body(body.unwrap_or("").to_string())
            .map_err(|e| e.to_string())?;
        let response = self.agent.run(request).map_err(|e| e.to_string())?;
        read_resp(response, Err)
    }

    /// Any request with a byte body and its own client timeout (a bound on the whole exchange,
    /// so a hang fails instead of blocking). Transport failures, the timeout included, are
    /// returned instead of panicking.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Resp, String> {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(body.to_vec()).map_err(|e| e.to_string())?;
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(Some(timeout))
            .build();
        let response = self.agent.run(request).map_err(|e| e.to_string())?;
        read_resp(response, Err)
    }

    /// `PATCH /templates/{t}/settings`, asserting 200.
    pub fn settings(&self, template: &str, patch: Value) -> Value {
        self.patch(&format!("/templates/{template}/settings"), patch)
            .ok(200)
            .clone()
    }

    /// A template whose one startup file `init.js` holds `source`, and the worktree holding it.
    pub fn template_with_startup(&self, name: &str, source: &str) -> (String, PathBuf) {
        let t = self.template(name);
        self.add_startup(&t, "init.js", 0);
        let wt = self.worktree(name);
        std::fs::write(wt.join("init.js"), source).unwrap();
        (t, wt)
    }

    /// Adds a startup file to `template`, asserting 201.
    pub fn add_startup(&self, template: &str, path: &str, order_index: i64) -> Value {
        self.post(
            &format!("/templates/{template}/startup-files"),
            json!({ "path": path, "order_index": order_index }),
        )
        .ok(201)
        .clone()
    }

    /// `GET /sessions/{id}`, asserting 200.
    pub fn get_session(&self, session: &str) -> Value {
        self.get(&format!("/sessions/{session}")).ok(200).clone()
    }

    /// `POST /sessions/{id}/close`.
    pub fn close(&self, session: &str) -> Resp {
        self.post_raw(&format!("/sessions/{session}/close"), "")
    }

    /// `POST /sessions/{id}/restart`.
    pub fn restart(&self, session: &str) -> Resp {
        self.post_raw(&format!("/sessions/{session}/restart"), "")
    }

    /// The worker pid of a ready session.
    pub fn worker_pid(&self, session: &str) -> i32 {
        let s = self.get_session(session);
        let pid = s["pid"].as_i64().unwrap_or_else(|| panic!("no pid: {s}"));
        i32::try_from(pid).unwrap()
    }

    /// `POST /executions/run-file` with optional `args` and `env`.
    pub fn run_file(
        &self,
        session: &str,
        path: &str,
        args: Option<Value>,
        env: Option<Value>,
    ) -> Resp {
        let mut body = json!({ "session_id": session, "path": path });
        if let Some(args) = args {
            body["args"] = args;
        }
        if let Some(env) = env {
            body["env"] = env;
        }
        self.post("/executions/run-file", body)
    }

    /// `GET /executions?session_id=…&limit=1000`, asserting 200.
    pub fn executions(&self, session: &str) -> Vec<Value> {
        self.get(&format!("/executions?session_id={session}&limit=1000"))
            .ok(200)
            .as_array()
            .unwrap()
            .clone()
    }

    /// `GET /executions/{id}`, asserting 200.
    pub fn execution(&self, execution: &str) -> Value {
        self.get(&format!("/executions/{execution}"))
            .ok(200)
            .clone()
    }

    /// Waits for the session's execution in status `running` and returns its id.
    pub fn running_execution(&self, session: &str) -> String {
        self.wait_for("a running execution", || {
            self.executions(session)
                .iter()
                .find(|e| e["status"] == "running")
                .map(|e| e["id"].as_str().unwrap().to_string())
        })
    }

    /// Starts a new daemon on the same state after the previous one has exited on its own.
    pub fn respawn(&mut self) {
        let (child, addr) = Self::spawn(self.dir.path(), &self.extra, self.open_files).unwrap();
        self.child = child;
        self.addr = addr;
    }
}

/// Whether process `pid` no longer runs: no `/proc/<pid>`, or only a zombie left to reap.
pub fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// The pids of the live direct children of `parent` (from `/proc/*/stat`).
pub fn children_of(parent: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let ppid = fields.next().and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(parent) && state != Some("Z") {
            pids.push(pid);
        }
    }
    pids
}

/// Whether `pid` runs with `arg` among its command-line arguments.
fn has_arg(pid: i32, arg: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
}

/// The daemon's fork server (its child started with `--zygote`), if one runs.
pub fn fork_server_of(daemon: i32) -> Option<i32> {
    children_of(daemon)
        .into_iter()
        .find(|pid| has_arg(*pid, "--zygote"))
}

/// The live worker processes of `daemon`: the ones it spawned and the ones its fork server forked
/// (the fork server itself left out).
pub fn workers_of(daemon: i32) -> Vec<i32> {
    let mut workers = Vec::new();
    for child in children_of(daemon) {
        if has_arg(child, "--zygote") {
            workers.extend(children_of(child));
        } else {
            workers.push(child);
        }
    }
    workers
}

/// Status, headers and the whole body (up to 256 MiB) of a response; a body that cannot be read
/// goes to `on_body_error`.
fn read_resp(
    mut response: ureq::http::Response<ureq::Body>,
    on_body_error: impl FnOnce(String) -> Result<String, String>,
) -> Result<Resp, String> {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let text = response
        .body_mut()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_string()
        .or_else(|e| on_body_error(e.to_string()))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Resp {
        status,
        headers,
        text,
        body,
    })
}
