//! Bad input (issue 5 item 4): every route of `GET /openapi.json` gets a sweep of bad requests.
//!
//! The routes, their parameters and their body schemas are read from the daemon's own OpenAPI
//! document at test time, so a new route or field is swept without editing this file. Each
//! operation is sent, with real ids created by the test and with invalid ones:
//!
//! * invalid path ids (not a uuid, empty, very long, `%2F`, `..`, `%00`, bad escapes, ...);
//! * bad query strings (unknown, repeated and malformed parameters, wrong types, huge and
//!   negative numbers, unknown enum values) and bad values of header parameters;
//! * malformed bodies (empty, truncated, not JSON, invalid UTF-8, 100k nested `[`, other content
//!   types, exactly 1 MiB, just over it, 5 MiB);
//! * for each body field, found by walking the schema: wrong JSON types, invalid literals, huge
//!   strings below and above the body limit, special strings, bad ids, unknown, duplicate and
//!   missing fields, and path tricks for file and worktree paths.
//!
//! Every answer must be a non-5xx in time (a client timeout bounds each request) and, for a 4xx,
//! a well-formed error envelope (§2) whose code, status and `details` keys match the error
//! table; where the spec fixes the outcome (413, `INVALID_REQUEST` for a body that cannot be
//! decoded, `VALIDATION_ERROR` for a bad query or path id, a path escaping the worktree is never
//! run) that is checked too. Further sections cover what needs files: path tricks on a worktree
//! with symlinks, a FIFO, a loop and a too-large file, symlinks swapped between requests for
//! run-file, startup files and worktrees, and raw HTTP (bytes a client library refuses to send).
//! Problems are collected and reported together; afterwards the daemon must still be healthy
//! and sessions must still answer `1+1`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tests::daemon::{Resp, TestDaemon};

/// The request body limit of spec §1.
const LIMIT: usize = 1 << 20;
/// Bound on every request of the sweep: an answer later than this is reported as a hang.
const TIMEOUT: Duration = tests::DEADLINE;
/// A well-formed id that no daemon generated.
const UNKNOWN: &str = "6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10";
/// The content of the file outside the worktree: no answer may ever contain it.
const SECRET: &str = "bad-input-outside-secret";
/// Placeholder replaced by raw JSON text when a body is written.
const RAW: &str = "@@bad-input-raw@@";

/// The error table of spec §2: code, status and the exact `details` keys.
const CODES: &[(&str, u16, &[&str])] = &[
    ("INVALID_REQUEST", 400, &[]),
    ("VALIDATION_ERROR", 400, &["field"]),
    ("UNAUTHORIZED", 401, &[]),
    ("ROUTE_NOT_FOUND", 404, &["method", "path"]),
    ("TEMPLATE_NOT_FOUND", 404, &["template_id"]),
    (
        "CAPABILITY_NOT_FOUND",
        404,
        &["template_id", "capability_id"],
    ),
    (
        "STARTUP_FILE_NOT_FOUND",
        404,
        &["template_id", "startup_file_id"],
    ),
    ("SESSION_NOT_FOUND", 404, &["session_id"]),
    ("EXECUTION_NOT_FOUND", 404, &["execution_id"]),
    ("FILE_NOT_FOUND", 404, &["session_id", "path"]),
    ("METHOD_NOT_ALLOWED", 405, &["method", "path", "allowed"]),
    ("TEMPLATE_NAME_TAKEN", 409, &["name", "template_id"]),
    ("TEMPLATE_IN_USE", 409, &["template_id", "session_ids"]),
    (
        "CAPABILITY_EXISTS",
        409,
        &["template_id", "capability_id", "kind", "name"],
    ),
    (
        "STARTUP_FILE_EXISTS",
        409,
        &["template_id", "startup_file_id", "path"],
    ),
    ("SESSION_NOT_READY", 409, &["session_id", "status"]),
    ("SESSION_BUSY", 409, &["session_id", "execution_id"]),
    ("EXECUTION_FINISHED", 409, &["execution_id", "status"]),
    ("PAYLOAD_TOO_LARGE", 413, &["limit_bytes"]),
    ("ENGINE_UNSUPPORTED", 422, &["engine", "supported"]),
    ("INVALID_PATH", 422, &["path", "reason"]),
    ("INVALID_WORKTREE", 422, &["worktree_path", "reason"]),
    (
        "STARTUP_MODE_UNSUPPORTED",
        422,
        &["requested_mode", "supported_modes"],
    ),
    (
        "STARTUP_FAILED",
        422,
        &["session_id", "execution_id", "path", "library"],
    ),
    ("MODULE_NOT_ALLOWED", 422, &["name", "reason"]),
    ("LIBRARY_UNKNOWN", 422, &["name"]),
    (
        "LIBRARY_NOT_CACHED",
        422,
        &["session_id", "library", "expected_path"],
    ),
    ("OUTPUT_LIMIT_EXCEEDED", 422, &["execution_id", "limit"]),
];

/// What the spec fixes about a case's answer, beyond the invariants every answer must meet.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Anything that meets the invariants.
    Any,
    /// Exactly this status and error code.
    Error(u16, &'static str),
    /// Anything but a success (e.g. a path that escapes the worktree).
    Refused,
    /// Exactly this success status.
    Success(u16),
}

const INVALID: Expect = Expect::Error(400, "INVALID_REQUEST");
const VALIDATION: Expect = Expect::Error(400, "VALIDATION_ERROR");
const TOO_LARGE: Expect = Expect::Error(413, "PAYLOAD_TOO_LARGE");
const NO_ROUTE: Expect = Expect::Error(404, "ROUTE_NOT_FOUND");

/// One request.
struct Case {
    method: String,
    /// Path and query as sent (already percent-encoded where needed).
    target: String,
    label: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    expect: Expect,
}

impl Case {
    fn new(method: &str, target: String, label: impl Into<String>) -> Case {
        Case {
            method: method.to_string(),
            target,
            label: label.into(),
            body: Vec::new(),
            headers: Vec::new(),
            expect: Expect::Any,
        }
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Case {
        self.body = body.into();
        self
    }

    fn header(mut self, name: &str, value: &str) -> Case {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn expect(mut self, expect: Expect) -> Case {
        self.expect = expect;
        self
    }
}

/// Sends cases and collects every problem.
struct Sweep<'d> {
    d: &'d TestDaemon,
    sent: usize,
    violations: Vec<String>,
    /// Outcomes (`201`, `400 INVALID_REQUEST`, ...) of the requests since the last [`Sweep::tally`].
    outcomes: BTreeMap<String, usize>,
}

impl<'d> Sweep<'d> {
    fn new(d: &'d TestDaemon) -> Sweep<'d> {
        Sweep {
            d,
            sent: 0,
            violations: Vec::new(),
            outcomes: BTreeMap::new(),
        }
    }

    /// The outcomes since the last call, e.g. `201×3 400 INVALID_REQUEST×40`.
    fn tally(&mut self) -> String {
        std::mem::take(&mut self.outcomes)
            .into_iter()
            .map(|(outcome, n)| format!("{outcome}×{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Sends `case`, records any violation, and returns the answer if there was one.
    fn run(&mut self, case: &Case) -> Option<Resp> {
        self.sent += 1;
        let mut headers: Vec<(&str, &str)> = case
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if case.body.len() > LIMIT {
            // Lets the client read the early 413 before it writes a body the daemon never reads.
            headers.push(("Expect", "100-continue"));
        }
        let result = self
            .d
            .send(&case.method, &case.target, &case.body, &headers, TIMEOUT);
        let outcome = match &result {
            Ok(r) if r.status >= 400 => format!("{} {}", r.status, r.code()),
            Ok(r) => r.status.to_string(),
            Err(_) => "no answer".to_string(),
        };
        *self.outcomes.entry(outcome).or_default() += 1;
        let problem = match &result {
            Err(e) => Some(format!("no answer within {TIMEOUT:?}: {e}")),
            Ok(r) if r.text.contains(SECRET) => Some("served a file outside the worktree".into()),
            Ok(r) => judge(r, case.expect),
        };
        if let Some(problem) = problem {
            let (status, text) = match &result {
                Ok(r) => (r.status.to_string(), excerpt(&r.text, 240)),
                Err(_) => ("-".to_string(), String::new()),
            };
            self.violations.push(format!(
                "{} {} [{}]: {problem}; status {status}, body {text}",
                case.method,
                excerpt(&case.target, 160),
                excerpt(&case.label, 120),
            ));
        }
        result.ok()
    }

    /// Records a problem found outside [`Sweep::run`].
    fn violation(&mut self, what: String) {
        self.violations.push(what);
    }
}

/// The problem with an answer, if any: the invariants, then the case's expectation.
fn judge(r: &Resp, expect: Expect) -> Option<String> {
    if r.status >= 500 {
        return Some("server error".into());
    }
    if !(200..300).contains(&r.status) && !(400..500).contains(&r.status) {
        return Some("unexpected status class".into());
    }
    if r.status >= 400
        && let Err(problem) = envelope(r)
    {
        return Some(format!("bad error envelope: {problem}"));
    }
    match expect {
        Expect::Any => None,
        Expect::Error(status, code) => {
            ((r.status, r.code()) != (status, code)).then(|| format!("expected {status} {code}"))
        }
        Expect::Refused => (r.status < 300).then(|| "must be refused".to_string()),
        Expect::Success(status) => (r.status != status).then(|| format!("expected {status}")),
    }
}

/// Checks the §2 error envelope of a 4xx answer.
fn envelope(r: &Resp) -> Result<(), String> {
    if r.header("content-type") != Some("application/json") {
        return Err(format!("content type {:?}", r.header("content-type")));
    }
    let top = r.body.as_object().ok_or("body is not a JSON object")?;
    if top.len() != 1 || !top.contains_key("error") {
        return Err("top-level keys must be exactly [error]".into());
    }
    let error = r.body["error"]
        .as_object()
        .ok_or("error is not an object")?;
    let keys: BTreeSet<&str> = error.keys().map(String::as_str).collect();
    if keys != BTreeSet::from(["code", "details", "message", "request_id"]) {
        return Err(format!("error keys {keys:?}"));
    }
    let code = r.code();
    let Some((_, status, detail_keys)) = CODES.iter().find(|(c, _, _)| *c == code) else {
        return Err(format!("undocumented code {code:?}"));
    };
    if *status != r.status {
        return Err(format!("{code} must be HTTP {status}"));
    }
    if r.body["error"]["message"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Err("message must be a non-empty string".into());
    }
    let details = r.details().as_object().ok_or("details is not an object")?;
    let got: BTreeSet<&str> = details.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = detail_keys.iter().copied().collect();
    if got != want {
        return Err(format!("details keys {got:?}, documented {want:?}"));
    }
    // The name as sent: empty for a query parameter without a name (`?=1`).
    if code == "VALIDATION_ERROR" && !r.details()["field"].is_string() {
        return Err("details.field must name the field".into());
    }
    let header = r.header("x-request-id");
    if header.is_none() || r.body["error"]["request_id"].as_str() != header {
        return Err("request_id must equal the X-Request-Id header".into());
    }
    Ok(())
}

/// At most `max` characters of `s`, with the total length when cut.
fn excerpt(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(max).collect();
        format!("{head:?}…({count} chars)")
    }
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI document.

/// One operation of the document.
struct Op {
    method: String,
    /// The path template, e.g. `/api/v1/templates/{template_id}`.
    path: String,
    params: Vec<Param>,
    /// The request body schema, `$ref`s resolved at the top.
    body: Option<Value>,
}

struct Param {
    name: String,
    /// `path`, `query` or `header`.
    place: String,
    schema: Value,
    required: bool,
}

/// Follows `$ref`s (and single-element `allOf`s) into `components`.
fn resolve(doc: &Value, schema: &Value) -> Value {
    let mut schema = schema.clone();
    for _ in 0..16 {
        if let Some(target) = schema["$ref"].as_str() {
            let pointer = target.trim_start_matches('#');
            schema = doc.pointer(pointer).cloned().unwrap_or(Value::Null);
        } else if let Some([only]) = schema["allOf"].as_array().map(Vec::as_slice) {
            schema = only.clone();
        } else {
            break;
        }
    }
    schema
}

/// Every operation of the document, in document order.
fn operations(doc: &Value) -> Vec<Op> {
    let mut ops = Vec::new();
    let paths = doc["paths"].as_object().expect("paths in the document");
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, op) in item {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let params = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let p = resolve(doc, p);
                    Param {
                        name: p["name"].as_str().unwrap_or_default().to_string(),
                        place: p["in"].as_str().unwrap_or_default().to_string(),
                        schema: resolve(doc, &p["schema"]),
                        required: p["required"].as_bool().unwrap_or(false),
                    }
                })
                .collect();
            let body = op["requestBody"]["content"]
                .as_object()
                .and_then(|content| content.values().next())
                .map(|media| resolve(doc, &media["schema"]));
            ops.push(Op {
                method: method.to_uppercase(),
                path: path.clone(),
                params,
                body,
            });
        }
    }
    ops
}

/// The order in which operations are swept: reads, then calls with a body, then the other
/// calls with effects (restart, cancel), then deletes and closes; within each, deepest path
/// first (a capability before its template). Real ids stay valid for as long as possible.
fn phase(op: &Op) -> (u8, usize) {
    let depth = usize::MAX - op.path.matches('/').count();
    let p = match op.method.as_str() {
        "GET" => 0,
        _ if op.body.is_some() => 1,
        "DELETE" => 3,
        _ if op.path.ends_with("/close") => 3,
        _ => 2,
    };
    (p, depth)
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

struct Fixture {
    /// A template for sessions (no startup files).
    tk: String,
    /// A template with a capability, a startup file, a module and a library; no session uses it.
    tx: String,
    cap: String,
    sf: String,
    /// A ready session on the trick worktree, and a finished execution of it.
    s: String,
    e: String,
    /// The trick worktree of `s` (see [`trick_worktree`]).
    wt: PathBuf,
    /// An empty worktree for the sessions that `POST /sessions` cases create.
    plain_wt: PathBuf,
}

/// Fills `wt` with files for path tricks; `outside` is a directory next to it.
fn trick_worktree(wt: &Path, outside: &Path) {
    std::fs::create_dir_all(outside).unwrap();
    std::fs::write(outside.join("secret.js"), format!("'{SECRET}'")).unwrap();
    std::fs::write(wt.join("ok.js"), "1 + 1").unwrap();
    std::fs::create_dir_all(wt.join("dir")).unwrap();
    std::fs::write(wt.join("dir/f.js"), "2").unwrap();
    std::fs::write(wt.join("a\\b.js"), "3").unwrap();
    std::fs::write(wt.join(format!("{}.js", "n".repeat(252))), "4").unwrap();
    symlink("../outside/secret.js", wt.join("out_link")).unwrap();
    symlink(outside.join("secret.js"), wt.join("abs_out")).unwrap();
    symlink(wt.join("ok.js"), wt.join("abs_in")).unwrap();
    symlink("dir/../ok.js", wt.join("rel_in")).unwrap();
    symlink("missing.js", wt.join("dangling")).unwrap();
    symlink("loop", wt.join("loop")).unwrap();
    symlink("../outside", wt.join("dir_out")).unwrap();
    symlink("/proc/self/root", wt.join("proc_link")).unwrap();
    symlink("/dev/zero", wt.join("dev_link")).unwrap();
    symlink("ok.js", wt.join("swap")).unwrap();
    let fifo = std::ffi::CString::new(wt.join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0, "mkfifo");
    // Sparse: over the 16 MiB the daemon reads, without writing it.
    let big = std::fs::File::create(wt.join("big.js")).unwrap();
    big.set_len(17 * 1024 * 1024).unwrap();
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn setup(d: &TestDaemon) -> Fixture {
    let tk = d.template("bad-input-sessions");
    let tx = d.template("bad-input-parts");
    let cap = id_of(
        d.post(
            &format!("/templates/{tx}/capabilities"),
            json!({"kind": "fs", "name": "worktree"}),
        )
        .ok(201),
    );
    let sf = id_of(&d.add_startup(&tx, "init.js", 0));
    d.post(&format!("/templates/{tx}/modules"), json!({"name": "fs"}))
        .ok(201);
    d.post(
        &format!("/templates/{tx}/libraries"),
        json!({"name": "lodash"}),
    )
    .ok(201);
    let wt = d.worktree("tricks");
    trick_worktree(&wt, &d.dir.path().join("worktrees/outside"));
    let s = id_of(d.session_resp(&tk, &wt).ok(201));
    let e = id_of(d.repl(&s, "1 + 1").ok(201));
    Fixture {
        tk,
        tx,
        cap,
        sf,
        s,
        e,
        wt,
        plain_wt: d.worktree("plain"),
    }
}

/// The real value of a path or query parameter.
fn real_param(fx: &Fixture, op: &Op, p: &Param) -> String {
    match p.name.as_str() {
        "template_id" => fx.tx.clone(),
        "capability_id" => fx.cap.clone(),
        "startup_file_id" => fx.sf.clone(),
        "session_id" => fx.s.clone(),
        "execution_id" => fx.e.clone(),
        "name" if op.path.contains("/libraries/") => "lodash".into(),
        "name" => "fs".into(),
        _ if p.schema["format"] == "uuid" => UNKNOWN.into(),
        _ => "x".into(),
    }
}

/// The path of `op` with every path parameter real, except `name` set to `raw`.
fn path_with(fx: &Fixture, op: &Op, name: Option<&str>, raw: &str) -> String {
    let mut path = op.path.clone();
    for p in op.params.iter().filter(|p| p.place == "path") {
        let value = if Some(p.name.as_str()) == name {
            raw.to_string()
        } else {
            real_param(fx, op, p)
        };
        path = path.replace(&format!("{{{}}}", p.name), &value);
    }
    path
}

/// The required query parameters of `op` with real values, except `skip`.
fn base_query(fx: &Fixture, op: &Op, skip: Option<&str>) -> Vec<String> {
    op.params
        .iter()
        .filter(|p| p.place == "query" && p.required && Some(p.name.as_str()) != skip)
        .map(|p| format!("{}={}", p.name, real_param(fx, op, p)))
        .collect()
}

fn with_query(path: &str, parts: &[String]) -> String {
    if parts.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", parts.join("&"))
    }
}

/// A valid-looking value of a body field, by name (then by schema).
fn base_value(fx: &Fixture, op: &Op, name: &str, schema: &Value) -> Value {
    match name {
        "template_id" => json!(fx.tk),
        "session_id" => json!(fx.s),
        "path" => json!("ok.js"),
        "workspace_id" => json!("ws-bad-input"),
        "base_commit_oid" => json!("9fceb02d0ae598e95dc970b74767f19372d61af8"),
        "worktree_path" => json!(fx.plain_wt.to_str().unwrap()),
        "input" => json!("1 + 1"),
        "kind" => json!("global"),
        "name" if op.path.ends_with("/modules") => json!("fs"),
        "name" if op.path.ends_with("/libraries") => json!("lodash"),
        "name" if op.path.ends_with("/capabilities") => json!("bad-input"),
        "name" => json!("bad-input-base"),
        _ => generic_value(schema),
    }
}

fn generic_value(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match schema["type"].as_str() {
        Some("string") if schema["format"] == "uuid" => json!(UNKNOWN),
        Some("string") => json!("x"),
        Some("integer") => schema["minimum"]
            .clone()
            .as_i64()
            .map_or(json!(1), |m| json!(m)),
        Some("boolean") => json!(true),
        Some("array") => json!([]),
        _ => json!({}),
    }
}

/// The base body of a body operation: every required field with a valid-looking value.
fn base_body(fx: &Fixture, doc: &Value, op: &Op, schema: &Value) -> Value {
    let mut body = serde_json::Map::new();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
        if required.contains(&name.as_str()) {
            body.insert(name.clone(), base_value(fx, op, name, &resolve(doc, prop)));
        }
    }
    Value::Object(body)
}

/// Every field of a body schema, nested objects included: (pointer, schema).
fn fields(doc: &Value, schema: &Value, prefix: &[String], out: &mut Vec<(Vec<String>, Value)>) {
    for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
        let prop = resolve(doc, prop);
        let mut pointer = prefix.to_vec();
        pointer.push(name.clone());
        out.push((pointer.clone(), prop.clone()));
        if prop["properties"].is_object() {
            fields(doc, &prop, &pointer, out);
        }
    }
}

/// `base` with the field at `pointer` set to the raw JSON text `raw` (objects on the way are
/// created), as bytes.
fn with_raw(base: &Value, pointer: &[String], raw: &str) -> Vec<u8> {
    let mut body = base.clone();
    let mut at = &mut body;
    for (i, key) in pointer.iter().enumerate() {
        if !at.is_object() {
            *at = json!({});
        }
        let map = at.as_object_mut().unwrap();
        if i + 1 == pointer.len() {
            map.insert(key.clone(), json!(RAW));
            break;
        }
        at = map.entry(key.clone()).or_insert_with(|| json!({}));
    }
    body.to_string()
        .replacen(&format!("\"{RAW}\""), raw, 1)
        .into_bytes()
}

/// `base` without the field at `pointer`.
fn without(base: &Value, pointer: &[String]) -> Vec<u8> {
    let mut body = base.clone();
    if let ([name], Some(map)) = (pointer, body.as_object_mut()) {
        map.remove(name);
    }
    body.to_string().into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Values.

/// The JSON type of a raw value, for deciding whether it is a type error.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Not JSON at all.
    Invalid,
    Null,
    Bool,
    /// An integer literal that fits `i64`.
    Int,
    /// A number with fraction or exponent, or an integer literal beyond `i64`.
    Float,
    Str,
    Arr,
    Obj,
}

/// Whether `kind` cannot be decoded for a field of `schema` (§1: `INVALID_REQUEST`).
fn type_error(kind: Kind, schema: &Value) -> bool {
    let ty = schema["type"].as_str().unwrap_or("");
    match kind {
        Kind::Invalid | Kind::Null | Kind::Float => true,
        Kind::Bool => ty != "boolean",
        Kind::Int => ty != "integer",
        Kind::Str => ty != "string",
        Kind::Arr => ty != "array",
        Kind::Obj => ty != "object",
    }
}

fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Values of every JSON type, and literals that are not JSON, for every field.
fn type_values() -> Vec<(String, Kind)> {
    let mut values: Vec<(String, Kind)> = [
        ("null", Kind::Null),
        ("true", Kind::Bool),
        ("0", Kind::Int),
        ("-1", Kind::Int),
        ("-0", Kind::Int),
        ("1.5", Kind::Float),
        ("1e3", Kind::Float),
        ("1e400", Kind::Float),
        ("9223372036854775807", Kind::Int),
        ("9223372036854775808", Kind::Float),
        ("-9223372036854775809", Kind::Float),
        ("\"\"", Kind::Str),
        ("\"s\"", Kind::Str),
        ("[]", Kind::Arr),
        ("[null]", Kind::Arr),
        ("{}", Kind::Obj),
        ("{\"a\":1}", Kind::Obj),
        ("NaN", Kind::Invalid),
        ("Infinity", Kind::Invalid),
        ("0x10", Kind::Invalid),
        ("01", Kind::Invalid),
        ("+1", Kind::Invalid),
        (".5", Kind::Invalid),
        ("'s'", Kind::Invalid),
        ("\"unterminated", Kind::Invalid),
        ("\"raw\u{0}nul\"", Kind::Invalid),
        ("\"bad \\x escape\"", Kind::Invalid),
    ]
    .iter()
    .map(|(raw, kind)| (raw.to_string(), *kind))
    .collect();
    values.push((nested_arrays(100), Kind::Arr));
    values.push((nested_arrays(200), Kind::Invalid));
    values.push(("[".repeat(100_000), Kind::Invalid));
    values
}

/// Strings that are hard to store, compare or print, for every string field.
fn string_values() -> Vec<String> {
    let mut values: Vec<String> = [
        " ",
        "\t\n\r",
        "\u{0}",
        "a\u{0}b",
        "\u{7f}\u{1b}[31m",
        "\u{202e}rtl",
        "\u{1f600}",
        "e\u{301}",
        "\u{feff}",
        "%00",
        "%2F..%2F",
        "' OR 1=1 --",
        "${jndi:x}",
        "null",
        "x".repeat(128).as_str(),
        "x".repeat(129).as_str(),
        "\u{e9}".repeat(256).as_str(),
        "x".repeat(257).as_str(),
        "x".repeat(4097).as_str(),
        "x".repeat(100_000).as_str(),
    ]
    .iter()
    .map(|s| serde_json::to_string(s).unwrap())
    .collect();
    // Escapes the parser must handle: lone and reversed surrogates, an escaped NUL.
    values.extend(
        [
            "\"\\ud800\"",
            "\"\\udc00\\ud800\"",
            "\"\\u0000\"",
            "\"\\ud83d\\ude00\"",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    values
}

/// Malformed ids as JSON strings, for uuid fields.
fn id_values() -> Vec<String> {
    [
        "not-a-uuid",
        "{6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10}",
        "urn:uuid:6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10",
        "6f1d8c1e2b7a4c519a513f3b1a2c9d10",
        " 6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10",
        "6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10\u{0}",
        "6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d1g",
        "../6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10",
    ]
    .iter()
    .map(|s| serde_json::to_string(s).unwrap())
    .chain([serde_json::to_string(&"0".repeat(100_000)).unwrap()])
    .collect()
}

/// A relative file path trick: (value, refused lexically, reaches outside the worktree).
struct PathTrick {
    value: String,
    lexical: bool,
    outside: bool,
}

fn path_tricks(wt: &Path) -> Vec<PathTrick> {
    let t = |value: &str, lexical: bool, outside: bool| PathTrick {
        value: value.to_string(),
        lexical,
        outside,
    };
    let wt = wt.to_str().unwrap();
    vec![
        t("", true, false),
        t("   ", true, false),
        t(".", true, false),
        t("./", true, false),
        t("a/..", true, false),
        t("..", true, true),
        t("../outside/secret.js", true, true),
        t("a/../../outside/secret.js", true, true),
        t("./../outside/secret.js", true, true),
        t("dir/../../outside/secret.js", true, true),
        t("/etc/passwd", true, true),
        t("/", true, true),
        t(&format!("{wt}/ok.js"), true, false),
        t("//ok.js", true, false),
        t("ok.js\u{0}", true, false),
        t("\u{0}", true, false),
        t("ok.js\u{0}/../../x", true, true),
        t("ok.js%00", false, false),
        t("%2e%2e/outside/secret.js", false, false),
        t("..\\outside\\secret.js", false, false),
        t("a\\..\\..\\x", false, false),
        t("a\\b.js", false, false),
        t("\\", false, false),
        t("dir/../ok.js", false, false),
        t("./ok.js", false, false),
        t("dir//f.js", false, false),
        t("ok.js/", false, false),
        t("ok.js/x", false, false),
        t("dir", false, false),
        t("fifo", false, false),
        t("big.js", false, false),
        t("missing.js", false, false),
        t("out_link", false, true),
        t("abs_out", false, true),
        t("abs_in", false, true),
        t("rel_in", false, false),
        t("dangling", false, false),
        t("loop", false, false),
        t("loop/x", false, false),
        t("dir_out/secret.js", false, true),
        t("proc_link/etc/passwd", false, true),
        t("dev_link", false, true),
        t("swap", false, false),
        t(&format!("{}.js", "n".repeat(252)), false, false),
        t(&"n".repeat(300), false, false),
        t(&"a/".repeat(3000), false, false),
        t(&format!("{}ok.js", "./".repeat(2000)), false, false),
        t(
            &format!("{}../outside/secret.js", "a/../".repeat(2000)),
            true,
            true,
        ),
        t(&"x/".repeat(200_000), false, false),
        t("~/x", false, false),
        t("$HOME/x", false, false),
        t("file:///etc/passwd", false, false),
        t("ok.js\n", false, false),
        t(" ok.js", false, false),
    ]
}

/// Worktree paths for `POST /sessions`; each is `Some(true)` when it names a usable directory.
fn worktree_tricks(fx: &Fixture) -> Vec<(String, bool)> {
    let plain = fx.plain_wt.to_str().unwrap();
    let wt = fx.wt.to_str().unwrap();
    vec![
        (String::new(), false),
        (" ".into(), false),
        ("relative/dir".into(), false),
        (".".into(), false),
        ("..".into(), false),
        ("~".into(), false),
        ("/nonexistent-bad-input".into(), false),
        (format!("{wt}/ok.js"), false),
        (format!("{wt}/ok.js/"), false),
        (format!("{wt}/loop"), false),
        (format!("{wt}/dangling"), false),
        (format!("{wt}/fifo"), false),
        ("/dev/null".into(), false),
        (format!("{plain}\u{0}"), false),
        (format!("{plain}/\u{0}/.."), false),
        (format!("/{}", "a".repeat(300)), false),
        (format!("/{}", "a/".repeat(2040)), false),
        (format!("/{}", "a".repeat(4096)), false),
        (format!("/{}", "a/".repeat(100_000)), false),
        (format!("{plain}\\..\\.."), false),
        (format!("{plain}/"), true),
        (format!("{plain}/."), true),
        (format!("/{plain}"), true),
        (format!("{plain}/../plain"), true),
        (format!("{wt}/dir_out"), true),
        (format!("{wt}/dir"), true),
    ]
}

/// Free-form object values (`args`, `config`, `env`): (raw, must be refused while decoding).
fn object_values() -> Vec<(String, bool)> {
    let deep = |depth: usize| format!("{{\"a\":{}}}", nested_arrays(depth));
    vec![
        ("{\"a\":null}".into(), false),
        ("{\"A\":\"x\"}".into(), false),
        ("{\"A\":1}".into(), false),
        ("{\"A\":[]}".into(), false),
        ("{\"1A\":\"x\"}".into(), false),
        ("{\"A-B\":\"x\"}".into(), false),
        ("{\"\":\"x\"}".into(), false),
        ("{\"A\\u0000\":\"x\"}".into(), false),
        ("{\"A\":\"\\u0000\"}".into(), false),
        ("{\"A\":\"\\ud800\"}".into(), false),
        ("{\"__proto__\":{\"polluted\":true}}".into(), false),
        ("{\"constructor\":{\"prototype\":{}}}".into(), false),
        ("{\"write\":\"yes\"}".into(), false),
        ("{\"allow\":\"/bin/sh\"}".into(), false),
        ("{\"allow\":[1]}".into(), false),
        ("{\"allow\":[\"relative\"]}".into(), false),
        ("{\"a\":1,\"a\":2}".into(), true),
        ("{\"a\":{\"b\":1,\"b\":1}}".into(), true),
        (deep(100), false),
        (deep(126), false),
        (deep(300), true),
        (
            format!(
                "{{{}}}",
                (0..20_000)
                    .map(|i| format!("\"k{i}\":{i}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            false,
        ),
        (format!("{{\"A\":\"{}\"}}", "x".repeat(900_000)), false),
    ]
}

// ---------------------------------------------------------------------------------------------
// Cases.

/// Malformed ids and segments for a path parameter: (label, raw segment, expectation).
fn path_segments(fx: &Fixture, op: &Op, p: &Param) -> Vec<(String, String, Expect)> {
    let is_id = p.schema["format"] == "uuid";
    let bad = if is_id { VALIDATION } else { Expect::Any };
    let real = real_param(fx, op, p);
    let mut segments: Vec<(&str, String, Expect)> = vec![
        ("not a uuid", "not-a-uuid".into(), bad),
        // An empty segment: no route, or a malformed id, depending on where it is.
        ("empty", String::new(), Expect::Any),
        ("space", "%20".into(), bad),
        ("very long", "a".repeat(10_000), bad),
        ("60k chars", "0".repeat(60_000), bad),
        ("encoded slash", "a%2Fb".into(), bad),
        ("only an encoded slash", "%2F".into(), bad),
        ("encoded ../", "..%2F..%2Fetc%2Fpasswd".into(), bad),
        ("dot dot", "..".into(), Expect::Any),
        ("dot", ".".into(), Expect::Any),
        ("encoded dot dot", "%2e%2e".into(), bad),
        ("NUL", "%00".into(), bad),
        ("uuid and NUL", format!("{real}%00"), bad),
        ("uuid and encoded slash", format!("{real}%2F"), bad),
        ("braces", format!("%7B{real}%7D"), bad),
        ("urn", format!("urn:uuid:{real}"), bad),
        ("32 hex digits", real.replace('-', ""), bad),
        (
            "g in hex",
            format!("{}g", &real[..real.len().saturating_sub(1)]),
            bad,
        ),
        ("matrix parameter", format!("{real};x=1"), bad),
        ("malformed escape", "%zz".into(), NO_ROUTE),
        ("truncated escape", format!("{real}%4"), NO_ROUTE),
        ("invalid UTF-8", "%FF".into(), NO_ROUTE),
        ("overlong UTF-8 dots", "%C0%AE%C0%AE".into(), NO_ROUTE),
        ("non-ASCII", "caf%C3%A9".into(), bad),
        ("newline", "%0A".into(), bad),
        ("CR LF", "%0D%0Ax".into(), bad),
        ("backslashes", "..%5C..%5Cx".into(), bad),
        ("negative", "-1".into(), bad),
        ("huge number", "99999999999999999999999".into(), bad),
        ("star", "*".into(), bad),
        ("tilde", "~".into(), bad),
    ];
    if is_id {
        segments.push(("unknown uuid", UNKNOWN.into(), Expect::Any));
        segments.push((
            "nil uuid",
            "00000000-0000-0000-0000-000000000000".into(),
            Expect::Any,
        ));
        segments.push(("uppercase real id", real.to_uppercase(), Expect::Any));
        segments.push(("encoded hyphens", real.replace('-', "%2D"), Expect::Any));
    } else {
        segments.push(("uppercase", real.to_uppercase(), Expect::Any));
        segments.push(("with version", format!("{real}@1.0.0"), Expect::Any));
        segments.push(("padded", format!("%20{real}%20"), Expect::Any));
    }
    segments
        .into_iter()
        .map(|(label, raw, expect)| (label.to_string(), raw, expect))
        .collect()
}

/// Bad values of a documented query parameter: (label, raw value, expectation).
fn query_values(p: &Param) -> Vec<(String, String, Expect)> {
    let schema = &p.schema;
    let mut values: Vec<(&str, String, Expect)> = vec![
        ("empty", String::new(), VALIDATION),
        ("malformed escape", "%zz".into(), VALIDATION),
        ("NUL", "%00".into(), VALIDATION),
        ("very long", "9".repeat(50_000), VALIDATION),
    ];
    if schema["format"] == "uuid" {
        for raw in [
            "not-a-uuid",
            "%7B6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10%7D",
            "..%2F..",
        ] {
            values.push(("bad id", raw.into(), VALIDATION));
        }
    } else if let Some(options) = schema["enum"].as_array() {
        let first = options.first().and_then(Value::as_str).unwrap_or("x");
        values.push(("unknown value", "bogus".into(), VALIDATION));
        values.push(("upper case", first.to_uppercase(), VALIDATION));
        values.push(("with NUL", format!("{first}%00"), VALIDATION));
        values.push(("with space", format!("{first}%20"), VALIDATION));
    } else {
        match schema["type"].as_str() {
            Some("integer") => {
                let max = schema["maximum"].as_i64();
                let min = schema["minimum"].as_i64();
                values.extend([
                    ("not a number", "abc".to_string(), VALIDATION),
                    ("negative", "-1".to_string(), VALIDATION),
                    ("fraction", "1.5".to_string(), VALIDATION),
                    ("exponent", "1e3".to_string(), VALIDATION),
                    ("hex", "0x10".to_string(), VALIDATION),
                    ("huge", "99999999999999999999999".to_string(), VALIDATION),
                    (
                        "huge negative",
                        "-99999999999999999999999".to_string(),
                        VALIDATION,
                    ),
                    ("i64 max", "9223372036854775807".to_string(), Expect::Any),
                    ("plus sign", "%2B1".to_string(), Expect::Any),
                    ("leading space", "%201".to_string(), Expect::Any),
                    ("NUL after digits", "1%00".to_string(), VALIDATION),
                ]);
                if let Some(max) = max {
                    values.push(("above maximum", (max + 1).to_string(), VALIDATION));
                }
                if let Some(min) = min {
                    values.push(("below minimum", (min - 1).to_string(), VALIDATION));
                }
            }
            Some("boolean") => values.extend([
                ("yes", "yes".to_string(), VALIDATION),
                ("one", "1".to_string(), VALIDATION),
                ("upper case", "TRUE".to_string(), VALIDATION),
            ]),
            _ => values.push(("unknown value", "bogus".into(), Expect::Any)),
        }
    }
    values
        .into_iter()
        .map(|(label, raw, expect)| (label.to_string(), raw, expect))
        .collect()
}

/// Every case of one operation.
fn op_cases(fx: &Fixture, doc: &Value, op: &Op) -> Vec<Case> {
    let mut cases = Vec::new();
    let m = op.method.as_str();
    let real_path = path_with(fx, op, None, "");
    let target = with_query(&real_path, &base_query(fx, op, None));
    let base = op
        .body
        .as_ref()
        .map(|schema| base_body(fx, doc, op, schema))
        .unwrap_or_else(|| json!({}));
    let base_text = base.to_string();
    // The body sent with path and query cases: the valid base for body operations, none else.
    let plain_body = if op.body.is_some() {
        base_text.clone().into_bytes()
    } else {
        Vec::new()
    };

    // Path parameters.
    for p in op.params.iter().filter(|p| p.place == "path") {
        for (label, raw, expect) in path_segments(fx, op, p) {
            let path = path_with(fx, op, Some(&p.name), &raw);
            cases.push(
                Case::new(
                    m,
                    with_query(&path, &base_query(fx, op, None)),
                    format!("{} {label}", p.name),
                )
                .body(plain_body.clone())
                .expect(expect),
            );
        }
    }

    // Query strings: undocumented ones first, then bad values of each documented one.
    let q = base_query(fx, op, None);
    let long = format!("x={}", "y".repeat(50_000));
    let generic: [(&str, &str, Expect); 8] = [
        ("unknown parameter", "bogus=1", VALIDATION),
        ("unknown parameter without value", "bogus", VALIDATION),
        ("malformed escape in name", "%zz=1", VALIDATION),
        ("NUL value", "bogus=%00", VALIDATION),
        ("empty name", "=1", Expect::Any),
        ("only separators", "&&", Expect::Any),
        ("unicode name", "%C3%A9=1", VALIDATION),
        ("50k-character unknown", &long, VALIDATION),
    ];
    for (label, raw, expect) in generic {
        let mut parts = q.clone();
        parts.push(raw.to_string());
        cases.push(
            Case::new(m, with_query(&real_path, &parts), format!("query {label}"))
                .body(plain_body.clone())
                .expect(expect),
        );
    }
    cases.push(
        Case::new(m, format!("{target}?"), "query a trailing question mark")
            .body(plain_body.clone()),
    );
    for p in op.params.iter().filter(|p| p.place == "query") {
        for (label, raw, expect) in query_values(p) {
            let mut parts = base_query(fx, op, Some(&p.name));
            parts.push(format!("{}={raw}", p.name));
            cases.push(
                Case::new(
                    m,
                    with_query(&real_path, &parts),
                    format!("query {} {label}", p.name),
                )
                .body(plain_body.clone())
                .expect(expect),
            );
        }
        // Repeated, with a valid value both times.
        let valid = if p.required {
            real_param(fx, op, p)
        } else {
            generic_value(&p.schema)
                .to_string()
                .trim_matches('"')
                .to_string()
        };
        let mut parts = base_query(fx, op, Some(&p.name));
        parts.push(format!("{}={valid}", p.name));
        parts.push(format!("{}={valid}", p.name));
        cases.push(
            Case::new(
                m,
                with_query(&real_path, &parts),
                format!("query {} repeated", p.name),
            )
            .body(plain_body.clone())
            .expect(VALIDATION),
        );
    }

    // Header parameters: bad values are ignored, never an error of the server.
    let mut follow = q.clone();
    for p in op.params.iter().filter(|p| p.place == "query") {
        if p.schema["type"] == "boolean" {
            follow.push(format!("{}=true", p.name));
        }
    }
    for p in op.params.iter().filter(|p| p.place == "header") {
        let long = "9".repeat(5000);
        for value in [
            "abc",
            "-1",
            "1.5",
            "99999999999999999999999",
            "",
            " 1",
            &long,
        ] {
            for parts in [&q, &follow] {
                cases.push(
                    Case::new(
                        m,
                        with_query(&real_path, parts),
                        format!("header {} = {}", p.name, excerpt(value, 20)),
                    )
                    .header(&p.name, value)
                    .body(plain_body.clone()),
                );
            }
        }
    }

    cases.extend(body_cases(op, &target, &base, &base_text));
    if let Some(schema) = &op.body {
        cases.extend(field_cases(fx, doc, op, &target, &base, schema));
    }
    cases
}

/// Malformed bodies. Operations documented without a body ignore it (§1), so only the size
/// limit is fixed for them, and they get the smaller set.
fn body_cases(op: &Op, target: &str, base: &Value, base_text: &str) -> Vec<Case> {
    let m = op.method.as_str();
    let has_body = op.body.is_some();
    let bad = if has_body { INVALID } else { Expect::Any };
    let padded = |total: usize| {
        let mut text = base_text.to_string();
        text.insert_str(1, &" ".repeat(total.saturating_sub(base_text.len())));
        text
    };
    let mut cases = vec![
        ("empty", Vec::new(), bad),
        ("not JSON", b"hello".to_vec(), bad),
        (
            "truncated",
            base_text.as_bytes()[..base_text.len() / 2].to_vec(),
            bad,
        ),
        ("invalid UTF-8", b"{\"name\": \"\xff\xfe\"}".to_vec(), bad),
        ("100k nested arrays", "[".repeat(100_000).into_bytes(), bad),
        ("exactly 1 MiB", padded(LIMIT).into_bytes(), Expect::Any),
        ("1 MiB + 1 byte", padded(LIMIT + 1).into_bytes(), TOO_LARGE),
        ("5 MiB", padded(5 * LIMIT).into_bytes(), TOO_LARGE),
    ];
    if has_body {
        cases.extend([
            ("whitespace only", b" \n\t\r ".to_vec(), INVALID),
            ("raw NUL", b"\0".to_vec(), INVALID),
            ("top-level array", b"[]".to_vec(), INVALID),
            (
                "top-level array of the body",
                format!("[{base_text}]").into_bytes(),
                INVALID,
            ),
            ("top-level null", b"null".to_vec(), INVALID),
            ("top-level number", b"42".to_vec(), INVALID),
            ("top-level string", b"\"{}\"".to_vec(), INVALID),
            (
                "trailing garbage",
                format!("{base_text} x").into_bytes(),
                INVALID,
            ),
            (
                "two objects",
                format!("{base_text}{base_text}").into_bytes(),
                INVALID,
            ),
            (
                "byte order mark",
                format!("\u{feff}{base_text}").into_bytes(),
                Expect::Any,
            ),
            (
                "comment",
                format!("/* c */{base_text}").into_bytes(),
                INVALID,
            ),
            (
                "100k nested arrays, closed",
                nested_arrays(100_000).into_bytes(),
                INVALID,
            ),
            (
                "100k nested objects",
                "{\"a\":".repeat(100_000).into_bytes(),
                INVALID,
            ),
            (
                "100k nested arrays in an unknown field",
                format!("{{\"zz\":{}}}", "[".repeat(100_000)).into_bytes(),
                INVALID,
            ),
            (
                "20k unknown keys",
                format!(
                    "{{{}}}",
                    (0..20_000)
                        .map(|i| format!("\"k{i}\":{i}"))
                        .collect::<Vec<_>>()
                        .join(",")
                )
                .into_bytes(),
                INVALID,
            ),
            (
                "500k-character key",
                format!("{{\"{}\":1}}", "k".repeat(500_000)).into_bytes(),
                INVALID,
            ),
            (
                "unknown field",
                with_raw(base, &["bogus".into()], "1"),
                INVALID,
            ),
        ]);
    }
    let mut out: Vec<Case> = cases
        .into_iter()
        .map(|(label, body, expect)| {
            Case::new(m, target.to_string(), format!("body {label}"))
                .body(body)
                .expect(expect)
        })
        .collect();
    // Content-Type is not inspected: the base body with other types is decoded as usual.
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=utf-16",
        "application/xml",
    ] {
        out.push(
            Case::new(m, target.to_string(), format!("content type {ct}"))
                .header("Content-Type", ct)
                .body(base_text.as_bytes().to_vec()),
        );
    }
    out
}

/// Bad values for every field of the body schema.
fn field_cases(
    fx: &Fixture,
    doc: &Value,
    op: &Op,
    target: &str,
    base: &Value,
    schema: &Value,
) -> Vec<Case> {
    let m = op.method.as_str();
    let mut cases = Vec::new();
    let mut all = Vec::new();
    fields(doc, schema, &[], &mut all);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let case = |pointer: &[String], what: &str, body: Vec<u8>, expect: Expect| {
        Case::new(
            m,
            target.to_string(),
            format!("field {} {what}", pointer.join(".")),
        )
        .body(body)
        .expect(expect)
    };
    for (pointer, prop) in &all {
        let name = pointer.last().map(String::as_str).unwrap_or("");
        let ty = prop["type"].as_str().unwrap_or("");
        for (raw, kind) in type_values() {
            let expect = if type_error(kind, prop) {
                INVALID
            } else {
                Expect::Any
            };
            cases.push(case(
                pointer,
                &format!("= {}", excerpt(&raw, 30)),
                with_raw(base, pointer, &raw),
                expect,
            ));
        }
        if pointer.len() == 1 {
            // Unknown (differs in letter case) and duplicate keys; a missing required one.
            let value = base
                .get(name)
                .cloned()
                .unwrap_or_else(|| generic_value(prop));
            let mut upper = name.to_string();
            upper[..1].make_ascii_uppercase();
            let pair = format!("{}:{value}", json!(name));
            let others: Vec<String> = base
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.as_str() != name)
                .map(|(k, v)| format!("{}:{v}", json!(k)))
                .collect();
            let twice = format!(
                "{{{pair},{pair}{}}}",
                others.iter().map(|o| format!(",{o}")).collect::<String>()
            );
            cases.push(case(
                pointer,
                "with a letter-case variant of the key",
                with_raw(base, &[upper], &value.to_string()),
                INVALID,
            ));
            cases.push(case(pointer, "given twice", twice.into_bytes(), INVALID));
            if required.contains(&name) {
                cases.push(case(pointer, "missing", without(base, pointer), VALIDATION));
            }
        }
        if prop["properties"].is_object() {
            let mut inner = pointer.clone();
            inner.push("bogus".into());
            cases.push(case(
                pointer,
                "with an unknown member",
                with_raw(base, &inner, "1"),
                INVALID,
            ));
        }
        match ty {
            "string" => {
                let mut values = string_values();
                if prop["format"] == "uuid" {
                    values.extend(id_values());
                }
                for raw in values {
                    cases.push(case(
                        pointer,
                        &format!("= {}", excerpt(&raw, 30)),
                        with_raw(base, pointer, &raw),
                        Expect::Any,
                    ));
                }
                cases.extend(huge_string_cases(base, pointer, &case));
                if name == "path" {
                    for trick in path_tricks(&fx.wt) {
                        let expect =
                            if trick.lexical || (trick.outside && op.path.ends_with("/run-file")) {
                                Expect::Refused
                            } else {
                                Expect::Any
                            };
                        let raw = serde_json::to_string(&trick.value).unwrap();
                        cases.push(case(
                            pointer,
                            &format!("path trick {}", excerpt(&trick.value, 40)),
                            with_raw(base, pointer, &raw),
                            expect,
                        ));
                    }
                    // A raw control character inside the string is not JSON.
                    cases.push(case(
                        pointer,
                        "with a raw NUL byte",
                        with_raw(base, pointer, "\"ok.js\u{0}\""),
                        INVALID,
                    ));
                }
                if name == "worktree_path" {
                    for (value, usable) in worktree_tricks(fx) {
                        let raw = serde_json::to_string(&value).unwrap();
                        cases.push(case(
                            pointer,
                            &format!("worktree trick {}", excerpt(&value, 40)),
                            with_raw(base, pointer, &raw),
                            if usable {
                                Expect::Success(201)
                            } else {
                                Expect::Refused
                            },
                        ));
                    }
                }
            }
            "array" => {
                let items = resolve(doc, &prop["items"]);
                for (raw, kind) in type_values() {
                    let expect = if type_error(kind, &items) {
                        INVALID
                    } else {
                        Expect::Any
                    };
                    cases.push(case(
                        pointer,
                        &format!("= [{}]", excerpt(&raw, 30)),
                        with_raw(base, pointer, &format!("[{raw}]")),
                        expect,
                    ));
                }
                // String arrays (`resolver.roots`, `resolver.extensions`): too many items, and
                // items that break both the path rules and the extension pattern are refused.
                let many =
                    |n: usize, item: &str| format!("[{}]", vec![item.to_string(); n].join(","));
                let arrays = [
                    (many(33, "\".js\""), VALIDATION),
                    (many(100_000, "\"a\""), VALIDATION),
                    ("[\".js\",\".js\"]".to_string(), Expect::Any),
                    ("[\".JS\",\".js\"]".to_string(), Expect::Any),
                    ("[\"\"]".to_string(), Expect::Any),
                    ("[\".\"]".to_string(), Expect::Any),
                    ("[\".js.map\"]".to_string(), Expect::Any),
                    ("[\"js\"]".to_string(), Expect::Any),
                    (format!("[\".{}\"]", "a".repeat(16)), Expect::Any),
                    ("[\"..\"]".to_string(), VALIDATION),
                    ("[\"/abs\"]".to_string(), VALIDATION),
                    ("[\"a/../../x\"]".to_string(), VALIDATION),
                    ("[\"a\\u0000\"]".to_string(), VALIDATION),
                    (
                        format!("[{}]", serde_json::to_string(&"r".repeat(900_000)).unwrap()),
                        Expect::Any,
                    ),
                ];
                for (raw, expect) in arrays {
                    cases.push(case(
                        pointer,
                        &format!("= {}", excerpt(&raw, 30)),
                        with_raw(base, pointer, &raw),
                        expect,
                    ));
                }
            }
            "object" if !prop["properties"].is_object() => {
                for (raw, refused) in object_values() {
                    cases.push(case(
                        pointer,
                        &format!("= {}", excerpt(&raw, 30)),
                        with_raw(base, pointer, &raw),
                        if refused { INVALID } else { Expect::Any },
                    ));
                }
            }
            _ => {}
        }
        if name == "kind" {
            // Every kind with configs and names that break its rules.
            for kind in prop["enum"].as_array().into_iter().flatten() {
                let kind = kind.as_str().unwrap_or_default();
                for (name_raw, config_raw) in kind_cases() {
                    let body = json!({"kind": kind, "name": "@@name@@", "config": "@@config@@"})
                        .to_string()
                        .replacen("\"@@name@@\"", name_raw, 1)
                        .replacen("\"@@config@@\"", config_raw, 1);
                    cases.push(case(
                        pointer,
                        &format!(
                            "{kind} with name {name_raw} config {}",
                            excerpt(config_raw, 30)
                        ),
                        body.into_bytes(),
                        Expect::Any,
                    ));
                }
            }
        }
    }
    cases
}

/// Names and configs for each capability kind: (raw name, raw config).
fn kind_cases() -> Vec<(&'static str, &'static str)> {
    vec![
        ("\"exec\"", "{\"allow\":[\"/bin/true\"]}"),
        ("\"exec\"", "{\"allow\":\"/bin/true\"}"),
        ("\"exec\"", "{\"allow\":[\"relative\",null]}"),
        ("\"exec\"", "{\"allow\":[\"/bin/true\"],\"x\":1}"),
        ("\"w\"", "{\"write\":1}"),
        ("\"w\"", "{\"write\":true,\"read\":true}"),
        ("\"1BAD\"", "{}"),
        ("\"HOME\"", "{\"a\":1}"),
        ("\"host:0\"", "{}"),
        ("\"host:65536\"", "{}"),
        ("\"[::1]:80\"", "{}"),
        ("\"-bad-.com\"", "{}"),
        ("\"1.2.3.4:99999999999999999999\"", "{}"),
        ("\"a\\u0000b\"", "{}"),
        ("\"\\ud800\"", "{}"),
    ]
}

/// Builds a field case: (field pointer, what, body, expectation).
type CaseFn<'a> = dyn Fn(&[String], &str, Vec<u8>, Expect) -> Case + 'a;

/// Huge strings in a field: below the body limit (plain, multi-byte, escaped NUL) and above it.
fn huge_string_cases(base: &Value, pointer: &[String], case: &CaseFn<'_>) -> Vec<Case> {
    let shell = with_raw(base, pointer, "\"\"").len();
    let room = LIMIT - shell;
    let quoted = |s: String| format!("\"{s}\"");
    vec![
        case(
            pointer,
            "= huge string, body exactly 1 MiB",
            with_raw(base, pointer, &quoted("x".repeat(room))),
            Expect::Any,
        ),
        case(
            pointer,
            "= huge two-byte string, body 1 MiB",
            with_raw(base, pointer, &quoted("\u{e9}".repeat(room / 2))),
            Expect::Any,
        ),
        case(
            pointer,
            "= huge string of escaped NULs, body 1 MiB",
            with_raw(base, pointer, &quoted("\\u0000".repeat(room / 6))),
            Expect::Any,
        ),
        case(
            pointer,
            "= huge string, body 1 MiB + 1",
            with_raw(base, pointer, &quoted("x".repeat(room + 1))),
            TOO_LARGE,
        ),
        case(
            pointer,
            "= 4 MiB string",
            with_raw(base, pointer, &quoted("x".repeat(4 * LIMIT))),
            TOO_LARGE,
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// The sweep.

#[test]
fn every_route_survives_a_sweep_of_bad_input() {
    let d = TestDaemon::start();
    let fx = setup(&d);
    // A session the sweep never names, to show other sessions are unaffected.
    let witness = d.session(&fx.tk);

    let doc = d.get("/openapi.json").ok(200).clone();
    let mut ops = operations(&doc);
    assert!(
        ops.len() >= 30,
        "the document lists {} operations",
        ops.len()
    );
    ops.sort_by_key(phase);

    let mut sweep = Sweep::new(&d);
    let mut per_op = Vec::new();
    for op in &ops {
        let cases = op_cases(&fx, &doc, op);
        let started = std::time::Instant::now();
        let creates_sessions = op.method == "POST" && op.path == "/api/v1/sessions";
        for case in &cases {
            let answer = sweep.run(case);
            // Keep the number of live workers small: close what a case started.
            if let Some(r) = answer
                && creates_sessions
                && r.status == 201
                && let Some(id) = r.body["id"].as_str()
            {
                d.close(id).ok(200);
            }
        }
        per_op.push(format!(
            "{} {}: {} cases {:?}: {}",
            op.method,
            op.path,
            cases.len(),
            started.elapsed(),
            sweep.tally()
        ));
    }
    let swept = sweep.sent;

    file_tricks(&d, &fx, &mut sweep);
    let files = sweep.tally();
    raw_http(&d, &mut sweep);
    let raw = sweep.tally();

    // Afterwards: healthy, and the untouched session and a new one still answer.
    sweep.run(
        &Case::new("GET", "/api/v1/health".into(), "health after the sweep")
            .expect(Expect::Success(200)),
    );
    let created = sweep.run(
        &Case::new(
            "POST",
            "/api/v1/sessions".into(),
            "a new session after the sweep",
        )
        .body(
            json!({
                "template_id": fx.tk, "workspace_id": "ws", "base_commit_oid": "abc",
                "worktree_path": fx.plain_wt.to_str().unwrap(),
            })
            .to_string(),
        )
        .expect(Expect::Success(201)),
    );
    let fresh = created.and_then(|r| r.body["id"].as_str().map(str::to_string));
    for (who, sid) in [
        ("the witness session", Some(witness)),
        ("a new session", fresh),
    ] {
        let Some(sid) = sid else { continue };
        let r = sweep.run(
            &Case::new(
                "POST",
                "/api/v1/executions/repl".into(),
                format!("1+1 in {who}"),
            )
            .body(json!({"session_id": sid, "input": "1+1"}).to_string())
            .expect(Expect::Success(201)),
        );
        if let Some(r) = r
            && r.body["result"]["json"] != json!(2)
        {
            sweep.violation(format!("1+1 in {who} after the sweep: {}", r.text));
        }
    }

    eprintln!(
        "bad_input: {} requests ({swept} in the route sweep over {} operations); {} violations\n  {}\n  file tricks: {files}\n  raw HTTP: {raw}",
        sweep.sent,
        ops.len(),
        sweep.violations.len(),
        per_op.join("\n  ")
    );
    assert!(
        sweep.violations.is_empty(),
        "{} of {} requests broke the rules:\n{}",
        sweep.violations.len(),
        sweep.sent,
        sweep.violations.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Files: symlink swaps and startup files.

fn swap_link(wt: &Path, name: &str, target: &str) {
    let link = wt.join(name);
    let tmp = wt.join(format!("{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    symlink(target, &tmp).unwrap();
    // rename(2) replaces the link atomically.
    std::fs::rename(&tmp, &link).unwrap();
}

/// Path tricks that need files: swaps between requests for run-file, startup files at session
/// start and restart, and worktrees that change under a session.
fn file_tricks(d: &TestDaemon, fx: &Fixture, sweep: &mut Sweep<'_>) {
    let wt = &fx.wt;
    let s = id_of(d.session_resp(&fx.tk, wt).ok(201));
    let run = |sweep: &mut Sweep<'_>, label: &str, path: &str, expect: Expect| {
        let body = json!({"session_id": s, "path": path}).to_string();
        sweep.run(
            &Case::new("POST", "/api/v1/executions/run-file".into(), label)
                .body(body)
                .expect(expect),
        );
    };

    // Run-file through a symlink swapped between requests.
    run(sweep, "swap -> ok.js", "swap", Expect::Success(201));
    swap_link(wt, "swap", "../outside/secret.js");
    run(
        sweep,
        "swap -> outside",
        "swap",
        Expect::Error(422, "INVALID_PATH"),
    );
    swap_link(wt, "swap", &fx.wt.join("ok.js").to_string_lossy());
    run(
        sweep,
        "swap -> absolute inside",
        "swap",
        Expect::Error(422, "INVALID_PATH"),
    );
    swap_link(wt, "swap", "dir");
    run(
        sweep,
        "swap -> dir",
        "swap",
        Expect::Error(422, "INVALID_PATH"),
    );
    swap_link(wt, "swap", "swap");
    run(sweep, "swap -> itself", "swap", Expect::Refused);
    swap_link(wt, "swap", "fifo");
    run(
        sweep,
        "swap -> fifo",
        "swap",
        Expect::Error(422, "INVALID_PATH"),
    );
    swap_link(wt, "swap", "ok.js");
    run(sweep, "swap -> ok.js again", "swap", Expect::Success(201));
    // A directory on the way swapped for a symlink out of the worktree.
    std::fs::create_dir_all(wt.join("swapdir")).unwrap();
    std::fs::write(wt.join("swapdir/secret.js"), "'inside'").unwrap();
    run(
        sweep,
        "swapdir real",
        "swapdir/secret.js",
        Expect::Success(201),
    );
    std::fs::rename(wt.join("swapdir"), wt.join("swapdir.old")).unwrap();
    symlink("../outside", wt.join("swapdir")).unwrap();
    run(
        sweep,
        "swapdir -> outside",
        "swapdir/secret.js",
        Expect::Error(422, "INVALID_PATH"),
    );
    std::fs::remove_file(wt.join("swapdir")).unwrap();
    std::fs::rename(wt.join("swapdir.old"), wt.join("swapdir")).unwrap();
    run(
        sweep,
        "swapdir back",
        "swapdir/secret.js",
        Expect::Success(201),
    );
    // Swapped while requests run: every answer is the inside file or a refusal, never the
    // outside file (`Sweep::run` checks no answer contains it).
    symlink("ok.js", wt.join("race")).unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let targets = ["../outside/secret.js", "ok.js", "dir_out/secret.js"];
            for target in targets.iter().cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                swap_link(wt, "race", target);
            }
        });
        for i in 0..100 {
            run(sweep, &format!("race {i}"), "race", Expect::Any);
        }
        stop.store(true, Ordering::Relaxed);
    });
    d.close(&s).ok(200);

    // Startup files that fail only when a session starts: never a 5xx, never a ready session.
    for path in [
        "out_link",
        "abs_out",
        "abs_in",
        "dangling",
        "loop",
        "dir",
        "fifo",
        "big.js",
        "dir_out/secret.js",
        "proc_link/etc/passwd",
        "dev_link",
        "ok.js/x",
        "missing.js",
        &"n".repeat(300),
        &"a/".repeat(3000),
        "a\\..\\..\\outside\\secret.js",
    ] {
        let t = d.template(&format!("bad-input-startup-{}", tests::daemon::uuid_ish()));
        d.add_startup(&t, path, 0);
        let body = json!({
            "template_id": t, "workspace_id": "ws", "base_commit_oid": "abc",
            "worktree_path": wt.to_str().unwrap(),
        });
        let r = sweep.run(
            &Case::new(
                "POST",
                "/api/v1/sessions".into(),
                format!("startup file {}", excerpt(path, 40)),
            )
            .body(body.to_string())
            .expect(Expect::Error(422, "STARTUP_FAILED")),
        );
        // A failed start leaves a crashed session: close it.
        if let Some(id) = r.as_ref().and_then(|r| r.details()["session_id"].as_str()) {
            d.close(id).ok(200);
        }
    }

    // A startup file swapped between restarts.
    let t = d.template("bad-input-startup-swap");
    d.add_startup(&t, "swap", 0);
    let s = id_of(d.session_resp(&t, wt).ok(201));
    let restart = |sweep: &mut Sweep<'_>, s: &str, label: &str, expect: Expect| {
        sweep
            .run(&Case::new("POST", format!("/api/v1/sessions/{s}/restart"), label).expect(expect));
    };
    swap_link(wt, "swap", "../outside/secret.js");
    restart(
        sweep,
        &s,
        "startup swap -> outside",
        Expect::Error(422, "STARTUP_FAILED"),
    );
    swap_link(wt, "swap", "loop");
    restart(
        sweep,
        &s,
        "startup swap -> loop",
        Expect::Error(422, "STARTUP_FAILED"),
    );
    swap_link(wt, "swap", "fifo");
    restart(
        sweep,
        &s,
        "startup swap -> fifo",
        Expect::Error(422, "STARTUP_FAILED"),
    );
    swap_link(wt, "swap", "ok.js");
    restart(sweep, &s, "startup swap -> ok.js", Expect::Success(200));
    d.close(&s).ok(200);

    // The worktree itself changes under a session; restart re-resolves it.
    let root = d.worktree("moving");
    std::fs::write(root.join("ok.js"), "1").unwrap();
    let s = id_of(d.session_resp(&fx.tk, &root).ok(201));
    let moved = root.with_file_name("moving.away");
    let invalid = Expect::Error(422, "INVALID_WORKTREE");
    std::fs::rename(&root, &moved).unwrap();
    restart(sweep, &s, "worktree gone", invalid);
    std::fs::write(&root, "a file now").unwrap();
    restart(sweep, &s, "worktree is a file", invalid);
    std::fs::remove_file(&root).unwrap();
    symlink("moving", &root).unwrap();
    restart(sweep, &s, "worktree is a symlink loop", invalid);
    std::fs::remove_file(&root).unwrap();
    symlink(&moved, &root).unwrap();
    restart(
        sweep,
        &s,
        "worktree is a symlink to the moved directory",
        Expect::Success(200),
    );
    std::fs::remove_file(&root).unwrap();
    std::fs::rename(&moved, &root).unwrap();
    restart(sweep, &s, "worktree back", Expect::Success(200));
    let body = json!({"session_id": s, "path": "ok.js"}).to_string();
    sweep.run(
        &Case::new(
            "POST",
            "/api/v1/executions/run-file".into(),
            "run-file after the moves",
        )
        .body(body)
        .expect(Expect::Success(201)),
    );
    d.close(&s).ok(200);
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP.

/// Writes `request` on a new connection and reads until the daemon closes it (every request
/// says `Connection: close`). With `half_close`, the write side is shut after the request, as a
/// client that gives up on its body does. `Ok(None)`: closed without an answer.
fn raw_exchange(addr: &str, request: &[u8], half_close: bool) -> Result<Option<Resp>, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    // The daemon may answer and close before it has read everything.
    let _ = stream.write_all(request);
    if half_close {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    if let Err(e) = stream.read_to_end(&mut out)
        && matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    {
        return Err(format!("no answer within {TIMEOUT:?}"));
    }
    Ok(parse_raw(&out))
}

/// Parses an HTTP/1.1 answer (content-length or chunked body).
fn parse_raw(bytes: &[u8]) -> Option<Resp> {
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = body.as_slice();
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16)
                .unwrap_or(0);
            if size == 0 || rest.len() < eol + 2 + size {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[(eol + 4 + size).min(rest.len())..];
        }
        body = out;
    }
    let text = String::from_utf8_lossy(&body).to_string();
    Some(Resp {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    })
}

/// How a raw request is judged.
#[derive(Clone, Copy)]
enum Raw {
    /// Refused by the HTTP parser, or cut short by the client: the parser answers on its own (a
    /// 4xx without the envelope) or closes; only a 5xx is a violation.
    Parser,
    /// Reaches the routes: every rule applies, and there must be an answer.
    Routed(Expect),
}

/// Requests a client library will not send: raw bytes in the request line, broken framing,
/// chunked bodies, a body that stops early, and a connection that never sends its body.
fn raw_http(d: &TestDaemon, sweep: &mut Sweep<'_>) {
    let host = format!("Host: {}\r\nConnection: close\r\n", d.addr);
    let post = |headers: &str, body: &str| {
        format!("POST /api/v1/templates HTTP/1.1\r\n{host}{headers}\r\n{body}").into_bytes()
    };
    let chunked = |chunks: &[String]| {
        let mut body: String = chunks
            .iter()
            .map(|c| format!("{:x}\r\n{c}\r\n", c.len()))
            .collect();
        body.push_str("0\r\n\r\n");
        post("Transfer-Encoding: chunked\r\n", &body)
    };
    let big_chunks: Vec<String> = std::iter::once("{".to_string())
        .chain(std::iter::repeat_n(" ".repeat(64 * 1024), 32))
        .collect();
    let over = format!("{{\"name\": \"x\"{}}}", " ".repeat(5 * LIMIT));
    // (label, request, half-close after writing, judgement)
    let cases: Vec<(&str, Vec<u8>, bool, Raw)> = vec![
        (
            "raw NUL in the path",
            format!("GET /api/v1/templates/\0 HTTP/1.1\r\n{host}\r\n").into_bytes(),
            false,
            Raw::Parser,
        ),
        (
            "raw space in the path",
            format!("GET /api/v1/templates/a b HTTP/1.1\r\n{host}\r\n").into_bytes(),
            false,
            Raw::Parser,
        ),
        (
            "raw 0xFF in the path",
            [
                b"GET /api/v1/templates/\xff HTTP/1.1\r\n".as_slice(),
                host.as_bytes(),
                b"\r\n",
            ]
            .concat(),
            false,
            Raw::Parser,
        ),
        (
            "70k-character path",
            format!(
                "GET /api/v1/templates/{} HTTP/1.1\r\n{host}\r\n",
                "a".repeat(70_000)
            )
            .into_bytes(),
            false,
            Raw::Parser,
        ),
        (
            "600 KB header",
            format!(
                "GET /api/v1/health HTTP/1.1\r\n{host}X-Big: {}\r\n\r\n",
                "h".repeat(600_000)
            )
            .into_bytes(),
            false,
            Raw::Parser,
        ),
        (
            "Content-Length not a number",
            post("Content-Length: abc\r\n", "{}"),
            false,
            Raw::Parser,
        ),
        (
            "two different Content-Lengths",
            post("Content-Length: 2\r\nContent-Length: 3\r\n", "{} "),
            false,
            Raw::Parser,
        ),
        (
            "Content-Length beyond u64",
            post("Content-Length: 99999999999999999999999\r\n", ""),
            false,
            Raw::Parser,
        ),
        ("not HTTP", b"HELLO\r\n\r\n".to_vec(), false, Raw::Parser),
        (
            "HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            false,
            Raw::Parser,
        ),
        (
            "invalid chunk size",
            post("Transfer-Encoding: chunked\r\n", "zz\r\n{}\r\n0\r\n\r\n"),
            false,
            Raw::Parser,
        ),
        (
            "body shorter than its Content-Length, then half-closed",
            post("Content-Length: 50\r\n", "{\"name\""),
            true,
            Raw::Parser,
        ),
        (
            "Content-Length over 1 MiB, no body, half-closed",
            post("Content-Length: 5000000\r\n", ""),
            true,
            Raw::Parser,
        ),
        (
            "5 MiB body without Expect",
            post(&format!("Content-Length: {}\r\n", over.len()), &over),
            false,
            Raw::Routed(TOO_LARGE),
        ),
        (
            "small chunked body",
            chunked(&["{\"name\": ".into(), "\"chunked-body\"}".into()]),
            false,
            Raw::Routed(Expect::Success(201)),
        ),
        (
            "chunked body over 1 MiB",
            chunked(&big_chunks),
            false,
            Raw::Routed(TOO_LARGE),
        ),
        (
            "chunked body that is not JSON",
            chunked(&["\0\u{1}".into(), "[[[[".into()]),
            false,
            Raw::Routed(INVALID),
        ),
        (
            "GET with a raw NUL body",
            format!("GET /api/v1/health HTTP/1.1\r\n{host}Content-Length: 3\r\n\r\n\0\0\0")
                .into_bytes(),
            false,
            Raw::Routed(Expect::Success(200)),
        ),
    ];
    for (label, request, half_close, judgement) in cases {
        sweep.sent += 1;
        let answer = raw_exchange(&d.addr, &request, half_close);
        let outcome = match &answer {
            Ok(Some(r)) if r.status >= 400 && r.code().is_empty() => {
                format!("{} without an envelope", r.status)
            }
            Ok(Some(r)) => format!("{} {}", r.status, r.code()).trim_end().to_string(),
            Ok(None) => "closed".into(),
            Err(e) => e.clone(),
        };
        *sweep
            .outcomes
            .entry(format!("[{label}] {outcome}"))
            .or_default() += 1;
        let problem = match (answer, judgement) {
            (Err(e), _) => Some(e),
            (Ok(None), Raw::Parser) => None,
            (Ok(None), Raw::Routed(_)) => Some("closed without an answer".into()),
            (Ok(Some(r)), Raw::Parser) => (r.status >= 500).then(|| format!("status {}", r.status)),
            (Ok(Some(r)), Raw::Routed(expect)) => {
                judge(&r, expect).map(|p| format!("{p}; body {}", excerpt(&r.text, 200)))
            }
        };
        if let Some(problem) = problem {
            sweep.violation(format!("raw HTTP [{label}]: {problem}"));
        }
    }

    // A connection whose body never arrives does not hold up other requests.
    let mut stalled = TcpStream::connect(&d.addr).unwrap();
    stalled
        .write_all(&post("Content-Length: 100\r\n", "{\"na"))
        .unwrap();
    sweep.run(
        &Case::new(
            "GET",
            "/api/v1/health".into(),
            "health beside a stalled body",
        )
        .expect(Expect::Success(200)),
    );
    drop(stalled);
}
