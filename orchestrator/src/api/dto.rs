//! Response bodies (spec §3, §4): field names and order exactly as documented, and the JSON
//! response helpers. Built by hand from model types; stored JSON text is embedded verbatim.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::ApiError;

/// Raw JSON embedded verbatim (payloads, results, `args`, `env`, `config`).
pub(crate) type RawJson = Box<RawValue>;

/// Wraps stored JSON text for embedding; text that is not valid JSON is an internal error.
pub(crate) fn raw_json(text: String) -> Result<RawJson, ApiError> {
    RawValue::from_string(text).map_err(ApiError::internal)
}

/// `200` with a compact JSON body.
#[derive(Debug)]
pub(crate) struct Json<T>(pub(crate) T);

/// `201` with a compact JSON body.
#[derive(Debug)]
pub(crate) struct Created<T>(pub(crate) T);

/// `status` with a compact JSON body.
pub(crate) fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_typed((status, body).into_response()),
        Err(err) => ApiError::internal(err).into_response(),
    }
}

/// `response` labelled `application/json` (its body is JSON, whole or streamed).
pub(crate) fn json_typed(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, &self.0)
    }
}

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        json_response(StatusCode::CREATED, &self.0)
    }
}

/// The constant `"ok"` of health and acknowledgement bodies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StatusOk;

impl Serialize for StatusOk {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("ok")
    }
}

/// OpenAPI: a string whose only value is `"ok"`, as [`StatusOk`] serializes.
impl utoipa::PartialSchema for StatusOk {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(["ok"]))
            .into()
    }
}

impl ToSchema for StatusOk {}

// ---------------------------------------------------------------------------------------------
// Operations and catalogs (§4.1)

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    pub(crate) status: StatusOk,
    pub(crate) version: String,
    pub(crate) engine: String,
}

/// `GET /runtime/summary`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RuntimeSummary {
    pub(crate) active_sessions: u64,
    /// Sorted ascending; `workers` uses the same order.
    pub(crate) active_session_ids: Vec<Uuid>,
    pub(crate) workers: Vec<WorkerSummary>,
    pub(crate) pool: PoolSummary,
}

/// One worker of a [`RuntimeSummary`].
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkerSummary {
    pub(crate) session_id: Uuid,
    pub(crate) pid: u32,
    pub(crate) rss_kb: u64,
    pub(crate) cpu_ms: u64,
    pub(crate) started_at: String,
}

/// The warm pool of a [`RuntimeSummary`].
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PoolSummary {
    pub(crate) warm: u64,
    pub(crate) target: u64,
}

/// An entry of `GET /catalog/modules`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CatalogModule {
    pub(crate) id: String,
    pub(crate) description: String,
    pub(crate) functions: Vec<String>,
    /// `"fs"`, `"module:exec"` or `null`.
    #[schema(required = true)]
    pub(crate) requires_capability: Option<String>,
}

/// An entry of `GET /catalog/libraries`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CatalogLibrary {
    pub(crate) id: String,
    pub(crate) version: String,
    pub(crate) global: String,
    pub(crate) package: String,
    /// Path inside the package without `package/`.
    pub(crate) bundle: String,
    pub(crate) cached: bool,
}

// ---------------------------------------------------------------------------------------------
// Templates (§3, §4.2–§4.7)

/// Template.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Template {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) engine: String,
    pub(crate) exposed_modules: Vec<String>,
    pub(crate) libraries: Vec<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// TemplateDetail.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TemplateDetail {
    pub(crate) template: Template,
    pub(crate) settings: Settings,
    /// Oldest first.
    pub(crate) capabilities: Vec<Capability>,
    /// In run order.
    pub(crate) startup_files: Vec<StartupFile>,
}

/// Settings.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Settings {
    pub(crate) template_id: Uuid,
    pub(crate) updated_at: String,
    pub(crate) limits: Limits,
    pub(crate) resolver: Resolver,
    pub(crate) runtime: Runtime,
}

/// `Settings.limits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct Limits {
    pub(crate) cpu_ms: u32,
    pub(crate) wall_ms: u32,
    pub(crate) mem_mb: u32,
    pub(crate) max_events: u32,
    pub(crate) max_output_kb: u32,
}

/// `Settings.resolver`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct Resolver {
    pub(crate) roots: Vec<String>,
    pub(crate) extensions: Vec<String>,
    pub(crate) allow_absolute_repo_imports: bool,
}

/// `Settings.runtime`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct Runtime {
    pub(crate) esm: bool,
    pub(crate) strict: bool,
    pub(crate) console: bool,
}

/// Capability.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Capability {
    pub(crate) id: Uuid,
    pub(crate) template_id: Uuid,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) enabled: bool,
    /// As sent.
    #[schema(value_type = Object)]
    pub(crate) config: RawJson,
    pub(crate) created_at: String,
}

/// StartupFile.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StartupFile {
    pub(crate) id: Uuid,
    pub(crate) template_id: Uuid,
    /// Cleaned relative path.
    pub(crate) path: String,
    pub(crate) order_index: i32,
    /// Always `"eval"`.
    pub(crate) mode: String,
    pub(crate) created_at: String,
}

/// `201` body of `POST …/modules` and `POST …/libraries`: `{"template_id", "name"}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TemplateEntry {
    pub(crate) template_id: Uuid,
    pub(crate) name: String,
}

/// `DELETE /templates/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TemplateDeleted {
    pub(crate) status: StatusOk,
    pub(crate) template_id: Uuid,
}

/// `DELETE …/capabilities/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CapabilityDeleted {
    pub(crate) status: StatusOk,
    pub(crate) template_id: Uuid,
    pub(crate) capability_id: Uuid,
}

/// `DELETE …/startup-files/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StartupFileDeleted {
    pub(crate) status: StatusOk,
    pub(crate) template_id: Uuid,
    pub(crate) startup_file_id: Uuid,
}

/// `DELETE …/modules/{name}` and `DELETE …/libraries/{name}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EntryDeleted {
    pub(crate) status: StatusOk,
    pub(crate) template_id: Uuid,
    pub(crate) name: String,
}

// ---------------------------------------------------------------------------------------------
// Sessions (§3, §4.8)

/// Session.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Session {
    pub(crate) id: Uuid,
    pub(crate) template_id: Uuid,
    pub(crate) workspace_id: String,
    pub(crate) base_commit_oid: String,
    /// Exactly as sent.
    pub(crate) worktree_path: String,
    /// `starting`, `ready`, `crashed` or `closed`.
    pub(crate) status: String,
    pub(crate) engine: String,
    #[schema(required = true)]
    pub(crate) pid: Option<u32>,
    #[schema(required = true)]
    pub(crate) last_error: Option<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    #[schema(required = true)]
    pub(crate) closed_at: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Executions and events (§3, §4.9, §7)

/// Execution (in lists, without events).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Execution {
    pub(crate) id: Uuid,
    pub(crate) session_id: Uuid,
    /// `repl`, `run_file` or `startup`.
    pub(crate) kind: String,
    /// `running`, `ok`, `error`, `timeout` or `cancelled`.
    pub(crate) status: String,
    #[schema(required = true)]
    pub(crate) input: Option<String>,
    #[schema(required = true)]
    pub(crate) path: Option<String>,
    #[schema(required = true, value_type = Option<Object>)]
    pub(crate) args: Option<RawJson>,
    #[schema(required = true, value_type = Option<HashMap<String, String>>)]
    pub(crate) env: Option<RawJson>,
    /// The value payload when `ok`.
    #[schema(required = true, value_type = Option<Object>)]
    pub(crate) result: Option<RawJson>,
    #[schema(required = true)]
    pub(crate) error: Option<ExecutionError>,
    pub(crate) metrics: Metrics,
    pub(crate) started_at: String,
    #[schema(required = true)]
    pub(crate) ended_at: Option<String>,
}

/// `Execution.error`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExecutionError {
    pub(crate) code: String,
    pub(crate) message: String,
    #[schema(required = true)]
    pub(crate) name: Option<String>,
    #[schema(required = true)]
    pub(crate) stack: Option<String>,
}

/// `Execution.metrics`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Metrics {
    pub(crate) wall_ms: u64,
    pub(crate) cpu_ms: u64,
    pub(crate) event_count: u64,
    pub(crate) output_bytes: u64,
}

/// ExecutionDetail: an [`Execution`] plus every event in `seq` order.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExecutionDetail {
    #[serde(flatten)]
    pub(crate) execution: Execution,
    pub(crate) events: Vec<Event>,
}

/// Event.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Event {
    pub(crate) execution_id: Uuid,
    pub(crate) seq: u64,
    pub(crate) ts: String,
    #[serde(rename = "type")]
    pub(crate) event_type: String,
    /// The stored payload, verbatim.
    #[schema(value_type = Object)]
    pub(crate) payload: RawJson,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    const SID: &str = "5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29";
    const EID: &str = "0e7a3c9b-1111-4222-8333-944445555666";
    const TS: &str = "2026-11-23T22:40:01.123Z";

    fn id(s: &str) -> Uuid {
        Uuid::parse_str(s).unwrap()
    }

    fn raw(s: &str) -> RawJson {
        raw_json(s.to_owned()).unwrap()
    }

    fn check<T: Serialize>(value: &T, expected: &str) {
        assert_eq!(serde_json::to_string(value).unwrap(), expected);
    }

    fn execution(status: &str) -> Execution {
        Execution {
            id: id(EID),
            session_id: id(SID),
            kind: "run_file".into(),
            status: status.into(),
            input: None,
            path: Some("main.js".into()),
            args: Some(raw(r#"{"z":1.50,"a":null}"#)),
            env: Some(raw("{}")),
            result: Some(raw(r#"{"type":"number","preview":"42","json":42}"#)),
            error: None,
            metrics: Metrics {
                wall_ms: 4,
                cpu_ms: 1,
                event_count: 1,
                output_bytes: 105,
            },
            started_at: TS.into(),
            ended_at: None,
        }
    }

    #[test]
    fn templates_settings_capabilities() {
        let template = Template {
            id: id(SID),
            name: "analytics".into(),
            engine: "quickjs".into(),
            exposed_modules: vec!["fs".into()],
            libraries: vec![],
            created_at: TS.into(),
            updated_at: TS.into(),
        };
        check(
            &template,
            &format!(
                r#"{{"id":"{SID}","name":"analytics","engine":"quickjs","exposed_modules":["fs"],"libraries":[],"created_at":"{TS}","updated_at":"{TS}"}}"#
            ),
        );
        let settings = Settings {
            template_id: id(SID),
            updated_at: TS.into(),
            limits: Limits {
                cpu_ms: 5000,
                wall_ms: 30000,
                mem_mb: 128,
                max_events: 1000,
                max_output_kb: 512,
            },
            resolver: Resolver {
                roots: vec![],
                extensions: vec![".js".into(), ".mjs".into()],
                allow_absolute_repo_imports: false,
            },
            runtime: Runtime {
                esm: false,
                strict: false,
                console: true,
            },
        };
        check(
            &settings,
            &format!(
                r#"{{"template_id":"{SID}","updated_at":"{TS}","limits":{{"cpu_ms":5000,"wall_ms":30000,"mem_mb":128,"max_events":1000,"max_output_kb":512}},"resolver":{{"roots":[],"extensions":[".js",".mjs"],"allow_absolute_repo_imports":false}},"runtime":{{"esm":false,"strict":false,"console":true}}}}"#
            ),
        );
        let capability = Capability {
            id: id(EID),
            template_id: id(SID),
            kind: "module".into(),
            name: "db".into(),
            enabled: true,
            config: raw(r#"{"z":1.0,"a":null}"#),
            created_at: TS.into(),
        };
        check(
            &capability,
            &format!(
                r#"{{"id":"{EID}","template_id":"{SID}","kind":"module","name":"db","enabled":true,"config":{{"z":1.0,"a":null}},"created_at":"{TS}"}}"#
            ),
        );
        let startup = StartupFile {
            id: id(EID),
            template_id: id(SID),
            path: "a.js".into(),
            order_index: -1,
            mode: "eval".into(),
            created_at: TS.into(),
        };
        check(
            &startup,
            &format!(
                r#"{{"id":"{EID}","template_id":"{SID}","path":"a.js","order_index":-1,"mode":"eval","created_at":"{TS}"}}"#
            ),
        );
        let detail = TemplateDetail {
            template,
            settings,
            capabilities: vec![capability],
            startup_files: vec![startup],
        };
        let text = serde_json::to_string(&detail).unwrap();
        assert!(
            text.starts_with(r#"{"template":{"id""#)
                && text.contains(r#"},"settings":{"template_id""#)
        );
        assert!(text.contains(r#"],"startup_files":[{"#));
        check(
            &TemplateEntry {
                template_id: id(SID),
                name: "fs".into(),
            },
            &format!(r#"{{"template_id":"{SID}","name":"fs"}}"#),
        );
        check(
            &TemplateDeleted {
                status: StatusOk,
                template_id: id(SID),
            },
            &format!(r#"{{"status":"ok","template_id":"{SID}"}}"#),
        );
        check(
            &CapabilityDeleted {
                status: StatusOk,
                template_id: id(SID),
                capability_id: id(EID),
            },
            &format!(r#"{{"status":"ok","template_id":"{SID}","capability_id":"{EID}"}}"#),
        );
        check(
            &StartupFileDeleted {
                status: StatusOk,
                template_id: id(SID),
                startup_file_id: id(EID),
            },
            &format!(r#"{{"status":"ok","template_id":"{SID}","startup_file_id":"{EID}"}}"#),
        );
        check(
            &EntryDeleted {
                status: StatusOk,
                template_id: id(SID),
                name: "lodash".into(),
            },
            &format!(r#"{{"status":"ok","template_id":"{SID}","name":"lodash"}}"#),
        );
    }

    #[test]
    fn sessions_and_ops() {
        let session = Session {
            id: id(SID),
            template_id: id(EID),
            workspace_id: "ws-42".into(),
            base_commit_oid: "9fce".into(),
            worktree_path: "/srv/wt".into(),
            status: "ready".into(),
            engine: "quickjs".into(),
            pid: Some(48211),
            last_error: None,
            created_at: TS.into(),
            updated_at: TS.into(),
            closed_at: None,
        };
        check(
            &session,
            &format!(
                r#"{{"id":"{SID}","template_id":"{EID}","workspace_id":"ws-42","base_commit_oid":"9fce","worktree_path":"/srv/wt","status":"ready","engine":"quickjs","pid":48211,"last_error":null,"created_at":"{TS}","updated_at":"{TS}","closed_at":null}}"#
            ),
        );
        check(
            &Health {
                status: StatusOk,
                version: "1.0.0".into(),
                engine: "quickjs".into(),
            },
            r#"{"status":"ok","version":"1.0.0","engine":"quickjs"}"#,
        );
        let summary = RuntimeSummary {
            active_sessions: 1,
            active_session_ids: vec![id(SID)],
            workers: vec![WorkerSummary {
                session_id: id(SID),
                pid: 7,
                rss_kb: 21480,
                cpu_ms: 312,
                started_at: TS.into(),
            }],
            pool: PoolSummary { warm: 2, target: 2 },
        };
        check(
            &summary,
            &format!(
                r#"{{"active_sessions":1,"active_session_ids":["{SID}"],"workers":[{{"session_id":"{SID}","pid":7,"rss_kb":21480,"cpu_ms":312,"started_at":"{TS}"}}],"pool":{{"warm":2,"target":2}}}}"#
            ),
        );
        check(
            &CatalogModule {
                id: "fs".into(),
                description: "d".into(),
                functions: vec!["readFileSync".into()],
                requires_capability: None,
            },
            r#"{"id":"fs","description":"d","functions":["readFileSync"],"requires_capability":null}"#,
        );
        check(
            &CatalogLibrary {
                id: "dayjs".into(),
                version: "1.11.10".into(),
                global: "dayjs".into(),
                package: "dayjs".into(),
                bundle: "dayjs.min.js".into(),
                cached: false,
            },
            r#"{"id":"dayjs","version":"1.11.10","global":"dayjs","package":"dayjs","bundle":"dayjs.min.js","cached":false}"#,
        );
    }

    #[test]
    fn executions_and_events() {
        let text = format!(
            r#"{{"id":"{EID}","session_id":"{SID}","kind":"run_file","status":"ok","input":null,"path":"main.js","args":{{"z":1.50,"a":null}},"env":{{}},"result":{{"type":"number","preview":"42","json":42}},"error":null,"metrics":{{"wall_ms":4,"cpu_ms":1,"event_count":1,"output_bytes":105}},"started_at":"{TS}","ended_at":null"#
        );
        check(&execution("ok"), &format!("{text}}}"));
        let event = Event {
            execution_id: id(EID),
            seq: 1,
            ts: TS.into(),
            event_type: "input_echo".into(),
            payload: raw(r#"{"path":"main.js"}"#),
        };
        let event_text = format!(
            r#"{{"execution_id":"{EID}","seq":1,"ts":"{TS}","type":"input_echo","payload":{{"path":"main.js"}}}}"#
        );
        check(&event, &event_text);
        let detail = ExecutionDetail {
            execution: execution("ok"),
            events: vec![event],
        };
        check(&detail, &format!(r#"{text},"events":[{event_text}]}}"#));
        let mut failed = execution("error");
        failed.result = None;
        failed.args = None;
        failed.env = None;
        failed.error = Some(ExecutionError {
            code: "TIMEOUT".into(),
            message: "wall time limit exceeded (wall_ms=5)".into(),
            name: None,
            stack: None,
        });
        let text = serde_json::to_string(&failed).unwrap();
        assert!(text.contains(r#""args":null,"env":null,"result":null,"error":{"code":"TIMEOUT","message":"wall time limit exceeded (wall_ms=5)","name":null,"stack":null},"#), "{text}");
        assert!(raw_json("{bad".to_owned()).is_err());
    }

    #[tokio::test]
    async fn response_helpers() {
        let response = Created(TemplateEntry {
            template_id: id(SID),
            name: "fs".into(),
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let response = Json(vec![StatusOk]).into_response();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], br#"["ok"]"#);
        let empty: Vec<Template> = Vec::new();
        let body = Json(empty)
            .into_response()
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"[]");
    }
}
