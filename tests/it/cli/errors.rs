//! Error lines and exit codes (API errors, usage errors, an unreachable daemon, auth), `--help`, `--version` and completions.

use super::*;

#[test]
fn api_errors_print_the_error_line_and_exit_1() {
    let d = TestDaemon::start();
    let cli = Cli { d: &d };
    let r = cli.run(&["template", "get", UNKNOWN_ID]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty(), "{r:?}");
    let line = r.stderr.trim_end();
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    let prefix = "error: TEMPLATE_NOT_FOUND: ";
    assert!(line.starts_with(prefix), "{line}");
    let (_, tail) = line.rsplit_once(" (HTTP 404, request ").unwrap();
    let request_id = tail.strip_suffix(')').unwrap();
    assert_eq!(request_id.len(), 36, "{line}");

    // A followed stream that cannot start prints its error only, not the table's header.
    let r = cli.run(&["exec", "events", UNKNOWN_ID, "--follow"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert!(
        r.stderr.starts_with("error: EXECUTION_NOT_FOUND: "),
        "{r:?}"
    );

    // json mode: the envelope on stdout as well
    let r = cli.run(&["template", "get", UNKNOWN_ID, "--output", "json"]);
    assert_eq!(r.code, 1);
    let envelope = one_json_line(&r.stdout);
    assert_eq!(envelope["error"]["code"], "TEMPLATE_NOT_FOUND");
    assert_eq!(envelope["error"]["details"]["template_id"], UNKNOWN_ID);
    let message = envelope["error"]["message"].as_str().unwrap();
    let request_id = envelope["error"]["request_id"].as_str().unwrap();
    assert_eq!(
        r.stderr,
        format!("error: TEMPLATE_NOT_FOUND: {message} (HTTP 404, request {request_id})\n")
    );

    // a conflict and a validation error
    cli.table(&["template", "create", "--name", "dup"]);
    let r = cli.run(&["template", "create", "--name", "dup"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("error: TEMPLATE_NAME_TAKEN: ")
            && r.stderr.contains("(HTTP 409, request "),
        "{r:?}"
    );
    let r = cli.run(&["session", "get", "not-a-uuid"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("error: VALIDATION_ERROR: ")
            && r.stderr.contains("(HTTP 400, request "),
        "{r:?}"
    );
    let r = cli.run(&["exec", "repl", UNKNOWN_ID, "1"]);
    assert_eq!(r.code, 1, "an API error is 1, not 2: {r:?}");
    assert!(r.stderr.starts_with("error: SESSION_NOT_FOUND: "), "{r:?}");
}

#[test]
fn usage_errors_and_bad_json_arguments_exit_1() {
    let d = TestDaemon::start();
    let cli = Cli { d: &d };
    let t = d.template("usage");
    let s = d.session(&t);
    for args in [
        vec!["exec", "run-file", &s, "x.js", "--args", "[1, 2]"],
        vec!["exec", "run-file", &s, "x.js", "--args", "{"],
        vec!["exec", "run-file", &s, "x.js", "--env", "\"A\""],
        // Duplicate keys are refused as the API refuses them (spec §1), not collapsed.
        vec![
            "exec",
            "run-file",
            &s,
            "x.js",
            "--args",
            r#"{"a": 1, "a": 2}"#,
        ],
        vec![
            "template",
            "settings",
            "set",
            &t,
            "--json",
            r#"{"limits": {"wall_ms": 10, "wall_ms": 20}}"#,
        ],
        vec![
            "template",
            "add-capability",
            &t,
            "--kind",
            "fs",
            "--name",
            "x",
            "--config",
            "null",
        ],
        vec!["template", "settings", "set", &t, "--json", "[]"],
    ] {
        let r = cli.run(&args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.starts_with("error: --"), "{args:?}: {r:?}");
        assert!(r.stdout.is_empty(), "{r:?}");
    }
    assert!(
        d.get(&format!("/executions?session_id={s}"))
            .body
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing reached the daemon"
    );
    for args in [
        vec!["template", "create"],
        vec!["template", "frobnicate"],
        vec!["exec", "events", UNKNOWN_ID, "--follow", "--limit", "3"],
        vec!["--output", "yaml", "ops", "health"],
        vec![
            "template",
            "add-capability",
            &t,
            "--kind",
            "fs",
            "--name",
            "x",
            "--enabled",
            "1",
        ],
        vec![],
    ] {
        let r = cli.run(&args);
        assert_eq!(r.code, 1, "clap usage errors exit 1: {args:?}: {r:?}");
        assert!(
            r.stderr.starts_with("error:") || r.stderr.contains("Usage:"),
            "{r:?}"
        );
    }
    let r = run(vm_args(&["--help"]), None);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("Usage:"), "{r:?}");
    let r = run(vm_args(&["--version"]), None);
    assert_eq!((r.code, r.stdout.as_str()), (0, "vm-system 1.0.0\n"));
}

#[test]
fn every_command_has_help_with_an_example() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["template"],
        &["template", "create"],
        &["template", "list"],
        &["template", "get"],
        &["template", "delete"],
        &["template", "settings"],
        &["template", "settings", "get"],
        &["template", "settings", "set"],
        &["template", "add-capability"],
        &["template", "list-capabilities"],
        &["template", "remove-capability"],
        &["template", "add-startup"],
        &["template", "list-startup"],
        &["template", "remove-startup"],
        &["template", "add-module"],
        &["template", "remove-module"],
        &["template", "list-modules"],
        &["template", "add-library"],
        &["template", "remove-library"],
        &["template", "list-libraries"],
        &["template", "list-available-modules"],
        &["template", "list-available-libraries"],
        &["session"],
        &["session", "create"],
        &["session", "list"],
        &["session", "get"],
        &["session", "close"],
        &["session", "restart"],
        &["exec"],
        &["exec", "repl"],
        &["exec", "run-file"],
        &["exec", "list"],
        &["exec", "get"],
        &["exec", "cancel"],
        &["exec", "events"],
        &["ops"],
        &["ops", "health"],
        &["ops", "runtime-summary"],
        &["libs"],
        &["libs", "download"],
        &["libs", "list"],
        &["completions"],
    ];
    for path in commands {
        let mut args = path.to_vec();
        args.push("--help");
        let r = run(vm_args(&args), None);
        assert_eq!(r.code, 0, "{path:?}: {r:?}");
        if !path.is_empty() {
            assert!(
                r.stdout.contains("Example: vm-system "),
                "{path:?}: {}",
                r.stdout
            );
        }
        assert!(r.stdout.contains("Usage: vm-system"), "{path:?}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = run(vm_args(&["completions", shell]), None).ok();
        assert!(
            out.contains("vm-system") && out.contains("run-file"),
            "{shell}: {out}"
        );
    }
    assert_eq!(run(vm_args(&["completions", "tcsh"]), None).code, 1);
}

#[test]
fn an_unreachable_daemon_exits_3() {
    let dead = dead_url();
    for (args, json_mode) in [
        (vec!["ops", "health"], false),
        (vec!["template", "list", "--output", "json"], true),
        (vec!["exec", "repl", UNKNOWN_ID, "1"], false),
        (vec!["exec", "events", UNKNOWN_ID, "--follow"], false),
    ] {
        let mut command = vm_args(&args);
        command.arg("--server-url").arg(&dead);
        let r = run(command, None);
        assert_eq!(r.code, 3, "{args:?}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
        assert!(
            r.stderr
                .starts_with(&format!("error: cannot reach vm-system at {dead}: ")),
            "{r:?}"
        );
        if json_mode {
            assert!(r.stdout.is_empty());
        }
    }
    // The default URL comes from the env var when no flag is given.
    let mut command = vm_args(&["ops", "health"]);
    command.env("VM_SYSTEM_SERVER_URL", &dead);
    let r = run(command, None);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr
            .starts_with(&format!("error: cannot reach vm-system at {dead}: ")),
        "{r:?}"
    );
}

#[test]
fn a_malformed_server_url_is_a_usage_error() {
    for bad in [
        "notaurl",
        "ftp://127.0.0.1:3210",
        "http://",
        "http://127.0.0.1:3210/api/v1",
        "http://127.0.0.1:3210/?x=1",
    ] {
        let r = run(vm_args(&["ops", "health", "--server-url", bad]), None);
        assert_eq!(r.code, 1, "{bad:?}: {r:?}");
        assert!(
            r.stderr.contains("--server-url") && !r.stderr.contains("cannot reach"),
            "{bad:?}: {r:?}"
        );
        let mut command = vm_args(&["ops", "health"]);
        command.env("VM_SYSTEM_SERVER_URL", bad);
        let r = run(command, None);
        assert_eq!(r.code, 1, "env {bad:?}: {r:?}");
        assert!(
            r.stderr.contains("VM_SYSTEM_SERVER_URL"),
            "env {bad:?}: {r:?}"
        );
    }
    let r = run(vm_args(&["ops", "health", "--server-url", ""]), None);
    assert_eq!(r.code, 1, "an empty flag: {r:?}");
}

/// A blank `VM_SYSTEM_SERVER_URL` or `VM_SYSTEM_TOKEN` counts as unset, and commands that are no
/// client (`serve`, `libs`) never read them.
#[test]
fn blank_or_bad_client_variables_do_not_break_other_commands() {
    let d = TestDaemon::start();
    let cli = Cli { d: &d };
    let mut command = cli.command(&["ops", "health", "--output", "json"]);
    command
        .env("VM_SYSTEM_TOKEN", "")
        .env("VM_SYSTEM_SERVER_URL", " ");
    let r = run(command, None);
    assert_eq!(r.code, 0, "{r:?}");
    let mut command = vm_args(&["ops", "health"]);
    command.env("VM_SYSTEM_SERVER_URL", "");
    let r = run(command, None);
    assert!(
        !r.stderr.contains("invalid value") && r.code != 1,
        "a blank URL means the default: {r:?}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let libs = tmp.path().join("libs");
    for (name, value) in [
        ("VM_SYSTEM_TOKEN", ""),
        ("VM_SYSTEM_TOKEN", "bad\u{7f}"),
        ("VM_SYSTEM_SERVER_URL", "http://127.0.0.1:3210/api/v1"),
    ] {
        let mut command = vm_args(&["libs", "list", "--library-dir", libs.to_str().unwrap()]);
        command.env(name, value);
        let r = run(command, None);
        assert_eq!(r.code, 0, "libs list with {name}={value:?}: {r:?}");
        // `serve` starts and prints its ready line.
        let mut serve = Command::new(bin_path("orchestrator-dup"));
        serve
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--pool-size",
                "0",
                "--db",
            ])
            .arg(tmp.path().join("db").join("vm.db"))
            .arg("--library-dir")
            .arg(&libs)
            .arg("--worker-bin")
            .arg(bin_path("worker-dup"))
            .env(name, value)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = serve.spawn().unwrap();
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            read.is_ok() && line.starts_with("vm-system listening on http://"),
            "serve with {name}={value:?}: {line:?}"
        );
    }
}

#[test]
fn bash_completes_subcommands_and_their_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("vm-system.bash");
    std::fs::write(&script, run(vm_args(&["completions", "bash"]), None).ok()).unwrap();
    // What bash's completion machinery does for `vm-system <words…><TAB>`.
    let complete = |words: &[&str]| {
        let words: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let program = format!(
            "source '{}'; COMP_WORDS=(vm-system {}); COMP_CWORD={}; \
             _vm__system vm-system \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            words.join(" "),
            words.len()
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(program)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let top = complete(&[""]);
    assert!(top.lines().any(|l| l == "exec"), "{top}");
    let exec = complete(&["exec", ""]);
    assert!(
        exec.lines().any(|l| l == "repl") && exec.lines().any(|l| l == "run-file"),
        "{exec}"
    );
    let flags = complete(&["exec", "events", "--"]);
    assert!(flags.lines().any(|l| l == "--follow"), "{flags}");
}

#[test]
fn the_token_comes_from_the_flag_or_the_env_var() {
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let d = TestDaemon::start_with(&["--auth-token-file", token_file.to_str().unwrap()]);
    let cli = Cli { d: &d };

    let r = cli.run(&["template", "list"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.starts_with("error: UNAUTHORIZED: ") && r.stderr.contains("(HTTP 401, request "),
        "{r:?}"
    );
    let r = cli.run(&["template", "list", "--token", "wrong"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        cli.json(&["template", "list", "--token", "s3cret"]),
        json!([])
    );
    let mut command = cli.command(&["template", "create", "--name", "via-env"]);
    command.env("VM_SYSTEM_TOKEN", "s3cret");
    assert!(
        run(command, None)
            .ok()
            .starts_with("Created template: via-env (ID: ")
    );
    let mut command = cli.command(&["template", "list", "--token", "s3cret"]);
    command.env("VM_SYSTEM_TOKEN", "wrong");
    assert_eq!(run(command, None).code, 0, "the flag wins");
    // Surrounding whitespace is trimmed, as the daemon trims its token file (a token read with
    // a trailing newline still works).
    let mut command = cli.command(&["template", "list"]);
    command.env("VM_SYSTEM_TOKEN", "s3cret\n");
    assert_eq!(run(command, None).code, 0, "a trailing newline is trimmed");
    // A token that cannot be sent in a header is a usage error, not an unreachable daemon.
    for bad in ["s3c\nret", "tab\u{7f}", "   "] {
        let r = cli.run(&["template", "list", "--token", bad]);
        assert_eq!(r.code, 1, "{bad:?}: {r:?}");
        assert!(
            r.stderr.contains("--token") && !r.stderr.contains("cannot reach"),
            "{bad:?}: {r:?}"
        );
    }
    // Health needs no token.
    assert_eq!(cli.json(&["ops", "health"])["status"], "ok");
}
