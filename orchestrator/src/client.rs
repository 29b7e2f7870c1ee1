//! `Client`: the typed HTTP client of the REST API (spec §3, §4) that the CLI commands go through.
//!
//! Each method is one endpoint with typed arguments. Successful answers come back as a `Body`: the
//! raw text exactly as the daemon sent it (json output prints it unchanged) plus its parsed value
//! (table output reads it). A non-2xx answer is a `ClientError::Api` carrying the error envelope,
//! and a request that got no HTTP response at all is `ClientError::Unreachable`.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use serde::{Deserialize as _, Serialize};
use serde_json::Value;

/// Largest response body the client reads (an ExecutionDetail holds up to 64 MiB of events).
const MAX_BODY_BYTES: u64 = 1024 * 1024 * 1024;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// No HTTP response: connection refused, DNS, TLS, a dropped connection, a bad URL.
    #[error("failed to reach vm-system at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: ureq::Error,
    },
    /// The daemon answered with a non-2xx status.
    #[error("failed with {}: {}", .0.code, .0.message)]
    Api(Box<ApiFailure>),
    /// The answer was not what the API documents (not JSON, or a stream cut short).
    #[error("failed to understand the answer of vm-system: {0}")]
    Protocol(String),
}

/// A non-2xx answer: the error envelope (spec §2) and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct ApiFailure {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) details: Value,
    pub(crate) request_id: String,
    /// The body as received, printed on stdout in json mode.
    pub(crate) raw: String,
}

/// A successful answer.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub(crate) raw: String,
    pub(crate) value: Value,
}

impl Body {
    fn parse(raw: String) -> Result<Body, ClientError> {
        let value = parse_json(&raw)
            .map_err(|err| ClientError::Protocol(format!("response is not JSON: {err}")))?;
        Ok(Body { raw, value })
    }
}

/// Parses JSON from the daemon without serde_json's nesting limit of 128: the values sessions
/// return may nest deeper (the client commands run on a large stack for this).
pub(crate) fn parse_json(text: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let value = Value::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// `POST /templates`.
#[derive(Debug, Serialize)]
pub(crate) struct CreateTemplate {
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) engine: Option<String>,
}

/// `POST /templates/{id}/capabilities`.
#[derive(Debug, Serialize)]
pub(crate) struct AddCapability {
    pub(crate) kind: String,
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) config: Option<Value>,
}

/// `POST /templates/{id}/startup-files`.
#[derive(Debug, Serialize)]
pub(crate) struct AddStartupFile {
    pub(crate) path: String,
    pub(crate) order_index: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mode: Option<String>,
}

/// `POST /sessions`.
#[derive(Debug, Serialize)]
pub(crate) struct CreateSession {
    pub(crate) template_id: String,
    pub(crate) workspace_id: String,
    pub(crate) base_commit_oid: String,
    pub(crate) worktree_path: String,
}

/// `POST /executions/repl`.
#[derive(Debug, Serialize)]
pub(crate) struct Repl {
    pub(crate) session_id: String,
    pub(crate) input: String,
}

/// `POST /executions/run-file`.
#[derive(Debug, Serialize)]
pub(crate) struct RunFile {
    pub(crate) session_id: String,
    pub(crate) path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) args: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) env: Option<Value>,
}

/// `{"name": …}` for modules and libraries.
#[derive(Debug, Serialize)]
struct Named<'a> {
    name: &'a str,
}

/// One message of an event stream (spec §7.7).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SseMessage {
    pub(crate) event: String,
    pub(crate) data: String,
}

/// The typed client of one daemon.
#[derive(Debug)]
pub(crate) struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the daemon at `server_url` (for example `http://127.0.0.1:3210`).
    pub(crate) fn new(server_url: &str, token: Option<String>) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // The daemon is local: environment proxies are for the outside world.
            .proxy(None)
            .timeout_connect(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Client {
            base: server_url.trim_end_matches('/').to_string(),
            token,
            agent,
        }
    }

    // ---- operations and catalogs (§4.1)

    pub(crate) fn health(&self) -> Result<Body, ClientError> {
        self.call("GET", "/health", None)
    }

    pub(crate) fn runtime_summary(&self) -> Result<Body, ClientError> {
        self.call("GET", "/runtime/summary", None)
    }

    pub(crate) fn catalog_modules(&self) -> Result<Body, ClientError> {
        self.call("GET", "/catalog/modules", None)
    }

    pub(crate) fn catalog_libraries(&self) -> Result<Body, ClientError> {
        self.call("GET", "/catalog/libraries", None)
    }

    // ---- templates (§4.2–§4.7)

    pub(crate) fn create_template(&self, req: &CreateTemplate) -> Result<Body, ClientError> {
        self.call("POST", "/templates", Some(to_json(req)?))
    }

    pub(crate) fn list_templates(&self) -> Result<Body, ClientError> {
        self.call("GET", "/templates", None)
    }

    pub(crate) fn get_template(&self, id: &str) -> Result<Body, ClientError> {
        self.call("GET", &format!("/templates/{}", seg(id)), None)
    }

    pub(crate) fn delete_template(&self, id: &str) -> Result<Body, ClientError> {
        self.call("DELETE", &format!("/templates/{}", seg(id)), None)
    }

    pub(crate) fn get_settings(&self, id: &str) -> Result<Body, ClientError> {
        self.call("GET", &format!("/templates/{}/settings", seg(id)), None)
    }

    pub(crate) fn patch_settings(&self, id: &str, patch: &Value) -> Result<Body, ClientError> {
        let path = format!("/templates/{}/settings", seg(id));
        self.call("PATCH", &path, Some(to_json(patch)?))
    }

    pub(crate) fn add_capability(
        &self,
        id: &str,
        req: &AddCapability,
    ) -> Result<Body, ClientError> {
        let path = format!("/templates/{}/capabilities", seg(id));
        self.call("POST", &path, Some(to_json(req)?))
    }

    pub(crate) fn list_capabilities(&self, id: &str) -> Result<Body, ClientError> {
        self.call("GET", &format!("/templates/{}/capabilities", seg(id)), None)
    }

    pub(crate) fn remove_capability(&self, id: &str, cap: &str) -> Result<Body, ClientError> {
        let path = format!("/templates/{}/capabilities/{}", seg(id), seg(cap));
        self.call("DELETE", &path, None)
    }

    pub(crate) fn add_startup_file(
        &self,
        id: &str,
        req: &AddStartupFile,
    ) -> Result<Body, ClientError> {
        let path = format!("/templates/{}/startup-files", seg(id));
        self.call("POST", &path, Some(to_json(req)?))
    }

    pub(crate) fn list_startup_files(&self, id: &str) -> Result<Body, ClientError> {
        self.call(
            "GET",
            &format!("/templates/{}/startup-files", seg(id)),
            None,
        )
    }

    pub(crate) fn remove_startup_file(&self, id: &str, file: &str) -> Result<Body, ClientError> {
        let path = format!("/templates/{}/startup-files/{}", seg(id), seg(file));
        self.call("DELETE", &path, None)
    }

    pub(crate) fn add_module(&self, id: &str, name: &str) -> Result<Body, ClientError> {
        let path = format!("/templates/{}/modules", seg(id));
        self.call("POST", &path, Some(to_json(&Named { name })?))
    }

    pub(crate) fn list_modules(&self, id: &str) -> Result<Body, ClientError> {
        self.call("GET", &format!("/templates/{}/modules", seg(id)), None)
    }

    pub(crate) fn remove_module(&self, id: &str, name: &str) -> Result<Body, ClientError> {
        let path = format!("/templates/{}/modules/{}", seg(id), seg(name));
        self.call("DELETE", &path, None)
    }

    pub(crate) fn add_library(&self, id: &str, name: &str) -> Result<Body, ClientError> {
        let path = format!("/templates/{}/libraries", seg(id));
        self.call("POST", &path, Some(to_json(&Named { name })?))
    }

    pub(crate) fn list_libraries(&self, id: &str) -> Result<Body, ClientError> {
        self.call("GET", &format!("/templates/{}/libraries", seg(id)), None)
    }

    pub(crate) fn remove_library(&self, id: &str, name: &str) -> Result<Body, ClientError> {
        let path = format!("/templates/{}/libraries/{}", seg(id), seg(name));
        self.call("DELETE", &path, None)
    }

    // ---- sessions (§4.8)

    pub(crate) fn create_session(&self, req: &CreateSession) -> Result<Body, ClientError> {
        self.call("POST", "/sessions", Some(to_json(req)?))
    }

    pub(crate) fn list_sessions(&self, status: Option<&str>) -> Result<Body, ClientError> {
        let path = match status {
            Some(status) => format!("/sessions?status={}", seg(status)),
            None => "/sessions".to_string(),
        };
        self.call("GET", &path, None)
    }

    pub(crate) fn get_session(&self, id: &str) -> Result<Body, ClientError> {
        self.call("GET", &format!("/sessions/{}", seg(id)), None)
    }

    pub(crate) fn close_session(&self, id: &str) -> Result<Body, ClientError> {
        self.call("POST", &format!("/sessions/{}/close", seg(id)), None)
    }

    pub(crate) fn restart_session(&self, id: &str) -> Result<Body, ClientError> {
        self.call("POST", &format!("/sessions/{}/restart", seg(id)), None)
    }

    // ---- executions (§4.9)

    pub(crate) fn repl(&self, req: &Repl) -> Result<Body, ClientError> {
        self.call("POST", "/executions/repl", Some(to_json(req)?))
    }

    pub(crate) fn run_file(&self, req: &RunFile) -> Result<Body, ClientError> {
        self.call("POST", "/executions/run-file", Some(to_json(req)?))
    }

    pub(crate) fn list_executions(
        &self,
        session_id: &str,
        limit: Option<i64>,
    ) -> Result<Body, ClientError> {
        let mut path = format!("/executions?session_id={}", seg(session_id));
        if let Some(limit) = limit {
            path.push_str(&format!("&limit={limit}"));
        }
        self.call("GET", &path, None)
    }

    pub(crate) fn get_execution(&self, id: &str) -> Result<Body, ClientError> {
        self.call("GET", &format!("/executions/{}", seg(id)), None)
    }

    pub(crate) fn cancel_execution(&self, id: &str) -> Result<Body, ClientError> {
        self.call("POST", &format!("/executions/{}/cancel", seg(id)), None)
    }

    pub(crate) fn list_events(
        &self,
        id: &str,
        after_seq: Option<i64>,
        limit: Option<i64>,
    ) -> Result<Body, ClientError> {
        let mut query = Vec::new();
        if let Some(after) = after_seq {
            query.push(format!("after_seq={after}"));
        }
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        let mut path = format!("/executions/{}/events", seg(id));
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query.join("&"));
        }
        self.call("GET", &path, None)
    }

    /// Follows the event stream of an execution (spec §7.7), calling `on_message` for every
    /// message as it arrives, until the stream closes.
    pub(crate) fn follow_events(
        &self,
        id: &str,
        after_seq: Option<i64>,
        mut on_message: impl FnMut(SseMessage) -> Result<Flow, ClientError>,
    ) -> Result<(), ClientError> {
        let mut path = format!("/executions/{}/events?follow=true", seg(id));
        if let Some(after) = after_seq {
            path.push_str(&format!("&after_seq={after}"));
        }
        let response = self.send("GET", &path, None)?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let raw = self.read_body(response)?;
            return Err(api_failure(status, raw));
        }
        let reader = BufReader::new(response.into_body().into_reader());
        let url = self.base.clone();
        let mut parser = SseParser::default();
        for line in reader.lines() {
            let line = line.map_err(|err| ClientError::Unreachable {
                url: url.clone(),
                source: ureq::Error::Io(err),
            })?;
            if let Some(message) = parser.line(&line)
                && on_message(message)? == Flow::Stop
            {
                return Ok(());
            }
        }
        Err(ClientError::Protocol(
            "the event stream closed before its end event".to_string(),
        ))
    }

    // ---- plumbing

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
        let unreachable = |source| ClientError::Unreachable {
            url: self.base.clone(),
            source,
        };
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}/api/v1{path}", self.base))
            .header("accept", "application/json");
        if let Some(token) = &self.token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let request = builder
            .body(body.unwrap_or_default())
            .map_err(|err| unreachable(ureq::Error::Http(err)))?;
        self.agent.run(request).map_err(unreachable)
    }

    fn read_body(
        &self,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<String, ClientError> {
        let mut bytes = Vec::new();
        response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .reader()
            .read_to_end(&mut bytes)
            .map_err(|err| ClientError::Unreachable {
                url: self.base.clone(),
                source: ureq::Error::Io(err),
            })?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn call(&self, method: &str, path: &str, body: Option<String>) -> Result<Body, ClientError> {
        let response = self.send(method, path, body)?;
        let status = response.status().as_u16();
        let raw = self.read_body(response)?;
        if (200..300).contains(&status) {
            Body::parse(raw)
        } else {
            Err(api_failure(status, raw))
        }
    }
}

/// What to do after a stream message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// Turns a non-2xx answer into `ClientError::Api`, or `Protocol` when it has no envelope.
fn api_failure(status: u16, raw: String) -> ClientError {
    let value = parse_json(&raw).unwrap_or(Value::Null);
    let error = &value["error"];
    match (error["code"].as_str(), error["message"].as_str()) {
        (Some(code), Some(message)) => ClientError::Api(Box::new(ApiFailure {
            status,
            code: code.to_string(),
            message: message.to_string(),
            details: error
                .get("details")
                .cloned()
                .unwrap_or(Value::Object(Default::default())),
            request_id: error["request_id"].as_str().unwrap_or("").to_string(),
            raw,
        })),
        _ => {
            let excerpt: String = raw.trim().chars().take(200).collect();
            ClientError::Protocol(format!(
                "HTTP {status} without an error envelope: {excerpt}"
            ))
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, ClientError> {
    serde_json::to_string(value)
        .map_err(|err| ClientError::Protocol(format!("failed to encode the request: {err}")))
}

/// Percent-encodes one path segment or query value: everything but RFC 3986 unreserved bytes.
pub(crate) fn seg(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A line-by-line parser of `text/event-stream` (only the fields the daemon sends).
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Feeds one line (without its line break); a blank line completes a message.
    pub(crate) fn line(&mut self, line: &str) -> Option<SseMessage> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            let data = self.data.take();
            let event = self.event.take();
            return data.map(|data| SseMessage {
                event: event.unwrap_or_else(|| "message".to_string()),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        let check = |input: &str, expected: &str| assert_eq!(seg(input), expected, "{input}");
        check("lodash@4.17.21", "lodash%404.17.21");
        check("6f1d8c1e-2b7a", "6f1d8c1e-2b7a");
        check("a/b c", "a%2Fb%20c");
        check("é", "%C3%A9");
    }

    #[test]
    fn sse_messages_are_split_on_blank_lines() {
        let mut parser = SseParser::default();
        let text =
            ": keep-alive\n\nid: 2\nevent: console\ndata: {\"seq\":2}\n\nevent: end\ndata: {}\n\n";
        let messages: Vec<_> = text.lines().filter_map(|l| parser.line(l)).collect();
        assert_eq!(
            messages,
            vec![
                SseMessage {
                    event: "console".into(),
                    data: "{\"seq\":2}".into()
                },
                SseMessage {
                    event: "end".into(),
                    data: "{}".into()
                },
            ]
        );
    }

    #[test]
    fn error_envelopes_become_api_failures() {
        let raw = r#"{"error":{"code":"SESSION_BUSY","message":"busy","details":{"x":1},"request_id":"r1"}}"#;
        match api_failure(409, raw.to_string()) {
            ClientError::Api(f) => {
                assert_eq!(
                    (f.status, f.code.as_str(), f.request_id.as_str()),
                    (409, "SESSION_BUSY", "r1")
                );
                assert_eq!(f.details["x"], 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            api_failure(502, "bad gateway".into()),
            ClientError::Protocol(_)
        ));
    }
}
