//! REST conventions of the API (spec §1, §2, §10.5): routing, methods, request ids, strict JSON,
//! body size, ids, query strings, timestamps, content types and bearer authentication.
//!
//! The small helpers at the top are shared with `api_templates` and `api_ops`.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tests::daemon::{Resp, TestDaemon, db_path, library_dir};

/// A well-formed id that no daemon ever generated (the spec's example template id).
pub(crate) const UNKNOWN_ID: &str = "6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10";

/// The sorted keys of a JSON object.
pub(crate) fn keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// Asserts that `v` is an object with exactly these keys.
#[track_caller]
pub(crate) fn assert_keys(v: &Value, expected: &[&str], ctx: &str) {
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(keys(v), expected, "{ctx}: keys of {v}");
}

/// `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`.
pub(crate) fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            14 => *c == b'4',
            19 => matches!(c, b'8' | b'9' | b'a' | b'b'),
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

/// `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`.
pub(crate) fn is_timestamp(s: &str) -> bool {
    let pattern = "dddd-dd-ddTdd:dd:dd.dddZ";
    s.len() == pattern.len()
        && s.bytes().zip(pattern.bytes()).all(|(c, p)| {
            if p == b'd' {
                c.is_ascii_digit()
            } else {
                c == p
            }
        })
}

/// Asserts `v[field]` is a timestamp of the spec's format.
#[track_caller]
pub(crate) fn assert_ts(v: &Value, field: &str, ctx: &str) {
    let s = v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{ctx}: {field} is not a string in {v}"));
    assert!(
        is_timestamp(s),
        "{ctx}: {field} = {s:?} is not a millisecond UTC timestamp"
    );
}

/// Asserts a JSON response's content type.
#[track_caller]
pub(crate) fn assert_json_ct(r: &Resp, ctx: &str) {
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{ctx}: content type; body {}",
        r.text
    );
}

/// Asserts an error envelope (§2) with this status and code, and returns `details`.
#[track_caller]
pub(crate) fn expect_err(r: &Resp, status: u16, code: &str, ctx: &str) -> Value {
    assert_eq!(
        (r.status, r.code()),
        (status, code),
        "{ctx}: body {}",
        r.text
    );
    assert_json_ct(r, ctx);
    assert_keys(&r.body, &["error"], ctx);
    let error = &r.body["error"];
    assert_keys(error, &["code", "details", "message", "request_id"], ctx);
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{ctx}: message must be a non-empty string: {}",
        r.text
    );
    assert!(
        error["details"].is_object(),
        "{ctx}: details must be an object: {}",
        r.text
    );
    let header = r.header("x-request-id");
    assert!(header.is_some(), "{ctx}: no X-Request-Id on an error");
    assert_eq!(
        error["request_id"].as_str(),
        header,
        "{ctx}: request_id must equal the header"
    );
    error["details"].clone()
}

/// Asserts `400 VALIDATION_ERROR` with `details == {"field": field}`.
#[track_caller]
pub(crate) fn expect_field(r: &Resp, field: &str, ctx: &str) {
    let details = expect_err(r, 400, "VALIDATION_ERROR", ctx);
    assert_eq!(details, json!({ "field": field }), "{ctx}");
}

/// Asserts `400 INVALID_REQUEST` with empty details.
#[track_caller]
pub(crate) fn expect_invalid(r: &Resp, ctx: &str) {
    let details = expect_err(r, 400, "INVALID_REQUEST", ctx);
    assert_eq!(details, json!({}), "{ctx}");
}

/// Asserts a successful JSON response and returns its body.
#[track_caller]
pub(crate) fn expect_ok(r: &Resp, status: u16, ctx: &str) -> Value {
    assert_eq!(r.status, status, "{ctx}: body {}", r.text);
    assert_json_ct(r, ctx);
    assert!(r.header("x-request-id").is_some(), "{ctx}: no X-Request-Id");
    r.body.clone()
}

/// Comma-separated header values as a set.
fn header_set(r: &Resp, name: &str) -> BTreeSet<String> {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} header; body {}", r.text))
        .split(',')
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn unknown_routes_are_404_with_method_and_raw_path() {
    let d = TestDaemon::start();
    let u = UNKNOWN_ID;
    // (method, path sent, details.path expected)
    let cases: Vec<(&str, String, String)> = vec![
        ("GET", "/".into(), "/".into()),
        ("GET", "/foo".into(), "/foo".into()),
        ("DELETE", "/foo/bar".into(), "/foo/bar".into()),
        ("GET", "/health".into(), "/health".into()),
        ("GET", "/api".into(), "/api".into()),
        ("GET", "/api/v1".into(), "/api/v1".into()),
        ("GET", "/api/v1/".into(), "/api/v1/".into()),
        ("GET", "/api/v2/health".into(), "/api/v2/health".into()),
        ("GET", "/api/v1nope".into(), "/api/v1nope".into()),
        // No trailing-slash or case folding.
        ("GET", "/api/v1/health/".into(), "/api/v1/health/".into()),
        ("GET", "/api/v1/Health".into(), "/api/v1/Health".into()),
        ("GET", "/API/v1/health".into(), "/API/v1/health".into()),
        ("GET", "/api/V1/health".into(), "/api/V1/health".into()),
        (
            "GET",
            "/api/v1/TEMPLATES".into(),
            "/api/v1/TEMPLATES".into(),
        ),
        ("GET", "/api/v1//health".into(), "/api/v1//health".into()),
        ("GET", "//api/v1/health".into(), "//api/v1/health".into()),
        // The path is reported as received: still encoded, without the query.
        ("GET", "/api/v1/nope?x=1&y=2".into(), "/api/v1/nope".into()),
        ("POST", "/api/v1/n%6Fpe".into(), "/api/v1/n%6Fpe".into()),
        (
            "GET",
            "/api/v1/caf%C3%A9".into(),
            "/api/v1/caf%C3%A9".into(),
        ),
        // `%2F` stays inside its segment.
        (
            "GET",
            "/api/v1/templates%2Fx".into(),
            "/api/v1/templates%2Fx".into(),
        ),
        (
            "GET",
            "/api/v1/catalog%2Fmodules".into(),
            "/api/v1/catalog%2Fmodules".into(),
        ),
        (
            "GET",
            "/api/v1/health%2F".into(),
            "/api/v1/health%2F".into(),
        ),
        // Malformed escapes and invalid UTF-8 never match, even where any segment would.
        ("GET", "/api/v1/%zz".into(), "/api/v1/%zz".into()),
        ("GET", "/api/v1/health%".into(), "/api/v1/health%".into()),
        (
            "GET",
            "/api/v1/templates/%zz".into(),
            "/api/v1/templates/%zz".into(),
        ),
        (
            "GET",
            "/api/v1/templates/%4".into(),
            "/api/v1/templates/%4".into(),
        ),
        (
            "GET",
            "/api/v1/templates/%FF".into(),
            "/api/v1/templates/%FF".into(),
        ),
        (
            "DELETE",
            "/api/v1/templates/%C3%28".into(),
            "/api/v1/templates/%C3%28".into(),
        ),
        // Deeper than any route.
        (
            "GET",
            format!("/api/v1/templates/{u}/nope"),
            format!("/api/v1/templates/{u}/nope"),
        ),
        (
            "POST",
            "/api/v1/templates/x/y/z".into(),
            "/api/v1/templates/x/y/z".into(),
        ),
        (
            "GET",
            format!("/api/v1/sessions/{u}/close/x"),
            format!("/api/v1/sessions/{u}/close/x"),
        ),
    ];
    for (method, path, expected) in &cases {
        let ctx = format!("{method} {path}");
        let r = d.request(method, path, None, &[]);
        let details = expect_err(&r, 404, "ROUTE_NOT_FOUND", &ctx);
        assert_eq!(
            details,
            json!({ "method": method, "path": expected }),
            "{ctx}"
        );
    }

    // HEAD of an unknown route is a 404 too (no body).
    let r = d.request("HEAD", "/api/v1/nope", None, &[]);
    assert_eq!(r.status, 404, "HEAD /api/v1/nope");
}

#[test]
fn segments_are_percent_decoded_one_by_one() {
    let d = TestDaemon::start();
    let health = json!({"status": "ok", "version": "1.0.0", "engine": "quickjs"});
    for path in [
        "/api/v1/%68ealth",
        "/api/v1/h%65alth",
        "/api/v1/HEALTH",
        "/api/v1/%68%65%61%6c%74%68",
    ] {
        let r = d.request("GET", path, None, &[]);
        if path == "/api/v1/HEALTH" {
            expect_err(&r, 404, "ROUTE_NOT_FOUND", path);
        } else {
            assert_eq!(expect_ok(&r, 200, path), health, "{path}");
        }
    }

    let id = d.template("decoded");
    let encoded_id = id.replace('-', "%2D");
    let upper_id = id.to_uppercase();
    for path in [
        format!("/api/v1/templates/{encoded_id}"),
        format!("/api/v1/templates/{upper_id}"),
    ] {
        let r = d.request("GET", &path, None, &[]);
        let body = expect_ok(&r, 200, &path);
        assert_eq!(body["template"]["id"], json!(id), "{path}");
    }

    // A decoded segment that is not an id is a validation error of that path parameter.
    let cases = [
        ("/api/v1/templates/a%2Fb", "template_id"),
        ("/api/v1/templates/%2e%2e", "template_id"),
        ("/api/v1/templates/a%20b", "template_id"),
        ("/api/v1/sessions/a%2Fb", "session_id"),
        ("/api/v1/executions/x%2Fy", "execution_id"),
    ];
    for (path, field) in cases {
        let r = d.request("GET", path, None, &[]);
        expect_field(&r, field, path);
    }
}

#[test]
fn wrong_method_is_405_with_allow_header() {
    let d = TestDaemon::start();
    let u = UNKNOWN_ID;
    let get = &["GET", "HEAD"][..];
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("PUT", "/api/v1/health".into(), get),
        ("POST", "/api/v1/health".into(), get),
        ("DELETE", "/api/v1/runtime/summary".into(), get),
        ("POST", "/api/v1/metrics".into(), get),
        ("POST", "/api/v1/catalog/modules".into(), get),
        ("PATCH", "/api/v1/catalog/libraries".into(), get),
        (
            "DELETE",
            "/api/v1/templates".into(),
            &["GET", "HEAD", "POST"],
        ),
        (
            "OPTIONS",
            "/api/v1/templates".into(),
            &["GET", "HEAD", "POST"],
        ),
        (
            "PUT",
            format!("/api/v1/templates/{u}"),
            &["GET", "HEAD", "DELETE"],
        ),
        // Route and method come before validation of the id.
        (
            "PUT",
            "/api/v1/templates/not-a-uuid".into(),
            &["GET", "HEAD", "DELETE"],
        ),
        (
            "POST",
            format!("/api/v1/templates/{u}/settings"),
            &["GET", "HEAD", "PATCH"],
        ),
        (
            "PATCH",
            format!("/api/v1/templates/{u}/capabilities"),
            &["GET", "HEAD", "POST"],
        ),
        (
            "GET",
            format!("/api/v1/templates/{u}/capabilities/{u}"),
            &["DELETE"],
        ),
        (
            "DELETE",
            format!("/api/v1/templates/{u}/startup-files"),
            &["GET", "HEAD", "POST"],
        ),
        (
            "GET",
            format!("/api/v1/templates/{u}/startup-files/{u}"),
            &["DELETE"],
        ),
        (
            "PUT",
            format!("/api/v1/templates/{u}/modules"),
            &["GET", "HEAD", "POST"],
        ),
        (
            "GET",
            format!("/api/v1/templates/{u}/modules/fs"),
            &["DELETE"],
        ),
        (
            "PATCH",
            format!("/api/v1/templates/{u}/libraries"),
            &["GET", "HEAD", "POST"],
        ),
        (
            "POST",
            format!("/api/v1/templates/{u}/libraries/lodash"),
            &["DELETE"],
        ),
        (
            "DELETE",
            "/api/v1/sessions".into(),
            &["GET", "HEAD", "POST"],
        ),
        (
            "PATCH",
            format!("/api/v1/sessions/{u}"),
            &["GET", "HEAD", "DELETE"],
        ),
        ("GET", format!("/api/v1/sessions/{u}/close"), &["POST"]),
        ("DELETE", format!("/api/v1/sessions/{u}/restart"), &["POST"]),
        ("POST", "/api/v1/executions".into(), &["GET", "HEAD"]),
        (
            "DELETE",
            format!("/api/v1/executions/{u}"),
            &["GET", "HEAD"],
        ),
        (
            "POST",
            format!("/api/v1/executions/{u}/events"),
            &["GET", "HEAD"],
        ),
        ("GET", format!("/api/v1/executions/{u}/cancel"), &["POST"]),
        // Last: a missing route here would hide the rows above.
        ("PUT", "/api/v1/openapi.json".into(), get),
    ];
    // HEAD on a POST-only route is a 405 as well.
    let r = d.request("HEAD", &format!("/api/v1/sessions/{u}/close"), None, &[]);
    assert_eq!(r.status, 405, "HEAD on a POST-only route");
    assert_eq!(
        header_set(&r, "allow"),
        set(&["POST"]),
        "HEAD on a POST-only route"
    );

    for (method, path, allowed) in &cases {
        let ctx = format!("{method} {path}");
        let r = d.request(method, path, None, &[]);
        let details = expect_err(&r, 405, "METHOD_NOT_ALLOWED", &ctx);
        assert_keys(&details, &["allowed", "method", "path"], &ctx);
        assert_eq!(details["method"], json!(method), "{ctx}");
        assert_eq!(details["path"], json!(path), "{ctx}");
        let listed: BTreeSet<String> = details["allowed"]
            .as_array()
            .unwrap_or_else(|| panic!("{ctx}: allowed is not an array"))
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect();
        assert_eq!(listed, set(allowed), "{ctx}: details.allowed");
        assert_eq!(header_set(&r, "allow"), set(allowed), "{ctx}: Allow header");
    }
}

#[test]
fn head_is_accepted_wherever_get_is() {
    let d = TestDaemon::start();
    let t = d.template("head");
    let u = UNKNOWN_ID;
    let paths = [
        "/health".to_string(),
        "/runtime/summary".into(),
        "/metrics".into(),
        "/catalog/modules".into(),
        "/catalog/libraries".into(),
        "/openapi.json".into(),
        "/templates".into(),
        format!("/templates/{t}"),
        format!("/templates/{t}/settings"),
        format!("/templates/{t}/capabilities"),
        format!("/templates/{t}/startup-files"),
        format!("/templates/{t}/modules"),
        format!("/templates/{t}/libraries"),
        format!("/templates/{u}"),
        "/sessions".into(),
        "/sessions?status=ready".into(),
        format!("/sessions/{u}"),
        format!("/executions?session_id={u}"),
        format!("/executions/{u}"),
        format!("/executions/{u}/events"),
    ];
    for path in &paths {
        let full = format!("/api/v1{path}");
        let get = d.request("GET", &full, None, &[]);
        let head = d.request("HEAD", &full, None, &[]);
        assert_eq!(
            head.status, get.status,
            "HEAD {full}: GET gave {}",
            get.text
        );
        assert!(
            head.text.is_empty(),
            "HEAD {full} has a body: {:?}",
            head.text
        );
        assert!(
            head.header("x-request-id").is_some(),
            "HEAD {full}: no X-Request-Id"
        );
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "HEAD {full}: content type"
        );
    }
}

#[test]
fn request_id_is_echoed_or_replaced() {
    let d = TestDaemon::start();
    let visible: String = (0x21u8..=0x7e).map(char::from).collect();
    let long_ok = "a".repeat(128);
    let too_long = "a".repeat(129);
    // (incoming value, echoed?)
    let cases: Vec<(Option<&str>, bool)> = vec![
        (Some("abc"), true),
        (Some("x"), true),
        (Some(&long_ok), true),
        (Some(&visible), true),
        (Some("9d1c6a52-3f0e-4b8e-a1c7-2d4e6f8a0b13"), true),
        (Some("req:42/retry#1"), true),
        (Some(&too_long), false),
        (Some("a b"), false),
        (Some("a\tb"), false),
        (Some(""), false),
        (None, false),
    ];
    // Each case on a success, on an error from routing, and on an error from decoding.
    let requests: [(&str, &str, Option<&str>); 3] = [
        ("GET", "/api/v1/health", None),
        ("GET", "/api/v1/nope", None),
        ("POST", "/api/v1/templates", Some("{")),
    ];
    let mut generated = BTreeSet::new();
    for (incoming, echoed) in &cases {
        for (method, path, body) in requests {
            let ctx = format!("{method} {path} with X-Request-Id {incoming:?}");
            let headers: Vec<(&str, &str)> =
                incoming.map(|v| ("X-Request-Id", v)).into_iter().collect();
            let r = d.request(method, path, body, &headers);
            let id = r
                .header("x-request-id")
                .unwrap_or_else(|| panic!("{ctx}: no X-Request-Id"))
                .to_string();
            if *echoed {
                assert_eq!(Some(id.as_str()), *incoming, "{ctx}: must be echoed");
            } else {
                assert!(is_uuid_v4(&id), "{ctx}: {id:?} is not a new UUIDv4");
                assert!(
                    generated.insert(id.clone()),
                    "{ctx}: generated id {id} reused"
                );
            }
            if r.status >= 400 {
                assert_eq!(
                    r.body["error"]["request_id"],
                    json!(id),
                    "{ctx}: error.request_id"
                );
            }
        }
    }
}

/// A connection that sends no request, stops halfway through its headers (closed after the
/// 30-s header timeout) or stops halfway through its body (`400` after 30 s without a byte) is not
/// held for ever; without a token the `401` does not wait for the body (2 s at most).
#[test]
fn stalled_connections_are_closed() {
    use std::io::Write as _;
    let d = TestDaemon::start();
    let tmp = tempfile::tempdir().unwrap();
    let locked = TestDaemon::start_with(&["--auth-token-file", &token_file(tmp.path(), "s3cret")]);
    let open = |d: &TestDaemon, bytes: &[u8]| {
        let mut stream = std::net::TcpStream::connect(&d.addr).unwrap();
        stream.write_all(bytes).unwrap();
        stream
    };
    let half_body = b"POST /api/v1/templates HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{";
    let streams = [
        ("silent", open(&d, b""), None),
        (
            "half a header",
            open(&d, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n"),
            None,
        ),
        ("half a body", open(&d, half_body), Some("HTTP/1.1 400")),
        (
            "half a body, no token",
            open(&locked, half_body),
            Some("HTTP/1.1 401"),
        ),
    ];
    d.get("/health").ok(200);
    for (what, mut stream, answer) in streams {
        stream
            .set_read_timeout(Some(Duration::from_secs(90)))
            .unwrap();
        let mut got = Vec::new();
        match stream.read_to_end(&mut got) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("{what}: the connection was not closed: {e}"),
        }
        let text = String::from_utf8_lossy(&got);
        match answer {
            Some(status) => assert!(text.starts_with(status), "{what}: {text}"),
            None => assert!(
                got.is_empty() || text.starts_with("HTTP/1.1 408"),
                "{what}: {text}"
            ),
        }
    }
    d.get("/health").ok(200);
}

#[test]
fn json_bodies_are_decoded_strictly() {
    let d = TestDaemon::start();
    // POST /templates: (body, expected). Ok(()) → 201; Err(None) → INVALID_REQUEST;
    // Err(Some(field)) → VALIDATION_ERROR on that field.
    let cases: &[(&str, Result<(), Option<&str>>)] = &[
        ("", Err(None)),
        ("   ", Err(None)),
        ("{", Err(None)),
        ("{\"name\": \"x\",}", Err(None)),
        ("{'name': 'x'}", Err(None)),
        ("[]", Err(None)),
        ("[{\"name\": \"arr\"}]", Err(None)),
        ("\"name\"", Err(None)),
        ("42", Err(None)),
        ("null", Err(None)),
        ("true", Err(None)),
        ("{\"name\": \"a\", \"foo\": 1}", Err(None)),
        ("{\"Name\": \"a\"}", Err(None)),
        ("{\"name\": \"a\", \"Engine\": \"quickjs\"}", Err(None)),
        ("{\"name\": \"a\", \"name\": \"b\"}", Err(None)),
        ("{\"name\": \"a\", \"n\\u0061me\": \"b\"}", Err(None)),
        ("{\"name\": \"a\"} x", Err(None)),
        ("{\"name\": \"a\"}{}", Err(None)),
        ("{\"name\": \"a\"},", Err(None)),
        ("{\"name\": null}", Err(None)),
        ("{\"name\": 5}", Err(None)),
        ("{\"name\": [\"a\"]}", Err(None)),
        ("{\"name\": {}}", Err(None)),
        ("{\"name\": true}", Err(None)),
        ("{\"name\": \"a\", \"engine\": null}", Err(None)),
        ("{\"name\": \"a\", \"engine\": 1}", Err(None)),
        // Decoding comes before validation.
        ("{\"foo\": 1}", Err(None)),
        ("{}", Err(Some("name"))),
        ("{\"engine\": \"quickjs\"}", Err(Some("name"))),
        ("{\"name\": \"\"}", Err(Some("name"))),
        ("{\"name\": \"  \\t\\n \"}", Err(Some("name"))),
        (
            "{\"name\": \"ok-engine-blank\", \"engine\": \" \"}",
            Err(Some("engine")),
        ),
        // Whitespace around the object is fine, and so is any Content-Type.
        (" \n {\"name\": \"ws\"} \r\n\t ", Ok(())),
        ("{\"name\":\"compact\",\"engine\":\"quickjs\"}", Ok(())),
        ("{\"name\": \"caf\\u00e9\"}", Ok(())),
    ];
    for (body, expected) in cases {
        let ctx = format!("POST /templates {body:?}");
        let r = d.post_raw("/templates", body);
        match expected {
            Ok(()) => {
                expect_ok(&r, 201, &ctx);
            }
            Err(None) => expect_invalid(&r, &ctx),
            Err(Some(field)) => expect_field(&r, field, &ctx),
        }
    }
    let r = d.request(
        "POST",
        "/api/v1/templates",
        Some("{\"name\": \"ct\"}"),
        &[("Content-Type", "text/plain")],
    );
    expect_ok(&r, 201, "Content-Type is not inspected");

    // PATCH settings: integers.
    let t = d.template("strict-settings");
    let before = d.get(&format!("/templates/{t}/settings")).ok(200).clone();
    let cases: &[(&str, Option<&str>)] = &[
        ("{\"limits\": {\"wall_ms\": 5.0}}", None),
        ("{\"limits\": {\"wall_ms\": 5.5}}", None),
        ("{\"limits\": {\"wall_ms\": 1e3}}", None),
        ("{\"limits\": {\"wall_ms\": 1E3}}", None),
        ("{\"limits\": {\"wall_ms\": 1000e0}}", None),
        ("{\"limits\": {\"wall_ms\": \"5000\"}}", None),
        ("{\"limits\": {\"wall_ms\": null}}", None),
        ("{\"limits\": {\"wall_ms\": true}}", None),
        ("{\"limits\": {\"wall_ms\": 9223372036854775808}}", None),
        ("{\"limits\": {\"wall_ms\": -9223372036854775809}}", None),
        ("{\"limits\": {\"wall_ms\": 99999999999999999999999}}", None),
        ("{\"limits\": {\"wall_ms\": 1, \"wall_ms\": 2}}", None),
        ("{\"limits\": {\"Wall_ms\": 1000}}", None),
        ("{\"limits\": {\"wall\": 1000}}", None),
        ("{\"limits\": null}", None),
        ("{\"limits\": []}", None),
        ("{\"limits\": {}, \"limits\": {}}", None),
        ("{\"Limits\": {}}", None),
        ("{\"runtime\": {\"strict\": \"true\"}}", None),
        ("{\"runtime\": {\"strict\": 1}}", None),
        ("{\"resolver\": {\"roots\": null}}", None),
        ("{\"resolver\": {\"roots\": [1]}}", None),
        ("{\"resolver\": {\"extensions\": \".js\"}}", None),
        // A type error anywhere wins over a range error elsewhere.
        ("{\"limits\": {\"wall_ms\": 0, \"cpu_ms\": \"x\"}}", None),
        (
            "{\"limits\": {\"wall_ms\": 9223372036854775807}}",
            Some("limits.wall_ms"),
        ),
        (
            "{\"limits\": {\"wall_ms\": -9223372036854775808}}",
            Some("limits.wall_ms"),
        ),
        ("{\"limits\": {\"wall_ms\": 0}}", Some("limits.wall_ms")),
        ("{\"limits\": {\"wall_ms\": -1}}", Some("limits.wall_ms")),
        (
            "{\"limits\": {\"wall_ms\": 3600001}}",
            Some("limits.wall_ms"),
        ),
    ];
    for (body, field) in cases {
        let ctx = format!("PATCH settings {body:?}");
        let r = d.request(
            "PATCH",
            &format!("/api/v1/templates/{t}/settings"),
            Some(body),
            &[],
        );
        match field {
            None => expect_invalid(&r, &ctx),
            Some(field) => expect_field(&r, field, &ctx),
        }
    }
    let after = d.get(&format!("/templates/{t}/settings")).ok(200).clone();
    assert_eq!(after, before, "failed PATCHes must change nothing");
}

#[test]
fn bodies_over_one_mib_are_rejected() {
    let d = TestDaemon::start();
    const LIMIT: usize = 1 << 20;
    let padded = |total: usize| {
        let head = "{\"name\": \"big\"";
        format!("{head}{}}}", " ".repeat(total - head.len() - 1))
    };

    let exact = padded(LIMIT);
    assert_eq!(exact.len(), LIMIT);
    let r = d.post_raw("/templates", &exact);
    expect_ok(&r, 201, "a body of exactly 1 MiB");

    // Endpoints documented without a body ignore its content.
    let r = d.post_raw(&format!("/sessions/{UNKNOWN_ID}/close"), "not json at all");
    let details = expect_err(&r, 404, "SESSION_NOT_FOUND", "close ignores its body");
    assert_eq!(details, json!({ "session_id": UNKNOWN_ID }));
    let r = d.request(
        "DELETE",
        &format!("/api/v1/templates/{UNKNOWN_ID}"),
        Some("{"),
        &[],
    );
    expect_err(&r, 404, "TEMPLATE_NOT_FOUND", "delete ignores its body");

    // Over the limit. `Expect: 100-continue` lets the client read the early 413 before it
    // writes the body (the daemon does not read a refused body, and closes the connection).
    let expect = [("Expect", "100-continue")];
    let over = padded(LIMIT + 1);
    let r = d.request("POST", "/api/v1/templates", Some(&over), &expect);
    let details = expect_err(&r, 413, "PAYLOAD_TOO_LARGE", "1 MiB + 1 byte");
    assert_eq!(details, json!({ "limit_bytes": 1_048_576 }));

    // Every request, also one whose endpoint takes no body; size comes before lookup.
    let junk = "x".repeat(LIMIT + 1);
    let r = d.request(
        "POST",
        &format!("/api/v1/sessions/{UNKNOWN_ID}/close"),
        Some(&junk),
        &expect,
    );
    let details = expect_err(&r, 413, "PAYLOAD_TOO_LARGE", "close with a big body");
    assert_eq!(details, json!({ "limit_bytes": 1_048_576 }));
}

#[test]
fn ids_are_validated_before_lookup() {
    let d = TestDaemon::start();
    let t = d.template("ids");
    let u = UNKNOWN_ID;
    let malformed = [
        "%7B6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10%7D",
        "urn:uuid:6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10",
        "6f1d8c1e2b7a4c519a513f3b1a2c9d10",
        "%206f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10",
        "6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10%20",
        "6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d1",
        "6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d100",
        "6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d1g",
        "6f1d8c1e2-b7a-4c51-9a51-3f3b1a2c9d10",
        "6f1d8c1e_2b7a_4c51_9a51_3f3b1a2c9d10",
        "not-a-uuid",
        "1",
    ];
    for bad in malformed {
        // (method, path, field)
        let cases = [
            ("GET", format!("/api/v1/templates/{bad}"), "template_id"),
            ("DELETE", format!("/api/v1/templates/{bad}"), "template_id"),
            (
                "GET",
                format!("/api/v1/templates/{bad}/settings"),
                "template_id",
            ),
            (
                "GET",
                format!("/api/v1/templates/{bad}/capabilities"),
                "template_id",
            ),
            (
                "DELETE",
                format!("/api/v1/templates/{t}/capabilities/{bad}"),
                "capability_id",
            ),
            // Validation before lookup: the unknown template is not reported.
            (
                "DELETE",
                format!("/api/v1/templates/{u}/capabilities/{bad}"),
                "capability_id",
            ),
            (
                "DELETE",
                format!("/api/v1/templates/{t}/startup-files/{bad}"),
                "startup_file_id",
            ),
            ("GET", format!("/api/v1/sessions/{bad}"), "session_id"),
            (
                "POST",
                format!("/api/v1/sessions/{bad}/close"),
                "session_id",
            ),
            (
                "POST",
                format!("/api/v1/sessions/{bad}/restart"),
                "session_id",
            ),
            ("DELETE", format!("/api/v1/sessions/{bad}"), "session_id"),
            ("GET", format!("/api/v1/executions/{bad}"), "execution_id"),
            (
                "GET",
                format!("/api/v1/executions/{bad}/events"),
                "execution_id",
            ),
            (
                "POST",
                format!("/api/v1/executions/{bad}/cancel"),
                "execution_id",
            ),
            (
                "GET",
                format!("/api/v1/executions?session_id={bad}"),
                "session_id",
            ),
        ];
        for (method, path, field) in cases {
            let ctx = format!("{method} {path}");
            let r = d.request(method, &path, None, &[]);
            expect_field(&r, field, &ctx);
        }
    }

    // Ids in bodies are checked the same way (decoded, so braces and spaces are literal here).
    let wt = d.worktree("ids");
    for bad in [
        "{6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10}",
        "urn:uuid:6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10",
        "6f1d8c1e2b7a4c519a513f3b1a2c9d10",
        " 6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10",
        "",
    ] {
        let body = json!({
            "template_id": bad, "workspace_id": "ws", "base_commit_oid": "abc",
            "worktree_path": wt.to_str().unwrap(),
        });
        expect_field(
            &d.post("/sessions", body),
            "template_id",
            &format!("POST /sessions template_id {bad:?}"),
        );
        let r = d.post("/executions/repl", json!({"session_id": bad, "input": "1"}));
        expect_field(
            &r,
            "session_id",
            &format!("POST /executions/repl session_id {bad:?}"),
        );
        let r = d.post(
            "/executions/run-file",
            json!({"session_id": bad, "path": "a.js"}),
        );
        expect_field(
            &r,
            "session_id",
            &format!("POST /executions/run-file session_id {bad:?}"),
        );
    }

    // Well-formed unknown ids are 404 <KIND>_NOT_FOUND; version bits are not checked, case is
    // folded.
    let upper = u.to_uppercase();
    for id in [
        u,
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        &upper,
    ] {
        let lower = id.to_lowercase();
        let cases = [
            (
                "GET",
                format!("/api/v1/templates/{id}"),
                "TEMPLATE_NOT_FOUND",
                json!({ "template_id": lower }),
            ),
            (
                "GET",
                format!("/api/v1/sessions/{id}"),
                "SESSION_NOT_FOUND",
                json!({ "session_id": lower }),
            ),
            (
                "GET",
                format!("/api/v1/executions/{id}"),
                "EXECUTION_NOT_FOUND",
                json!({ "execution_id": lower }),
            ),
            (
                "GET",
                format!("/api/v1/executions/{id}/events"),
                "EXECUTION_NOT_FOUND",
                json!({ "execution_id": lower }),
            ),
            (
                "GET",
                format!("/api/v1/executions?session_id={id}"),
                "SESSION_NOT_FOUND",
                json!({ "session_id": lower }),
            ),
            (
                "DELETE",
                format!("/api/v1/templates/{t}/capabilities/{id}"),
                "CAPABILITY_NOT_FOUND",
                json!({ "template_id": t, "capability_id": lower }),
            ),
            (
                "DELETE",
                format!("/api/v1/templates/{t}/startup-files/{id}"),
                "STARTUP_FILE_NOT_FOUND",
                json!({ "template_id": t, "startup_file_id": lower }),
            ),
        ];
        for (method, path, code, expected) in cases {
            let ctx = format!("{method} {path}");
            let details = expect_err(&d.request(method, &path, None, &[]), 404, code, &ctx);
            // The id may be reported as sent or lowercased.
            let norm = |v: &Value| Value::from(v.to_string().to_lowercase());
            assert_eq!(norm(&details), norm(&expected), "{ctx}");
        }
    }
    let r = d.post("/executions/repl", json!({"session_id": u, "input": "1"}));
    assert_eq!(
        expect_err(&r, 404, "SESSION_NOT_FOUND", "repl unknown session"),
        json!({ "session_id": u })
    );
    let wt = wt.to_str().unwrap();
    let body = json!({"template_id": u, "workspace_id": "ws", "base_commit_oid": "abc", "worktree_path": wt});
    let r = d.post("/sessions", body);
    assert_eq!(
        expect_err(&r, 404, "TEMPLATE_NOT_FOUND", "session of unknown template"),
        json!({ "template_id": u })
    );

    // Uppercase ids are accepted.
    let r = d.get(&format!("/templates/{}", t.to_uppercase()));
    assert_eq!(
        expect_ok(&r, 200, "uppercase id")["template"]["id"],
        json!(t)
    );
}

#[test]
fn query_strings_accept_only_documented_parameters() {
    let d = TestDaemon::start();
    let u = UNKNOWN_ID;
    // (path, expected): Ok(status) or Err(field).
    let cases: Vec<(String, Result<u16, &str>)> = vec![
        ("/sessions".into(), Ok(200)),
        ("/sessions?status=ready".into(), Ok(200)),
        ("/sessions?status=starting".into(), Ok(200)),
        ("/sessions?status=crashed".into(), Ok(200)),
        ("/sessions?status=closed".into(), Ok(200)),
        ("/sessions?status=ready&status=closed".into(), Err("status")),
        ("/sessions?status=ready&status=ready".into(), Err("status")),
        ("/sessions?status=bogus".into(), Err("status")),
        ("/sessions?status=".into(), Err("status")),
        ("/sessions?foo=1".into(), Err("foo")),
        ("/sessions?status=ready&foo=1".into(), Err("foo")),
        ("/sessions?Status=ready".into(), Err("Status")),
        ("/templates?foo=1".into(), Err("foo")),
        ("/templates?limit=1".into(), Err("limit")),
        ("/health?verbose=1".into(), Err("verbose")),
        ("/catalog/modules?x=1".into(), Err("x")),
        ("/executions".into(), Err("session_id")),
        ("/executions?limit=5".into(), Err("session_id")),
        (format!("/executions?session_id={u}"), Ok(404)),
        (format!("/executions?session_id={u}&limit=1"), Ok(404)),
        (format!("/executions?session_id={u}&limit=1000"), Ok(404)),
        // Validation comes before the lookup of the session.
        (format!("/executions?session_id={u}&limit=0"), Err("limit")),
        (
            format!("/executions?session_id={u}&limit=1001"),
            Err("limit"),
        ),
        (format!("/executions?session_id={u}&limit=-1"), Err("limit")),
        (
            format!("/executions?session_id={u}&limit=1.5"),
            Err("limit"),
        ),
        (
            format!("/executions?session_id={u}&limit=abc"),
            Err("limit"),
        ),
        (format!("/executions?session_id={u}&limit="), Err("limit")),
        (
            format!("/executions?session_id={u}&limit=5&limit=5"),
            Err("limit"),
        ),
        (
            format!("/executions?session_id={u}&session_id={u}"),
            Err("session_id"),
        ),
        (
            format!("/executions?session_id={u}&status=ok"),
            Err("status"),
        ),
        (format!("/executions/{u}/events"), Ok(404)),
        (
            format!("/executions/{u}/events?after_seq=0&limit=10000"),
            Ok(404),
        ),
        (
            format!("/executions/{u}/events?follow=false&limit=1"),
            Ok(404),
        ),
        (
            format!("/executions/{u}/events?after_seq=-1"),
            Err("after_seq"),
        ),
        (
            format!("/executions/{u}/events?after_seq=x"),
            Err("after_seq"),
        ),
        (format!("/executions/{u}/events?limit=0"), Err("limit")),
        (format!("/executions/{u}/events?limit=10001"), Err("limit")),
        (format!("/executions/{u}/events?follow=yes"), Err("follow")),
        (format!("/executions/{u}/events?follow=1"), Err("follow")),
        (
            format!("/executions/{u}/events?follow=true&limit=5"),
            Err("limit"),
        ),
        (
            format!("/executions/{u}/events?after_seq=1&after_seq=2"),
            Err("after_seq"),
        ),
        (format!("/executions/{u}/events?seq=1"), Err("seq")),
        (format!("/templates/{u}?x=1"), Err("x")),
    ];
    for (path, expected) in &cases {
        let ctx = format!("GET {path}");
        let r = d.get(path);
        match expected {
            Ok(200) => {
                expect_ok(&r, 200, &ctx);
            }
            Ok(status) => assert_eq!(r.status, *status, "{ctx}: {}", r.text),
            Err(field) => expect_field(&r, field, &ctx),
        }
    }
}

#[test]
fn resources_use_millisecond_utc_timestamps_and_json() {
    let d = TestDaemon::start();
    let created = d.post("/templates", json!({"name": "ts"}));
    let template = expect_ok(&created, 201, "create template");
    let t = template["id"].as_str().unwrap().to_string();
    assert!(
        is_uuid_v4(&t),
        "template id {t:?} must be a lowercase UUIDv4"
    );
    assert_ts(&template, "created_at", "template");
    assert_ts(&template, "updated_at", "template");

    let settings = expect_ok(&d.get(&format!("/templates/{t}/settings")), 200, "settings");
    assert_ts(&settings, "updated_at", "settings");

    let cap = d.post(
        &format!("/templates/{t}/capabilities"),
        json!({"kind": "fs", "name": "w"}),
    );
    let cap = expect_ok(&cap, 201, "capability");
    assert!(is_uuid_v4(cap["id"].as_str().unwrap()), "capability id");
    assert_ts(&cap, "created_at", "capability");

    let sf = d.post(
        &format!("/templates/{t}/startup-files"),
        json!({"path": "init.js"}),
    );
    let sf = expect_ok(&sf, 201, "startup file");
    assert!(is_uuid_v4(sf["id"].as_str().unwrap()), "startup file id");
    assert_ts(&sf, "created_at", "startup file");

    let detail = expect_ok(&d.get(&format!("/templates/{t}")), 200, "template detail");
    assert_ts(&detail["template"], "updated_at", "detail.template");
    assert_ts(&detail["settings"], "updated_at", "detail.settings");
    assert_ts(
        &detail["capabilities"][0],
        "created_at",
        "detail.capabilities.0",
    );
    assert_ts(
        &detail["startup_files"][0],
        "created_at",
        "detail.startup_files.0",
    );

    // A session and an execution carry timestamps too.
    let plain = d.template("ts-session");
    let s = d.session(&plain);
    let session = expect_ok(&d.get(&format!("/sessions/{s}")), 200, "session");
    assert_ts(&session, "created_at", "session");
    assert_ts(&session, "updated_at", "session");
    assert_eq!(
        session["closed_at"],
        Value::Null,
        "closed_at of a live session"
    );
    let e = d.repl(&s, "1 + 1");
    let exec = expect_ok(&e, 201, "repl");
    assert_ts(&exec, "started_at", "execution");
    assert_ts(&exec, "ended_at", "execution");
    for event in exec["events"].as_array().unwrap() {
        assert_ts(event, "ts", "event");
    }
    let closed = expect_ok(
        &d.post_raw(&format!("/sessions/{s}/close"), ""),
        200,
        "close",
    );
    assert_ts(&closed, "closed_at", "closed session");

    // Compact JSON: no pretty-printing.
    for path in ["/health", "/templates", "/catalog/modules"] {
        let r = d.get(path);
        expect_ok(&r, 200, path);
        let compact = serde_json::to_string(&r.body).unwrap();
        assert_eq!(
            r.text.len(),
            compact.len(),
            "{path}: not compact: {}",
            r.text
        );
    }
}

/// A token file with whitespace around the token.
fn token_file(dir: &std::path::Path, content: &str) -> String {
    let path = dir.join("token");
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn bearer_token_guards_everything_under_api_v1_except_health() {
    let tokens = tempfile::tempdir().unwrap();
    let file = token_file(tokens.path(), "  \n s3cret-token\t \n");
    let d = TestDaemon::start_with(&["--auth-token-file", &file]);
    let good = ("Authorization", "Bearer s3cret-token");
    let u = UNKNOWN_ID;

    // Unauthenticated requests: (method, path) → 401, checked before routing.
    let guarded = [
        ("GET", "/api/v1/templates".to_string()),
        ("POST", "/api/v1/templates".into()),
        ("GET", "/api/v1/runtime/summary".into()),
        ("GET", "/api/v1/metrics".into()),
        ("GET", "/api/v1/openapi.json".into()),
        ("GET", "/api/v1/catalog/modules".into()),
        ("GET", format!("/api/v1/templates/{u}")),
        ("GET", "/api/v1/templates/not-an-id".into()),
        ("GET", "/api/v1/sessions".into()),
        ("POST", "/api/v1/executions/repl".into()),
        // Wrong methods and unknown routes under /api/v1 are 401, not 405/404.
        ("POST", "/api/v1/health".into()),
        ("DELETE", "/api/v1/health".into()),
        ("PUT", "/api/v1/templates".into()),
        ("GET", "/api/v1/nope".into()),
        ("GET", "/api/v1".into()),
        ("GET", "/api/v1/".into()),
        ("GET", "/api/v1/health/".into()),
        ("GET", "/api/v1/%zz".into()),
    ];
    let bad_headers: [&[(&str, &str)]; 6] = [
        &[],
        &[("Authorization", "Bearer wrong")],
        &[("Authorization", "Bearer s3cret-toke")],
        &[("Authorization", "Bearer s3cret-token-and-more")],
        &[("Authorization", "s3cret-token")],
        &[("Authorization", "Basic czNjcmV0LXRva2Vu")],
    ];
    for (method, path) in &guarded {
        for headers in bad_headers {
            let ctx = format!("{method} {path} with {headers:?}");
            // No body: a refused request's unread body makes the daemon drop the connection.
            let r = d.request(method, path, None, headers);
            let details = expect_err(&r, 401, "UNAUTHORIZED", &ctx);
            assert_eq!(details, json!({}), "{ctx}");
            let challenge = r
                .header("www-authenticate")
                .unwrap_or_else(|| panic!("{ctx}: no WWW-Authenticate"));
            assert!(
                challenge.starts_with("Bearer"),
                "{ctx}: WWW-Authenticate {challenge:?}"
            );
        }
    }

    // Health is open for GET and HEAD.
    let r = d.request("GET", "/api/v1/health", None, &[]);
    assert_eq!(expect_ok(&r, 200, "health without a token")["status"], "ok");
    let r = d.request("HEAD", "/api/v1/health", None, &[]);
    assert_eq!(r.status, 200, "HEAD health without a token");
    let r = d.request(
        "GET",
        "/api/v1/health",
        None,
        &[("Authorization", "Bearer wrong")],
    );
    assert_eq!(r.status, 200, "health with a wrong token");

    // Outside /api/v1 there is no auth: plain 404.
    for path in [
        "/",
        "/foo",
        "/api",
        "/api/v1nope",
        "/api/v2/templates",
        "/API/v1/templates",
    ] {
        let r = d.request("GET", path, None, &[]);
        let details = expect_err(
            &r,
            404,
            "ROUTE_NOT_FOUND",
            &format!("GET {path} without a token"),
        );
        assert_eq!(details, json!({"method": "GET", "path": path}));
    }

    // With the trimmed token everything works as usual.
    let r = d.request(
        "POST",
        "/api/v1/templates",
        Some("{\"name\": \"authed\"}"),
        &[good],
    );
    let t = expect_ok(&r, 201, "create with token")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = d.request("GET", &format!("/api/v1/templates/{t}"), None, &[good]);
    expect_ok(&r, 200, "get with token");
    let r = d.request("GET", "/api/v1/nope", None, &[good]);
    expect_err(&r, 404, "ROUTE_NOT_FOUND", "unknown route with token");
    let r = d.request("PUT", "/api/v1/templates", None, &[good]);
    expect_err(&r, 405, "METHOD_NOT_ALLOWED", "wrong method with token");
    let r = d.request(
        "GET",
        "/api/v1/templates",
        None,
        &[good, ("X-Request-Id", "auth-req-1")],
    );
    assert_eq!(r.header("x-request-id"), Some("auth-req-1"));
    let r = d.request(
        "GET",
        "/api/v1/templates",
        None,
        &[("X-Request-Id", "auth-req-2")],
    );
    assert_eq!(
        r.header("x-request-id"),
        Some("auth-req-2"),
        "401 carries the echoed request id"
    );
}

/// Runs `serve` with exactly these flags (plus the state paths of `dir`), expecting it to exit
/// before any ready line. Returns (exit code, stdout, stderr).
#[allow(
    clippy::disallowed_methods,
    reason = "the test runs the daemon binary to see it refuse to start"
)]
fn serve_refuses(dir: &std::path::Path, flags: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(tests::bin_path("orchestrator-dup"))
        .arg("serve")
        .arg("--db")
        .arg(db_path(dir))
        .arg("--library-dir")
        .arg(library_dir(dir))
        .arg("--worker-bin")
        .arg(tests::bin_path("worker-dup"))
        .args(flags)
        .env("VM_SYSTEM_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + tests::DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve {flags:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stdout, stderr)
}

#[test]
fn serve_listens_on_a_host_name() {
    // `--listen host:port` (spec §10.1): a name is resolved to a loopback address here.
    let d = TestDaemon::start_with(&["--listen", "localhost:0"]);
    let addr: std::net::SocketAddr = d.addr.parse().unwrap();
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 0);
    assert_eq!(d.get("/health").body["status"], "ok");
    let (code, _, stderr) = serve_refuses(
        tempfile::tempdir().unwrap().path(),
        &["--listen", "localhost:http"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error: invalid --listen address localhost:http"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_bad_token_files_and_open_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let blank = token_file(dir.path(), " \n\t \n");
    let missing = dir
        .path()
        .join("no-such-token")
        .to_str()
        .unwrap()
        .to_string();

    // Through the fixture: no ready line.
    for file in [&blank, &missing] {
        match TestDaemon::try_start(dir.path(), &["--auth-token-file", file]) {
            Ok((mut child, addr)) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve started on {addr} with token file {file}");
            }
            Err(reason) => assert!(!reason.is_empty()),
        }
    }

    // And the exact failure: exit 1, nothing on stdout, an `error: …` line on stderr.
    let cases: Vec<(Vec<&str>, Option<&str>)> = vec![
        (
            vec!["--listen", "127.0.0.1:0", "--auth-token-file", &blank],
            None,
        ),
        (
            vec!["--listen", "127.0.0.1:0", "--auth-token-file", &missing],
            None,
        ),
        (
            vec!["--listen", "0.0.0.0:0"],
            Some("error: refusing to listen on 0.0.0.0:0 without --auth-token-file"),
        ),
        // Flags the parser refuses are one line too (spec §10.2).
        (
            vec!["--listen", "127.0.0.1:0", "--pool-size", "65"],
            Some("error: invalid value '65' for '--pool-size <N>': 65 is not in 0..=64"),
        ),
        (vec!["--listen", "127.0.0.1:0", "--pool-size", "abc"], None),
        (
            vec!["--listen", "127.0.0.1:0", "--bogus-flag"],
            Some("error: unexpected argument '--bogus-flag' found"),
        ),
    ];
    for (flags, exact) in cases {
        let (code, stdout, stderr) = serve_refuses(dir.path(), &flags);
        assert_eq!(code, Some(1), "serve {flags:?}: exit code; stderr {stderr}");
        assert_eq!(stdout, "", "serve {flags:?} printed to stdout");
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(
            (lines.len(), stderr.lines().count()),
            (1, 1),
            "serve {flags:?}: one error line; stderr {stderr}"
        );
        if let Some(exact) = exact {
            assert_eq!(lines[0], exact, "serve {flags:?}");
            // No log line repeats it.
            let reason = exact.trim_start_matches("error: ");
            assert_eq!(
                stderr.lines().filter(|l| l.contains(reason)).count(),
                1,
                "serve {flags:?}: stderr {stderr}"
            );
        }
    }
}
