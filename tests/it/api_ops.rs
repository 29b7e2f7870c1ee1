//! Operations and catalog endpoints (spec §4.1, §8.3, §9): health, runtime summary, metrics,
//! the module and library catalogs, and the OpenAPI document.

use serde_json::{Value, json};
use tests::daemon::{TestDaemon, library_dir};

use crate::api_conventions::{assert_keys, assert_ts, expect_ok};

#[test]
fn health_is_fixed() {
    let d = TestDaemon::start();
    let r = d.get("/health");
    let body = expect_ok(&r, 200, "health");
    assert_eq!(
        body,
        json!({"status": "ok", "version": "1.0.0", "engine": "quickjs"})
    );
    assert!(!r.text.contains(' '), "compact JSON: {}", r.text);
}

/// Each live session holds two of the daemon's descriptors (its frame socket and its stderr pipe),
/// so a daemon that kept the common default soft limit on open files (1,024) would fail near 500
/// sessions. The daemon raises its soft limit to the hard limit when it starts.
#[test]
fn the_daemon_raises_its_soft_open_file_limit() {
    let soft = 128;
    let d = TestDaemon::start_with_open_files(soft);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    // "Max open files   <soft>   <hard>   files"
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[3], fields[4], "soft limit not raised: {line}");
    assert!(
        fields[4] == "unlimited" || fields[4].parse::<u64>().unwrap() >= 4 * soft,
        "this test needs a hard limit of at least {}: {line}",
        4 * soft
    );
    // More sessions than the starting soft limit has descriptors for.
    let template = d.template("many");
    let worktree = d.worktree("many");
    let count = soft / 2 + 16;
    for _ in 0..count {
        let r = d.session_resp(&template, &worktree);
        assert_eq!(r.ok(201)["status"], "ready", "{}", r.text);
    }
    assert_eq!(summary(&d)["active_sessions"], count);
}

fn summary(d: &TestDaemon) -> Value {
    let s = expect_ok(&d.get("/runtime/summary"), 200, "runtime summary");
    assert_keys(
        &s,
        &["active_sessions", "active_session_ids", "workers", "pool"],
        "summary",
    );
    assert_keys(&s["pool"], &["warm", "target"], "summary.pool");
    assert!(s["active_sessions"].is_u64(), "active_sessions: {s}");
    assert!(
        s["pool"]["warm"].is_u64() && s["pool"]["target"].is_u64(),
        "pool: {s}"
    );
    for w in s["workers"].as_array().unwrap() {
        assert_keys(
            w,
            &["session_id", "pid", "rss_kb", "cpu_ms", "started_at"],
            "summary.workers.*",
        );
        assert!(
            w["session_id"].is_string() && w["pid"].is_u64(),
            "worker: {w}"
        );
        assert!(w["rss_kb"].is_u64() && w["cpu_ms"].is_u64(), "worker: {w}");
        assert_ts(w, "started_at", "summary.workers.*");
    }
    s
}

#[test]
fn runtime_summary_lists_active_sessions_and_their_workers() {
    let d = TestDaemon::start();
    let s = summary(&d);
    assert_eq!(s["active_sessions"], 0);
    assert_eq!(s["active_session_ids"], json!([]));
    assert_eq!(s["workers"], json!([]));
    assert_eq!(s["pool"]["target"], 2, "--pool-size defaults to 2");
    assert!(s["pool"]["warm"].as_u64().unwrap() <= 2);
    d.wait_pool_full(2);

    let t = d.template("summary");
    let mut ids = vec![d.session(&t), d.session(&t)];
    ids.sort();
    let s = summary(&d);
    assert_eq!(s["active_sessions"], 2, "{s}");
    assert_eq!(s["active_session_ids"], json!(ids), "sorted ascending");
    let workers = s["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{s}");
    let mut pids = Vec::new();
    for (w, id) in workers.iter().zip(&ids) {
        assert_eq!(
            w["session_id"],
            json!(id),
            "workers in the order of the ids"
        );
        let pid = w["pid"].as_u64().unwrap();
        let session = d.get(&format!("/sessions/{id}")).ok(200).clone();
        assert_eq!(
            session["pid"],
            json!(pid),
            "the session's pid is its worker's"
        );
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "worker {pid} is alive"
        );
        assert!(
            w["rss_kb"].as_u64().unwrap() > 0,
            "rss_kb of a live worker: {w}"
        );
        pids.push(pid);
    }
    assert_ne!(pids[0], pids[1]);

    // A closed session is no longer active.
    d.post_raw(&format!("/sessions/{}/close", ids[0]), "")
        .ok(200);
    let s = summary(&d);
    assert_eq!(s["active_sessions"], 1);
    assert_eq!(s["active_session_ids"], json!([ids[1]]));
    assert_eq!(s["workers"].as_array().unwrap().len(), 1);
    assert_eq!(s["workers"][0]["pid"], json!(pids[1]));
}

/// The value of the sample line `series` (name plus labels exactly as printed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}

/// The `le` labels of a histogram's bucket lines for `kind`.
fn buckets(text: &str, family: &str, kind: &str) -> Vec<f64> {
    let prefix = format!("{family}_bucket{{");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|l| l.contains(&format!("kind=\"{kind}\"")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            Some(if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            })
        })
        .collect()
}

#[test]
fn metrics_expose_the_documented_families() {
    let d = TestDaemon::start();
    let t = d.template("metrics");
    let s1 = d.session(&t);
    let _s2 = d.session(&t);
    d.repl(&s1, "1 + 1").ok(201);
    d.repl(&s1, "throw new Error('x')").ok(201);
    d.post_raw(&format!("/sessions/{s1}/close"), "").ok(200);

    let r = d.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.text);
    let ct = r.header("content-type").unwrap_or("");
    assert!(
        ct.starts_with("text/plain") && ct.contains("version=0.0.4"),
        "content type {ct:?}"
    );
    assert!(r.header("x-request-id").is_some());
    let text = &r.text;

    for (family, kind) in [
        ("vm_system_sessions", "gauge"),
        ("vm_system_executions_total", "counter"),
        ("vm_system_executions_running", "gauge"),
        ("vm_system_worker_spawns_total", "counter"),
        ("vm_system_worker_crashes_total", "counter"),
        ("vm_system_pool_warm_workers", "gauge"),
        ("vm_system_execution_duration_seconds", "histogram"),
    ] {
        let line = format!("# TYPE {family} {kind}");
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    let states = [
        ("starting", 0.0),
        ("ready", 1.0),
        ("crashed", 0.0),
        ("closed", 1.0),
    ];
    for (state, value) in states {
        let series = format!("vm_system_sessions{{state=\"{state}\"}}");
        assert_eq!(sample(text, &series), Some(value), "{series} in\n{text}");
    }
    assert_eq!(
        sample(text, "vm_system_executions_total{status=\"ok\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(text, "vm_system_executions_total{status=\"error\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(text, "vm_system_executions_running"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(text, "vm_system_worker_crashes_total"),
        Some(0.0),
        "{text}"
    );
    let spawns = sample(text, "vm_system_worker_spawns_total").unwrap_or(0.0);
    assert!(
        spawns >= 2.0,
        "two sessions need at least two spawned workers: {text}"
    );
    assert!(
        sample(text, "vm_system_pool_warm_workers").is_some(),
        "{text}"
    );

    let want = [
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
        30.0,
        60.0,
        f64::INFINITY,
    ];
    let family = "vm_system_execution_duration_seconds";
    assert_eq!(
        buckets(text, family, "repl"),
        want,
        "repl buckets in\n{text}"
    );
    let count = text
        .lines()
        .find(|l| l.starts_with(&format!("{family}_count{{")) && l.contains("kind=\"repl\""))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert_eq!(count, Some(2.0), "two repl executions ended: {text}");
}

#[test]
fn module_catalog_follows_section_8_3() {
    let d = TestDaemon::start();
    let body = expect_ok(&d.get("/catalog/modules"), 200, "catalog/modules");
    let modules = body.as_array().unwrap();
    let ids: Vec<&str> = modules.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["database", "exec", "fs"], "sorted by id");
    let expected = [
        (
            "database",
            json!(["configure", "query", "exec", "close"]),
            json!(null),
        ),
        ("exec", json!(["run"]), json!("module:exec")),
        (
            "fs",
            json!(["readFileSync", "writeFileSync", "existsSync", "readdirSync"]),
            json!("fs"),
        ),
    ];
    for (m, (id, functions, requires)) in modules.iter().zip(expected) {
        assert_keys(
            m,
            &["id", "description", "functions", "requires_capability"],
            id,
        );
        assert_eq!(m["functions"], functions, "{id}: functions in §8.3 order");
        assert_eq!(m["requires_capability"], requires, "{id}");
        assert!(
            m["description"]
                .as_str()
                .is_some_and(|s| !s.trim().is_empty()),
            "{id}: description"
        );
    }
}

#[test]
fn library_catalog_follows_section_9_and_reports_the_cache() {
    let d = TestDaemon::start();
    let expected = |lodash_cached: bool| {
        json!([
            {"id": "dayjs", "version": "1.11.10", "global": "dayjs", "package": "dayjs", "bundle": "dayjs.min.js", "cached": false},
            {"id": "lodash", "version": "4.17.21", "global": "_", "package": "lodash", "bundle": "lodash.min.js", "cached": lodash_cached},
            {"id": "moment", "version": "2.29.4", "global": "moment", "package": "moment", "bundle": "min/moment.min.js", "cached": false},
            {"id": "ramda", "version": "0.29.0", "global": "R", "package": "ramda", "bundle": "dist/ramda.min.js", "cached": false},
        ])
    };
    let r = d.get("/catalog/libraries");
    assert_eq!(
        expect_ok(&r, 200, "catalog/libraries"),
        expected(false),
        "fresh library dir"
    );

    let dir = library_dir(d.dir.path());
    assert!(dir.is_dir(), "the daemon creates the library directory");
    // Another version of a library does not make the pinned one cached.
    std::fs::write(dir.join("lodash-4.17.20.js"), "var _ = {};").unwrap();
    std::fs::write(dir.join("dayjs.js"), "var dayjs = 1;").unwrap();
    assert_eq!(
        d.get("/catalog/libraries").ok(200),
        &expected(false),
        "only <id>-<pinned>.js counts"
    );
    std::fs::write(dir.join("lodash-4.17.21.js"), "var _ = {};").unwrap();
    assert_eq!(
        d.get("/catalog/libraries").ok(200),
        &expected(true),
        "after caching lodash"
    );
}

/// Replaces every `{param}` with `{}` so parameter names do not matter.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

#[test]
fn openapi_document_lists_every_route() {
    let d = TestDaemon::start();
    let doc = expect_ok(&d.get("/openapi.json"), 200, "openapi.json");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "openapi version: {}",
        doc["openapi"]
    );
    let paths = doc["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("no paths object"));
    let documented: Vec<(String, &Value)> = paths.iter().map(|(k, v)| (shape(k), v)).collect();
    let routes = [
        ("get", "/health"),
        ("get", "/runtime/summary"),
        ("get", "/metrics"),
        ("get", "/catalog/modules"),
        ("get", "/catalog/libraries"),
        ("get", "/openapi.json"),
        ("post", "/templates"),
        ("get", "/templates"),
        ("get", "/templates/{}"),
        ("delete", "/templates/{}"),
        ("get", "/templates/{}/settings"),
        ("patch", "/templates/{}/settings"),
        ("post", "/templates/{}/capabilities"),
        ("get", "/templates/{}/capabilities"),
        ("delete", "/templates/{}/capabilities/{}"),
        ("post", "/templates/{}/startup-files"),
        ("get", "/templates/{}/startup-files"),
        ("delete", "/templates/{}/startup-files/{}"),
        ("post", "/templates/{}/modules"),
        ("get", "/templates/{}/modules"),
        ("delete", "/templates/{}/modules/{}"),
        ("post", "/templates/{}/libraries"),
        ("get", "/templates/{}/libraries"),
        ("delete", "/templates/{}/libraries/{}"),
        ("post", "/sessions"),
        ("get", "/sessions"),
        ("get", "/sessions/{}"),
        ("delete", "/sessions/{}"),
        ("post", "/sessions/{}/close"),
        ("post", "/sessions/{}/restart"),
        ("post", "/executions/repl"),
        ("post", "/executions/run-file"),
        ("get", "/executions"),
        ("get", "/executions/{}"),
        ("get", "/executions/{}/events"),
        ("post", "/executions/{}/cancel"),
    ];
    let mut missing = Vec::new();
    for (method, route) in routes {
        let found = documented
            .iter()
            .find(|(k, _)| *k == route || *k == format!("/api/v1{route}"))
            .is_some_and(|(_, item)| item.get(method).is_some());
        if !found {
            missing.push(format!("{} {route}", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from openapi.json: {missing:?}; paths: {:?}",
        paths.keys()
    );
}
