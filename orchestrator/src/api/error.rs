//! `ApiError`: every §2 error code, and the only place that picks HTTP statuses and renders the envelope.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::middleware::{RequestId, X_REQUEST_ID, current_request_id};
use super::paths::PathReason;

/// A boxed cause, kept for the log and never shown to clients.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An API failure. Each variant is one `code` of spec §2 and carries exactly its `details` keys
/// (plus, for 400s, a human-readable reason that only goes into `message`).
///
/// The `Display` text is the envelope's `message` (5xx messages are generic; causes are in
/// `#[source]` fields and only reach the log).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// `400 INVALID_REQUEST`: the body cannot be decoded strictly (§1).
    #[error("request body is invalid: {reason}")]
    InvalidRequest { reason: String },
    /// `400 VALIDATION_ERROR`: a field, path or query value breaks a rule.
    #[error("{field} {reason}")]
    ValidationError { field: String, reason: String },
    /// `401 UNAUTHORIZED` (with `WWW-Authenticate: Bearer`).
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// `404 ROUTE_NOT_FOUND`; `path` as received (still encoded, no query).
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    /// `404 TEMPLATE_NOT_FOUND`.
    #[error("template {template_id} not found")]
    TemplateNotFound { template_id: Uuid },
    /// `404 CAPABILITY_NOT_FOUND`.
    #[error("capability {capability_id} not found on template {template_id}")]
    CapabilityNotFound {
        template_id: Uuid,
        capability_id: Uuid,
    },
    /// `404 STARTUP_FILE_NOT_FOUND`.
    #[error("startup file {startup_file_id} not found on template {template_id}")]
    StartupFileNotFound {
        template_id: Uuid,
        startup_file_id: Uuid,
    },
    /// `404 SESSION_NOT_FOUND`.
    #[error("session {session_id} not found")]
    SessionNotFound { session_id: Uuid },
    /// `404 EXECUTION_NOT_FOUND`.
    #[error("execution {execution_id} not found")]
    ExecutionNotFound { execution_id: Uuid },
    /// `404 FILE_NOT_FOUND`: the run-file path does not exist in the worktree.
    #[error("file {path} not found in the worktree")]
    FileNotFound { session_id: Uuid, path: String },
    /// `405 METHOD_NOT_ALLOWED` (with an `Allow` header); `HEAD` is listed wherever `GET` is.
    #[error("method {method} is not allowed for {path}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: Vec<String>,
    },
    /// `409 TEMPLATE_NAME_TAKEN`; `template_id` is the existing template.
    #[error("template name {name:?} is already used")]
    TemplateNameTaken { name: String, template_id: Uuid },
    /// `409 TEMPLATE_IN_USE`.
    #[error("template is used by sessions that are not closed")]
    TemplateInUse {
        template_id: Uuid,
        session_ids: Vec<Uuid>,
    },
    /// `409 CAPABILITY_EXISTS`.
    #[error("the template already has a {kind} capability named {name:?}")]
    CapabilityExists {
        template_id: Uuid,
        capability_id: Uuid,
        kind: String,
        name: String,
    },
    /// `409 STARTUP_FILE_EXISTS`.
    #[error("the template already has a startup file {path}")]
    StartupFileExists {
        template_id: Uuid,
        startup_file_id: Uuid,
        path: String,
    },
    /// `409 SESSION_NOT_READY`; `status` is the session's current status.
    #[error("session is {status}, not ready")]
    SessionNotReady { session_id: Uuid, status: String },
    /// `409 SESSION_BUSY`.
    #[error("session is running another execution")]
    SessionBusy {
        session_id: Uuid,
        execution_id: Uuid,
    },
    /// `409 EXECUTION_FINISHED`; `status` is the final status.
    #[error("execution already finished with status {status}")]
    ExecutionFinished { execution_id: Uuid, status: String },
    /// `413 PAYLOAD_TOO_LARGE`.
    #[error("request body is larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: u64 },
    /// `422 ENGINE_UNSUPPORTED`.
    #[error("engine {engine:?} is not supported by this build")]
    EngineUnsupported {
        engine: String,
        supported: Vec<String>,
    },
    /// `422 INVALID_PATH`.
    #[error("path {path:?} is not allowed: {reason}")]
    InvalidPath { path: String, reason: PathReason },
    /// `422 INVALID_WORKTREE`; `reason` is `not_absolute`, `not_found` or `not_a_directory`.
    #[error("worktree path is not usable: {reason}")]
    InvalidWorktree {
        worktree_path: String,
        reason: &'static str,
    },
    /// `422 STARTUP_MODE_UNSUPPORTED`.
    #[error("startup file mode {requested_mode:?} is not supported")]
    StartupModeUnsupported {
        requested_mode: String,
        supported_modes: Vec<String>,
    },
    /// `422 STARTUP_FAILED`; keys that do not apply are `None` (rendered `null`).
    #[error("session start failed")]
    StartupFailed {
        session_id: Uuid,
        execution_id: Option<Uuid>,
        path: Option<String>,
        library: Option<String>,
    },
    /// `422 MODULE_NOT_ALLOWED`; `reason` is `builtin` or `unknown`.
    #[error("module {name:?} is not allowed: {reason}")]
    ModuleNotAllowed { name: String, reason: &'static str },
    /// `422 LIBRARY_UNKNOWN`: the id is not in the catalog, or the version is malformed.
    #[error("library {name:?} {}", library_unknown_reason(.name))]
    LibraryUnknown { name: String },
    /// `422 LIBRARY_NOT_CACHED`.
    #[error("library {library} is not in the library directory")]
    LibraryNotCached {
        session_id: Uuid,
        library: String,
        expected_path: String,
    },
    /// `422 OUTPUT_LIMIT_EXCEEDED`; `limit` is `max_events` or `max_output_kb`.
    #[error("execution exceeded its output limit ({limit})")]
    OutputLimitExceeded {
        execution_id: Uuid,
        limit: &'static str,
    },
    /// `500 INTERNAL`: anything unexpected. The body is generic; the cause is logged.
    #[error("internal error")]
    Internal(#[source] BoxError),
    /// `500 WORKER_START_FAILED`: the body carries only `session_id`; the cause is logged.
    #[error("failed to start a worker for the session")]
    WorkerStartFailed {
        session_id: Uuid,
        #[source]
        source: BoxError,
    },
    /// `503 SHUTTING_DOWN`.
    #[error("daemon is shutting down")]
    ShuttingDown,
}

/// Marker extension on every response rendered from an [`ApiError`], carrying its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RenderedError(pub(crate) &'static str);

impl ApiError {
    /// Shorthand for [`ApiError::InvalidRequest`].
    pub(crate) fn invalid_request(reason: impl Into<String>) -> Self {
        Self::InvalidRequest {
            reason: reason.into(),
        }
    }

    /// Shorthand for [`ApiError::ValidationError`].
    pub(crate) fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::ValidationError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`ApiError::Internal`].
    pub(crate) fn internal(cause: impl Into<BoxError>) -> Self {
        Self::Internal(cause.into())
    }

    /// The HTTP status of this error (the only mapping in the daemon).
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } | Self::ValidationError { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::RouteNotFound { .. }
            | Self::TemplateNotFound { .. }
            | Self::CapabilityNotFound { .. }
            | Self::StartupFileNotFound { .. }
            | Self::SessionNotFound { .. }
            | Self::ExecutionNotFound { .. }
            | Self::FileNotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::TemplateNameTaken { .. }
            | Self::TemplateInUse { .. }
            | Self::CapabilityExists { .. }
            | Self::StartupFileExists { .. }
            | Self::SessionNotReady { .. }
            | Self::SessionBusy { .. }
            | Self::ExecutionFinished { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::EngineUnsupported { .. }
            | Self::InvalidPath { .. }
            | Self::InvalidWorktree { .. }
            | Self::StartupModeUnsupported { .. }
            | Self::StartupFailed { .. }
            | Self::ModuleNotAllowed { .. }
            | Self::LibraryUnknown { .. }
            | Self::LibraryNotCached { .. }
            | Self::OutputLimitExceeded { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal(_) | Self::WorkerStartFailed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable `code` of spec §2.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "INVALID_REQUEST",
            Self::ValidationError { .. } => "VALIDATION_ERROR",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::RouteNotFound { .. } => "ROUTE_NOT_FOUND",
            Self::TemplateNotFound { .. } => "TEMPLATE_NOT_FOUND",
            Self::CapabilityNotFound { .. } => "CAPABILITY_NOT_FOUND",
            Self::StartupFileNotFound { .. } => "STARTUP_FILE_NOT_FOUND",
            Self::SessionNotFound { .. } => "SESSION_NOT_FOUND",
            Self::ExecutionNotFound { .. } => "EXECUTION_NOT_FOUND",
            Self::FileNotFound { .. } => "FILE_NOT_FOUND",
            Self::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Self::TemplateNameTaken { .. } => "TEMPLATE_NAME_TAKEN",
            Self::TemplateInUse { .. } => "TEMPLATE_IN_USE",
            Self::CapabilityExists { .. } => "CAPABILITY_EXISTS",
            Self::StartupFileExists { .. } => "STARTUP_FILE_EXISTS",
            Self::SessionNotReady { .. } => "SESSION_NOT_READY",
            Self::SessionBusy { .. } => "SESSION_BUSY",
            Self::ExecutionFinished { .. } => "EXECUTION_FINISHED",
            Self::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Self::EngineUnsupported { .. } => "ENGINE_UNSUPPORTED",
            Self::InvalidPath { .. } => "INVALID_PATH",
            Self::InvalidWorktree { .. } => "INVALID_WORKTREE",
            Self::StartupModeUnsupported { .. } => "STARTUP_MODE_UNSUPPORTED",
            Self::StartupFailed { .. } => "STARTUP_FAILED",
            Self::ModuleNotAllowed { .. } => "MODULE_NOT_ALLOWED",
            Self::LibraryUnknown { .. } => "LIBRARY_UNKNOWN",
            Self::LibraryNotCached { .. } => "LIBRARY_NOT_CACHED",
            Self::OutputLimitExceeded { .. } => "OUTPUT_LIMIT_EXCEEDED",
            Self::Internal(_) => "INTERNAL",
            Self::WorkerStartFailed { .. } => "WORKER_START_FAILED",
            Self::ShuttingDown => "SHUTTING_DOWN",
        }
    }

    /// The `details` object, with exactly the keys spec §2 lists for the code.
    pub(crate) fn details(&self) -> Value {
        match self {
            Self::InvalidRequest { .. }
            | Self::Unauthorized
            | Self::Internal(_)
            | Self::ShuttingDown => json!({}),
            Self::ValidationError { field, .. } => json!({ "field": field }),
            Self::RouteNotFound { method, path } => json!({ "method": method, "path": path }),
            Self::TemplateNotFound { template_id } => json!({ "template_id": template_id }),
            Self::CapabilityNotFound {
                template_id,
                capability_id,
            } => {
                json!({ "template_id": template_id, "capability_id": capability_id })
            }
            Self::StartupFileNotFound {
                template_id,
                startup_file_id,
            } => {
                json!({ "template_id": template_id, "startup_file_id": startup_file_id })
            }
            Self::SessionNotFound { session_id } => json!({ "session_id": session_id }),
            Self::ExecutionNotFound { execution_id } => json!({ "execution_id": execution_id }),
            Self::FileNotFound { session_id, path } => {
                json!({ "session_id": session_id, "path": path })
            }
            Self::MethodNotAllowed {
                method,
                path,
                allowed,
            } => {
                json!({ "method": method, "path": path, "allowed": allowed })
            }
            Self::TemplateNameTaken { name, template_id } => {
                json!({ "name": name, "template_id": template_id })
            }
            Self::TemplateInUse {
                template_id,
                session_ids,
            } => {
                json!({ "template_id": template_id, "session_ids": session_ids })
            }
            Self::CapabilityExists {
                template_id,
                capability_id,
                kind,
                name,
            } => json!({
                "template_id": template_id, "capability_id": capability_id,
                "kind": kind, "name": name,
            }),
            Self::StartupFileExists {
                template_id,
                startup_file_id,
                path,
            } => json!({
                "template_id": template_id, "startup_file_id": startup_file_id, "path": path,
            }),
            Self::SessionNotReady { session_id, status } => {
                json!({ "session_id": session_id, "status": status })
            }
            Self::SessionBusy {
                session_id,
                execution_id,
            } => {
                json!({ "session_id": session_id, "execution_id": execution_id })
            }
            Self::ExecutionFinished {
                execution_id,
                status,
            } => {
                json!({ "execution_id": execution_id, "status": status })
            }
            Self::PayloadTooLarge { limit_bytes } => json!({ "limit_bytes": limit_bytes }),
            Self::EngineUnsupported { engine, supported } => {
                json!({ "engine": engine, "supported": supported })
            }
            Self::InvalidPath { path, reason } => {
                json!({ "path": path, "reason": reason.as_str() })
            }
            Self::InvalidWorktree {
                worktree_path,
                reason,
            } => {
                json!({ "worktree_path": worktree_path, "reason": reason })
            }
            Self::StartupModeUnsupported {
                requested_mode,
                supported_modes,
            } => {
                json!({ "requested_mode": requested_mode, "supported_modes": supported_modes })
            }
            Self::StartupFailed {
                session_id,
                execution_id,
                path,
                library,
            } => json!({
                "session_id": session_id, "execution_id": execution_id,
                "path": path, "library": library,
            }),
            Self::ModuleNotAllowed { name, reason } => json!({ "name": name, "reason": reason }),
            Self::LibraryUnknown { name } => json!({ "name": name }),
            Self::LibraryNotCached {
                session_id,
                library,
                expected_path,
            } => json!({
                "session_id": session_id, "library": library, "expected_path": expected_path,
            }),
            Self::OutputLimitExceeded {
                execution_id,
                limit,
            } => {
                json!({ "execution_id": execution_id, "limit": limit })
            }
            Self::WorkerStartFailed { session_id, .. } => json!({ "session_id": session_id }),
        }
    }

    /// Renders the envelope for `request_id`. Used by `into_response`, and directly by tests.
    pub(crate) fn render(self, request_id: &RequestId) -> Response {
        let status = self.status();
        let code = self.code();
        if status.is_server_error() {
            tracing::error!(
                request_id = %request_id,
                code,
                error = %ErrorChain(&self),
                "request failed",
            );
        } else {
            tracing::debug!(request_id = %request_id, code, error = %self, "request rejected");
        }
        let allow = match &self {
            Self::MethodNotAllowed { allowed, .. } => Some(allowed.join(", ")),
            _ => None,
        };
        let envelope = Envelope {
            error: EnvelopeBody {
                code,
                message: self.to_string(),
                details: self.details(),
                request_id: request_id.as_str(),
            },
        };
        let body = serde_json::to_vec(&envelope).unwrap_or_else(|_| {
            // Unreachable in practice (string keys, plain values); keep a valid envelope anyway.
            br#"{"error":{"code":"INTERNAL","message":"internal error","details":{}}}"#.to_vec()
        });
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
            headers.insert(X_REQUEST_ID, value);
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(allow) = allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            headers.insert(header::ALLOW, allow);
        }
        response.extensions_mut().insert(RenderedError(code));
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = current_request_id().unwrap_or_else(RequestId::generate);
        self.render(&request_id)
    }
}

/// The body of every non-2xx response (spec §2); also its OpenAPI schema `ErrorEnvelope`.
#[derive(Serialize, ToSchema)]
#[schema(as = ErrorEnvelope)]
pub(crate) struct Envelope<'a> {
    error: EnvelopeBody<'a>,
}

/// `ErrorEnvelope.error`.
#[derive(Serialize, ToSchema)]
#[schema(as = ErrorBody)]
pub(crate) struct EnvelopeBody<'a> {
    /// Stable error code (spec §2).
    code: &'static str,
    /// English sentence for people; clients must not parse it.
    message: String,
    /// Always an object (`{}` when empty), with exactly the keys spec §2 lists for the code.
    #[schema(value_type = Object)]
    details: Value,
    /// Equals the `X-Request-Id` response header.
    request_id: &'a str,
}

/// Formats an error and its `source()` chain as `outer: inner: ...` for the log.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// Why a library name was refused: a malformed version, or an id the catalog does not have.
fn library_unknown_reason(name: &str) -> &'static str {
    match name.trim().split_once('@') {
        Some((_, version)) if !crate::api::requests::is_library_version(version) => {
            "has a malformed version (expected MAJOR.MINOR.PATCH or MAJOR.MINOR.PATCH-PRERELEASE)"
        }
        _ => "is not in the catalog",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    const SID: &str = "5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29";
    const EID: &str = "0e7a3c9b-1111-4222-8333-944445555666";

    fn id(s: &str) -> Uuid {
        Uuid::parse_str(s).unwrap()
    }

    async fn render(err: ApiError) -> (StatusCode, axum::http::HeaderMap, Value) {
        let rid = RequestId::from_trusted("req-1");
        let response = err.render(&rid);
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    async fn check(err: ApiError, status: u16, code: &str, message: &str, details: Value) {
        let (got_status, headers, body) = render(err).await;
        assert_eq!(got_status.as_u16(), status, "{code}");
        assert_eq!(
            body,
            json!({"error": {"code": code, "message": message, "details": details, "request_id": "req-1"}}),
        );
        assert_eq!(headers[X_REQUEST_ID], "req-1");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    }

    fn boom() -> BoxError {
        "disk on fire at /var/secret".into()
    }

    #[tokio::test]
    async fn every_code_renders_its_details() {
        let (s, e) = (id(SID), id(EID));
        check(
            ApiError::invalid_request("x"),
            400,
            "INVALID_REQUEST",
            "request body is invalid: x",
            json!({}),
        )
        .await;
        check(
            ApiError::validation("limits.wall_ms", "must be between 1 and 3600000"),
            400,
            "VALIDATION_ERROR",
            "limits.wall_ms must be between 1 and 3600000",
            json!({"field": "limits.wall_ms"}),
        )
        .await;
        check(
            ApiError::Unauthorized,
            401,
            "UNAUTHORIZED",
            "missing or invalid bearer token",
            json!({}),
        )
        .await;
        check(
            ApiError::RouteNotFound {
                method: "GET".into(),
                path: "/x%2F".into(),
            },
            404,
            "ROUTE_NOT_FOUND",
            "no route for GET /x%2F",
            json!({"method": "GET", "path": "/x%2F"}),
        )
        .await;
        check(
            ApiError::TemplateNotFound { template_id: s },
            404,
            "TEMPLATE_NOT_FOUND",
            &format!("template {SID} not found"),
            json!({"template_id": SID}),
        )
        .await;
        check(
            ApiError::CapabilityNotFound {
                template_id: s,
                capability_id: e,
            },
            404,
            "CAPABILITY_NOT_FOUND",
            &format!("capability {EID} not found on template {SID}"),
            json!({"template_id": SID, "capability_id": EID}),
        )
        .await;
        check(
            ApiError::StartupFileNotFound {
                template_id: s,
                startup_file_id: e,
            },
            404,
            "STARTUP_FILE_NOT_FOUND",
            &format!("startup file {EID} not found on template {SID}"),
            json!({"template_id": SID, "startup_file_id": EID}),
        )
        .await;
        check(
            ApiError::SessionNotFound { session_id: s },
            404,
            "SESSION_NOT_FOUND",
            &format!("session {SID} not found"),
            json!({"session_id": SID}),
        )
        .await;
        check(
            ApiError::ExecutionNotFound { execution_id: e },
            404,
            "EXECUTION_NOT_FOUND",
            &format!("execution {EID} not found"),
            json!({"execution_id": EID}),
        )
        .await;
        check(
            ApiError::FileNotFound {
                session_id: s,
                path: "a.js".into(),
            },
            404,
            "FILE_NOT_FOUND",
            "file a.js not found in the worktree",
            json!({"session_id": SID, "path": "a.js"}),
        )
        .await;
        check(
            ApiError::MethodNotAllowed {
                method: "PUT".into(),
                path: "/api/v1/health".into(),
                allowed: vec!["GET".into(), "HEAD".into()],
            },
            405,
            "METHOD_NOT_ALLOWED",
            "method PUT is not allowed for /api/v1/health",
            json!({"method": "PUT", "path": "/api/v1/health", "allowed": ["GET", "HEAD"]}),
        )
        .await;
        check(
            ApiError::TemplateNameTaken {
                name: "a".into(),
                template_id: s,
            },
            409,
            "TEMPLATE_NAME_TAKEN",
            "template name \"a\" is already used",
            json!({"name": "a", "template_id": SID}),
        )
        .await;
        check(
            ApiError::TemplateInUse {
                template_id: s,
                session_ids: vec![e],
            },
            409,
            "TEMPLATE_IN_USE",
            "template is used by sessions that are not closed",
            json!({"template_id": SID, "session_ids": [EID]}),
        )
        .await;
        check(
            ApiError::CapabilityExists {
                template_id: s,
                capability_id: e,
                kind: "fs".into(),
                name: "w".into(),
            },
            409,
            "CAPABILITY_EXISTS",
            "the template already has a fs capability named \"w\"",
            json!({"template_id": SID, "capability_id": EID, "kind": "fs", "name": "w"}),
        )
        .await;
        check(
            ApiError::StartupFileExists {
                template_id: s,
                startup_file_id: e,
                path: "a.js".into(),
            },
            409,
            "STARTUP_FILE_EXISTS",
            "the template already has a startup file a.js",
            json!({"template_id": SID, "startup_file_id": EID, "path": "a.js"}),
        )
        .await;
        check(
            ApiError::SessionNotReady {
                session_id: s,
                status: "crashed".into(),
            },
            409,
            "SESSION_NOT_READY",
            "session is crashed, not ready",
            json!({"session_id": SID, "status": "crashed"}),
        )
        .await;
        check(
            ApiError::SessionBusy {
                session_id: s,
                execution_id: e,
            },
            409,
            "SESSION_BUSY",
            "session is running another execution",
            json!({"session_id": SID, "execution_id": EID}),
        )
        .await;
        check(
            ApiError::ExecutionFinished {
                execution_id: e,
                status: "ok".into(),
            },
            409,
            "EXECUTION_FINISHED",
            "execution already finished with status ok",
            json!({"execution_id": EID, "status": "ok"}),
        )
        .await;
        check(
            ApiError::PayloadTooLarge {
                limit_bytes: 1_048_576,
            },
            413,
            "PAYLOAD_TOO_LARGE",
            "request body is larger than 1048576 bytes",
            json!({"limit_bytes": 1_048_576}),
        )
        .await;
        check(
            ApiError::EngineUnsupported {
                engine: "v8".into(),
                supported: vec!["quickjs".into()],
            },
            422,
            "ENGINE_UNSUPPORTED",
            "engine \"v8\" is not supported by this build",
            json!({"engine": "v8", "supported": ["quickjs"]}),
        )
        .await;
        check(
            ApiError::InvalidPath {
                path: "../x".into(),
                reason: PathReason::Traversal,
            },
            422,
            "INVALID_PATH",
            "path \"../x\" is not allowed: traversal",
            json!({"path": "../x", "reason": "traversal"}),
        )
        .await;
        check(
            ApiError::InvalidWorktree {
                worktree_path: "rel".into(),
                reason: "not_absolute",
            },
            422,
            "INVALID_WORKTREE",
            "worktree path is not usable: not_absolute",
            json!({"worktree_path": "rel", "reason": "not_absolute"}),
        )
        .await;
        check(
            ApiError::StartupModeUnsupported {
                requested_mode: "Module".into(),
                supported_modes: vec!["eval".into()],
            },
            422,
            "STARTUP_MODE_UNSUPPORTED",
            "startup file mode \"Module\" is not supported",
            json!({"requested_mode": "Module", "supported_modes": ["eval"]}),
        )
        .await;
        check(
            ApiError::StartupFailed {
                session_id: s,
                execution_id: Some(e),
                path: Some("init.js".into()),
                library: None,
            },
            422,
            "STARTUP_FAILED",
            "session start failed",
            json!({"session_id": SID, "execution_id": EID, "path": "init.js", "library": null}),
        )
        .await;
        check(
            ApiError::ModuleNotAllowed {
                name: "math".into(),
                reason: "builtin",
            },
            422,
            "MODULE_NOT_ALLOWED",
            "module \"math\" is not allowed: builtin",
            json!({"name": "math", "reason": "builtin"}),
        )
        .await;
        check(
            ApiError::LibraryUnknown {
                name: "left-pad".into(),
            },
            422,
            "LIBRARY_UNKNOWN",
            "library \"left-pad\" is not in the catalog",
            json!({"name": "left-pad"}),
        )
        .await;
        check(
            ApiError::LibraryUnknown {
                name: "dayjs@bad".into(),
            },
            422,
            "LIBRARY_UNKNOWN",
            "library \"dayjs@bad\" has a malformed version (expected MAJOR.MINOR.PATCH or \
             MAJOR.MINOR.PATCH-PRERELEASE)",
            json!({"name": "dayjs@bad"}),
        )
        .await;
        check(ApiError::LibraryNotCached { session_id: s, library: "lodash@4.17.21".into(), expected_path: "/l/lodash-4.17.21.js".into() }, 422, "LIBRARY_NOT_CACHED", "library lodash@4.17.21 is not in the library directory", json!({"session_id": SID, "library": "lodash@4.17.21", "expected_path": "/l/lodash-4.17.21.js"})).await;
        check(
            ApiError::OutputLimitExceeded {
                execution_id: e,
                limit: "max_events",
            },
            422,
            "OUTPUT_LIMIT_EXCEEDED",
            "execution exceeded its output limit (max_events)",
            json!({"execution_id": EID, "limit": "max_events"}),
        )
        .await;
        check(
            ApiError::Internal(boom()),
            500,
            "INTERNAL",
            "internal error",
            json!({}),
        )
        .await;
        check(
            ApiError::WorkerStartFailed {
                session_id: s,
                source: boom(),
            },
            500,
            "WORKER_START_FAILED",
            "failed to start a worker for the session",
            json!({"session_id": SID}),
        )
        .await;
        check(
            ApiError::ShuttingDown,
            503,
            "SHUTTING_DOWN",
            "daemon is shutting down",
            json!({}),
        )
        .await;
    }

    #[tokio::test]
    async fn special_headers() {
        let (_, headers, _) = render(ApiError::Unauthorized).await;
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        let err = ApiError::MethodNotAllowed {
            method: "POST".into(),
            path: "/api/v1/health".into(),
            allowed: vec!["GET".into(), "HEAD".into()],
        };
        let (_, headers, _) = render(err).await;
        assert_eq!(headers[header::ALLOW], "GET, HEAD");
        let (_, headers, _) = render(ApiError::ShuttingDown).await;
        assert!(!headers.contains_key(header::ALLOW));
        assert!(!headers.contains_key(header::WWW_AUTHENTICATE));
    }

    #[tokio::test]
    async fn compact_body_in_field_order() {
        let response = ApiError::ShuttingDown.render(&RequestId::from_trusted("r"));
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"error":{"code":"SHUTTING_DOWN","message":"daemon is shutting down","details":{},"request_id":"r"}}"#
        );
    }

    #[tokio::test]
    async fn outside_a_request_a_fresh_id_is_used_and_matches_the_header() {
        let response = ApiError::Unauthorized.into_response();
        let header_id = response.headers()[X_REQUEST_ID]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["request_id"], header_id.as_str());
        assert_eq!(header_id.len(), 36);
    }

    #[test]
    fn error_chain_formats_sources() {
        let err = ApiError::Internal(Box::new(std::io::Error::other("inner")));
        assert_eq!(ErrorChain(&err).to_string(), "internal error: inner");
    }
}
