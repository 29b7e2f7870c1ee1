//! Handlers of `/sessions/**` (spec §4.8).

use axum::extract::State;

use super::convert;
use super::dto::{Created, Json, Session};
use super::error::ApiError;
use super::extract::{NoQuery, PathParams, StrictJson, StrictQuery};
use super::requests::{CreateSession, ListSessions};
use crate::model::{SessionId, SessionStatus, TemplateId};
use crate::service::Service;
use crate::service::sessions::NewSession;

type Res<T> = Result<T, ApiError>;

fn session_id(p: &PathParams) -> Res<SessionId> {
    Ok(SessionId::from_uuid(p.id("session_id")?))
}

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

pub(crate) async fn list(
    State(svc): State<Service>,
    StrictQuery(q): StrictQuery<ListSessions>,
) -> Res<Json<Vec<Session>>> {
    let status = q.status.and_then(|s| SessionStatus::parse(s.as_str()));
    let sessions = svc.store.list_sessions(status).await?;
    Ok(Json(sessions.into_iter().map(convert::session).collect()))
}

pub(crate) async fn get(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Session>> {
    let session = svc.store.get_session(session_id(&p)?).await?;
    Ok(Json(convert::session(session)))
}

pub(crate) async fn close(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Session>> {
    let session = svc.close_session(session_id(&p)?).await?;
    Ok(Json(convert::session(session)))
}

pub(crate) async fn restart(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Session>> {
    let session = svc.restart_session(session_id(&p)?).await?;
    Ok(Json(convert::session(session)))
}
