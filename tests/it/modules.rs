//! The native modules `fs`, `exec` and `database` over the real worker protocol (spec §8.3, §8.4):
//! each function's allowed case, each error code, refusal without the module or capability, path
//! escapes (a symlink swapped while JavaScript reads included), and stops that must kill a child
//! process or interrupt a running SQL statement.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use protocol::{EventType, ExecKind, ExecLimits, ExecOutcome, SessionConfig, StopCause};
use serde_json::{Value, json};
use tests::worker::{ExecResult, LIMITS, TestWorker, budget, config};

/// A configured worker whose worktree is `<tmp>/wt`, with `<tmp>/secret.txt` outside it.
struct Session {
    w: TestWorker,
    wt: PathBuf,
    outside: PathBuf,
    _dir: tempfile::TempDir,
}

async fn session(modules: &[&str], setup: impl FnOnce(&mut SessionConfig)) -> Session {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let wt = base.join("wt");
    std::fs::create_dir(&wt).unwrap();
    std::fs::write(base.join("secret.txt"), "SECRET").unwrap();
    let mut cfg = config(wt.to_str().unwrap());
    cfg.modules = modules.iter().map(|m| m.to_string()).collect();
    setup(&mut cfg);
    let w = TestWorker::configured(cfg).await;
    Session {
        w,
        wt,
        outside: base,
        _dir: dir,
    }
}

fn value_json(r: &ExecResult) -> Value {
    assert_eq!(r.outcome, ExecOutcome::Ok, "{:?}", r.payloads());
    assert_eq!(r.events.last().unwrap().event_type, EventType::Value);
    r.last()["json"].clone()
}

fn stopped(r: &ExecResult) -> StopCause {
    match r.outcome {
        ExecOutcome::Stopped { cause } => cause,
        other => panic!("expected a stop, got {other:?}: {:?}", r.payloads()),
    }
}

/// `{error, name, code, message}` of what `body` throws, or `"no error"`.
const CATCH: &str = "(() => { try { BODY; return 'no error' } catch (e) { return { error: e instanceof Error, name: e.name, code: e.code === undefined ? null : e.code, message: String(e.message) } } })()";

impl Session {
    fn path(&self, relative: &str) -> PathBuf {
        self.wt.join(relative)
    }

    /// Evaluates `source` (which must end `ok`) and returns the JSON of its value.
    async fn eval(&mut self, source: &str) -> Value {
        let r = self.w.repl(source).await;
        value_json(&r)
    }

    /// What `body` throws: `{error, name, code, message}`.
    async fn throws(&mut self, body: &str) -> Value {
        let got = self.eval(&CATCH.replace("BODY", body)).await;
        assert_ne!(got, json!("no error"), "{body} did not throw");
        got
    }

    /// The `code` of the `Error` that `body` throws (asserting it is an `Error` with a string code).
    async fn code(&mut self, body: &str) -> String {
        let got = self.throws(body).await;
        assert_eq!(got["error"], true, "{body}: {got}");
        assert_eq!(got["name"], "Error", "{body}: {got}");
        got["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}: no string code in {got}"))
            .to_string()
    }

    /// The name of the (code-less) error `body` throws: `TypeError`, `RangeError`.
    async fn error_name(&mut self, body: &str) -> String {
        let got = self.throws(body).await;
        assert_eq!(got["error"], true, "{body}: {got}");
        assert_eq!(got["code"], Value::Null, "{body}: {got}");
        got["name"].as_str().unwrap().to_string()
    }

    async fn run_limited(&mut self, source: &str, wall_ms: u64) -> (ExecResult, Duration) {
        let started = Instant::now();
        let r = self
            .w
            .run(
                ExecKind::Repl,
                "<repl>",
                source,
                ExecLimits {
                    wall_ms,
                    cpu_ms: LIMITS.cpu_ms,
                },
                budget(999, 512),
            )
            .await;
        (r, started.elapsed())
    }
}

// ---- require ---------------------------------------------------------------------------------

#[tokio::test]
async fn require_gives_only_the_listed_modules_the_same_object_each_time() {
    let mut s = session(&[], |_| {}).await;
    for id in ["fs", "exec", "database", "path", "child_process"] {
        let got = s.throws(&format!("require('{id}')")).await;
        assert_eq!(
            got["message"],
            format!("Invalid module \"{id}\": not enabled for this template")
        );
        assert_eq!(got["name"], "Error");
    }

    let mut s = session(&["fs", "database"], |c| c.fs_read = true).await;
    assert_eq!(
        s.eval("require('fs') === require('fs') && require('database') === require('database')")
            .await,
        true
    );
    assert_eq!(
        s.eval("Object.keys(require('fs')).join()").await,
        "readFileSync,writeFileSync,existsSync,readdirSync"
    );
    assert_eq!(
        s.eval("Object.keys(require('database')).join()").await,
        "configure,query,exec,close"
    );
    let got = s.throws("require('exec')").await;
    assert_eq!(
        got["message"],
        "Invalid module \"exec\": not enabled for this template"
    );
    // Destructured functions keep working.
    std::fs::write(s.path("a.txt"), "A").unwrap();
    assert_eq!(
        s.eval("const { readFileSync } = require('fs'); readFileSync('a.txt')")
            .await,
        "A"
    );
}

// ---- fs --------------------------------------------------------------------------------------

#[tokio::test]
async fn fs_without_an_fs_capability_is_refused() {
    let mut s = session(&["fs"], |_| {}).await;
    std::fs::write(s.path("a.txt"), "A").unwrap();
    for call in [
        "require('fs').readFileSync('a.txt')",
        "require('fs').writeFileSync('b.txt', 'x')",
        "require('fs').existsSync('a.txt')",
        "require('fs').existsSync(42)",
        "require('fs').readdirSync('.')",
    ] {
        assert_eq!(s.code(call).await, "ERR_CAPABILITY", "{call}");
    }
    assert!(!s.path("b.txt").exists());

    // Read-only: reads work, writes are refused.
    let mut s = session(&["fs"], |c| c.fs_read = true).await;
    std::fs::write(s.path("a.txt"), "A").unwrap();
    assert_eq!(s.eval("require('fs').readFileSync('a.txt')").await, "A");
    assert_eq!(
        s.code("require('fs').writeFileSync('b.txt', 'x')").await,
        "ERR_CAPABILITY"
    );
    assert_eq!(
        s.code("require('fs').writeFileSync('a.txt', 'x')").await,
        "ERR_CAPABILITY"
    );
    assert!(!s.path("b.txt").exists());
    assert_eq!(std::fs::read_to_string(s.path("a.txt")).unwrap(), "A");
}

async fn fs_session() -> Session {
    session(&["fs"], |c| {
        c.fs_read = true;
        c.fs_write = true;
    })
    .await
}

#[tokio::test]
async fn fs_reads_writes_checks_and_lists_inside_the_worktree() {
    let mut s = fs_session().await;
    std::fs::create_dir(s.path("sub")).unwrap();
    std::fs::write(s.path("sub/inner.txt"), "inner").unwrap();
    std::fs::write(s.path("bad.bin"), b"ok\xff\xfe!").unwrap();

    let written = s
        .eval(
            "const fs = require('fs');
             fs.writeFileSync('new.txt', 'héllo ✓');
             fs.writeFileSync('sub/num.txt', 42);
             fs.writeFileSync('new.txt', 'héllo ✓ again');
             [fs.readFileSync('new.txt'), fs.readFileSync('sub/num.txt', 'utf8'),
              fs.readFileSync('./sub/../new.txt', 'UTF-8'), fs.readFileSync('sub//inner.txt', 'Utf8'),
              fs.writeFileSync('obj.txt', {}), fs.readFileSync('obj.txt')]",
        )
        .await;
    assert_eq!(
        written,
        json!([
            "héllo ✓ again",
            "42",
            "héllo ✓ again",
            "inner",
            null,
            "[object Object]"
        ])
    );
    assert_eq!(
        std::fs::read_to_string(s.path("new.txt")).unwrap(),
        "héllo ✓ again"
    );
    // A lone surrogate is written as one U+FFFD, as Node writes it.
    s.eval("require('fs').writeFileSync('lone.txt', 'a\\ud800b')")
        .await;
    assert_eq!(
        std::fs::read(s.path("lone.txt")).unwrap(),
        "a\u{FFFD}b".as_bytes()
    );
    std::fs::remove_file(s.path("lone.txt")).unwrap();
    // So is one in a path: the file is named with one U+FFFD, and found by either spelling.
    assert_eq!(
        s.eval(
            "const f = require('fs'); f.writeFileSync('s\\ud800', 'x');
             [f.readFileSync('s\\ufffd'), f.existsSync('s\\ud800'), f.readFileSync('s\\ud800')]"
        )
        .await,
        json!(["x", true, "x"])
    );
    assert!(s.path("s\u{FFFD}").exists());
    std::fs::remove_file(s.path("s\u{FFFD}")).unwrap();
    // Invalid UTF-8 is replaced, not refused.
    assert_eq!(
        s.eval("fs.readFileSync('bad.bin')").await,
        "ok\u{fffd}\u{fffd}!"
    );
    // A relative symlink that stays inside is followed, for reads and writes.
    symlink("sub/../new.txt", s.path("rel.txt")).unwrap();
    assert_eq!(s.eval("fs.readFileSync('rel.txt')").await, "héllo ✓ again");
    s.eval("fs.writeFileSync('rel.txt', 'through'); 0").await;
    assert_eq!(
        std::fs::read_to_string(s.path("new.txt")).unwrap(),
        "through"
    );

    assert_eq!(
        s.eval(
            "[fs.existsSync('new.txt'), fs.existsSync('sub'), fs.existsSync(''), fs.existsSync('.'),
              fs.existsSync('missing'), fs.existsSync('sub/missing'), fs.existsSync(7), fs.existsSync(null)]"
        )
        .await,
        json!([true, true, true, true, false, false, false, false])
    );

    // Names sort by UTF-16 code units (U+1F600 before U+FF5E, unlike UTF-8 byte order); a name
    // that is not UTF-8 is left out.
    for name in ["b", "B", "a", "\u{ff5e}", "\u{1f600}", "é"] {
        std::fs::write(s.path(&format!("sub/{name}")), "").unwrap();
    }
    std::fs::write(s.path("sub").join(OsStr::from_bytes(b"\xffraw")), "").unwrap();
    let listed = s.eval("fs.readdirSync('sub')").await;
    let mut expected: Vec<String> = [
        "b",
        "B",
        "a",
        "\u{ff5e}",
        "\u{1f600}",
        "é",
        "inner.txt",
        "num.txt",
    ]
    .iter()
    .map(|n| n.to_string())
    .collect();
    expected.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    assert_eq!(listed, json!(expected));
    assert_eq!(
        s.eval("JSON.stringify(fs.readdirSync('sub')) === JSON.stringify(fs.readdirSync('sub').slice().sort())")
            .await,
        true
    );
    let root = s
        .eval("[fs.readdirSync(''), fs.readdirSync('.'), fs.readdirSync('sub/..')]")
        .await;
    let names = json!(["bad.bin", "new.txt", "obj.txt", "rel.txt", "sub"]);
    assert_eq!(root, json!([names, names, names]));
}

#[tokio::test]
async fn fs_error_codes() {
    let mut s = session(&["fs"], |c| {
        c.fs_read = true;
        c.fs_write = true;
        c.mem_mb = 512;
    })
    .await;
    std::fs::create_dir(s.path("dir")).unwrap();
    std::fs::write(s.path("file.txt"), "F").unwrap();
    symlink("loop", s.path("loop")).unwrap();
    let cases = [
        ("fs.readFileSync('missing.txt')", "ENOENT"),
        ("fs.readFileSync('nodir/x.txt')", "ENOENT"),
        ("fs.writeFileSync('nodir/x.txt', 'x')", "ENOENT"),
        ("fs.readdirSync('missing')", "ENOENT"),
        ("fs.readFileSync('dir')", "EISDIR"),
        ("fs.writeFileSync('dir', 'x')", "EISDIR"),
        ("fs.readdirSync('file.txt')", "ENOTDIR"),
        ("fs.readFileSync('file.txt/x')", "ENOTDIR"),
        // A trailing slash names a directory, as in POSIX and Node.
        ("fs.readFileSync('file.txt/')", "ENOTDIR"),
        ("fs.readFileSync('file.txt/.')", "ENOTDIR"),
        ("fs.writeFileSync('file.txt/', 'x')", "EISDIR"),
        ("fs.writeFileSync('new.txt/', 'x')", "EISDIR"),
        ("fs.readFileSync('loop')", "ELOOP"),
        ("fs.readFileSync('file.txt', 'latin1')", "ERR_INVALID_ARG"),
        ("fs.readFileSync('file.txt', 'utf16')", "ERR_INVALID_ARG"),
        ("fs.readFileSync('file.txt', null)", "ERR_INVALID_ARG"),
        (
            "fs.readFileSync('file.txt', { encoding: 'utf8' })",
            "ERR_INVALID_ARG",
        ),
        ("fs.readFileSync('')", "ERR_INVALID_PATH"),
        ("fs.readFileSync('.')", "ERR_INVALID_PATH"),
        ("fs.writeFileSync('', 'x')", "ERR_INVALID_PATH"),
        ("fs.writeFileSync('.', 'x')", "ERR_INVALID_PATH"),
        ("fs.readdirSync('   ')", "ERR_INVALID_PATH"),
    ];
    s.eval("var fs = require('fs'); 0").await;
    for (call, code) in cases {
        assert_eq!(s.code(call).await, code, "{call}");
    }
    assert!(
        !s.path("new.txt").exists(),
        "a path with a trailing slash created a file"
    );
    assert_eq!(
        s.eval("[fs.existsSync('file.txt/'), fs.existsSync('dir/'), fs.readdirSync('dir/.'), fs.readFileSync('file.txt')]")
            .await,
        json!([false, true, [], "F"])
    );
    let got = s.throws("fs.readFileSync('missing.txt')").await;
    assert_eq!(
        got["message"],
        "ENOENT: no such file or directory, open 'missing.txt'"
    );
    for call in [
        "fs.readFileSync(1)",
        "fs.readFileSync()",
        "fs.writeFileSync(null, 'x')",
        "fs.readdirSync({})",
        "fs.readdirSync()",
    ] {
        assert_eq!(s.error_name(call).await, "TypeError", "{call}");
    }

    // EFBIG: reading a file over 64 MiB, and writing past RLIMIT_FSIZE (64 MiB).
    let big = std::fs::File::create(s.path("big.bin")).unwrap();
    big.set_len(64 * 1024 * 1024 + 1).unwrap();
    drop(big);
    assert_eq!(s.code("fs.readFileSync('big.bin')").await, "EFBIG");
    std::fs::File::create(s.path("edge.bin"))
        .unwrap()
        .set_len(64 * 1024 * 1024)
        .unwrap();
    assert_eq!(
        s.eval("fs.readFileSync('edge.bin').length").await,
        64 * 1024 * 1024
    );
    assert_eq!(
        s.code("fs.writeFileSync('huge.txt', 'x'.repeat(64 * 1024 * 1024 + 1))")
            .await,
        "EFBIG"
    );

    // EACCES needs a user the permission bits apply to (root bypasses them).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        std::fs::write(s.path("locked.txt"), "L").unwrap();
        std::fs::set_permissions(s.path("locked.txt"), std::fs::Permissions::from_mode(0o000))
            .unwrap();
        assert_eq!(s.code("fs.readFileSync('locked.txt')").await, "EACCES");
    }
}

#[tokio::test]
async fn fs_paths_that_escape_the_worktree_fail() {
    let mut s = fs_session().await;
    std::fs::write(s.path("inside.txt"), "inside").unwrap();
    std::fs::create_dir(s.path("a")).unwrap();
    let secret = s.outside.join("secret.txt");
    symlink("../secret.txt", s.path("rel-out.txt")).unwrap();
    symlink(&secret, s.path("abs-out.txt")).unwrap();
    symlink(s.path("inside.txt"), s.path("abs-in.txt")).unwrap();
    symlink("/nonexistent/target", s.path("abs-dangling.txt")).unwrap();
    symlink("..", s.path("up")).unwrap();
    symlink(&s.outside, s.path("outdir")).unwrap();
    s.eval("var fs = require('fs'); 0").await;
    let wt = s.wt.to_str().unwrap().to_string();
    let secret_path = secret.to_str().unwrap().to_string();
    let escapes = [
        "..".to_string(),
        "../secret.txt".to_string(),
        "./../secret.txt".to_string(),
        "a/../../secret.txt".to_string(),
        "a/../../etc/passwd".to_string(),
        "/etc/passwd".to_string(),
        secret_path.clone(),
        format!("{wt}/inside.txt"),
        "inside.txt\\u0000".to_string(),
        "a\\u0000/../inside.txt".to_string(),
        "rel-out.txt".to_string(),
        "abs-out.txt".to_string(),
        "abs-in.txt".to_string(),
        "abs-dangling.txt".to_string(),
        "up/secret.txt".to_string(),
        "up/wt/inside.txt".to_string(),
        "outdir/secret.txt".to_string(),
    ];
    for path in &escapes {
        let lit = format!("'{path}'");
        for call in [
            format!("fs.readFileSync({lit})"),
            format!("fs.writeFileSync({lit}, 'PWNED')"),
        ] {
            assert_eq!(s.code(&call).await, "ERR_INVALID_PATH", "{call}");
        }
        assert_eq!(
            s.eval(&format!("fs.existsSync({lit})")).await,
            false,
            "existsSync({lit})"
        );
    }
    for dir in ["..", "up", "outdir", "/", "/tmp", "a/../.."] {
        assert_eq!(
            s.code(&format!("fs.readdirSync('{dir}')")).await,
            "ERR_INVALID_PATH",
            "readdirSync({dir})"
        );
    }
    let got = s.throws("fs.readFileSync('rel-out.txt')").await;
    assert!(
        got["message"]
            .as_str()
            .unwrap()
            .contains("escapes_worktree"),
        "{got}"
    );
    let got = s.throws("fs.readFileSync('a/../../etc/passwd')").await;
    assert!(
        got["message"].as_str().unwrap().contains("traversal"),
        "{got}"
    );
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "SECRET");
    assert!(!s.outside.join("PWNED").exists());
    // Nothing was created outside the worktree by any attempt.
    let mut outside: Vec<String> = std::fs::read_dir(&s.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    outside.sort();
    assert_eq!(outside, ["secret.txt", "wt"]);
}

fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let a = CString::new(a.as_os_str().as_encoded_bytes()).unwrap();
    let b = CString::new(b.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: both paths are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[tokio::test]
async fn a_symlink_swapped_in_a_loop_never_lets_javascript_escape() {
    let mut s = fs_session().await;
    // `swap.txt` and `spare` trade places atomically, over and over: one is a regular file inside,
    // the other a symlink to the secret outside (relative in one round, absolute in the other).
    let secret = s.outside.join("secret.txt");
    let swap = s.path("swap.txt");
    let spare = s.path("spare");
    std::fs::write(&swap, "inside").unwrap();
    symlink("../secret.txt", &spare).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, swaps, swap, spare, secret) = (
            Arc::clone(&stop),
            Arc::clone(&swaps),
            swap.clone(),
            spare.clone(),
            secret.clone(),
        );
        std::thread::spawn(move || {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                exchange(&swap, &spare).unwrap();
                round += 1;
                if round.is_multiple_of(1000) {
                    // Change the link's kind every so often: relative ↔ absolute.
                    let link = if std::fs::symlink_metadata(&swap).unwrap().is_symlink() {
                        &swap
                    } else {
                        &spare
                    };
                    let tmp = link.with_extension("new");
                    let _ = std::fs::remove_file(&tmp);
                    if (round / 1000).is_multiple_of(2) {
                        symlink("../secret.txt", &tmp).unwrap();
                    } else {
                        symlink(&secret, &tmp).unwrap();
                    }
                    std::fs::rename(&tmp, link).unwrap();
                }
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let result = s
        .eval(
            "const fs = require('fs');
             const n = { escaped: 0, inside: 0, refused: 0, other: 0, writes: 0, exists: 0 };
             const end = Date.now() + 2000;
             while (Date.now() < end) {
               try {
                 const text = fs.readFileSync('swap.txt');
                 if (text.includes('SECRET')) n.escaped++; else n.inside++;
               } catch (e) {
                 if (e.code === 'ERR_INVALID_PATH') n.refused++; else { n.other++; n.last = e.code; }
               }
               try { fs.writeFileSync('swap.txt', 'inside'); n.writes++; } catch (e) {
                 if (e.code !== 'ERR_INVALID_PATH') { n.other++; n.last = e.code; }
               }
               if (fs.existsSync('swap.txt')) n.exists++;
             }
             n",
        )
        .await;
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert_eq!(result["escaped"], 0, "{result}");
    assert_eq!(result["other"], 0, "{result}");
    assert!(result["inside"].as_u64().unwrap() > 0, "{result}");
    assert!(result["refused"].as_u64().unwrap() > 0, "{result}");
    assert!(result["writes"].as_u64().unwrap() > 0, "{result}");
    assert!(swaps.load(Ordering::Relaxed) > 1000);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "SECRET");
}

// ---- exec ------------------------------------------------------------------------------------

async fn exec_session(allow: &[&str]) -> Session {
    session(&["exec"], |c| {
        c.exec_allow = allow.iter().map(|a| a.to_string()).collect();
    })
    .await
}

#[tokio::test]
async fn exec_runs_an_allowlisted_command_with_an_empty_environment_in_the_worktree() {
    let mut s = exec_session(&["/usr/bin/env", "/bin/pwd", "/bin/sh"]).await;
    let wt = s.wt.to_str().unwrap().to_string();
    assert_eq!(
        s.eval("const { run } = require('exec'); run('/usr/bin/env')")
            .await,
        json!({"code": 0, "stdout": "", "stderr": ""})
    );
    assert_eq!(
        s.eval("run('/bin/pwd', [], {})").await,
        json!({"code": 0, "stdout": format!("{wt}\n"), "stderr": ""})
    );
    // No shell: arguments are passed as they are.
    assert_eq!(
        s.eval("run('/bin/sh', ['-c', 'echo \"$0\" \"$1\"; echo err >&2; exit 3', '$HOME', '*'])")
            .await,
        json!({"code": 3, "stdout": "$HOME *\n", "stderr": "err\n"})
    );
    // A signal N gives 128 + N.
    assert_eq!(
        s.eval("run('/bin/sh', ['-c', 'kill -9 $$']).code").await,
        137
    );
    assert_eq!(
        s.eval("run('/bin/sh', ['-c', 'kill -15 $$']).code").await,
        143
    );
    // A lone surrogate in an argument is passed as one U+FFFD (spec §7.6).
    assert_eq!(
        s.eval("run('/bin/sh', ['-c', 'printf %s \"$1\" | od -An -tx1', 'x', 'a\\ud800']).stdout.trim()")
            .await,
        json!("61 ef bf bd")
    );
    // stdin is /dev/null.
    assert_eq!(
        s.eval("run('/bin/sh', ['-c', 'cat; echo done'])").await,
        json!({"code": 0, "stdout": "done\n", "stderr": ""})
    );
    // Invalid UTF-8 output is decoded lossily.
    assert_eq!(
        s.eval("run('/bin/sh', ['-c', 'printf \"a\\\\377b\"']).stdout")
            .await,
        "a\u{fffd}b"
    );
    // The worker's own descriptors (the frame socket above all) do not reach the command.
    assert_eq!(
        s.eval("run('/bin/sh', ['-c', 'ls /proc/self/fd | sort -n | tr \"\\\\n\" \" \"']).stdout")
            .await,
        "0 1 2 3 "
    );
}

#[tokio::test]
async fn exec_returns_as_soon_as_the_command_exits_even_if_its_children_hold_the_pipes() {
    let mut s = exec_session(&["/bin/sh"]).await;
    let started = Instant::now();
    assert_eq!(
        s.eval("require('exec').run('/bin/sh', ['-c', 'echo hi; /bin/sleep 3 & exit 0'])")
            .await,
        json!({"code": 0, "stdout": "hi\n", "stderr": ""})
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn exec_output_is_cut_to_max_output_kb() {
    let mut s = exec_session(&["/bin/sh"]).await;
    let r = s
        .w
        .run(
            ExecKind::Repl,
            "<repl>",
            "const r = require('exec').run('/bin/sh', ['-c', 'i=0; while [ $i -lt 300 ]; do echo 0123456789; echo abcdefghij >&2; i=$((i+1)); done']); [r.stdout.length, r.stderr.length, r.stdout.slice(0, 11), r.code]",
            LIMITS,
            budget(999, 1),
        )
        .await;
    assert_eq!(value_json(&r), json!([1024, 1024, "0123456789\n", 0]));
}

#[tokio::test]
async fn exec_refuses_what_is_not_allowed_and_bad_arguments() {
    let mut s = exec_session(&["/bin/sh"]).await;
    std::fs::write(s.path("script.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(s.path("script.sh"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let not_exec = s.path("script.sh").to_str().unwrap().to_string();
    let mut s2 = exec_session(&["/bin/sh", "/nonexistent/cmd", &not_exec]).await;
    s.eval("var run = require('exec').run; 0").await;
    s2.eval("var run = require('exec').run; 0").await;
    for call in [
        "run('/bin/echo', ['x'])",
        "run('sh', ['-c', 'true'])",
        "run('/bin/sh ', [])",
        "run('/bin//sh')",
        "run('/usr/bin/env')",
    ] {
        assert_eq!(s.code(call).await, "ERR_NOT_ALLOWED", "{call}");
    }
    assert_eq!(s2.code("run('/nonexistent/cmd')").await, "ENOENT");
    assert_eq!(s2.code(&format!("run('{not_exec}')")).await, "EACCES");
    for call in [
        "run(42)",
        "run('/bin/sh', '-c')",
        "run('/bin/sh', ['-c', 1])",
        "run('/bin/sh', [null])",
        "run('/bin/sh', ['a\\u0000b'])",
        "run('/bin/sh', [], null)",
        "run('/bin/sh', [], 5)",
        "run('/bin/sh', [], { timeout_ms: 0 })",
        "run('/bin/sh', [], { timeout_ms: -5 })",
        "run('/bin/sh', [], { timeout_ms: 1.5 })",
        "run('/bin/sh', [], { timeout_ms: '100' })",
        "run('/bin/sh', [], { timeout_ms: NaN })",
        "run('/bin/sh', [], { timeout_ms: Infinity })",
    ] {
        assert_eq!(s.error_name(call).await, "TypeError", "{call}");
    }
    // Without an allow list nothing runs; without the module there is no `exec`.
    let mut s3 = exec_session(&[]).await;
    assert_eq!(
        s3.code("require('exec').run('/bin/sh', ['-c', 'true'])")
            .await,
        "ERR_NOT_ALLOWED"
    );
    let mut s4 = session(&["fs"], |c| c.exec_allow = vec!["/bin/sh".into()]).await;
    let got = s4.throws("require('exec')").await;
    assert_eq!(
        got["message"],
        "Invalid module \"exec\": not enabled for this template"
    );
}

#[tokio::test]
async fn exec_timeout_kills_the_command_and_throws_etimedout() {
    let mut s = exec_session(&["/bin/sh"]).await;
    let started = Instant::now();
    let got = s
        .throws("require('exec').run('/bin/sh', ['-c', 'echo $$ > t.pid; exec /bin/sleep 30'], { timeout_ms: 300 })")
        .await;
    let took = started.elapsed();
    assert_eq!(got["code"], "ETIMEDOUT", "{got}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let pid: i32 = std::fs::read_to_string(s.path("t.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_is_gone(pid), "sleep {pid} survived");
    // The session goes on.
    assert_eq!(s.eval("1 + 1").await, 2);
}

fn process_is_gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        // SAFETY: signal 0 only checks that the process exists.
        let rc = unsafe { libc::kill(pid, 0) };
        if rc != 0 {
            return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_command_that_sleeps_past_the_wall_limit_is_killed() {
    let mut s = exec_session(&["/bin/sh"]).await;
    let (r, took) = s
        .run_limited(
            "require('exec').run('/bin/sh', ['-c', 'echo $$ > w.pid; exec /bin/sleep 30'])",
            500,
        )
        .await;
    assert_eq!(stopped(&r), StopCause::WallTime);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(r.wall_ms >= 500 && r.wall_ms < 2000, "{}", r.wall_ms);
    let pid: i32 = std::fs::read_to_string(s.path("w.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_is_gone(pid), "sleep {pid} survived the stop");
    assert_eq!(s.eval("1 + 1").await, 2);

    // A cancel kills it too.
    let id =
        s.w.start(
            ExecKind::Repl,
            "<repl>",
            "require('exec').run('/bin/sh', ['-c', 'echo $$ > c.pid; exec /bin/sleep 30'])",
            LIMITS,
            budget(999, 512),
        )
        .await;
    let pid_file = s.path("c.pid");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&pid_file).map_or(true, |t| !t.ends_with('\n')) {
        assert!(Instant::now() < deadline, "the command did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.w.send(protocol::ToWorker::Cancel {
        id,
        cause: StopCause::Cancelled,
    })
    .await;
    let r = s.w.finish(id).await;
    assert_eq!(stopped(&r), StopCause::Cancelled);
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_is_gone(pid), "sleep {pid} survived the cancel");
}

// ---- database --------------------------------------------------------------------------------

async fn db_session() -> Session {
    session(&["database"], |_| {}).await
}

#[tokio::test]
async fn database_before_configure_and_after_close() {
    let mut s = db_session().await;
    s.eval("var db = require('database'); 0").await;
    for call in ["db.query('select 1')", "db.exec('select 1')", "db.close()"] {
        assert_eq!(s.code(call).await, "ERR_NOT_CONFIGURED", "{call}");
    }
    s.eval("db.configure(':memory:'); db.close(); 0").await;
    assert_eq!(s.code("db.query('select 1')").await, "ERR_NOT_CONFIGURED");
    let mut s = session(&[], |_| {}).await;
    let got = s.throws("require('database')").await;
    assert_eq!(
        got["message"],
        "Invalid module \"database\": not enabled for this template"
    );
}

#[tokio::test]
async fn database_in_memory_binds_and_returns_every_type() {
    let mut s = db_session().await;
    s.eval(
        "var db = require('database'); db.configure(':memory:');
         db.exec('create table t (id integer primary key, v)'); 0",
    )
    .await;
    let inserted = s
        .eval(
            "[db.exec('insert into t (v) values (?)', 42), db.exec('insert into t (v) values (?)', 1.5),
              db.exec('insert into t (v) values (?)', 'text ✓'), db.exec('insert into t (v) values (?)', true),
              db.exec('insert into t (v) values (?)', false), db.exec('insert into t (v) values (?)', null),
              db.exec('insert into t (v) values (?)', [2 ** 53]), db.exec('insert into t (v) values (?)', -(2 ** 53 - 1))]",
        )
        .await;
    assert_eq!(inserted[0], json!({"changes": 1, "last_insert_rowid": 1}));
    assert_eq!(inserted[7], json!({"changes": 1, "last_insert_rowid": 8}));
    assert_eq!(
        s.eval("db.query('select typeof(v) as t, v from t order by id').map(r => [r.t, r.v])")
            .await,
        json!([
            ["integer", 42],
            ["real", 1.5],
            ["text", "text ✓"],
            ["integer", 1],
            ["integer", 0],
            ["null", null],
            ["real", 9007199254740992u64],
            ["integer", -9007199254740991i64]
        ])
    );
    // BigInt parameters and results outside ±(2^53−1).
    assert_eq!(
        s.eval(
            "const big = db.query('select ? as a, ? as b, typeof(?) as t, 9223372036854775807 as max, -9223372036854775808 as min', 2n ** 60n, 5n, 7n)[0];
             [typeof big.a, big.a === 2n ** 60n, big.b, big.t, big.max === 2n ** 63n - 1n, big.min === -(2n ** 63n)]"
        )
        .await,
        json!(["bigint", true, 5, "integer", true, true])
    );
    assert_eq!(
        s.eval("db.exec('insert into t (id, v) values (?, 1)', 2n ** 62n).last_insert_rowid === 2n ** 62n")
            .await,
        true
    );
    assert_eq!(
        s.error_name("db.query('select ?', 2n ** 63n)").await,
        "RangeError"
    );
    assert_eq!(
        s.error_name("db.query('select ?', -(2n ** 63n) - 1n)")
            .await,
        "RangeError"
    );
    for bad in [
        "{}",
        "[1]",
        "undefined",
        "Symbol('s')",
        "() => 1",
        "new Uint16Array(2)",
        "new Date()",
    ] {
        assert_eq!(
            s.error_name(&format!("db.query('select ?', 1, {bad})"))
                .await,
            "TypeError",
            "{bad}"
        );
    }
    assert_eq!(s.error_name("db.query(42)").await, "TypeError");
    // BLOBs round-trip as Uint8Array (views included).
    assert_eq!(
        s.eval(
            "const bytes = new Uint8Array([0, 1, 127, 128, 255]);
             db.exec('insert into t (id, v) values (100, ?)', bytes);
             db.exec('insert into t (id, v) values (101, ?)', new Uint8Array(new Uint8Array([9, 8, 7, 6]).buffer, 1, 2));
             const rows = db.query('select v, typeof(v) as t from t where id >= 100 order by id');
             [rows[0].v instanceof Uint8Array, Array.from(rows[0].v), rows[0].t, Array.from(rows[1].v),
              Array.from(db.query('select x\\'\\' as e')[0].e)]"
        )
        .await,
        json!([true, [0, 1, 127, 128, 255], "blob", [8, 7], []])
    );
    // Non-finite REALs, column order, repeated names (the last wins), a single array param spreads.
    assert_eq!(
        s.eval(
            "const r = db.query('select 1e999 as inf, -1e999 as ninf, 2 as b, 1 as a, 3 as b, ? + ? as s, ? as three', [1, 2, 'x'])[0];
             [r.inf === Infinity, r.ninf === -Infinity, Object.keys(r), r.b, r.s, r.three]"
        )
        .await,
        json!([true, true, ["inf", "ninf", "b", "a", "s", "three"], 3, 3, "x"])
    );
    assert_eq!(
        s.eval("const p = db.query('select 1 as \"__proto__\", 2 as constructor')[0]; [Object.keys(p), Object.getPrototypeOf(p) === Object.prototype]")
            .await,
        json!([["__proto__", "constructor"], true])
    );
}

#[tokio::test]
async fn database_exec_runs_batches_and_reports_sqlite_errors() {
    let mut s = db_session().await;
    s.eval("var db = require('database'); db.configure(':memory:'); 0")
        .await;
    assert_eq!(
        s.eval("db.exec('create table a (x); insert into a values (1), (2), (3); -- done\\n')")
            .await,
        json!({"changes": 3, "last_insert_rowid": 3})
    );
    assert_eq!(
        s.eval("db.exec('create table b (y)')").await,
        json!({"changes": 0, "last_insert_rowid": 3})
    );
    assert_eq!(
        s.eval("[db.exec('update a set x = x + ?', 10).changes, db.exec('delete from a where x > ?', [11]).changes, db.exec('select * from a').changes]")
            .await,
        json!([3, 2, 0])
    );
    assert_eq!(
        s.eval("db.query('select x from a')").await,
        json!([{"x": 11}])
    );
    assert_eq!(s.eval("db.exec('', []).changes").await, 0);
    for call in [
        "db.query('select 1; select 2')",
        "db.exec('insert into a values (?); insert into a values (?)', 1, 2)",
        "db.query('selec 1')",
        "db.query('select * from missing')",
        "db.query('select ?', 1, 2)",
        "db.query('select ?')",
        "db.exec('insert into a values (?)')",
        "db.query('')",
        "db.exec('insert into a values (1); insert into nope values (2)')",
    ] {
        assert_eq!(s.code(call).await, "ERR_SQLITE", "{call}");
    }
    // The first statement of a failing batch stays applied.
    assert_eq!(
        s.eval("db.query('select count(*) as n from a')[0].n").await,
        2
    );
}

#[tokio::test]
async fn database_refuses_attach_detach_vacuum_into_and_extensions() {
    let mut s = db_session().await;
    s.eval(
        "var db = require('database'); db.configure('main.db');
         db.exec('create table t (x); insert into t values (1)'); 0",
    )
    .await;
    for call in [
        "db.exec(\"attach database ':memory:' as other\")",
        "db.exec(\"attach 'other.db' as other\")",
        "db.exec(\"attach '' as other\")",
        "db.query(\"attach database ? as other\", 'other.db')",
        "db.query(\"attach database 'other' || '.db' as other\")",
        "db.exec(\"detach 'main'\")",
        "db.exec(\"detach ?\", 'main')",
        "db.exec('detach database main')",
        "db.exec(\"vacuum into 'copy.db'\")",
        "db.exec(\"vacuum main into 'copy.db'\")",
        "db.query(\"select load_extension('/nonexistent/ext.so')\")",
        // Directories of the host (a probe of its paths, and temp files outside the worktree).
        "db.exec(\"pragma temp_store_directory = '/tmp'\")",
        "db.query(\"PRAGMA Temp_Store_Directory\")",
        "db.exec(\"pragma data_store_directory = '/tmp'\")",
    ] {
        let got = s.throws(call).await;
        assert_eq!(got["code"], "ERR_SQLITE", "{call}: {got}");
    }
    assert!(!s.path("other.db").exists());
    assert!(!s.path("copy.db").exists());
    assert_eq!(
        s.eval("db.query('pragma database_list').map(r => r.name).includes('other')")
            .await,
        false
    );
    // Plain VACUUM still works.
    assert_eq!(s.eval("db.exec('vacuum').changes").await, 0);
    assert_eq!(
        s.eval("db.query('select x from t')").await,
        json!([{"x": 1}])
    );
}

#[tokio::test]
async fn database_files_live_in_the_worktree() {
    let mut s = db_session().await;
    s.eval(
        "var db = require('database');
         db.configure('data.db');
         db.exec('create table kv (k text primary key, v)');
         db.exec('insert into kv values (?, ?)', 'a', 1);
         db.configure(':memory:');
         db.configure('sqlite', 'data.db'); 0",
    )
    .await;
    assert!(s.path("data.db").is_file());
    assert_eq!(
        s.eval("db.query('select * from kv')").await,
        json!([{"k": "a", "v": 1}])
    );
    assert_eq!(
        s.eval("db.configure('sqlite3', './data.db'); db.query('select v from kv')[0].v")
            .await,
        1
    );
    std::fs::create_dir(s.path("dir")).unwrap();
    symlink("data.db", s.path("link.db")).unwrap();
    symlink("../outside.db", s.path("out.db")).unwrap();
    let outside = s.outside.join("secret.txt");
    let cases = [
        ("db.configure('../x.db')", "ERR_INVALID_PATH"),
        ("db.configure('a/../../x.db')", "ERR_INVALID_PATH"),
        ("db.configure('/tmp/x.db')", "ERR_INVALID_PATH"),
        ("db.configure('')", "ERR_INVALID_PATH"),
        ("db.configure('x\\u0000.db')", "ERR_INVALID_PATH"),
        ("db.configure('link.db')", "ERR_INVALID_PATH"),
        ("db.configure('out.db')", "ERR_INVALID_PATH"),
        ("db.configure('dir')", "EISDIR"),
        ("db.configure('nodir/x.db')", "ENOENT"),
        ("db.configure('mysql', 'x.db')", "ERR_INVALID_ARG"),
    ];
    for (call, code) in cases {
        assert_eq!(s.code(call).await, code, "{call}");
    }
    let got = s
        .throws(&format!("db.configure('{}')", outside.to_str().unwrap()))
        .await;
    assert_eq!(got["code"], "ERR_INVALID_PATH");
    assert_eq!(s.error_name("db.configure(1)").await, "TypeError");
    assert_eq!(s.error_name("db.configure('sqlite', 2)").await, "TypeError");
    assert!(!s.outside.join("outside.db").exists());
    assert!(!s.outside.join("x.db").exists());
    // A failed configure leaves no connection.
    assert_eq!(s.code("db.query('select 1')").await, "ERR_NOT_CONFIGURED");
    // A file-backed database needs no fs capability, and `configure(path)` creates directories'
    // files only where the directory exists.
    std::fs::create_dir(s.path("sub")).unwrap();
    s.eval("db.configure('sub/new.db'); db.exec('create table z (a)'); 0")
        .await;
    assert!(s.path("sub/new.db").is_file());
    // Relative symlinks inside the worktree are followed in the directories of the path (rule
    // 4); only a symlink as the last component is refused.
    symlink("sub", s.path("subl")).unwrap();
    symlink("..", s.path("sub/up")).unwrap();
    s.eval(
        "db.configure('subl/new.db'); db.exec('insert into z values (1)');
         db.configure('sub/up/sub/new.db'); db.exec('insert into z values (2)');
         db.configure('subl/made.db'); db.exec('create table m (a)'); 0",
    )
    .await;
    assert!(s.path("sub/made.db").is_file());
    assert_eq!(
        s.eval("db.configure('sub/new.db'); db.query('select a from z').map(r => r.a)")
            .await,
        json!([1, 2])
    );
    assert_eq!(
        s.code("db.configure('subl/up/link.db')").await,
        "ERR_INVALID_PATH"
    );
}

#[tokio::test]
async fn a_long_running_query_is_interrupted_by_the_wall_limit() {
    let mut s = db_session().await;
    s.eval("var db = require('database'); db.configure(':memory:'); 0")
        .await;
    let (r, took) = s
        .run_limited(
            "db.query('with recursive c(x) as (select 1 union all select x + 1 from c where x < 1000000000) select count(*) as n from c')",
            500,
        )
        .await;
    assert_eq!(stopped(&r), StopCause::WallTime);
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The connection keeps working for the next execution.
    assert_eq!(s.eval("db.query('select 40 + 2 as n')[0].n").await, 42);
    // An interrupted statement inside a try/catch does not survive the stop either.
    let (r, took) = s
        .run_limited(
            "try { db.exec('with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c') } catch (e) { console.log('caught', e.code) } 'after'",
            300,
        )
        .await;
    assert_eq!(stopped(&r), StopCause::WallTime);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(r.events.is_empty(), "{:?}", r.payloads());
    assert_eq!(
        s.eval("db.query('select 1 as one')").await,
        json!([{"one": 1}])
    );
}
