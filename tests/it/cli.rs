//! The CLI client (spec §11, §9): the real binary against a real daemon on port 0, in both output
//! modes, with its exit codes, stdin code, `--follow`, and `libs` against a registry served here.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};
use tests::daemon::{TestDaemon, library_dir};
use tests::{DEADLINE, bin_path};

mod errors;
mod exec;
mod libs;
mod resources;

const UNKNOWN_ID: &str = "00000000-0000-4000-8000-000000000000";

/// What a CLI run left behind.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(self) -> String {
        assert_eq!(self.code, 0, "exit code; stderr {}", self.stderr);
        self.stdout
    }
}

/// The CLI binary with a clean environment for the client variables.
fn vm() -> Command {
    let mut command = Command::new(bin_path("orchestrator-dup"));
    command
        .env_remove("VM_SYSTEM_SERVER_URL")
        .env_remove("VM_SYSTEM_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `command` to its end (within the deadline), feeding `stdin` when given.
fn run(mut command: Command, stdin: Option<&str>) -> Run {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().unwrap();
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let status = wait(&mut child, Duration::from_secs(120));
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the CLI did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A CLI pointed at one daemon.
struct Cli<'a> {
    d: &'a TestDaemon,
}

impl Cli<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = vm();
        command
            .arg("--server-url")
            .arg(format!("http://{}", self.d.addr))
            .args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        run(self.command(args), None)
    }

    /// Table mode, asserting exit 0.
    #[track_caller]
    fn table(&self, args: &[&str]) -> String {
        self.run(args).ok()
    }

    /// Json mode, asserting exit 0 and exactly one line of compact JSON.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.run(&all).ok();
        one_json_line(&out)
    }
}

#[track_caller]
fn one_json_line(out: &str) -> Value {
    assert!(
        out.ends_with('\n') && out.trim_end().lines().count() == 1,
        "one line: {out:?}"
    );
    serde_json::from_str(out.trim_end()).unwrap()
}

/// A table's cells, split on runs of spaces.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// `field  value` lines as a map.
fn fields(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[track_caller]
fn header(text: &str, expected: &[&str]) {
    assert_eq!(rows(text)[0], expected, "header of {text}");
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// `-- execution <id> <status>[ <code>] (<n> ms)` with its parts.
#[track_caller]
fn footer(line: &str) -> (String, String, Option<String>) {
    let rest = line
        .strip_prefix("-- execution ")
        .unwrap_or_else(|| panic!("footer: {line:?}"));
    let (head, ms) = rest.rsplit_once(" (").unwrap();
    assert!(
        ms.ends_with(" ms)") && ms.trim_end_matches(" ms)").parse::<u64>().is_ok(),
        "{line}"
    );
    let parts: Vec<&str> = head.split(' ').collect();
    (
        parts[0].to_string(),
        parts[1].to_string(),
        parts.get(2).map(|s| s.to_string()),
    )
}

/// The id of the session's running execution, once there is one.
fn wait_running(d: &TestDaemon, session: &str) -> String {
    d.wait_for("a running execution", || {
        let list = d.get(&format!("/executions?session_id={session}&limit=5"));
        list.body
            .as_array()?
            .iter()
            .find(|e| e["status"] == "running")
            .map(id_of)
    })
}

fn vm_args(args: &[&str]) -> Command {
    let mut command = vm();
    command.args(args);
    command
}

/// A URL where nothing listens: a port bound and released.
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}
