//! `exec` commands: transcripts, stdin code, exit code 2, output limits, cancel and `events --follow`.

use super::*;

#[test]
fn exec_commands_in_both_output_modes() {
    let d = TestDaemon::start();
    let cli = Cli { d: &d };
    let t = d.template("exec");
    let s = d.session(&t);

    // repl, table: the transcript
    let out = cli.table(&[
        "exec",
        "repl",
        &s,
        "console.log('hi'); console.warn('careful'); 40 + 2",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..3], ["[log] hi", "[warn] careful", "=> 42"], "{out}");
    let (e1, status, code) = footer(lines[3]);
    assert_eq!((status.as_str(), code), ("ok", None));
    assert_eq!(lines.len(), 4);

    // What a session prints reaches the terminal with its control characters escaped.
    let other = d.session(&t);
    let out = cli.table(&[
        "exec",
        "repl",
        &other,
        "console.log('\\x1b[31mred\\x1b]0;title\\x07 a\\nb'); 'x\\x1b[2J'",
    ]);
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    assert!(
        out.starts_with("[log] \\x1b[31mred\\x1b]0;title\\x07 a\nb\n=> x\\x1b[2J\n"),
        "{out:?}"
    );

    // repl, json: the ExecutionDetail
    let detail = cli.json(&["exec", "repl", &s, "var x = {a: [1, 'b']}; x"]);
    assert_eq!(detail["status"], "ok");
    assert_eq!(detail["result"]["json"], json!({"a": [1, "b"]}));
    assert_eq!(detail["events"][0]["type"], "input_echo");

    // repl with the code on stdin
    let mut command = cli.command(&["exec", "repl", &s, "-"]);
    command.stdin(Stdio::piped());
    let out = run(command, Some("console.log(typeof x);\nx.a.length * 10\n")).ok();
    assert!(
        out.starts_with("[log] object\n=> 20\n-- execution "),
        "{out}"
    );
    let mut command = cli.command(&["exec", "repl", &s, "-", "--output", "json"]);
    command.stdin(Stdio::piped());
    let detail = one_json_line(&run(command, Some("'from stdin'")).ok());
    assert_eq!(detail["input"], "'from stdin'");
    assert_eq!(detail["result"]["preview"], "from stdin");

    // run-file with args and env
    let wt = d.get(&format!("/sessions/{s}")).body["worktree_path"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(
        Path::new(&wt).join("job.js"),
        "console.info(__ARGS__.day, process.env.MODE); __ARGS__.day * 2",
    )
    .unwrap();
    let out = cli.table(&[
        "exec",
        "run-file",
        &s,
        "job.js",
        "--args",
        r#"{"day":3}"#,
        "--env",
        r#"{"MODE":"fast"}"#,
    ]);
    assert!(
        out.starts_with("[info] 3 fast\n=> 6\n-- execution "),
        "{out}"
    );
    let detail = cli.json(&["exec", "run-file", &s, "job.js", "--args", r#"{"day":4}"#]);
    assert_eq!(
        (detail["kind"].as_str(), detail["path"].as_str()),
        (Some("run_file"), Some("job.js"))
    );
    assert_eq!(detail["result"]["json"], 8);
    assert_eq!(detail["env"], json!({}));
    let run_file_id = id_of(&detail);

    // list
    let list = cli.table(&["exec", "list", &s]);
    header(&list, &["ID", "KIND", "STATUS", "STARTED_AT", "WALL_MS"]);
    let r = rows(&list);
    assert_eq!(r.len(), 7, "{list}");
    assert_eq!(r[1][..3], [run_file_id.as_str(), "run_file", "ok"]);
    assert!(r[1][4].parse::<u64>().is_ok());
    let limited = cli.json(&["exec", "list", &s, "--limit", "2"]);
    assert_eq!(limited.as_array().unwrap().len(), 2);
    assert_eq!(limited[0]["id"], json!(run_file_id));

    // get
    let out = cli.table(&["exec", "get", &e1]);
    assert!(
        out.starts_with("[log] hi\n[warn] careful\n=> 42\n-- execution "),
        "{out}"
    );
    assert_eq!(footer(out.lines().last().unwrap()).0, e1);
    assert_eq!(
        cli.json(&["exec", "get", &e1]),
        d.get(&format!("/executions/{e1}")).body
    );

    // events
    let events = cli.table(&["exec", "events", &e1]);
    header(&events, &["SEQ", "TS", "TYPE", "PAYLOAD"]);
    let r = rows(&events);
    assert_eq!(r.len(), 5);
    assert_eq!(r[1][0], "1");
    assert_eq!(r[1][2], "input_echo");
    assert_eq!(r[2][2..], ["console", r#"{"level":"log","text":"hi"}"#]);
    let after = cli.json(&["exec", "events", &e1, "--after-seq", "1", "--limit", "2"]);
    let seqs: Vec<_> = after
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(
        cli.json(&["exec", "events", &e1]),
        d.get(&format!("/executions/{e1}/events")).body
    );

    // cancel: a long execution started over HTTP from another thread
    let out = std::thread::scope(|scope| {
        let long = scope.spawn(|| d.repl(&s, "console.log('spinning'); for (;;) {}"));
        let running = wait_running(&d, &s);
        let out = cli.table(&["exec", "cancel", &running]);
        let answer = long.join().unwrap();
        assert_eq!(answer.ok(201)["status"], "cancelled");
        (running, out)
    });
    let (running, text) = out;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "[log] spinning", "{text}");
    assert_eq!(lines[1], "[system] execution cancelled", "{text}");
    assert_eq!(
        footer(lines[2]),
        (
            running.clone(),
            "cancelled".to_string(),
            Some("CANCELLED".to_string())
        )
    );
    let again = cli.run(&["exec", "cancel", &running]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(
        again.stderr.starts_with("error: EXECUTION_FINISHED: "),
        "{again:?}"
    );
    let cancelled = std::thread::scope(|scope| {
        let long = scope.spawn(|| d.repl(&s, "for (;;) {}"));
        let running = wait_running(&d, &s);
        let body = cli.json(&["exec", "cancel", &running]);
        long.join().unwrap();
        body
    });
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["error"]["code"], "CANCELLED");
}

#[test]
fn exec_exit_codes_follow_the_execution_status() {
    let d = TestDaemon::start();
    let cli = Cli { d: &d };
    let t = d.template("codes");
    d.patch(
        &format!("/templates/{t}/settings"),
        json!({"limits": {"max_events": 3}}),
    )
    .ok(200);
    let s = d.session(&t);

    // An exception: exit 2, with the transcript.
    let r = cli.run(&[
        "exec",
        "repl",
        &s,
        "console.log('before'); throw new Error('boom')",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[..2],
        ["[log] before", "Uncaught Error: boom"],
        "{r:?}"
    );
    let (_, status, code) = footer(lines[2]);
    assert_eq!(
        (status.as_str(), code.as_deref()),
        ("error", Some("EXCEPTION"))
    );
    assert!(r.stderr.is_empty(), "{r:?}");
    let r = cli.run(&["exec", "repl", &s, "throw 7", "--output", "json"]);
    assert_eq!(r.code, 2);
    let detail = one_json_line(&r.stdout);
    assert_eq!(detail["error"]["code"], "EXCEPTION");
    let r = cli.run(&["exec", "repl", &s, "throw 7"]);
    assert!(r.stdout.starts_with("Uncaught 7\n"), "{r:?}");

    // An output limit (422): no error line, the stored execution, exit 2.
    let r = cli.run(&[
        "exec",
        "repl",
        &s,
        "for (let i = 0; i < 10; i++) console.log(i)",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.is_empty(), "no error line: {r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "[log] 0",
            "[log] 1",
            "[system] output limit exceeded (max_events=3)"
        ],
        "{r:?}"
    );
    let (id, status, code) = footer(lines[3]);
    assert_eq!(
        (status.as_str(), code.as_deref()),
        ("error", Some("OUTPUT_LIMIT_EXCEEDED"))
    );
    let r = cli.run(&[
        "exec",
        "repl",
        &s,
        "for (let i = 0; i < 10; i++) console.log(i)",
        "--output",
        "json",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    let detail = one_json_line(&r.stdout);
    assert_eq!(detail["error"]["code"], "OUTPUT_LIMIT_EXCEEDED");
    assert_eq!(detail["events"].as_array().unwrap().len(), 4);
    assert_ne!(detail["id"], json!(id));

    // run-file ending other than ok: exit 2; a file that does not exist is an API error: exit 1.
    let wt = d.get(&format!("/sessions/{s}")).body["worktree_path"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(Path::new(&wt).join("bad.js"), "null.x").unwrap();
    let r = cli.run(&["exec", "run-file", &s, "bad.js"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.starts_with("Uncaught TypeError: "), "{r:?}");
    let r = cli.run(&["exec", "run-file", &s, "missing.js"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("error: FILE_NOT_FOUND: "), "{r:?}");

    // ok: exit 0, also for exec get of a failed execution.
    assert_eq!(cli.run(&["exec", "repl", &s, "1"]).code, 0);
    assert_eq!(cli.run(&["exec", "get", &id]).code, 0);
}

#[test]
fn events_follow_prints_events_while_the_execution_runs() {
    let d = TestDaemon::start();
    let cli = Cli { d: &d };
    let t = d.template("follow");
    let s = d.session(&t);
    let code = "let i = 0; const t = setInterval(() => { console.log('tick ' + (++i)); if (i === 30) clearInterval(t); }, 50); 'started'";
    std::thread::scope(|scope| {
        let long = scope.spawn(|| d.repl(&s, code));
        let id = wait_running(&d, &s);
        let mut command = cli.command(&["exec", "events", &id, "--follow", "--output", "json"]);
        let mut child = command.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut read_line = || {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            line
        };
        let first = read_line();
        let event: Value = serde_json::from_str(first.trim_end()).unwrap();
        assert_eq!(
            (event["seq"].as_i64(), event["type"].as_str()),
            (Some(1), Some("input_echo")),
            "{first}"
        );
        let second: Value = serde_json::from_str(read_line().trim_end()).unwrap();
        assert_eq!(second["payload"]["text"], "tick 1");
        let status = d.get(&format!("/executions/{id}")).body["status"].clone();
        assert_eq!(
            status, "running",
            "an event printed before the execution ended"
        );

        let mut rest = Vec::new();
        loop {
            let line = read_line();
            if line.is_empty() {
                break;
            }
            rest.push(serde_json::from_str::<Value>(line.trim_end()).unwrap());
        }
        assert_eq!(wait(&mut child, DEADLINE).code(), Some(0), "exits 0 at end");
        assert_eq!(rest.len(), 30, "29 ticks and the value, events only");
        assert_eq!(rest[28]["payload"]["text"], "tick 30");
        assert_eq!(rest[29]["type"], "value");
        assert!(rest.iter().all(|e| e["execution_id"] == json!(id)));
        assert_eq!(long.join().unwrap().ok(201)["status"], "ok");

        // Table mode on the ended execution: header, rows, the footer at end; --after-seq applies.
        let out = cli.table(&["exec", "events", &id, "--follow", "--after-seq", "30"]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(rows(lines[0]).concat(), ["SEQ", "TS", "TYPE", "PAYLOAD"]);
        assert_eq!(lines.len(), 4, "{out}");
        assert!(
            lines[1].starts_with("31 ")
                && lines[1].contains(" console ")
                && lines[1].ends_with(r#"{"level":"log","text":"tick 30"}"#),
            "{out}"
        );
        assert!(
            lines[2].starts_with("32 ") && lines[2].contains(" value "),
            "{out}"
        );
        assert_eq!(footer(lines[3]).1, "ok");
    });
    let r = cli.run(&["exec", "events", UNKNOWN_ID, "--follow"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.starts_with("error: EXECUTION_NOT_FOUND: "),
        "{r:?}"
    );
}

#[test]
fn ctrl_c_cancels_the_running_execution() {
    let d = TestDaemon::start();
    let cli = Cli { d: &d };
    let t = d.template("ctrl-c");
    let s = d.session(&t);
    for (args, kind) in [
        (
            vec!["exec", "repl", &s, "console.log('spinning'); for (;;) {}"],
            "repl",
        ),
        (vec!["exec", "run-file", &s, "spin.js"], "run_file"),
    ] {
        if kind == "run_file" {
            let wt = d.get_session(&s)["worktree_path"]
                .as_str()
                .unwrap()
                .to_string();
            std::fs::write(std::path::Path::new(&wt).join("spin.js"), "for (;;) {}").unwrap();
        }
        let mut command = cli.command(&args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = command.spawn().unwrap();
        let running = wait_running(&d, &s);
        // SAFETY: kill(2) on the CLI process this test started.
        unsafe { libc::kill(i32::try_from(child.id()).unwrap(), libc::SIGINT) };
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{kind}: {stdout} {stderr}");
        let last = stdout.lines().last().unwrap_or_default();
        assert_eq!(
            footer(last),
            (
                running.clone(),
                "cancelled".to_string(),
                Some("CANCELLED".to_string())
            ),
            "{kind}: {stdout}"
        );
        assert!(
            stderr.contains(&format!("cancelling execution {running}")),
            "{stderr}"
        );
        assert_eq!(d.execution(&running)["status"], "cancelled");
        // The session is free again.
        assert_eq!(
            cli.json(&["exec", "repl", &s, "1 + 1"])["result"]["json"],
            2
        );
    }
}

/// Answers nested deeper than serde_json's default limit of 128 levels (a value a session
/// returns, inside the ExecutionDetail) print like any other, in both modes.
#[test]
fn deeply_nested_answers_print_like_any_other() {
    let d = TestDaemon::start();
    let cli = Cli { d: &d };
    let s = d.session(&d.template("deep"));
    let code = "JSON.parse('['.repeat(1000) + ']'.repeat(1000))";
    let nested = format!("{}{}", "[".repeat(1000), "]".repeat(1000));

    let out = cli.table(&["exec", "repl", &s, code]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "=> [ [ [ [Array] ] ] ]", "{out}");
    let (id, status, _) = footer(lines[1]);
    assert_eq!(status, "ok");

    let mut json_args = vec!["exec", "repl", &s, code, "--output", "json"];
    let out = cli.run(&json_args).ok();
    assert_eq!(out.lines().count(), 1, "{out}");
    let mut de = serde_json::Deserializer::from_str(&out);
    de.disable_recursion_limit();
    let detail = <Value as serde::Deserialize>::deserialize(&mut de).unwrap();
    assert_eq!(detail["status"], "ok");
    assert_eq!(detail["result"]["json"].to_string(), nested);

    for args in [
        vec!["exec", "get", id.as_str()],
        vec!["exec", "list", &s],
        vec!["exec", "events", id.as_str()],
    ] {
        let out = cli.table(&args);
        assert!(out.lines().count() >= 2, "{args:?}: {out}");
        json_args = args.clone();
        json_args.extend(["--output", "json"]);
        let out = cli.run(&json_args).ok();
        assert!(out.contains(&nested), "{args:?}");
    }
    let out = cli.run(&["exec", "events", &id, "--follow"]).ok();
    let rows: Vec<&str> = out.lines().collect();
    assert!(
        rows[2].starts_with("2 ") && rows[2].contains(&nested),
        "{out}"
    );
}
