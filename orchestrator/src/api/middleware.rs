//! The HTTP edge of spec §1: request ids, shutdown gate, bearer auth, percent-decoded path
//! matching, 404/405 envelopes, the 1 MiB body check and the panic backstop, applied by [`wrap`].

use std::any::Any;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;
use uuid::Uuid;

use super::error::{ApiError, RenderedError};
use super::extract::{drain_body, percent_decode, read_body};

/// The request-id header, on every response.
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the edge needs from the daemon.
#[derive(Debug, Clone)]
pub(crate) struct EdgeConfig {
    /// The bearer token (already trimmed, never blank), or `None` when auth is off.
    pub(crate) token: Option<String>,
    /// Cancelled once shutdown begins: from then on every request answers `503 SHUTTING_DOWN`.
    pub(crate) shutting_down: CancellationToken,
}

/// Wraps the endpoint routes with the whole §1 edge, in the §1 check order:
///
/// request id (outermost, on every response) → panic backstop → shutdown gate (503) → auth (401,
/// on the decoded path) → path normalisation (404 for a malformed segment) → routing (404/405
/// envelopes) → body size (413, matched routes only) → the handler.
///
/// `routes` must not use `nest`/`route_service` for API endpoints (the 405 conversion and body
/// check attach to `MethodRouter`s) and must not set its own fallbacks.
pub(crate) fn wrap(routes: Router, cfg: EdgeConfig) -> Router {
    let edge = Arc::new(Edge::new(cfg));
    let routes = if routes.has_routes() {
        // Body size is checked after routing. `route_layer` also wraps each `MethodRouter`'s
        // 405 fallback, so the fallback is replaced afterwards to keep 405 ahead of 413.
        routes
            .route_layer(from_fn(limit_body))
            .method_not_allowed_fallback(method_not_allowed_marker)
    } else {
        routes
    };
    // `Router::layer` wraps each route after matching; the edge must see the request before the
    // router does (auth and path rewriting precede routing), so it wraps the router as a service.
    let edge_service = ServiceBuilder::new()
        .layer(from_fn(request_id))
        .layer(CatchPanicLayer::custom(
            panic_response as fn(Box<dyn Any + Send + 'static>) -> Response,
        ))
        .layer(from_fn_with_state(edge, guard))
        .layer(from_fn(method_not_allowed_envelope))
        .service(routes.fallback(route_not_found));
    Router::new().fallback_service(edge_service)
}

// ---------------------------------------------------------------------------------------------
// Request ids

/// The id of the request being served: echoed from `X-Request-Id` when acceptable, else a UUIDv4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestId(Arc<str>);

tokio::task_local! {
    static CURRENT_REQUEST_ID: RequestId;
}

/// The id of the request whose task is running, if any (set by [`wrap`]'s request-id layer).
pub(crate) fn current_request_id() -> Option<RequestId> {
    CURRENT_REQUEST_ID.try_with(Clone::clone).ok()
}

impl RequestId {
    /// A fresh UUIDv4 id.
    pub(crate) fn generate() -> Self {
        Self(Uuid::new_v4().to_string().into())
    }

    /// The single incoming `X-Request-Id` if it is 1–128 characters of 0x21–0x7E, else a new id.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(X_REQUEST_ID).iter();
        match (values.next(), values.next()) {
            (Some(value), None) if Self::acceptable(value.as_bytes()) => {
                Self(String::from_utf8_lossy(value.as_bytes()).into())
            }
            _ => Self::generate(),
        }
    }

    fn acceptable(bytes: &[u8]) -> bool {
        (1..=128).contains(&bytes.len()) && bytes.iter().all(|b| (0x21..=0x7E).contains(b))
    }

    /// The id text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// An id taken as is (tests).
    #[cfg(test)]
    pub(crate) fn from_trusted(id: &str) -> Self {
        Self(id.into())
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Outermost layer: picks the id, exposes it (request extension, task-local for `ApiError`,
/// tracing span) and stamps it on every response.
async fn request_id(mut req: Request, next: Next) -> Response {
    let id = RequestId::from_headers(req.headers());
    req.extensions_mut().insert(id.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let mut response = CURRENT_REQUEST_ID
        .scope(id.clone(), next.run(req))
        .instrument(span.clone())
        .await;
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "request finished"));
    response
}

// ---------------------------------------------------------------------------------------------
// Shutdown gate, auth and path normalisation

struct Edge {
    shutting_down: CancellationToken,
    /// SHA-256 of the token: comparing digests keeps the comparison constant-time in the length too.
    token_digest: Option<[u8; 32]>,
}

impl Edge {
    fn new(cfg: EdgeConfig) -> Self {
        Self {
            shutting_down: cfg.shutting_down,
            token_digest: cfg.token.map(|t| Sha256::digest(t.as_bytes()).into()),
        }
    }
}

/// The path exactly as received (still encoded, no query), for 404/405 details.
#[derive(Debug, Clone)]
pub(crate) struct RawPath(pub(crate) String);

/// The §1 checks that precede routing, in order: shutdown, auth, path decoding.
/// Answers `err` after reading and dropping the request body, so a client still sending it reads
/// the answer instead of a reset connection.
async fn refuse(req: Request, err: ApiError) -> Response {
    drain_body(req.into_body()).await;
    err.into_response()
}

async fn guard(State(edge): State<Arc<Edge>>, mut req: Request, next: Next) -> Response {
    if edge.shutting_down.is_cancelled() {
        return refuse(req, ApiError::ShuttingDown).await;
    }
    let raw_path = req.uri().path().to_owned();
    let segments = decode_segments(&raw_path);
    if let Some(digest) = &edge.token_digest
        && requires_auth(req.method(), &segments)
        && !authorized(req.headers(), digest)
    {
        return refuse(req, ApiError::Unauthorized).await;
    }
    let Some(uri) = canonical_uri(req.uri(), &segments) else {
        let err = ApiError::RouteNotFound {
            method: req.method().to_string(),
            path: raw_path,
        };
        return refuse(req, err).await;
    };
    *req.uri_mut() = uri;
    req.extensions_mut().insert(RawPath(raw_path));
    next.run(req).await
}

/// Splits the raw path on `/` and percent-decodes each segment (`None`: malformed escape or
/// invalid UTF-8). The first segment of an origin-form path is the empty string.
fn decode_segments(raw_path: &str) -> Vec<Option<String>> {
    raw_path
        .split('/')
        .map(|s| percent_decode(s, false))
        .collect()
}

/// True when the decoded path is `/api/v1` or under `/api/v1/`, except `GET`/`HEAD /api/v1/health`.
fn requires_auth(method: &Method, segments: &[Option<String>]) -> bool {
    let [Some(root), Some(api), Some(v1), rest @ ..] = segments else {
        return false;
    };
    if !(root.is_empty() && api == "api" && v1 == "v1") {
        return false;
    }
    let health = matches!(rest, [Some(h)] if h == "health");
    !(health && (method == Method::GET || method == Method::HEAD))
}

/// True when exactly one `Authorization: Bearer <token>` header carries the configured token.
fn authorized(headers: &HeaderMap, digest: &[u8; 32]) -> bool {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let bytes = value.as_bytes();
    let Some(space) = bytes.iter().position(|b| *b == b' ') else {
        return false;
    };
    let (scheme, rest) = bytes.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return false;
    }
    let token = rest.trim_ascii_start();
    if token.is_empty() {
        return false;
    }
    let candidate: [u8; 32] = Sha256::digest(token).into();
    candidate.ct_eq(digest).into()
}

/// The URI the router sees: each decoded segment re-encoded canonically, so literal segments match
/// whatever their encoding (`%68ealth` → `health`) and a decoded `/` stays inside its segment
/// (`a%2Fb` → one segment, decoded to `a/b` by the path extractors). `None` when a segment is
/// malformed (→ 404).
fn canonical_uri(uri: &Uri, segments: &[Option<String>]) -> Option<Uri> {
    let mut path = String::with_capacity(uri.path().len());
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            path.push('/');
        }
        encode_segment(segment.as_deref()?, &mut path);
    }
    if path == uri.path() {
        return Some(uri.clone());
    }
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).ok()?);
    Uri::from_parts(parts).ok()
}

/// Percent-encodes every byte that is not an RFC 3986 `pchar` (unreserved, sub-delims, `:`, `@`).
fn encode_segment(segment: &str, out: &mut String) {
    for &b in segment.as_bytes() {
        let plain = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
        if plain {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

// ---------------------------------------------------------------------------------------------
// Routing conventions

/// Router fallback: `404 ROUTE_NOT_FOUND` with the method and the path as received.
async fn route_not_found(req: Request) -> ApiError {
    let err = ApiError::RouteNotFound {
        method: req.method().to_string(),
        path: raw_path_of(&req),
    };
    drain_body(req.into_body()).await;
    err
}

/// Method fallback of every route: a bare 405; axum adds `Allow` and the layer below renders it.
async fn method_not_allowed_marker(req: Request) -> StatusCode {
    drain_body(req.into_body()).await;
    StatusCode::METHOD_NOT_ALLOWED
}

/// Turns axum's bare 405 (empty body, `Allow` header) into the §2 envelope.
async fn method_not_allowed_envelope(req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = raw_path_of(&req);
    let response = next.run(req).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response.extensions().get::<RenderedError>().is_some()
    {
        return response;
    }
    let allowed = allowed_methods(response.headers());
    ApiError::MethodNotAllowed {
        method,
        path,
        allowed,
    }
    .into_response()
}

fn raw_path_of(req: &Request) -> String {
    match req.extensions().get::<RawPath>() {
        Some(RawPath(path)) => path.clone(),
        None => req.uri().path().to_owned(),
    }
}

/// The methods of an `Allow` header, with `HEAD` added after `GET` if missing.
fn allowed_methods(headers: &HeaderMap) -> Vec<String> {
    let mut allowed: Vec<String> = Vec::new();
    for value in headers.get_all(header::ALLOW) {
        for method in value.to_str().unwrap_or("").split(',').map(str::trim) {
            if !method.is_empty() && !allowed.iter().any(|m| m == method) {
                allowed.push(method.to_owned());
            }
        }
    }
    if let Some(get) = allowed.iter().position(|m| m == "GET")
        && !allowed.iter().any(|m| m == "HEAD")
    {
        allowed.insert(get + 1, "HEAD".to_owned());
    }
    allowed
}

/// Route layer: buffers the body (≤ 1 MiB, else 413) before the handler, even for endpoints that
/// ignore it.
async fn limit_body(req: Request, next: Next) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(&parts.headers, body).await?;
    Ok(next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await)
}

/// Panic backstop: a generic `500 INTERNAL`; the panic message goes to the log only.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    };
    ApiError::internal(format!("handler panicked: {message}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::extract::{PathParams, StrictJson};
    use crate::api::requests::CreateTemplate;
    use axum::routing::{get, post};
    use http_body_util::BodyExt;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    const TOKEN: &str = "s3cret token";
    const SID: &str = "5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29";

    fn routes() -> Router {
        Router::new()
            .route("/api/v1/health", get(|| async { "ok" }))
            .route(
                "/api/v1/templates",
                get(|| async { "list" })
                    .post(|StrictJson(t): StrictJson<CreateTemplate>| async move { t.name }),
            )
            .route(
                "/api/v1/templates/{template_id}",
                get(|p: PathParams| async move { p.id("template_id").map(|id| id.to_string()) })
                    .delete(|| async { "deleted" }),
            )
            .route(
                "/api/v1/sessions/{session_id}/close",
                post(|p: PathParams| async move { p.id("session_id").map(|id| id.to_string()) }),
            )
            .route("/api/v1/echo/{a}/{b}", get(echo))
            .route("/api/v1/panic", get(panics))
    }

    async fn echo(p: PathParams) -> Result<String, ApiError> {
        Ok(format!("{}|{}", p.get("a")?, p.get("b")?))
    }

    async fn panics() -> &'static str {
        panic!("boom with secret detail")
    }

    struct Reply {
        status: u16,
        headers: HeaderMap,
        text: String,
    }

    impl Reply {
        fn json(&self) -> Value {
            serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
        }

        fn code(&self) -> String {
            self.json()["error"]["code"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        }

        fn request_id(&self) -> &str {
            self.headers[X_REQUEST_ID].to_str().unwrap()
        }

        /// Checks the envelope's request id equals the header (true for every error).
        fn envelope(&self) -> Value {
            let body = self.json();
            assert_eq!(
                body["error"]["request_id"],
                self.request_id(),
                "{}",
                self.text
            );
            body["error"].clone()
        }
    }

    struct Call<'a> {
        method: &'a str,
        uri: &'a str,
        headers: Vec<(&'a str, String)>,
        body: Vec<u8>,
    }

    fn call<'a>(method: &'a str, uri: &'a str) -> Call<'a> {
        Call {
            method,
            uri,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    impl<'a> Call<'a> {
        fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
            self.headers.push((name, value.into()));
            self
        }

        fn bearer(self, token: &str) -> Self {
            self.header("authorization", format!("Bearer {token}"))
        }

        fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
            self.body = body.into();
            self
        }

        async fn send(self, app: &Router) -> Reply {
            let mut builder = Request::builder().method(self.method).uri(self.uri);
            for (name, value) in &self.headers {
                builder = builder.header(*name, value.as_str());
            }
            let req = builder.body(Body::from(self.body)).unwrap();
            let response = app.clone().oneshot(req).await.unwrap();
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            Reply {
                status: parts.status.as_u16(),
                headers: parts.headers,
                text: String::from_utf8(bytes.to_vec()).unwrap(),
            }
        }
    }

    fn app() -> Router {
        wrap(
            routes(),
            EdgeConfig {
                token: None,
                shutting_down: CancellationToken::new(),
            },
        )
    }

    fn app_with_token() -> Router {
        wrap(
            routes(),
            EdgeConfig {
                token: Some(TOKEN.to_owned()),
                shutting_down: CancellationToken::new(),
            },
        )
    }

    #[tokio::test]
    async fn request_id_is_echoed_or_replaced() {
        let app = app();
        let long_ok = "a".repeat(128);
        let long_bad = "a".repeat(129);
        let echoed = ["abc-123", "!", "~~", long_ok.as_str(), "{x}\"'"];
        for id in echoed {
            let reply = call("GET", "/api/v1/health")
                .header("x-request-id", id)
                .send(&app)
                .await;
            assert_eq!(reply.request_id(), id);
            let reply = call("GET", "/nope")
                .header("x-request-id", id)
                .send(&app)
                .await;
            assert_eq!(reply.request_id(), id);
            reply.envelope();
        }
        let replaced = ["", "a b", long_bad.as_str(), "tab\there"];
        for id in replaced {
            let reply = call("GET", "/nope")
                .header("x-request-id", id)
                .send(&app)
                .await;
            let got = reply.request_id().to_owned();
            assert_ne!(got, id);
            assert!(
                Uuid::parse_str(&got).is_ok_and(|u| u.get_version_num() == 4),
                "{got}"
            );
            reply.envelope();
        }
        let reply = call("GET", "/api/v1/health").send(&app).await;
        assert_eq!(reply.request_id().len(), 36);
        let reply = call("GET", "/api/v1/health")
            .header("x-request-id", "a")
            .header("x-request-id", "b")
            .send(&app)
            .await;
        assert_eq!(reply.request_id().len(), 36);
        // Non-ASCII (obs-text) header bytes are replaced too.
        let req = Request::builder()
            .uri("/api/v1/health")
            .header("x-request-id", HeaderValue::from_bytes(b"caf\xe9").unwrap())
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(req).await.unwrap();
        assert_eq!(response.headers()[X_REQUEST_ID].len(), 36);
    }

    #[tokio::test]
    async fn unknown_routes_are_404_with_the_raw_path() {
        let app = app();
        let table = [
            ("GET", "/nope", "/nope"),
            ("GET", "/", "/"),
            ("POST", "/nope?x=1&y", "/nope"),
            ("GET", "/api/v1/health/", "/api/v1/health/"),
            ("GET", "/API/v1/health", "/API/v1/health"),
            ("GET", "/api/v1/Health", "/api/v1/Health"),
            ("GET", "/api//v1/health", "/api//v1/health"),
            ("GET", "/api/v1", "/api/v1"),
            ("DELETE", "/api/v1/%7Bx%7d", "/api/v1/%7Bx%7d"),
            ("GET", "/api/v1/%zz", "/api/v1/%zz"),
            ("GET", "/api/v1/health%", "/api/v1/health%"),
            ("GET", "/api/v1/%FF", "/api/v1/%FF"),
            ("GET", "/api/v1/%C3%28", "/api/v1/%C3%28"),
            ("GET", "/api/v1%2Fhealth", "/api/v1%2Fhealth"),
            ("GET", "/api/v1/templates/a/b", "/api/v1/templates/a/b"),
            ("HEAD", "/nope", "/nope"),
        ];
        for (method, uri, path) in table {
            let reply = call(method, uri).send(&app).await;
            assert_eq!(reply.status, 404, "{method} {uri}");
            if method != "HEAD" {
                let error = reply.envelope();
                assert_eq!(error["code"], "ROUTE_NOT_FOUND");
                assert_eq!(
                    error["details"],
                    json!({"method": method, "path": path}),
                    "{uri}"
                );
            }
            assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
        }
    }

    #[tokio::test]
    async fn segments_are_percent_decoded_before_matching() {
        let app = app();
        let reply = call("GET", "/api/v1/%68ealth").send(&app).await;
        assert_eq!((reply.status, reply.text.as_str()), (200, "ok"));
        let reply = call("GET", "/%61pi/%76%31/health?x").send(&app).await;
        assert_eq!((reply.status, reply.text.as_str()), (200, "ok"));
        let reply = call("GET", "/api/v1/echo/a%2Fb/%C3%A9%20x+y")
            .send(&app)
            .await;
        assert_eq!((reply.status, reply.text.as_str()), (200, "a/b|é x+y"));
        let reply = call("GET", "/api/v1/echo/%25/%3F%23").send(&app).await;
        assert_eq!((reply.status, reply.text.as_str()), (200, "%|?#"));
        // `%2F` stays inside its segment: the id route is reached and the id fails validation.
        let reply = call("GET", "/api/v1/templates/a%2Fb").send(&app).await;
        assert_eq!(reply.status, 400);
        let error = reply.envelope();
        assert_eq!(
            (error["code"].as_str(), &error["details"]),
            (Some("VALIDATION_ERROR"), &json!({"field": "template_id"}))
        );
        let upper = SID.to_uppercase();
        let reply = call("GET", &format!("/api/v1/templates/{upper}"))
            .send(&app)
            .await;
        assert_eq!((reply.status, reply.text.as_str()), (200, SID));
        let encoded = SID.replace('-', "%2d");
        let reply = call("GET", &format!("/api/v1/templates/{encoded}"))
            .send(&app)
            .await;
        assert_eq!((reply.status, reply.text.as_str()), (200, SID));
        let reply = call(
            "GET",
            "/api/v1/templates/%7B5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29%7D",
        )
        .send(&app)
        .await;
        assert_eq!(reply.code(), "VALIDATION_ERROR");
    }

    #[tokio::test]
    async fn wrong_method_is_405_with_allow() {
        let app = app();
        let table = [
            (
                "POST",
                "/api/v1/health",
                "/api/v1/health",
                vec!["GET", "HEAD"],
            ),
            (
                "DELETE",
                "/api/v1/%68ealth",
                "/api/v1/%68ealth",
                vec!["GET", "HEAD"],
            ),
            (
                "PUT",
                "/api/v1/templates?x=1",
                "/api/v1/templates",
                vec!["GET", "HEAD", "POST"],
            ),
            (
                "POST",
                &format!("/api/v1/templates/{SID}"),
                &format!("/api/v1/templates/{SID}"),
                vec!["GET", "HEAD", "DELETE"],
            ),
            (
                "GET",
                &format!("/api/v1/sessions/{SID}/close"),
                &format!("/api/v1/sessions/{SID}/close"),
                vec!["POST"],
            ),
            (
                "PATCH",
                "/api/v1/templates/not-an-id",
                "/api/v1/templates/not-an-id",
                vec!["GET", "HEAD", "DELETE"],
            ),
        ];
        for (method, uri, path, allowed) in table {
            let reply = call(method, uri).send(&app).await;
            assert_eq!(reply.status, 405, "{method} {uri}");
            let error = reply.envelope();
            assert_eq!(error["code"], "METHOD_NOT_ALLOWED");
            assert_eq!(
                error["details"],
                json!({"method": method, "path": path, "allowed": allowed})
            );
            assert_eq!(reply.headers[header::ALLOW], allowed.join(", "));
        }
        let reply = call("HEAD", "/api/v1/health").send(&app).await;
        assert_eq!((reply.status, reply.text.as_str()), (200, ""));
    }

    #[tokio::test]
    async fn auth_is_checked_before_routing() {
        let app = app_with_token();
        let sid_close = format!("/api/v1/sessions/{SID}/close");
        // (method, uri, with token?, expected status)
        let table: Vec<(&str, &str, bool, u16)> = vec![
            ("GET", "/api/v1/health", false, 200),
            ("HEAD", "/api/v1/health", false, 200),
            ("GET", "/api/v1/%68ealth", false, 200),
            ("POST", "/api/v1/health", false, 401),
            ("DELETE", "/api/v1/health", false, 401),
            ("POST", "/api/v1/health", true, 405),
            ("GET", "/api/v1/health/", false, 401),
            ("GET", "/api/v1/health/", true, 404),
            ("GET", "/api/v1/templates", false, 401),
            ("GET", "/api/v1/templates", true, 200),
            ("GET", "/%61pi/v1/templates", false, 401),
            ("GET", "/%61pi/v1/templates", true, 200),
            ("GET", "/api/v1", false, 401),
            ("GET", "/api/v1", true, 404),
            ("GET", "/api/v1/nope", false, 401),
            ("GET", "/api/v1/nope", true, 404),
            ("GET", "/api/v1/%zz", false, 401),
            ("GET", "/api/v1/%zz", true, 404),
            ("GET", "/nope", false, 404),
            ("GET", "/api/v2/templates", false, 404),
            ("GET", "/api/v1x", false, 404),
            ("GET", "/api/v1%2Ftemplates", false, 404),
            ("POST", &sid_close, false, 401),
            ("POST", &sid_close, true, 200),
        ];
        for (method, uri, with_token, status) in table {
            let mut c = call(method, uri);
            if with_token {
                c = c.bearer(TOKEN);
            }
            let reply = c.send(&app).await;
            assert_eq!(reply.status, status, "{method} {uri} token={with_token}");
            if status == 401 {
                assert_eq!(
                    reply.envelope(),
                    json!({"code": "UNAUTHORIZED", "message": "missing or invalid bearer token", "details": {}, "request_id": reply.request_id()})
                );
                assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
            }
        }
        let headers: Vec<Vec<(&str, String)>> = vec![
            vec![("authorization", "Bearer wrong".into())],
            vec![("authorization", "Bearer s3cret".into())],
            vec![("authorization", format!("Bearer {TOKEN}x"))],
            vec![("authorization", format!("Basic {TOKEN}"))],
            vec![("authorization", TOKEN.into())],
            vec![("authorization", "Bearer ".into())],
            vec![
                ("authorization", format!("Bearer {TOKEN}")),
                ("authorization", format!("Bearer {TOKEN}")),
            ],
            vec![("x-token", TOKEN.into())],
        ];
        for set in headers {
            let mut c = call("GET", "/api/v1/templates");
            for (name, value) in &set {
                c = c.header(name, value.clone());
            }
            assert_eq!(c.send(&app).await.status, 401, "{set:?}");
        }
        for ok in [format!("bearer {TOKEN}"), format!("BEARER  {TOKEN}")] {
            let reply = call("GET", "/api/v1/templates")
                .header("authorization", ok.clone())
                .send(&app)
                .await;
            assert_eq!(reply.status, 200, "{ok}");
        }
    }

    #[tokio::test]
    async fn shutdown_gate_comes_first() {
        let shutting_down = CancellationToken::new();
        let app = wrap(
            routes(),
            EdgeConfig {
                token: Some(TOKEN.to_owned()),
                shutting_down: shutting_down.clone(),
            },
        );
        assert_eq!(call("GET", "/api/v1/health").send(&app).await.status, 200);
        shutting_down.cancel();
        let big = vec![b' '; MAX + 10];
        let cases = [
            call("GET", "/api/v1/health"),
            call("GET", "/api/v1/templates"),
            call("GET", "/api/v1/templates").bearer(TOKEN),
            call("GET", "/nope"),
            call("POST", "/api/v1/health"),
            call("POST", "/api/v1/templates").bearer(TOKEN).body(big),
        ];
        for c in cases {
            let uri = c.uri.to_owned();
            let reply = c.send(&app).await;
            assert_eq!(reply.status, 503, "{uri}");
            assert_eq!(
                reply.envelope(),
                json!({"code": "SHUTTING_DOWN", "message": "daemon is shutting down", "details": {}, "request_id": reply.request_id()})
            );
        }
    }

    const MAX: usize = crate::api::extract::MAX_BODY_BYTES;

    #[tokio::test]
    async fn body_size_is_checked_after_routing() {
        let app = app();
        let close = format!("/api/v1/sessions/{SID}/close");
        let mut exact = vec![b' '; MAX];
        exact[..14].copy_from_slice(br#"{"name":"big"}"#);
        let reply = call("POST", "/api/v1/templates")
            .body(exact.clone())
            .send(&app)
            .await;
        assert_eq!((reply.status, reply.text.as_str()), (200, "big"));
        let mut over = exact.clone();
        over.push(b' ');
        let reply = call("POST", "/api/v1/templates")
            .body(over.clone())
            .send(&app)
            .await;
        assert_eq!(reply.status, 413);
        assert_eq!(
            reply.envelope()["details"],
            json!({"limit_bytes": 1_048_576})
        );
        // Declared length over the limit, body not sent.
        let reply = call("POST", "/api/v1/templates")
            .header("content-length", "1048577")
            .send(&app)
            .await;
        assert_eq!(reply.code(), "PAYLOAD_TOO_LARGE");
        // Endpoints without a body ignore the content but still refuse a large one.
        let reply = call("POST", &close)
            .body("not json at all")
            .send(&app)
            .await;
        assert_eq!((reply.status, reply.text.as_str()), (200, SID));
        let reply = call("POST", &close).body(over.clone()).send(&app).await;
        assert_eq!(reply.status, 413);
        let reply = call("GET", "/api/v1/health")
            .body(over.clone())
            .send(&app)
            .await;
        assert_eq!(reply.status, 413);
        // Routing comes first: 404 and 405 win over 413; 413 wins over decoding and validation.
        let reply = call("POST", "/nope").body(over.clone()).send(&app).await;
        assert_eq!(reply.status, 404);
        let reply = call("PUT", "/api/v1/health")
            .body(over.clone())
            .send(&app)
            .await;
        assert_eq!(reply.status, 405);
        let reply = call("PUT", "/api/v1/health")
            .header("content-length", "99999999")
            .send(&app)
            .await;
        assert_eq!(reply.status, 405);
        let reply = call("POST", "/api/v1/templates")
            .body(b"{".repeat(MAX + 1))
            .send(&app)
            .await;
        assert_eq!(reply.status, 413);
        // 401 comes before 413.
        let reply = call("POST", "/api/v1/templates")
            .body(over)
            .send(&app_with_token())
            .await;
        assert_eq!(reply.status, 401);
        // Decoding: 400 INVALID_REQUEST, then validation.
        let reply = call("POST", "/api/v1/templates").body("").send(&app).await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "INVALID_REQUEST".to_owned())
        );
        let reply = call("POST", "/api/v1/templates")
            .body("{}")
            .send(&app)
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "VALIDATION_ERROR".to_owned())
        );
    }

    #[tokio::test]
    async fn panics_become_generic_500() {
        let app = app();
        let reply = call("GET", "/api/v1/panic")
            .header("x-request-id", "panic-1")
            .send(&app)
            .await;
        assert_eq!(reply.status, 500);
        assert_eq!(reply.request_id(), "panic-1");
        assert_eq!(
            reply.envelope(),
            json!({"code": "INTERNAL", "message": "internal error", "details": {}, "request_id": "panic-1"})
        );
        assert!(!reply.text.contains("secret"));
    }

    #[test]
    fn allow_header_parsing() {
        let check = |header: &str, expected: &[&str]| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ALLOW, HeaderValue::from_str(header).unwrap());
            assert_eq!(allowed_methods(&headers), expected, "{header:?}");
        };
        check("GET,HEAD", &["GET", "HEAD"]);
        check("GET", &["GET", "HEAD"]);
        check("POST,GET", &["POST", "GET", "HEAD"]);
        check("PUT, PATCH", &["PUT", "PATCH"]);
        check("", &[]);
    }

    #[test]
    fn canonical_paths() {
        let check = |raw: &str, expected: Option<&str>| {
            let uri: Uri = raw.parse().unwrap();
            let segments = decode_segments(uri.path());
            let got = canonical_uri(&uri, &segments).map(|u| u.to_string());
            assert_eq!(got.as_deref(), expected, "{raw}");
        };
        check("/api/v1/health", Some("/api/v1/health"));
        check("/api/v1/%68ealth?x=%41", Some("/api/v1/health?x=%41"));
        check("/a%2fb/c", Some("/a%2Fb/c"));
        check("/%7Bx%7D/%C3%A9", Some("/%7Bx%7D/%C3%A9"));
        check("/a%20b/%25", Some("/a%20b/%25"));
        check("/a:b@c!$&'()*+,;=-._~", Some("/a:b@c!$&'()*+,;=-._~"));
        check("/%zz", None);
        check("/%FF", None);
        check("http://h/x%41?q", Some("http://h/xA?q"));
    }
}
