//! Handlers of `/sessions/**` (spec §4.8).

use axum::extract::State;

use super::convert;
use super::dto::{Created, Json, Session};
use super::error::{ApiError, Envelope as ErrorEnvelope};
use super::extract::{NoQuery, PathParams, StrictJson, StrictQuery};
use super::requests::{CreateSession, ListSessions};
use crate::model::{SessionId, SessionStatus, TemplateId};
use crate::service::Service;
use crate::service::sessions::NewSession;

type Res<T> = Result<T, ApiError>;

fn session_id(p: &PathParams) -> Res<SessionId> {
    Ok(SessionId::from_uuid(p.id("session_id")?))
}

#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", operation_id = "create_session",
    request_body = CreateSession,
    responses(
        (status = 201, description = "The session, `ready`, once it has fully started", body = Session),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
        (status = 409, description = "`SESSION_NOT_READY` (closed while starting)", body = ErrorEnvelope),
        (status = 422, description = "`INVALID_WORKTREE`, `ENGINE_UNSUPPORTED`, `LIBRARY_NOT_CACHED`, `STARTUP_FAILED`", body = ErrorEnvelope),
        (status = 500, description = "`WORKER_START_FAILED`, `INTERNAL`", body = ErrorEnvelope),
    ))]
pub(crate) async fn create(
    State(svc): State<Service>,
    StrictJson(req): StrictJson<CreateSession>,
) -> Res<Created<Session>> {
    let session = svc
        .create_session(NewSession {
            template_id: TemplateId::from_uuid(req.template_id),
            workspace_id: req.workspace_id,
            base_commit_oid: req.base_commit_oid,
            worktree_path: req.worktree_path,
        })
        .await?;
    Ok(Created(convert::session(session)))
}

#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", operation_id = "list_sessions",
    params(ListSessions),
    responses((status = 200, description = "Sessions, newest first", body = Vec<Session>)))]
pub(crate) async fn list(
    State(svc): State<Service>,
    StrictQuery(q): StrictQuery<ListSessions>,
) -> Res<Json<Vec<Session>>> {
    let status = q.status.and_then(|s| SessionStatus::parse(s.as_str()));
    let sessions = svc.store.list_sessions(status).await?;
    Ok(Json(sessions.into_iter().map(convert::session).collect()))
}

#[utoipa::path(get, path = "/api/v1/sessions/{session_id}", tag = "sessions", operation_id = "get_session",
    params(("session_id" = Uuid, Path, description = "Session id (hyphenated UUID)")),
    responses(
        (status = 200, description = "The session", body = Session),
        (status = 404, description = "`SESSION_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn get(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Session>> {
    let session = svc.store.get_session(session_id(&p)?).await?;
    Ok(Json(convert::session(session)))
}

#[utoipa::path(post, path = "/api/v1/sessions/{session_id}/close", tag = "sessions", operation_id = "close_session",
    description = "Idempotent. `DELETE /api/v1/sessions/{session_id}` is an alias.",
    params(("session_id" = Uuid, Path, description = "Session id (hyphenated UUID)")),
    responses(
        (status = 200, description = "The session, `closed`", body = Session),
        (status = 404, description = "`SESSION_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn close(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Session>> {
    let session = svc.close_session(session_id(&p)?).await?;
    Ok(Json(convert::session(session)))
}

#[utoipa::path(post, path = "/api/v1/sessions/{session_id}/restart", tag = "sessions", operation_id = "restart_session",
    params(("session_id" = Uuid, Path, description = "Session id (hyphenated UUID)")),
    responses(
        (status = 200, description = "The session, `ready` again with a new worker", body = Session),
        (status = 404, description = "`SESSION_NOT_FOUND`", body = ErrorEnvelope),
        (status = 409, description = "`SESSION_NOT_READY`", body = ErrorEnvelope),
        (status = 422, description = "`INVALID_WORKTREE`, `LIBRARY_NOT_CACHED`, `STARTUP_FAILED`", body = ErrorEnvelope),
        (status = 500, description = "`WORKER_START_FAILED`, `INTERNAL`", body = ErrorEnvelope),
    ))]
pub(crate) async fn restart(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Session>> {
    let session = svc.restart_session(session_id(&p)?).await?;
    Ok(Json(convert::session(session)))
}
