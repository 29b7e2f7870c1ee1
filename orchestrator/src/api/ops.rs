//! Handlers of health, runtime summary, metrics, catalogs and the OpenAPI document (spec §4.1).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::dto::{
    CatalogLibrary, CatalogModule, Health, Json, PoolSummary, RuntimeSummary, StatusOk,
    WorkerSummary,
};
use super::error::ApiError;
use super::extract::{NoQuery, StrictQuery};
use crate::catalog;
use crate::model::{SessionStatus, Timestamp};
use crate::service::Service;

type Res<T> = Result<T, ApiError>;

#[utoipa::path(get, path = "/api/v1/health", tag = "ops", operation_id = "health",
    description = "Needs no authentication.",
    responses((status = 200, description = "The daemon is up", body = Health)))]
pub(crate) async fn health(State(svc): State<Service>, _q: StrictQuery<NoQuery>) -> Json<Health> {
    Json(Health {
        status: StatusOk,
        version: env!("CARGO_PKG_VERSION").into(),
        engine: svc.engine.clone(),
    })
}

#[utoipa::path(get, path = "/api/v1/runtime/summary", tag = "ops", operation_id = "runtime_summary",
    responses((status = 200, description = "Active sessions, their workers and the warm pool", body = RuntimeSummary)))]
pub(crate) async fn runtime_summary(
    State(svc): State<Service>,
    _q: StrictQuery<NoQuery>,
) -> Json<RuntimeSummary> {
    let mut ids = Vec::new();
    let mut workers = Vec::new();
    for live in svc.registry.all() {
        let state = live.state();
        if !matches!(state.status, SessionStatus::Starting | SessionStatus::Ready) {
            continue;
        }
        ids.push(live.id.as_uuid());
        if let Some(worker) = &state.worker {
            let usage = worker.usage();
            let started = worker
                .started_at()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
                .unwrap_or(0);
            workers.push(WorkerSummary {
                session_id: live.id.as_uuid(),
                pid: worker.pid(),
                rss_kb: usage.map_or(0, |u| u.rss_kb),
                cpu_ms: usage.map_or(0, |u| u.cpu_ms),
                started_at: Timestamp::from_millis(started).to_rfc3339(),
            });
        }
    }
    Json(RuntimeSummary {
        active_sessions: ids.len() as u64,
        active_session_ids: ids,
        workers,
        pool: PoolSummary {
            warm: svc.pool.warm() as u64,
            target: svc.pool.target() as u64,
        },
    })
}

#[utoipa::path(get, path = "/api/v1/metrics", tag = "ops", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain; version=0.0.4")))]
pub(crate) async fn metrics(State(svc): State<Service>, _q: StrictQuery<NoQuery>) -> Res<Response> {
    let counts = svc.store.counts_by_status().await?;
    let text = svc
        .metrics
        .render(counts, svc.pool.spawns_total(), svc.pool.warm() as u64);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/catalog/modules", tag = "ops", operation_id = "catalog_modules",
    responses((status = 200, description = "Catalog modules sorted by id", body = Vec<CatalogModule>)))]
pub(crate) async fn catalog_modules(_q: StrictQuery<NoQuery>) -> Json<Vec<CatalogModule>> {
    Json(
        catalog::MODULES
            .iter()
            .map(|m| CatalogModule {
                id: m.id.into(),
                description: m.description.into(),
                functions: m.functions.iter().map(|f| (*f).to_string()).collect(),
                requires_capability: m.requires_capability.map(str::to_string),
            })
            .collect(),
    )
}

#[utoipa::path(get, path = "/api/v1/catalog/libraries", tag = "ops", operation_id = "catalog_libraries",
    responses((status = 200, description = "Catalog libraries sorted by id", body = Vec<CatalogLibrary>)))]
pub(crate) async fn catalog_libraries(
    State(svc): State<Service>,
    _q: StrictQuery<NoQuery>,
) -> Json<Vec<CatalogLibrary>> {
    Json(
        catalog::LIBRARIES
            .iter()
            .map(|l| CatalogLibrary {
                id: l.id.into(),
                version: l.version.into(),
                global: l.global.into(),
                package: l.package.into(),
                bundle: l.bundle.into(),
                cached: svc
                    .library_dir
                    .join(format!("{}-{}.js", l.id, l.version))
                    .is_file(),
            })
            .collect(),
    )
}
