//! Templates and their sub-resources over HTTP (spec §3, §4.2-§4.7, §5, §8.2, §8.4, §9): shapes,
//! defaults, PATCH semantics, every documented check in order, list orders and deletion.

use std::time::Duration;

use serde_json::{Value, json};
use tests::daemon::TestDaemon;

use crate::api_conventions::{
    UNKNOWN_ID, assert_keys, assert_ts, expect_err, expect_field, expect_invalid, expect_ok,
    is_uuid_v4,
};

const TEMPLATE_KEYS: &[&str] = &[
    "id",
    "name",
    "engine",
    "exposed_modules",
    "libraries",
    "created_at",
    "updated_at",
];
const CAPABILITY_KEYS: &[&str] = &[
    "id",
    "template_id",
    "kind",
    "name",
    "enabled",
    "config",
    "created_at",
];
const STARTUP_KEYS: &[&str] = &[
    "id",
    "template_id",
    "path",
    "order_index",
    "mode",
    "created_at",
];

fn default_settings(template_id: &str, updated_at: &Value) -> Value {
    json!({
        "template_id": template_id,
        "updated_at": updated_at,
        "limits": {"cpu_ms": 5000, "wall_ms": 30000, "mem_mb": 128, "max_events": 1000, "max_output_kb": 512},
        "resolver": {"roots": [], "extensions": [".js", ".mjs"], "allow_absolute_repo_imports": false},
        "runtime": {"esm": false, "strict": false, "console": true},
    })
}

/// Timestamps have millisecond precision: wait so that the next change gets a later one.
fn tick() {
    std::thread::sleep(Duration::from_millis(3));
}

fn updated_at(d: &TestDaemon, t: &str) -> String {
    d.get(&format!("/templates/{t}")).ok(200)["template"]["updated_at"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Runs `change` and asserts it moved the template's `updated_at` forward.
#[track_caller]
fn assert_touches(d: &TestDaemon, t: &str, what: &str, change: impl FnOnce()) {
    let before = updated_at(d, t);
    tick();
    change();
    let after = updated_at(d, t);
    assert!(
        after > before,
        "{what}: updated_at {before} → {after} must move forward"
    );
}

fn check_template(v: &Value, name: &str, ctx: &str) {
    assert_keys(v, TEMPLATE_KEYS, ctx);
    assert!(
        is_uuid_v4(v["id"].as_str().unwrap_or("")),
        "{ctx}: id {}",
        v["id"]
    );
    assert_eq!(v["name"], json!(name), "{ctx}");
    assert_eq!(v["engine"], json!("quickjs"), "{ctx}");
    assert!(v["exposed_modules"].is_array(), "{ctx}: exposed_modules");
    assert!(v["libraries"].is_array(), "{ctx}: libraries");
    assert_ts(v, "created_at", ctx);
    assert_ts(v, "updated_at", ctx);
}

#[test]
fn template_create_get_list_and_detail_shapes() {
    let d = TestDaemon::start();
    let r = d.post("/templates", json!({"name": "analytics"}));
    let created = expect_ok(&r, 201, "create");
    check_template(&created, "analytics", "create");
    assert_eq!(created["exposed_modules"], json!([]));
    assert_eq!(created["libraries"], json!([]));
    let t = created["id"].as_str().unwrap().to_string();

    let r = d.post(
        "/templates",
        json!({"name": "explicit", "engine": "quickjs"}),
    );
    check_template(
        &expect_ok(&r, 201, "create with engine"),
        "explicit",
        "create with engine",
    );
    tick();
    d.template("third");

    // TemplateDetail composition.
    let detail = expect_ok(&d.get(&format!("/templates/{t}")), 200, "detail");
    assert_keys(
        &detail,
        &["template", "settings", "capabilities", "startup_files"],
        "detail",
    );
    assert_eq!(
        detail["template"], created,
        "detail.template is the Template"
    );
    assert_eq!(detail["capabilities"], json!([]));
    assert_eq!(detail["startup_files"], json!([]));
    let settings = &detail["settings"];
    assert_ts(settings, "updated_at", "settings");
    assert_eq!(
        *settings,
        default_settings(&t, &settings["updated_at"]),
        "default settings (§5)"
    );
    let r = d.get(&format!("/templates/{t}/settings"));
    assert_eq!(
        expect_ok(&r, 200, "settings"),
        *settings,
        "GET settings equals detail.settings"
    );

    // The list: Templates, newest first (created_at, then id, descending).
    let list = expect_ok(&d.get("/templates"), 200, "list");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    for item in list {
        check_template(item, item["name"].as_str().unwrap(), "list item");
    }
    let mut expected = list.clone();
    expected.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                v["created_at"].as_str().unwrap().to_string(),
                v["id"].as_str().unwrap().to_string(),
            )
        };
        key(b).cmp(&key(a))
    });
    assert_eq!(*list, expected, "newest first");
    assert_eq!(list[0]["name"], "third");
    assert!(
        list.contains(&created),
        "the created template is listed as created"
    );
}

#[test]
fn template_create_checks_run_in_order() {
    let d = TestDaemon::start();
    let first = d.template("dup");
    let e128 = "é".repeat(128);
    let e129 = "é".repeat(129);
    let smile128 = "😀".repeat(128);
    let smile129 = "😀".repeat(129);
    let a128 = "a".repeat(128);
    let a129 = "a".repeat(129);
    enum Want {
        Created,
        Field(&'static str),
        Engine(&'static str),
        Taken,
    }
    let cases: Vec<(Value, Want)> = vec![
        (json!({"name": "dup"}), Want::Taken),
        (json!({"name": "dup", "engine": "quickjs"}), Want::Taken),
        (json!({"name": "Dup"}), Want::Created),
        (json!({"name": "dup "}), Want::Created),
        // ENGINE_UNSUPPORTED comes before TEMPLATE_NAME_TAKEN.
        (json!({"name": "dup", "engine": "v8"}), Want::Engine("v8")),
        (json!({"name": "fresh", "engine": "v8"}), Want::Engine("v8")),
        (
            json!({"name": "fresh", "engine": "QuickJS"}),
            Want::Engine("QuickJS"),
        ),
        (
            json!({"name": "fresh", "engine": "node"}),
            Want::Engine("node"),
        ),
        (
            json!({"name": "fresh", "engine": ""}),
            Want::Field("engine"),
        ),
        (
            json!({"name": "fresh", "engine": "  "}),
            Want::Field("engine"),
        ),
        (json!({"name": e128}), Want::Created),
        (json!({"name": e129}), Want::Field("name")),
        (json!({"name": smile128}), Want::Created),
        (json!({"name": smile129}), Want::Field("name")),
        (json!({"name": a128}), Want::Created),
        (json!({"name": a129}), Want::Field("name")),
        (json!({"name": ""}), Want::Field("name")),
        (json!({"name": " "}), Want::Field("name")),
        (json!({"name": "\t\n\r "}), Want::Field("name")),
        (json!({"name": "x"}), Want::Created),
        (json!({"name": "with spaces and ünïcode"}), Want::Created),
        // Validation comes before the engine check.
        (json!({"name": "", "engine": "v8"}), Want::Field("name")),
    ];
    for (body, want) in &cases {
        let ctx = format!("POST /templates {body}");
        let r = d.post("/templates", body.clone());
        match want {
            Want::Created => {
                let v = expect_ok(&r, 201, &ctx);
                check_template(&v, body["name"].as_str().unwrap(), &ctx);
            }
            Want::Field(field) => expect_field(&r, field, &ctx),
            Want::Engine(engine) => {
                let details = expect_err(&r, 422, "ENGINE_UNSUPPORTED", &ctx);
                assert_eq!(
                    details,
                    json!({"engine": engine, "supported": ["quickjs"]}),
                    "{ctx}"
                );
            }
            Want::Taken => {
                let details = expect_err(&r, 409, "TEMPLATE_NAME_TAKEN", &ctx);
                assert_eq!(
                    details,
                    json!({"name": "dup", "template_id": first}),
                    "{ctx}"
                );
            }
        }
    }
    let names: Vec<String> = d
        .get("/templates")
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().into())
        .collect();
    assert_eq!(names.iter().filter(|n| *n == "dup").count(), 1, "{names:?}");
    assert!(!names.iter().any(|n| n == "fresh"), "{names:?}");
}

#[test]
fn settings_patch_is_partial_validated_and_atomic() {
    let d = TestDaemon::start();
    let t = d.template("settings");
    let path = format!("/templates/{t}/settings");
    let initial = d.get(&path).ok(200).clone();

    // `{}` changes nothing, not even updated_at.
    tick();
    let r = d.patch(&path, json!({}));
    assert_eq!(
        expect_ok(&r, 200, "PATCH {}"),
        initial,
        "{{}} changes nothing"
    );
    let r = d.patch(&path, json!({"limits": {}, "resolver": {}, "runtime": {}}));
    assert_eq!(
        expect_ok(&r, 200, "PATCH empty members"),
        initial,
        "empty members change nothing"
    );
    assert_eq!(updated_at(&d, &t), initial["updated_at"].as_str().unwrap());

    // Partial changes: only the given fields change; arrays are replaced whole.
    let mut expected = initial.clone();
    let steps = [
        json!({"limits": {"wall_ms": 1000}}),
        json!({"limits": {"cpu_ms": 1, "mem_mb": 16, "max_events": 1, "max_output_kb": 1}}),
        json!({"limits": {"cpu_ms": 3_600_000, "wall_ms": 3_600_000, "mem_mb": 4096}}),
        json!({"limits": {"max_events": 1_000_000, "max_output_kb": 65_536}}),
        json!({"runtime": {"strict": true}}),
        json!({"runtime": {"console": false, "esm": true}}),
        json!({"resolver": {"extensions": [".ts"]}}),
        json!({"resolver": {"extensions": [".js", ".cjs", ".A1"], "roots": ["lib", "./src/../pkg"]}}),
        json!({"resolver": {"roots": []}}),
        json!({"resolver": {"allow_absolute_repo_imports": true}}),
        json!({"resolver": {"extensions": []}}),
    ];
    for patch in &steps {
        let ctx = format!("PATCH {patch}");
        let before_ts = expected["updated_at"].as_str().unwrap().to_string();
        tick();
        let r = d.patch(&path, patch.clone());
        let got = expect_ok(&r, 200, &ctx);
        for (section, fields) in patch.as_object().unwrap() {
            for (field, value) in fields.as_object().unwrap() {
                expected[section][field] = value.clone();
            }
        }
        // `roots` may be stored cleaned; compare it separately.
        let mut got_cmp = got.clone();
        let mut want_cmp = expected.clone();
        got_cmp["updated_at"] = Value::Null;
        want_cmp["updated_at"] = Value::Null;
        if patch["resolver"]["roots"] == json!(["lib", "./src/../pkg"]) {
            let roots = got["resolver"]["roots"].clone();
            assert!(
                roots == json!(["lib", "./src/../pkg"]) || roots == json!(["lib", "pkg"]),
                "{ctx}: roots {roots}"
            );
            want_cmp["resolver"]["roots"] = roots.clone();
            expected["resolver"]["roots"] = roots;
        }
        assert_eq!(got_cmp, want_cmp, "{ctx}");
        assert_ts(&got, "updated_at", &ctx);
        assert!(
            got["updated_at"].as_str().unwrap() > before_ts.as_str(),
            "{ctx}: updated_at must move"
        );
        expected["updated_at"] = got["updated_at"].clone();
        assert_eq!(*d.get(&path).ok(200), got, "{ctx}: GET after PATCH");
        assert_eq!(
            updated_at(&d, &t),
            got["updated_at"].as_str().unwrap(),
            "{ctx}: template.updated_at"
        );
    }

    // Every range of §5, and the first offending field is named; nothing changes.
    let many_roots: Vec<String> = (0..33).map(|i| format!("r{i}")).collect();
    let many_exts: Vec<String> = (0..17).map(|i| format!(".e{i}")).collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"limits": {"cpu_ms": 0}}), "limits.cpu_ms"),
        (json!({"limits": {"cpu_ms": 3_600_001}}), "limits.cpu_ms"),
        (json!({"limits": {"cpu_ms": -5}}), "limits.cpu_ms"),
        (json!({"limits": {"wall_ms": 0}}), "limits.wall_ms"),
        (json!({"limits": {"wall_ms": -1}}), "limits.wall_ms"),
        (json!({"limits": {"wall_ms": 3_600_001}}), "limits.wall_ms"),
        (json!({"limits": {"mem_mb": 15}}), "limits.mem_mb"),
        (json!({"limits": {"mem_mb": 4097}}), "limits.mem_mb"),
        (json!({"limits": {"max_events": 0}}), "limits.max_events"),
        (
            json!({"limits": {"max_events": 1_000_001}}),
            "limits.max_events",
        ),
        (
            json!({"limits": {"max_output_kb": 0}}),
            "limits.max_output_kb",
        ),
        (
            json!({"limits": {"max_output_kb": 65_537}}),
            "limits.max_output_kb",
        ),
        (
            json!({"limits": {"cpu_ms": 0, "wall_ms": 0}}),
            "limits.cpu_ms",
        ),
        (
            json!({"limits": {"wall_ms": 1, "mem_mb": 1}}),
            "limits.mem_mb",
        ),
        (
            json!({"limits": {"wall_ms": 0}, "runtime": {"strict": false}}),
            "limits.wall_ms",
        ),
        (
            json!({"runtime": {"strict": false}, "limits": {"wall_ms": 500, "max_events": 0}}),
            "limits.max_events",
        ),
        (json!({"resolver": {"roots": ["../x"]}}), "resolver.roots.0"),
        (
            json!({"resolver": {"roots": ["a", "/b"]}}),
            "resolver.roots.1",
        ),
        (
            json!({"resolver": {"roots": ["a", "b", "a/../../c"]}}),
            "resolver.roots.2",
        ),
        (
            json!({"resolver": {"roots": ["a", "x\u{0}y"]}}),
            "resolver.roots.1",
        ),
        (
            json!({"resolver": {"extensions": ["js"]}}),
            "resolver.extensions.0",
        ),
        (
            json!({"resolver": {"extensions": [".js", ".a-b"]}}),
            "resolver.extensions.1",
        ),
        (
            json!({"resolver": {"extensions": [".js", "."]}}),
            "resolver.extensions.1",
        ),
        (
            json!({"resolver": {"extensions": [".js", ".abcdefghijklmnop"]}}),
            "resolver.extensions.1",
        ),
    ];
    let current = d.get(&path).ok(200).clone();
    for (body, field) in &cases {
        let ctx = format!("PATCH {body}");
        let r = d.patch(&path, body.clone());
        expect_field(&r, field, &ctx);
    }
    // Count and uniqueness breaches name the array (or the offending element).
    for body in [
        json!({"resolver": {"roots": many_roots}}),
        json!({"resolver": {"extensions": many_exts}}),
        json!({"resolver": {"extensions": [".js", ".js"]}}),
    ] {
        let ctx = format!("PATCH {body}");
        let r = d.patch(&path, body.clone());
        let details = expect_err(&r, 400, "VALIDATION_ERROR", &ctx);
        let field = details["field"].as_str().unwrap_or("");
        let array = body["resolver"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        assert!(
            field.starts_with(&format!("resolver.{array}")),
            "{ctx}: field {field}"
        );
    }
    // 32 roots and 16 extensions are fine.
    let roots32: Vec<String> = (0..32).map(|i| format!("r{i}")).collect();
    let exts16: Vec<String> = (0..16).map(|i| format!(".e{i}")).collect();
    assert_eq!(
        d.get(&path).ok(200),
        &current,
        "failed PATCHes must change nothing"
    );
    let r = d.patch(
        &path,
        json!({"resolver": {"roots": roots32, "extensions": exts16}}),
    );
    let got = expect_ok(&r, 200, "32 roots, 16 extensions");
    assert_eq!(got["resolver"]["roots"].as_array().unwrap().len(), 32);
    assert_eq!(got["resolver"]["extensions"].as_array().unwrap().len(), 16);

    let r = d.patch(&format!("/templates/{UNKNOWN_ID}/settings"), json!({}));
    let details = expect_err(&r, 404, "TEMPLATE_NOT_FOUND", "PATCH unknown");
    assert_eq!(details, json!({ "template_id": UNKNOWN_ID }));
}

/// What a capability case expects.
enum Cap {
    Created,
    Field(&'static str),
    FieldPrefix(&'static str),
    Invalid,
}

#[test]
fn capabilities_are_validated_per_kind() {
    let d = TestDaemon::start();
    let allow64: Vec<String> = (0..64).map(|i| format!("/bin/c{i}")).collect();
    let allow65: Vec<String> = (0..65).map(|i| format!("/bin/c{i}")).collect();
    let label63 = "a".repeat(63);
    let label64 = "a".repeat(64);
    // Every capability name is 1-128 characters, so the 253-character DNS limit never binds.
    let dns128 = format!("{}.{}.b", "a".repeat(63), "a".repeat(62));
    let dns253 = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "a".repeat(61));
    assert_eq!((dns128.len(), dns253.len()), (128, 253));
    let e128 = "é".repeat(128);
    let e129 = "é".repeat(129);
    let cases: Vec<(String, Cap)> = vec![
        // Common fields.
        (r#"{"kind": "fs", "name": "worktree"}"#.into(), Cap::Created),
        (r#"{"kind": "fs", "name": "w", "enabled": false}"#.into(), Cap::Created),
        (format!(r#"{{"kind": "global", "name": "{e128}"}}"#), Cap::Created),
        (format!(r#"{{"kind": "global", "name": "{e129}"}}"#), Cap::Field("name")),
        (r#"{"kind": "fs", "name": ""}"#.into(), Cap::Field("name")),
        (r#"{"kind": "fs", "name": "  "}"#.into(), Cap::Field("name")),
        (r#"{"kind": "fs"}"#.into(), Cap::Field("name")),
        (r#"{"name": "x"}"#.into(), Cap::Field("kind")),
        (r#"{"kind": "bogus", "name": "x"}"#.into(), Cap::Field("kind")),
        (r#"{"kind": "FS", "name": "x"}"#.into(), Cap::Field("kind")),
        (r#"{"kind": "", "name": "x"}"#.into(), Cap::Field("kind")),
        (r#"{"kind": "fs", "name": "x", "enabled": "yes"}"#.into(), Cap::Invalid),
        (r#"{"kind": "fs", "name": "x", "enabled": null}"#.into(), Cap::Invalid),
        (r#"{"kind": "fs", "name": "x", "config": null}"#.into(), Cap::Invalid),
        (r#"{"kind": "fs", "name": "x", "config": []}"#.into(), Cap::Invalid),
        (r#"{"kind": "fs", "name": "x", "config": "{}"}"#.into(), Cap::Invalid),
        (r#"{"kind": "module", "name": "x", "config": 1}"#.into(), Cap::Invalid),
        (r#"{"kind": "fs", "name": "x", "extra": 1}"#.into(), Cap::Invalid),
        (r#"{"kind": "fs", "name": "x", "Config": {}}"#.into(), Cap::Invalid),
        (r#"{"kind": null, "name": "x"}"#.into(), Cap::Invalid),
        (r#"{"kind": "fs", "name": 1}"#.into(), Cap::Invalid),
        // fs: {"write": bool} only.
        (r#"{"kind": "fs", "name": "rw", "config": {"write": true}}"#.into(), Cap::Created),
        (r#"{"kind": "fs", "name": "ro", "config": {"write": false}}"#.into(), Cap::Created),
        (r#"{"kind": "fs", "name": "any label, with spaces!", "config": {}}"#.into(), Cap::Created),
        (r#"{"kind": "fs", "name": "x", "config": {"write": "yes"}}"#.into(), Cap::Field("config.write")),
        (r#"{"kind": "fs", "name": "x", "config": {"write": 1}}"#.into(), Cap::Field("config.write")),
        (r#"{"kind": "fs", "name": "x", "config": {"read": true}}"#.into(), Cap::Field("config.read")),
        (r#"{"kind": "fs", "name": "x", "config": {"write": true, "x": 1}}"#.into(), Cap::Field("config.x")),
        (r#"{"kind": "fs", "name": "x", "config": {"write": true, "write": false}}"#.into(), Cap::Invalid),
        // env: a variable name, config {} only.
        (r#"{"kind": "env", "name": "HOME"}"#.into(), Cap::Created),
        (r#"{"kind": "env", "name": "_x1"}"#.into(), Cap::Created),
        (r#"{"kind": "env", "name": "A", "config": {}}"#.into(), Cap::Created),
        (r#"{"kind": "env", "name": "1X"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "env", "name": "MY-VAR"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "env", "name": "MY VAR"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "env", "name": "É"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "env", "name": "PATH", "config": {"x": 1}}"#.into(), Cap::Field("config.x")),
        // net: host or host:port.
        (r#"{"kind": "net", "name": "example.com"}"#.into(), Cap::Created),
        (r#"{"kind": "net", "name": "example.com:443"}"#.into(), Cap::Created),
        (r#"{"kind": "net", "name": "localhost"}"#.into(), Cap::Created),
        (r#"{"kind": "net", "name": "a-b.c0"}"#.into(), Cap::Created),
        (r#"{"kind": "net", "name": "127.0.0.1"}"#.into(), Cap::Created),
        (r#"{"kind": "net", "name": "10.0.0.1:8080"}"#.into(), Cap::Created),
        (r#"{"kind": "net", "name": "[::1]"}"#.into(), Cap::Created),
        (r#"{"kind": "net", "name": "[2001:db8::1]:443"}"#.into(), Cap::Created),
        (r#"{"kind": "net", "name": "h:1"}"#.into(), Cap::Created),
        (r#"{"kind": "net", "name": "h:65535"}"#.into(), Cap::Created),
        (format!(r#"{{"kind": "net", "name": "{label63}.com"}}"#), Cap::Created),
        (format!(r#"{{"kind": "net", "name": "{dns128}"}}"#), Cap::Created),
        (format!(r#"{{"kind": "net", "name": "{label64}.com"}}"#), Cap::Field("name")),
        (format!(r#"{{"kind": "net", "name": "{dns253}"}}"#), Cap::Field("name")),
        (r#"{"kind": "net", "name": "-a.com"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "a-.com"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "a..com"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "example.com."}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "a_b.com"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "exa mple.com"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "h:0"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "h:65536"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "h:"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "h:http"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "::1"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "[::1"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "[zz::1]"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "http://example.com"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "example.com/x"}"#.into(), Cap::Field("name")),
        (r#"{"kind": "net", "name": "h", "config": {"port": 1}}"#.into(), Cap::Field("config.port")),
        // module: free-form, except exec's allow list.
        (r#"{"kind": "module", "name": "exec", "config": {"allow": ["/bin/echo", "/usr/bin/env"]}}"#.into(), Cap::Created),
        (r#"{"kind": "module", "name": "exec"}"#.into(), Cap::Created),
        (r#"{"kind": "module", "name": "exec", "config": {"allow": []}}"#.into(), Cap::Created),
        (format!(r#"{{"kind": "module", "name": "exec", "config": {{"allow": {}}}}}"#, json!(allow64)), Cap::Created),
        (
            format!(r#"{{"kind": "module", "name": "exec", "config": {{"allow": {}}}}}"#, json!(allow65)),
            Cap::FieldPrefix("config.allow"),
        ),
        (
            r#"{"kind": "module", "name": "exec", "config": {"allow": ["bin/echo"]}}"#.into(),
            Cap::FieldPrefix("config.allow"),
        ),
        (r#"{"kind": "module", "name": "exec", "config": {"allow": "/bin/echo"}}"#.into(), Cap::Field("config.allow")),
        (r#"{"kind": "module", "name": "exec", "config": {"allow": [1]}}"#.into(), Cap::FieldPrefix("config.allow")),
        (r#"{"kind": "module", "name": "exec", "config": {"deny": []}}"#.into(), Cap::Field("config.deny")),
        (
            r#"{"kind": "module", "name": "exec", "config": {"allow": ["/bin/echo"], "x": 1}}"#.into(),
            Cap::Field("config.x"),
        ),
        (r#"{"kind": "module", "name": "Exec", "config": {"anything": [1, null]}}"#.into(), Cap::Created),
        (r#"{"kind": "module", "name": "fs", "config": {"a": null, "b": [1, {"c": null}]}}"#.into(), Cap::Created),
        (r#"{"kind": "module", "name": "m", "config": {"a": {"b": 1, "b": 2}}}"#.into(), Cap::Invalid),
        // global: free-form.
        (r#"{"kind": "global", "name": "myGlobal", "config": {"k": null, "n": 1.5, "s": "x"}}"#.into(), Cap::Created),
        (r#"{"kind": "global", "name": "g", "config": {"a": 1, "a": 2}}"#.into(), Cap::Invalid),
    ];
    // Each case on its own template, so names never collide.
    for (i, (body, want)) in cases.iter().enumerate() {
        let t = d.template(&format!("cap-{i}"));
        let ctx = format!("POST capabilities {body}");
        let r = d.post_raw(&format!("/templates/{t}/capabilities"), body);
        match want {
            Cap::Created => {
                let got = expect_ok(&r, 201, &ctx);
                let sent: Value = serde_json::from_str(body).unwrap();
                assert_keys(&got, CAPABILITY_KEYS, &ctx);
                assert!(is_uuid_v4(got["id"].as_str().unwrap()), "{ctx}: id");
                assert_eq!(got["template_id"], json!(t), "{ctx}");
                assert_eq!(got["kind"], sent["kind"], "{ctx}");
                assert_eq!(got["name"], sent["name"], "{ctx}");
                assert_eq!(
                    got["enabled"],
                    sent.get("enabled").cloned().unwrap_or(json!(true)),
                    "{ctx}"
                );
                assert_eq!(
                    got["config"],
                    sent.get("config").cloned().unwrap_or(json!({})),
                    "{ctx}: config as sent"
                );
                assert_ts(&got, "created_at", &ctx);
                let list = d
                    .get(&format!("/templates/{t}/capabilities"))
                    .ok(200)
                    .clone();
                assert_eq!(list, json!([got]), "{ctx}: listed");
            }
            Cap::Field(field) => expect_field(&r, field, &ctx),
            Cap::FieldPrefix(prefix) => {
                let details = expect_err(&r, 400, "VALIDATION_ERROR", &ctx);
                assert_keys(&details, &["field"], &ctx);
                let field = details["field"].as_str().unwrap();
                assert!(field.starts_with(prefix), "{ctx}: field {field}");
            }
            Cap::Invalid => expect_invalid(&r, &ctx),
        }
        if !matches!(want, Cap::Created) {
            assert_eq!(
                d.get(&format!("/templates/{t}/capabilities")).ok(200),
                &json!([]),
                "{ctx}: nothing stored"
            );
        }
    }
}

#[test]
fn capabilities_conflict_list_oldest_first_and_delete() {
    let d = TestDaemon::start();
    let t = d.template("caps");
    let caps_path = format!("/templates/{t}/capabilities");
    let mut created = Vec::new();
    for body in [
        json!({"kind": "fs", "name": "worktree", "config": {"write": true}}),
        json!({"kind": "fs", "name": "Worktree"}),
        json!({"kind": "env", "name": "worktree"}),
        json!({"kind": "global", "name": "worktree", "enabled": false}),
        json!({"kind": "module", "name": "exec", "config": {"allow": ["/bin/true"]}}),
    ] {
        tick();
        let mut got = Value::Null;
        assert_touches(&d, &t, &format!("add {body}"), || {
            got = expect_ok(
                &d.post(&caps_path, body.clone()),
                201,
                &format!("add {body}"),
            );
        });
        created.push(got);
    }

    // Same kind and name (case-sensitive) → CAPABILITY_EXISTS naming the existing one.
    let conflicts = [
        (json!({"kind": "fs", "name": "worktree"}), 0),
        (
            json!({"kind": "fs", "name": "worktree", "config": {"write": false}, "enabled": false}),
            0,
        ),
        (json!({"kind": "env", "name": "worktree"}), 2),
        (
            json!({"kind": "module", "name": "exec", "config": {"allow": []}}),
            4,
        ),
    ];
    for (body, index) in &conflicts {
        let ctx = format!("add again {body}");
        let details = expect_err(
            &d.post(&caps_path, body.clone()),
            409,
            "CAPABILITY_EXISTS",
            &ctx,
        );
        let existing = &created[*index];
        assert_eq!(
            details,
            json!({"template_id": t, "capability_id": existing["id"], "kind": existing["kind"], "name": existing["name"]}),
            "{ctx}"
        );
    }
    // Validation before lookup, and the template is looked up before conflicts.
    let r = d.post(
        &format!("/templates/{UNKNOWN_ID}/capabilities"),
        json!({"kind": "fs", "name": "worktree"}),
    );
    assert_eq!(
        expect_err(&r, 404, "TEMPLATE_NOT_FOUND", "unknown template"),
        json!({"template_id": UNKNOWN_ID})
    );
    let r = d.post(
        &format!("/templates/{UNKNOWN_ID}/capabilities"),
        json!({"kind": "nope", "name": "x"}),
    );
    expect_field(&r, "kind", "validation before lookup");

    // Oldest first, in the list and in the TemplateDetail.
    let list = expect_ok(&d.get(&caps_path), 200, "list");
    assert_eq!(list, Value::Array(created.clone()), "oldest first");
    let detail = d.get(&format!("/templates/{t}")).ok(200).clone();
    assert_eq!(detail["capabilities"], list, "detail.capabilities");

    // Delete.
    let victim = created[1]["id"].as_str().unwrap().to_string();
    assert_touches(&d, &t, "delete capability", || {
        let r = d.delete(&format!("{caps_path}/{victim}"));
        let body = expect_ok(&r, 200, "delete");
        assert_eq!(
            body,
            json!({"status": "ok", "template_id": t, "capability_id": victim})
        );
    });
    let remaining: Vec<Value> = created
        .iter()
        .filter(|c| c["id"] != json!(victim))
        .cloned()
        .collect();
    assert_eq!(d.get(&caps_path).ok(200), &Value::Array(remaining));
    let r = d.delete(&format!("{caps_path}/{victim}"));
    let details = expect_err(&r, 404, "CAPABILITY_NOT_FOUND", "delete again");
    assert_eq!(details, json!({"template_id": t, "capability_id": victim}));
    // The same name can be added again now.
    expect_ok(
        &d.post(&caps_path, json!({"kind": "fs", "name": "Worktree"})),
        201,
        "re-add",
    );
    // A capability of another template is not found on this one.
    let other = d.template("other");
    let theirs = d.post(
        &format!("/templates/{other}/capabilities"),
        json!({"kind": "fs", "name": "x"}),
    );
    let theirs = theirs.ok(201)["id"].as_str().unwrap().to_string();
    let r = d.delete(&format!("{caps_path}/{theirs}"));
    let details = expect_err(
        &r,
        404,
        "CAPABILITY_NOT_FOUND",
        "other template's capability",
    );
    assert_eq!(details, json!({"template_id": t, "capability_id": theirs}));
    let r = d.delete(&format!("/templates/{UNKNOWN_ID}/capabilities/{theirs}"));
    expect_err(&r, 404, "TEMPLATE_NOT_FOUND", "delete on unknown template");
}

#[test]
fn startup_files_paths_modes_order_and_delete() {
    let d = TestDaemon::start();
    let t = d.template("startup");
    let sf_path = format!("/templates/{t}/startup-files");

    // Cleaning and defaults: (body, stored path, order_index, mode).
    let ok_cases = [
        (json!({"path": "./a.js"}), "a.js", 0),
        (json!({"path": "lib/../b.js"}), "b.js", 0),
        (json!({"path": "x//y.js"}), "x/y.js", 0),
        (json!({"path": "dir/./c.js/"}), "dir/c.js", 0),
        (json!({"path": "a\\b.js"}), "a\\b.js", 0),
        (
            json!({"path": "not-yet-there.js", "order_index": 2_147_483_647}),
            "not-yet-there.js",
            2_147_483_647,
        ),
        (
            json!({"path": "min.js", "order_index": -2_147_483_648_i64}),
            "min.js",
            -2_147_483_648,
        ),
        (json!({"path": "m.js", "mode": " EVAL "}), "m.js", 0),
        (
            json!({"path": "e.js", "mode": "eval", "order_index": -1}),
            "e.js",
            -1,
        ),
    ];
    let mut created = Vec::new();
    for (body, path, order) in &ok_cases {
        let ctx = format!("add {body}");
        tick();
        let mut got = Value::Null;
        assert_touches(&d, &t, &ctx, || {
            got = expect_ok(&d.post(&sf_path, body.clone()), 201, &ctx)
        });
        assert_keys(&got, STARTUP_KEYS, &ctx);
        assert!(is_uuid_v4(got["id"].as_str().unwrap()), "{ctx}");
        assert_eq!(got["template_id"], json!(t), "{ctx}");
        assert_eq!(got["path"], json!(path), "{ctx}");
        assert_eq!(got["order_index"], json!(order), "{ctx}");
        assert_eq!(got["mode"], json!("eval"), "{ctx}");
        assert_ts(&got, "created_at", &ctx);
        created.push(got);
    }

    enum Want {
        Path(&'static str),
        Mode,
        Exists(&'static str),
        Field(&'static str),
        Invalid,
    }
    let cases: Vec<(Value, Want)> = vec![
        (json!({"path": ""}), Want::Path("empty")),
        (json!({"path": "   "}), Want::Path("empty")),
        (json!({"path": "."}), Want::Path("empty")),
        (json!({"path": "./"}), Want::Path("empty")),
        (json!({"path": "a/.."}), Want::Path("empty")),
        (json!({"path": "/x"}), Want::Path("absolute")),
        (json!({"path": "/"}), Want::Path("absolute")),
        (json!({"path": "../x"}), Want::Path("traversal")),
        (json!({"path": ".."}), Want::Path("traversal")),
        (json!({"path": "a/../../x"}), Want::Path("traversal")),
        (json!({"path": "./../x"}), Want::Path("traversal")),
        (json!({"path": "a\u{0}b.js"}), Want::Path("invalid")),
        // INVALID_PATH → STARTUP_MODE_UNSUPPORTED → STARTUP_FILE_EXISTS.
        (
            json!({"path": "/x", "mode": "module"}),
            Want::Path("absolute"),
        ),
        (json!({"path": "fresh.js", "mode": "module"}), Want::Mode),
        (json!({"path": "a.js", "mode": "module"}), Want::Mode),
        (json!({"path": "a.js"}), Want::Exists("a.js")),
        (
            json!({"path": "./a.js", "order_index": 9}),
            Want::Exists("a.js"),
        ),
        (json!({"path": "q/../a.js"}), Want::Exists("a.js")),
        (json!({"path": "x/y.js"}), Want::Exists("x/y.js")),
        // Decoding and validation.
        (json!({}), Want::Field("path")),
        (json!({"order_index": 1}), Want::Field("path")),
        (
            json!({"path": "o.js", "order_index": 2_147_483_648_i64}),
            Want::Field("order_index"),
        ),
        (
            json!({"path": "o.js", "order_index": -2_147_483_649_i64}),
            Want::Field("order_index"),
        ),
        (json!({"path": "o.js", "order_index": 1.5}), Want::Invalid),
        (json!({"path": "o.js", "order_index": "1"}), Want::Invalid),
        (json!({"path": "o.js", "order_index": null}), Want::Invalid),
        (json!({"path": null}), Want::Invalid),
        (json!({"path": 1}), Want::Invalid),
        (json!({"path": "o.js", "mode": null}), Want::Invalid),
        (json!({"path": "o.js", "extra": true}), Want::Invalid),
    ];
    for (body, want) in &cases {
        let ctx = format!("add {body}");
        let r = d.post(&sf_path, body.clone());
        match want {
            Want::Path(reason) => {
                let details = expect_err(&r, 422, "INVALID_PATH", &ctx);
                assert_keys(&details, &["path", "reason"], &ctx);
                assert_eq!(details["reason"], json!(reason), "{ctx}");
            }
            Want::Mode => {
                let details = expect_err(&r, 422, "STARTUP_MODE_UNSUPPORTED", &ctx);
                assert_eq!(
                    details,
                    json!({"requested_mode": "module", "supported_modes": ["eval"]}),
                    "{ctx}"
                );
            }
            Want::Exists(path) => {
                let details = expect_err(&r, 409, "STARTUP_FILE_EXISTS", &ctx);
                let existing = created.iter().find(|c| c["path"] == json!(path)).unwrap();
                assert_eq!(
                    details,
                    json!({"template_id": t, "startup_file_id": existing["id"], "path": path}),
                    "{ctx}"
                );
            }
            Want::Field(field) => expect_field(&r, field, &ctx),
            Want::Invalid => expect_invalid(&r, &ctx),
        }
    }
    let r = d.post(
        &sf_path,
        json!({"path": "o.js", "order_index": 9_223_372_036_854_775_807_i64}),
    );
    expect_field(&r, "order_index", "i64::MAX order_index");
    let r = d.post_raw(
        &sf_path,
        r#"{"path": "o.js", "order_index": 9223372036854775808}"#,
    );
    expect_invalid(&r, "order_index beyond i64");

    // Run order: order_index ascending, then created_at, then id.
    let list = expect_ok(&d.get(&sf_path), 200, "list");
    assert_eq!(
        list.as_array().unwrap().len(),
        created.len(),
        "nothing stored by failed adds"
    );
    let mut expected = created.clone();
    expected.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                v["order_index"].as_i64().unwrap(),
                v["created_at"].as_str().unwrap().to_string(),
                v["id"].as_str().unwrap().to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    assert_eq!(list, Value::Array(expected.clone()), "run order");
    let paths: Vec<&str> = expected
        .iter()
        .map(|v| v["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "min.js",
            "e.js",
            "a.js",
            "b.js",
            "x/y.js",
            "dir/c.js",
            "a\\b.js",
            "m.js",
            "not-yet-there.js"
        ]
    );
    assert_eq!(
        d.get(&format!("/templates/{t}")).ok(200)["startup_files"],
        list,
        "detail.startup_files"
    );

    // Delete.
    let victim = created[0]["id"].as_str().unwrap().to_string();
    assert_touches(&d, &t, "delete startup file", || {
        let body = expect_ok(&d.delete(&format!("{sf_path}/{victim}")), 200, "delete");
        assert_eq!(
            body,
            json!({"status": "ok", "template_id": t, "startup_file_id": victim})
        );
    });
    let r = d.delete(&format!("{sf_path}/{victim}"));
    let details = expect_err(&r, 404, "STARTUP_FILE_NOT_FOUND", "delete again");
    assert_eq!(
        details,
        json!({"template_id": t, "startup_file_id": victim})
    );
    let list = d.get(&sf_path).ok(200).clone();
    assert!(
        !list
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == json!(victim))
    );
    // The path is free again.
    expect_ok(
        &d.post(&sf_path, json!({"path": "a.js"})),
        201,
        "re-add a.js",
    );
}

#[test]
fn modules_are_normalised_idempotent_and_catalog_only() {
    let d = TestDaemon::start();
    let t = d.template("modules");
    let path = format!("/templates/{t}/modules");

    for (name, stored) in [
        (" FS ", "fs"),
        ("fs", "fs"),
        ("Exec", "exec"),
        ("\tDATABASE\n", "database"),
        ("exec", "exec"),
    ] {
        let ctx = format!("add {name:?}");
        let body = expect_ok(&d.post(&path, json!({ "name": name })), 201, &ctx);
        assert_eq!(body, json!({"template_id": t, "name": stored}), "{ctx}");
    }
    let order = json!(["fs", "exec", "database"]);
    assert_eq!(
        expect_ok(&d.get(&path), 200, "list"),
        order,
        "in the order added, each once"
    );
    assert_eq!(
        d.get(&format!("/templates/{t}")).ok(200)["template"]["exposed_modules"],
        order
    );

    for name in [
        "console", "math", "json", "date", "array", "string", "object", "promise",
    ] {
        let ctx = format!("add builtin {name}");
        let details = expect_err(
            &d.post(&path, json!({ "name": name })),
            422,
            "MODULE_NOT_ALLOWED",
            &ctx,
        );
        assert_eq!(details, json!({"name": name, "reason": "builtin"}), "{ctx}");
    }
    for name in [" Math ", "JSON"] {
        let ctx = format!("add builtin {name:?}");
        let details = expect_err(
            &d.post(&path, json!({ "name": name })),
            422,
            "MODULE_NOT_ALLOWED",
            &ctx,
        );
        assert_eq!(details["reason"], "builtin", "{ctx}");
    }
    for name in ["lodash", "http", "fs2", "process", "require", "net"] {
        let ctx = format!("add unknown {name}");
        let details = expect_err(
            &d.post(&path, json!({ "name": name })),
            422,
            "MODULE_NOT_ALLOWED",
            &ctx,
        );
        assert_eq!(details, json!({"name": name, "reason": "unknown"}), "{ctx}");
    }
    expect_field(&d.post(&path, json!({})), "name", "missing name");
    expect_invalid(&d.post(&path, json!({"name": null})), "null name");
    expect_invalid(
        &d.post(&path, json!({"name": "fs", "x": 1})),
        "unknown field",
    );
    assert_eq!(d.get(&path).ok(200), &order, "failed adds change nothing");

    // Delete: normalised, always 200, no catalog check.
    for (segment, name) in [
        ("%20FS%20", "fs"),
        ("nothere", "nothere"),
        ("console", "console"),
        ("fs", "fs"),
    ] {
        let ctx = format!("delete {segment}");
        let body = expect_ok(&d.delete(&format!("{path}/{segment}")), 200, &ctx);
        assert_eq!(
            body,
            json!({"status": "ok", "template_id": t, "name": name}),
            "{ctx}"
        );
    }
    assert_eq!(d.get(&path).ok(200), &json!(["exec", "database"]));
    assert_touches(&d, &t, "module add", || {
        d.post(&path, json!({"name": "fs"})).ok(201);
    });
    assert_touches(&d, &t, "module delete", || {
        d.delete(&format!("{path}/exec")).ok(200);
    });
    assert_eq!(d.get(&path).ok(200), &json!(["database", "fs"]));
}

#[test]
fn libraries_are_catalog_entries_replaced_in_place() {
    let d = TestDaemon::start();
    let t = d.template("libraries");
    let path = format!("/templates/{t}/libraries");

    let adds = [
        ("lodash", "lodash", json!(["lodash"])),
        (
            " DayJS@1.11.10 ",
            "dayjs@1.11.10",
            json!(["lodash", "dayjs@1.11.10"]),
        ),
        (
            "MOMENT",
            "moment",
            json!(["lodash", "dayjs@1.11.10", "moment"]),
        ),
        // Same id: replaced in place, position kept.
        (
            "lodash@4.17.20",
            "lodash@4.17.20",
            json!(["lodash@4.17.20", "dayjs@1.11.10", "moment"]),
        ),
        (
            "dayjs",
            "dayjs",
            json!(["lodash@4.17.20", "dayjs", "moment"]),
        ),
        (
            "moment@2.29.4-beta.1",
            "moment@2.29.4-beta.1",
            json!(["lodash@4.17.20", "dayjs", "moment@2.29.4-beta.1"]),
        ),
        (
            "Ramda@0.29.0-RC.1",
            "ramda@0.29.0-RC.1",
            json!([
                "lodash@4.17.20",
                "dayjs",
                "moment@2.29.4-beta.1",
                "ramda@0.29.0-RC.1"
            ]),
        ),
        (
            "ramda@0.29.0",
            "ramda@0.29.0",
            json!([
                "lodash@4.17.20",
                "dayjs",
                "moment@2.29.4-beta.1",
                "ramda@0.29.0"
            ]),
        ),
        (
            "lodash@10.0.0-a.b-c",
            "lodash@10.0.0-a.b-c",
            json!([
                "lodash@10.0.0-a.b-c",
                "dayjs",
                "moment@2.29.4-beta.1",
                "ramda@0.29.0"
            ]),
        ),
    ];
    for (name, stored, list) in &adds {
        let ctx = format!("add {name:?}");
        tick();
        assert_touches(&d, &t, &ctx, || {
            let body = expect_ok(&d.post(&path, json!({ "name": name })), 201, &ctx);
            assert_eq!(body, json!({"template_id": t, "name": stored}), "{ctx}");
        });
        assert_eq!(expect_ok(&d.get(&path), 200, &ctx), *list, "{ctx}: list");
        assert_eq!(
            d.get(&format!("/templates/{t}")).ok(200)["template"]["libraries"],
            *list,
            "{ctx}: template"
        );
    }
    let current = d.get(&path).ok(200).clone();

    for name in [
        "jquery",
        "lodash@1.0",
        "lodash@v4.17.21",
        "lodash@",
        "lodash@latest",
        "lodash@4.17.21+build",
        "lodash@4.17.21-",
        "lodash@4.17.21-b_c",
        "lodash@1.2.3.4",
        "lodash@ 4.17.21",
        "@4.17.21",
        "lodash@4.17.21@1.0.0",
        "lo dash",
    ] {
        let ctx = format!("add {name:?}");
        let details = expect_err(
            &d.post(&path, json!({ "name": name })),
            422,
            "LIBRARY_UNKNOWN",
            &ctx,
        );
        assert_keys(&details, &["name"], &ctx);
    }
    let details = expect_err(
        &d.post(&path, json!({"name": "jquery"})),
        422,
        "LIBRARY_UNKNOWN",
        "jquery",
    );
    assert_eq!(details, json!({"name": "jquery"}));
    expect_field(&d.post(&path, json!({})), "name", "missing name");
    expect_invalid(&d.post(&path, json!({"name": ["lodash"]})), "array name");
    assert_eq!(d.get(&path).ok(200), &current, "failed adds change nothing");

    // Delete by id or id@version (any version), always 200.
    let deletes = [
        (
            "lodash@9.9.9",
            json!(["dayjs", "moment@2.29.4-beta.1", "ramda@0.29.0"]),
        ),
        ("dayjs", json!(["moment@2.29.4-beta.1", "ramda@0.29.0"])),
        ("nothing", json!(["moment@2.29.4-beta.1", "ramda@0.29.0"])),
        ("lodash", json!(["moment@2.29.4-beta.1", "ramda@0.29.0"])),
        ("ramda@0.29.0", json!(["moment@2.29.4-beta.1"])),
    ];
    for (name, list) in &deletes {
        let ctx = format!("delete {name}");
        let body = expect_ok(&d.delete(&format!("{path}/{name}")), 200, &ctx);
        assert_eq!(
            body,
            json!({"status": "ok", "template_id": t, "name": name}),
            "{ctx}"
        );
        assert_eq!(d.get(&path).ok(200), list, "{ctx}");
    }
    assert_touches(&d, &t, "library delete", || {
        d.delete(&format!("{path}/moment")).ok(200);
    });
    assert_eq!(d.get(&path).ok(200), &json!([]));
}

#[test]
fn template_delete_frees_the_name_and_respects_live_sessions() {
    let d = TestDaemon::start();
    // A plain delete cascades.
    let t = d.template("gone");
    d.post(
        &format!("/templates/{t}/capabilities"),
        json!({"kind": "fs", "name": "w"}),
    )
    .ok(201);
    d.post(
        &format!("/templates/{t}/startup-files"),
        json!({"path": "a.js"}),
    )
    .ok(201);
    d.post(&format!("/templates/{t}/modules"), json!({"name": "fs"}))
        .ok(201);
    d.post(
        &format!("/templates/{t}/libraries"),
        json!({"name": "lodash"}),
    )
    .ok(201);
    let body = expect_ok(&d.delete(&format!("/templates/{t}")), 200, "delete");
    assert_eq!(body, json!({"status": "ok", "template_id": t}));
    for (method, path) in [
        ("GET", format!("/templates/{t}")),
        ("DELETE", format!("/templates/{t}")),
    ] {
        let r = d.request(method, &format!("/api/v1{path}"), None, &[]);
        assert_eq!(
            expect_err(&r, 404, "TEMPLATE_NOT_FOUND", &path),
            json!({"template_id": t})
        );
    }
    assert!(
        !d.get("/templates")
            .ok(200)
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == json!(t))
    );
    let again = d.template("gone");
    assert_ne!(again, t);
    let detail = d.get(&format!("/templates/{again}")).ok(200).clone();
    assert_eq!(detail["capabilities"], json!([]));
    assert_eq!(detail["startup_files"], json!([]));
    assert_eq!(detail["template"]["exposed_modules"], json!([]));
    assert_eq!(detail["template"]["libraries"], json!([]));

    // In use while a session is ready, then crashed; free once it is closed.
    let t = d.template("busy");
    let s1 = d.session(&t);
    let s2 = d.session(&t);
    let mut ids = vec![s1.clone(), s2.clone()];
    ids.sort();
    let in_use = |ctx: &str| {
        let details = expect_err(
            &d.delete(&format!("/templates/{t}")),
            409,
            "TEMPLATE_IN_USE",
            ctx,
        );
        assert_keys(&details, &["template_id", "session_ids"], ctx);
        assert_eq!(details["template_id"], json!(t), "{ctx}");
        let mut got: Vec<String> = details["session_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        got.sort();
        got
    };
    assert_eq!(in_use("two ready sessions"), ids);

    let closed = expect_ok(
        &d.post_raw(&format!("/sessions/{s1}/close"), ""),
        200,
        "close s1",
    );
    assert_eq!(closed["status"], "closed");
    assert_eq!(in_use("one ready session"), vec![s2.clone()]);

    // Crash s2 by killing its worker: a crashed session still blocks deletion.
    let pid = d.get(&format!("/sessions/{s2}")).ok(200)["pid"]
        .as_i64()
        .unwrap();
    // SAFETY: plain kill(2) of the worker process the daemon started for this test.
    unsafe { libc::kill(i32::try_from(pid).unwrap(), libc::SIGKILL) };
    d.wait_for("s2 crashed", || {
        let s = d.get(&format!("/sessions/{s2}"));
        (s.body["status"] == "crashed").then_some(())
    });
    assert_eq!(in_use("a crashed session"), vec![s2.clone()]);

    expect_ok(
        &d.request("DELETE", &format!("/api/v1/sessions/{s2}"), None, &[]),
        200,
        "close s2",
    );
    let body = expect_ok(
        &d.delete(&format!("/templates/{t}")),
        200,
        "delete after close",
    );
    assert_eq!(body, json!({"status": "ok", "template_id": t}));
    // Closed sessions keep their rows and template_id.
    for s in [&s1, &s2] {
        let session = d.get(&format!("/sessions/{s}")).ok(200).clone();
        assert_eq!(session["template_id"], json!(t));
        assert_eq!(session["status"], "closed");
    }
    d.template("busy");
}

#[test]
fn every_template_sub_resource_reports_an_unknown_template() {
    let d = TestDaemon::start();
    let u = UNKNOWN_ID;
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/templates/{u}"), None),
        ("DELETE", format!("/templates/{u}"), None),
        ("GET", format!("/templates/{u}/settings"), None),
        (
            "PATCH",
            format!("/templates/{u}/settings"),
            Some(json!({"limits": {"wall_ms": 10}})),
        ),
        ("GET", format!("/templates/{u}/capabilities"), None),
        (
            "POST",
            format!("/templates/{u}/capabilities"),
            Some(json!({"kind": "fs", "name": "w"})),
        ),
        ("DELETE", format!("/templates/{u}/capabilities/{u}"), None),
        ("GET", format!("/templates/{u}/startup-files"), None),
        (
            "POST",
            format!("/templates/{u}/startup-files"),
            Some(json!({"path": "a.js"})),
        ),
        // The template lookup comes before the path and mode checks.
        (
            "POST",
            format!("/templates/{u}/startup-files"),
            Some(json!({"path": "/abs"})),
        ),
        (
            "POST",
            format!("/templates/{u}/startup-files"),
            Some(json!({"path": "a.js", "mode": "module"})),
        ),
        ("DELETE", format!("/templates/{u}/startup-files/{u}"), None),
        ("GET", format!("/templates/{u}/modules"), None),
        (
            "POST",
            format!("/templates/{u}/modules"),
            Some(json!({"name": "fs"})),
        ),
        (
            "POST",
            format!("/templates/{u}/modules"),
            Some(json!({"name": "console"})),
        ),
        (
            "POST",
            format!("/templates/{u}/modules"),
            Some(json!({"name": "nope"})),
        ),
        ("DELETE", format!("/templates/{u}/modules/fs"), None),
        ("GET", format!("/templates/{u}/libraries"), None),
        (
            "POST",
            format!("/templates/{u}/libraries"),
            Some(json!({"name": "lodash"})),
        ),
        (
            "POST",
            format!("/templates/{u}/libraries"),
            Some(json!({"name": "jquery"})),
        ),
        ("DELETE", format!("/templates/{u}/libraries/lodash"), None),
        (
            "DELETE",
            format!("/templates/{u}/libraries/lodash@4.17.21"),
            None,
        ),
    ];
    for (method, path, body) in &cases {
        let ctx = format!("{method} {path} {body:?}");
        let text = body.as_ref().map(|b| b.to_string());
        let r = d.request(method, &format!("/api/v1{path}"), text.as_deref(), &[]);
        let details = expect_err(&r, 404, "TEMPLATE_NOT_FOUND", &ctx);
        assert_eq!(details, json!({ "template_id": u }), "{ctx}");
    }
}
