//! HTTP layer: router, extractors, error envelope and DTOs (spec §1, §2).
//!
//! The edge (`middleware::wrap`) applies the §1 conventions around the endpoint routes;
//! handlers take `extract::StrictJson`/`StrictQuery`/`PathParams` inputs from `requests`,
//! return `dto` bodies, and fail with `error::ApiError`. A handler, in §1 check order (the body
//! is decoded by the extractor, path ids are validated next, then lookups and the endpoint's
//! own checks):
//!
//! ```text
//! async fn add_startup_file(State(svc): State<Service>, p: PathParams,
//!                           StrictJson(req): StrictJson<AddStartupFile>) -> Result<Created<StartupFile>, ApiError> {
//!     let template_id = p.id("template_id")?;          // 400 VALIDATION_ERROR
//!     let template = svc.template(template_id).await?;  // 404 TEMPLATE_NOT_FOUND
//!     let path = req.check_path()?;                     // 422 INVALID_PATH
//!     req.check_mode()?;                                // 422 STARTUP_MODE_UNSUPPORTED
//!     ...
//! }
//! ```
//!
//! Handlers without a body take `StrictQuery<NoQuery>` (or their documented query type) so that
//! undocumented query parameters are refused; `StrictJson` refuses them itself.
mod convert;
pub(crate) mod dto;
pub(crate) mod error;
mod executions;
pub(crate) mod extract;
pub(crate) mod json;
pub(crate) mod middleware;
mod openapi;
mod ops;
pub(crate) mod paths;
pub(crate) mod requests;
mod sessions;
mod templates;

use axum::Router;
use axum::routing::{delete, get, post};
use tokio_util::sync::CancellationToken;

use crate::service::Service;

/// Every route of spec §4 under `/api/v1`, wrapped in the §1 edge (request ids, 503 gate, auth,
/// path decoding, JSON 404/405, body limit).
pub(crate) fn router(service: Service, token: Option<String>) -> Router {
    let shutting_down: CancellationToken = service.shutdown.clone();
    let api = Router::new()
        .route("/api/v1/health", get(ops::health))
        .route("/api/v1/runtime/summary", get(ops::runtime_summary))
        .route("/api/v1/metrics", get(ops::metrics))
        .route("/api/v1/catalog/modules", get(ops::catalog_modules))
        .route("/api/v1/catalog/libraries", get(ops::catalog_libraries))
        .route("/api/v1/openapi.json", get(openapi::openapi))
        .route(
            "/api/v1/templates",
            post(templates::create).get(templates::list),
        )
        .route(
            "/api/v1/templates/{template_id}",
            get(templates::get).delete(templates::delete),
        )
        .route(
            "/api/v1/templates/{template_id}/settings",
            get(templates::get_settings).patch(templates::patch_settings),
        )
        .route(
            "/api/v1/templates/{template_id}/capabilities",
            post(templates::add_capability).get(templates::list_capabilities),
        )
        .route(
            "/api/v1/templates/{template_id}/capabilities/{capability_id}",
            delete(templates::delete_capability),
        )
        .route(
            "/api/v1/templates/{template_id}/startup-files",
            post(templates::add_startup_file).get(templates::list_startup_files),
        )
        .route(
            "/api/v1/templates/{template_id}/startup-files/{startup_file_id}",
            delete(templates::delete_startup_file),
        )
        .route(
            "/api/v1/templates/{template_id}/modules",
            post(templates::add_module).get(templates::list_modules),
        )
        .route(
            "/api/v1/templates/{template_id}/modules/{name}",
            delete(templates::delete_module),
        )
        .route(
            "/api/v1/templates/{template_id}/libraries",
            post(templates::add_library).get(templates::list_libraries),
        )
        .route(
            "/api/v1/templates/{template_id}/libraries/{name}",
            delete(templates::delete_library),
        )
        .route(
            "/api/v1/sessions",
            post(sessions::create).get(sessions::list),
        )
        .route(
            "/api/v1/sessions/{session_id}",
            get(sessions::get).delete(sessions::close),
        )
        .route("/api/v1/sessions/{session_id}/close", post(sessions::close))
        .route(
            "/api/v1/sessions/{session_id}/restart",
            post(sessions::restart),
        )
        .route("/api/v1/executions/repl", post(executions::repl))
        .route("/api/v1/executions/run-file", post(executions::run_file))
        .route("/api/v1/executions", get(executions::list))
        .route("/api/v1/executions/{execution_id}", get(executions::get))
        .route(
            "/api/v1/executions/{execution_id}/events",
            get(executions::events),
        )
        .route(
            "/api/v1/executions/{execution_id}/cancel",
            post(executions::cancel),
        );
    let routes = api.with_state(service);
    middleware::wrap(
        routes,
        middleware::EdgeConfig {
            token,
            shutting_down,
        },
    )
}
