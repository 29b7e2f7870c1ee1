//! `template`, `session` and `ops` commands in both output modes, and where the server URL comes from.

use super::*;

#[test]
fn template_commands_in_both_output_modes() {
    let d = TestDaemon::start();
    let cli = Cli { d: &d };

    // create
    let out = cli.table(&["template", "create", "--name", "alpha"]);
    let line = out.trim_end();
    assert!(line.starts_with("Created template: alpha (ID: "), "{out}");
    let alpha = line
        .trim_start_matches("Created template: alpha (ID: ")
        .trim_end_matches(')')
        .to_string();
    assert_eq!(alpha.len(), 36, "{out}");
    let beta = cli.json(&[
        "template", "create", "--name", "beta", "--engine", "quickjs",
    ]);
    assert_eq!(
        (beta["name"].as_str(), beta["engine"].as_str()),
        (Some("beta"), Some("quickjs"))
    );
    let beta = id_of(&beta);

    // list
    let list = cli.table(&["template", "list"]);
    header(
        &list,
        &["ID", "NAME", "ENGINE", "MODULES", "LIBRARIES", "CREATED_AT"],
    );
    let r = rows(&list);
    assert_eq!(r.len(), 3, "{list}");
    assert_eq!(
        r[1][..5],
        [beta.as_str(), "beta", "quickjs", "-", "-"],
        "newest first"
    );
    assert_eq!(r[2][..3], [alpha.as_str(), "alpha", "quickjs"]);
    assert_eq!(cli.json(&["template", "list"]), d.get("/templates").body);

    // get
    let get = fields(&cli.table(&["template", "get", &alpha]));
    let template: Value = serde_json::from_str(&get["template"]).unwrap();
    assert_eq!(template["id"], json!(alpha));
    assert_eq!(get["capabilities"], "[]");
    assert_eq!(
        cli.json(&["template", "get", &alpha]),
        d.get(&format!("/templates/{alpha}")).body
    );

    // settings get / set
    let settings = fields(&cli.table(&["template", "settings", "get", &alpha]));
    assert_eq!(
        serde_json::from_str::<Value>(&settings["limits"]).unwrap()["cpu_ms"],
        5000
    );
    assert_eq!(settings["template_id"], alpha);
    let json_settings = cli.json(&["template", "settings", "get", &alpha]);
    assert_eq!(json_settings["runtime"]["console"], true);
    let set = cli.json(&[
        "template",
        "settings",
        "set",
        &alpha,
        "--json",
        r#"{"limits":{"cpu_ms":1000,"wall_ms":2000},"runtime":{"strict":false}}"#,
        "--cpu-ms",
        "1500",
        "--max-events",
        "50",
        "--strict",
        "true",
        "--console",
        "false",
        "--esm",
        "false",
    ]);
    assert_eq!(
        set["limits"],
        json!({"cpu_ms": 1500, "wall_ms": 2000, "mem_mb": 128, "max_events": 50, "max_output_kb": 512}),
        "flags override --json"
    );
    assert_eq!(
        set["runtime"],
        json!({"esm": false, "strict": true, "console": false})
    );
    let set = fields(&cli.table(&[
        "template",
        "settings",
        "set",
        &alpha,
        "--mem-mb",
        "64",
        "--max-output-kb",
        "100",
        "--wall-ms",
        "3000",
    ]));
    let limits: Value = serde_json::from_str(&set["limits"]).unwrap();
    assert_eq!(
        (limits["mem_mb"].as_i64(), limits["max_output_kb"].as_i64()),
        (Some(64), Some(100))
    );
    let none = cli.run(&["template", "settings", "set", &alpha]);
    assert_eq!(none.code, 1, "at least one change is required: {none:?}");
    let bad_bool = cli.run(&["template", "settings", "set", &alpha, "--strict", "yes"]);
    assert_eq!(bad_bool.code, 1, "{bad_bool:?}");
    let range = cli.run(&["template", "settings", "set", &alpha, "--wall-ms", "-1"]);
    assert_eq!(range.code, 1);
    assert!(
        range.stderr.starts_with("error: VALIDATION_ERROR: "),
        "{range:?}"
    );

    // capabilities
    let cap = fields(&cli.table(&[
        "template",
        "add-capability",
        &alpha,
        "--kind",
        "fs",
        "--name",
        "worktree",
        "--config",
        r#"{"write":true}"#,
    ]));
    assert_eq!(
        (
            cap["kind"].as_str(),
            cap["config"].as_str(),
            cap["enabled"].as_str()
        ),
        ("fs", r#"{"write":true}"#, "true")
    );
    let cap_id = cap["id"].clone();
    let env_cap = cli.json(&[
        "template",
        "add-capability",
        &alpha,
        "--kind",
        "env",
        "--name",
        "HOME",
        "--enabled",
        "false",
    ]);
    assert_eq!(
        (env_cap["enabled"].as_bool(), env_cap["config"].clone()),
        (Some(false), json!({}))
    );
    let caps = cli.table(&["template", "list-capabilities", &alpha]);
    header(&caps, &["ID", "KIND", "NAME", "ENABLED", "CONFIG"]);
    let r = rows(&caps);
    assert_eq!(
        r[1],
        [
            cap_id.as_str(),
            "fs",
            "worktree",
            "true",
            r#"{"write":true}"#
        ],
        "oldest first"
    );
    assert_eq!(r[2][1..], ["env", "HOME", "false", "{}"]);
    assert_eq!(
        cli.json(&["template", "list-capabilities", &alpha])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let removed = fields(&cli.table(&["template", "remove-capability", &alpha, &cap_id]));
    assert_eq!(
        (
            removed["status"].as_str(),
            removed["capability_id"].as_str()
        ),
        ("ok", cap_id.as_str())
    );
    let removed = cli.json(&["template", "remove-capability", &alpha, &id_of(&env_cap)]);
    assert_eq!(removed["status"], "ok");
    assert_eq!(
        rows(&cli.table(&["template", "list-capabilities", &alpha])).len(),
        1,
        "header only"
    );

    // startup files
    let sf = fields(&cli.table(&[
        "template",
        "add-startup",
        &alpha,
        "--path",
        "./init/b.js",
        "--order",
        "5",
    ]));
    assert_eq!(
        (
            sf["path"].as_str(),
            sf["order_index"].as_str(),
            sf["mode"].as_str()
        ),
        ("init/b.js", "5", "eval")
    );
    let sf2 = cli.json(&[
        "template",
        "add-startup",
        &alpha,
        "--path",
        "a.js",
        "--order",
        "-3",
        "--mode",
        "eval",
    ]);
    assert_eq!(sf2["order_index"], -3);
    let sfs = cli.table(&["template", "list-startup", &alpha]);
    header(&sfs, &["ID", "ORDER", "PATH", "MODE"]);
    let r = rows(&sfs);
    assert_eq!(
        r[1],
        [id_of(&sf2).as_str(), "-3", "a.js", "eval"],
        "run order"
    );
    assert_eq!(r[2][1..], ["5", "init/b.js", "eval"]);
    assert_eq!(
        cli.json(&["template", "list-startup", &alpha])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let removed = cli.json(&["template", "remove-startup", &alpha, &id_of(&sf2)]);
    assert_eq!(removed["startup_file_id"], json!(id_of(&sf2)));
    let removed = fields(&cli.table(&["template", "remove-startup", &alpha, &sf["id"]]));
    assert_eq!(removed["status"], "ok");

    // modules
    let m = fields(&cli.table(&["template", "add-module", &alpha, "--name", " FS "]));
    assert_eq!(
        (m["template_id"].as_str(), m["name"].as_str()),
        (alpha.as_str(), "fs")
    );
    assert_eq!(
        cli.json(&["template", "add-module", &alpha, "--name", "database"])["name"],
        "database"
    );
    assert_eq!(
        cli.table(&["template", "list-modules", &alpha]),
        "NAME\nfs\ndatabase\n"
    );
    assert_eq!(
        cli.json(&["template", "list-modules", &alpha]),
        json!(["fs", "database"])
    );
    assert_eq!(
        cli.json(&["template", "remove-module", &alpha, "--name", "fs"])["status"],
        "ok"
    );
    let removed = fields(&cli.table(&["template", "remove-module", &alpha, "--name", "database"]));
    assert_eq!(removed["name"], "database");
    assert_eq!(cli.table(&["template", "list-modules", &alpha]), "NAME\n");

    // libraries
    let l = fields(&cli.table(&["template", "add-library", &alpha, "--name", "lodash"]));
    assert_eq!(l["name"], "lodash");
    assert_eq!(
        cli.json(&["template", "add-library", &alpha, "--name", "dayjs@1.11.9"])["name"],
        "dayjs@1.11.9"
    );
    assert_eq!(
        cli.table(&["template", "list-libraries", &alpha]),
        "NAME\nlodash\ndayjs@1.11.9\n"
    );
    assert_eq!(
        cli.json(&["template", "list-libraries", &alpha]),
        json!(["lodash", "dayjs@1.11.9"])
    );
    let list = rows(&cli.table(&["template", "list"]));
    let row = list.iter().find(|r| r[0] == alpha).unwrap();
    assert_eq!(row[3..5], ["-", "lodash,dayjs@1.11.9"]);
    assert_eq!(
        cli.json(&[
            "template",
            "remove-library",
            &alpha,
            "--name",
            "dayjs@1.11.9"
        ])["status"],
        "ok"
    );
    let removed = fields(&cli.table(&["template", "remove-library", &alpha, "--name", "lodash"]));
    assert_eq!(removed["name"], "lodash");
    assert_eq!(cli.json(&["template", "list-libraries", &alpha]), json!([]));

    // catalogs
    let modules = cli.table(&["template", "list-available-modules"]);
    header(&modules, &["ID", "FUNCTIONS", "REQUIRES_CAPABILITY"]);
    let r = rows(&modules);
    assert_eq!(r[1], ["database", "configure,query,exec,close", "-"]);
    assert_eq!(r[2], ["exec", "run", "module:exec"]);
    assert_eq!(
        r[3],
        [
            "fs",
            "readFileSync,writeFileSync,existsSync,readdirSync",
            "fs"
        ]
    );
    assert_eq!(
        cli.json(&["template", "list-available-modules"]),
        d.get("/catalog/modules").body
    );
    let libraries = cli.table(&["template", "list-available-libraries"]);
    header(&libraries, &["ID", "VERSION", "GLOBAL", "CACHED"]);
    assert_eq!(rows(&libraries)[2], ["lodash", "4.17.21", "_", "false"]);
    assert_eq!(
        cli.json(&["template", "list-available-libraries"]),
        d.get("/catalog/libraries").body
    );

    // delete
    let deleted = fields(&cli.table(&["template", "delete", &alpha]));
    assert_eq!(
        (deleted["status"].as_str(), deleted["template_id"].as_str()),
        ("ok", alpha.as_str())
    );
    assert_eq!(
        cli.json(&["template", "delete", &beta])["template_id"],
        json!(beta)
    );
    assert_eq!(cli.json(&["template", "list"]), json!([]));
    assert_eq!(
        cli.table(&["template", "list"]).lines().count(),
        1,
        "header only"
    );
}

#[test]
fn session_commands_in_both_output_modes() {
    let d = TestDaemon::start();
    let cli = Cli { d: &d };
    let t = d.template("sessions");
    let wt = d.worktree("rel");

    // A relative worktree path is made absolute against the CLI's cwd.
    let mut command = cli.command(&[
        "session",
        "create",
        "--template-id",
        &t,
        "--workspace-id",
        "ws-7",
        "--base-commit",
        "abc123",
        "--worktree-path",
        "worktrees/rel",
    ]);
    command.current_dir(d.dir.path());
    let out = run(command, None).ok();
    let s1 = out
        .trim_end()
        .strip_prefix("Created session: ")
        .unwrap()
        .to_string();
    assert_eq!(s1.len(), 36, "{out}");
    let session = d.get(&format!("/sessions/{s1}")).ok(200).clone();
    assert_eq!(session["worktree_path"], json!(wt.to_str().unwrap()));
    assert_eq!(
        (
            session["workspace_id"].as_str(),
            session["base_commit_oid"].as_str()
        ),
        (Some("ws-7"), Some("abc123"))
    );

    let s2 = cli.json(&[
        "session",
        "create",
        "--template-id",
        &t,
        "--workspace-id",
        "ws-8",
        "--base-commit",
        "def",
        "--worktree-path",
        wt.to_str().unwrap(),
    ]);
    assert_eq!(s2["status"], "ready");
    let s2 = id_of(&s2);

    // list
    let list = cli.table(&["session", "list"]);
    header(
        &list,
        &[
            "ID",
            "TEMPLATE_ID",
            "STATUS",
            "PID",
            "WORKTREE_PATH",
            "CREATED_AT",
        ],
    );
    let r = rows(&list);
    assert_eq!(r.len(), 3);
    assert_eq!(r[1][..3], [s2.as_str(), t.as_str(), "ready"]);
    assert!(r[1][3].parse::<u32>().is_ok(), "pid: {list}");
    assert_eq!(r[1][4], wt.to_str().unwrap());
    assert_eq!(
        cli.json(&["session", "list", "--status", "ready"])
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // get
    let get = fields(&cli.table(&["session", "get", &s1]));
    assert_eq!(
        (
            get["id"].as_str(),
            get["status"].as_str(),
            get["last_error"].as_str()
        ),
        (s1.as_str(), "ready", "null")
    );
    assert_eq!(
        cli.json(&["session", "get", &s1]),
        d.get(&format!("/sessions/{s1}")).body
    );

    // restart
    let old_pid = get["pid"].clone();
    let restarted = fields(&cli.table(&["session", "restart", &s1]));
    assert_eq!(restarted["status"], "ready");
    assert_ne!(restarted["pid"], old_pid, "a new worker");
    assert_eq!(cli.json(&["session", "restart", &s2])["status"], "ready");

    // close
    let closed = fields(&cli.table(&["session", "close", &s1]));
    assert_eq!(
        (closed["status"].as_str(), closed["pid"].as_str()),
        ("closed", "null")
    );
    assert_eq!(cli.json(&["session", "close", &s2])["status"], "closed");
    assert_eq!(
        cli.json(&["session", "list", "--status", "closed"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let list = rows(&cli.table(&["session", "list", "--status", "closed"]));
    assert_eq!(list[1][3], "-", "no pid");
    let bad = cli.run(&["session", "list", "--status", "zombie"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.starts_with("error: VALIDATION_ERROR: "),
        "{bad:?}"
    );
}

#[test]
fn ops_commands_and_server_url_precedence() {
    let d = TestDaemon::start();
    let cli = Cli { d: &d };
    let health = fields(&cli.table(&["ops", "health"]));
    assert_eq!(
        (
            health["status"].as_str(),
            health["version"].as_str(),
            health["engine"].as_str()
        ),
        ("ok", "1.0.0", "quickjs")
    );
    assert_eq!(
        cli.json(&["ops", "health"]),
        json!({"status": "ok", "version": "1.0.0", "engine": "quickjs"})
    );
    let t = d.template("ops");
    let s = d.session(&t);
    let summary = fields(&cli.table(&["ops", "runtime-summary"]));
    assert_eq!(summary["active_sessions"], "1");
    assert_eq!(summary["active_session_ids"], format!("[\"{s}\"]"));
    let summary = cli.json(&["ops", "runtime-summary"]);
    assert_eq!(summary["workers"][0]["session_id"], json!(s));
    // Global flags anywhere on the line.
    let r = run(
        vm_args(&[
            "--output",
            "json",
            "ops",
            "--server-url",
            &format!("http://{}", d.addr),
            "health",
        ]),
        None,
    );
    assert_eq!(one_json_line(&r.ok())["status"], "ok");

    let good = format!("http://{}", d.addr);
    let dead = dead_url();
    // The env var alone.
    let mut command = vm_args(&["ops", "health", "--output", "json"]);
    command.env("VM_SYSTEM_SERVER_URL", &good);
    assert_eq!(one_json_line(&run(command, None).ok())["status"], "ok");
    // The flag wins over the env var, both ways.
    let mut command = vm_args(&["ops", "health", "--server-url", &good]);
    command.env("VM_SYSTEM_SERVER_URL", &dead);
    assert_eq!(run(command, None).code, 0);
    let mut command = vm_args(&["ops", "health", "--server-url", &dead]);
    command.env("VM_SYSTEM_SERVER_URL", &good);
    let r = run(command, None);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr
            .starts_with(&format!("error: cannot reach vm-system at {dead}: ")),
        "{r:?}"
    );
}
