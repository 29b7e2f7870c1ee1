//! Handlers of `/executions/**` (spec §4.9, §7.7), including the event stream.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::convert;
use super::dto::{Json, json_response, json_typed};
use super::error::{ApiError, Envelope as ErrorEnvelope};
use super::extract::{NoQuery, PathParams, StrictJson, StrictQuery, last_event_id};
use super::requests::{ListEvents, ListExecutions, ReplRequest, RunFileRequest};
use crate::model::{ExecutionDetail, ExecutionId, ExecutionKind, SessionId};
use crate::service::Service;
use crate::service::executions::{ExecInput, Recorded};

type Res<T> = Result<T, ApiError>;

/// Events per store read when a detail is sent in pages.
const DETAIL_PAGE: u64 = 500;

fn execution_id(p: &PathParams) -> Res<ExecutionId> {
    Ok(ExecutionId::from_uuid(p.id("execution_id")?))
}

/// 201 with the detail, or 422 when an output limit ended it (the row is stored either way).
fn answer(svc: &Service, recorded: Recorded) -> Res<Response> {
    let id = recorded.detail.execution.id;
    if let Some(limit) = recorded.output_limit {
        return Err(ApiError::OutputLimitExceeded {
            execution_id: id.as_uuid(),
            limit,
        });
    }
    detail_response(svc, StatusCode::CREATED, recorded.detail)
}

/// An ExecutionDetail answer: one JSON body, or for a `paged` detail the same JSON written
/// page by page as the client reads it, so that no more than one page of events is held.
fn detail_response(svc: &Service, status: StatusCode, detail: ExecutionDetail) -> Res<Response> {
    if !detail.paged {
        return Ok(json_response(status, &convert::execution_detail(detail)?));
    }
    let id = detail.execution.id;
    let through = detail.execution.metrics.event_count;
    // `{...}` of the row (the DTO flattens it first), then `,"events":[` ... `]}`.
    let mut head =
        serde_json::to_vec(&convert::execution(detail.execution)?).map_err(ApiError::internal)?;
    if head.pop() != Some(b'}') {
        return Err(ApiError::internal(
            "an execution did not serialise as an object",
        ));
    }
    head.extend_from_slice(br#","events":["#);
    let store = svc.store.clone();
    let pages = futures::stream::try_unfold(Some((head, 0_u64)), move |state| {
        let store = store.clone();
        async move {
            let Some((mut chunk, after)) = state else {
                return Ok(None);
            };
            if after >= through {
                chunk.extend_from_slice(b"]}");
                return Ok(Some((Bytes::from(chunk), None)));
            }
            let limit = u32::try_from((through - after).min(DETAIL_PAGE)).unwrap_or(1);
            let events = store.list_events(id, after, limit).await.map_err(|err| {
                tracing::warn!(execution_id = %id, error = %err, "execution detail ended early");
                std::io::Error::other(err)
            })?;
            let mut last = after;
            for event in events {
                if event.seq != last + 1 {
                    break;
                }
                last = event.seq;
                if last > 1 {
                    chunk.push(b',');
                }
                let event = convert::event(event).map_err(std::io::Error::other)?;
                serde_json::to_writer(&mut chunk, &event).map_err(std::io::Error::other)?;
            }
            if last == after {
                tracing::warn!(execution_id = %id, seq = after + 1, "execution detail ended early: an event is missing");
                return Err(std::io::Error::other(
                    "an event of the execution is missing",
                ));
            }
            Ok(Some((Bytes::from(chunk), Some((Vec::new(), last)))))
        }
    });
    Ok(json_typed(
        (status, Body::from_stream(pages)).into_response(),
    ))
}

#[utoipa::path(post, path = "/api/v1/executions/repl", tag = "executions", operation_id = "execute_repl",
    request_body = ReplRequest,
    responses(
        (status = 201, description = "The ended execution, whatever its final status", body = super::dto::ExecutionDetail),
        (status = 404, description = "`SESSION_NOT_FOUND`", body = ErrorEnvelope),
        (status = 409, description = "`SESSION_NOT_READY`, `SESSION_BUSY`", body = ErrorEnvelope),
        (status = 422, description = "`OUTPUT_LIMIT_EXCEEDED` (the execution is stored)", body = ErrorEnvelope),
    ))]
pub(crate) async fn repl(
    State(svc): State<Service>,
    StrictJson(req): StrictJson<ReplRequest>,
) -> Res<Response> {
    let input = ExecInput {
        kind: ExecutionKind::Repl,
        input: Some(req.input.clone()),
        path: None,
        args: None,
        env: None,
        wire_kind: protocol::ExecKind::Repl,
        name: "<repl>".into(),
        source: req.input,
    };
    let recorded = svc
        .execute(SessionId::from_uuid(req.session_id), input)
        .await?;
    answer(&svc, recorded)
}

#[utoipa::path(post, path = "/api/v1/executions/run-file", tag = "executions", operation_id = "execute_run_file",
    request_body = RunFileRequest,
    responses(
        (status = 201, description = "The ended execution, whatever its final status", body = super::dto::ExecutionDetail),
        (status = 404, description = "`SESSION_NOT_FOUND`, `FILE_NOT_FOUND`", body = ErrorEnvelope),
        (status = 409, description = "`SESSION_NOT_READY`, `SESSION_BUSY`", body = ErrorEnvelope),
        (status = 422, description = "`INVALID_PATH`, `OUTPUT_LIMIT_EXCEEDED` (the execution is stored)", body = ErrorEnvelope),
    ))]
pub(crate) async fn run_file(
    State(svc): State<Service>,
    StrictJson(req): StrictJson<RunFileRequest>,
) -> Res<Response> {
    let session_id = SessionId::from_uuid(req.session_id);
    let (path, source) = svc.run_file_source(session_id, &req.path).await?;
    let args: serde_json::Value =
        serde_json::from_str(req.args.get()).map_err(ApiError::internal)?;
    let env: serde_json::Value =
        serde_json::from_str(req.env_json().get()).map_err(ApiError::internal)?;
    let input = ExecInput {
        kind: ExecutionKind::RunFile,
        input: None,
        path: Some(path.clone()),
        args: Some(args),
        env: Some(env),
        wire_kind: protocol::ExecKind::RunFile {
            args_json: req.args.get().to_string(),
            env: req.env.clone(),
        },
        name: path,
        source,
    };
    let recorded = svc.execute(session_id, input).await?;
    answer(&svc, recorded)
}

#[utoipa::path(get, path = "/api/v1/executions", tag = "executions", operation_id = "list_executions",
    params(ListExecutions),
    responses(
        (status = 200, description = "The session's executions without events, newest first", body = Vec<super::dto::Execution>),
        (status = 404, description = "`SESSION_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn list(
    State(svc): State<Service>,
    StrictQuery(q): StrictQuery<ListExecutions>,
) -> Res<Json<Vec<super::dto::Execution>>> {
    let rows = svc
        .store
        .list_executions(SessionId::from_uuid(q.session_id), q.limit)
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(convert::execution)
            .collect::<Res<_>>()?,
    ))
}

#[utoipa::path(get, path = "/api/v1/executions/{execution_id}", tag = "executions", operation_id = "get_execution",
    params(("execution_id" = Uuid, Path, description = "Execution id (hyphenated UUID)")),
    responses(
        (status = 200, description = "The execution with every event", body = super::dto::ExecutionDetail),
        (status = 404, description = "`EXECUTION_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn get(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Response> {
    let detail = svc.store.get_execution(execution_id(&p)?).await?;
    detail_response(&svc, StatusCode::OK, detail)
}

#[utoipa::path(post, path = "/api/v1/executions/{execution_id}/cancel", tag = "executions", operation_id = "cancel_execution",
    params(("execution_id" = Uuid, Path, description = "Execution id (hyphenated UUID)")),
    responses(
        (status = 200, description = "The final execution, `cancelled`", body = super::dto::ExecutionDetail),
        (status = 404, description = "`EXECUTION_NOT_FOUND`", body = ErrorEnvelope),
        (status = 409, description = "`EXECUTION_FINISHED`", body = ErrorEnvelope),
    ))]
pub(crate) async fn cancel(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Response> {
    let detail = svc.cancel(execution_id(&p)?).await?;
    detail_response(&svc, StatusCode::OK, detail)
}

#[utoipa::path(get, path = "/api/v1/executions/{execution_id}/events", tag = "executions", operation_id = "list_events",
    params(
        ("execution_id" = Uuid, Path, description = "Execution id (hyphenated UUID)"),
        ListEvents,
        ("Last-Event-ID" = Option<String>, Header, nullable = false, description = "With `follow=true`: resume after this `seq` when it is a decimal integer larger than `after_seq`"),
    ),
    responses(
        (status = 200, description = "Events with `seq > after_seq`, ascending; with `follow=true` a Server-Sent Events stream (`id`/`event`/`data` records, then `event: end` with the final Execution)",
            content(
                (Vec<super::dto::Event> = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 404, description = "`EXECUTION_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn events(
    State(svc): State<Service>,
    p: PathParams,
    headers: HeaderMap,
    StrictQuery(q): StrictQuery<ListEvents>,
) -> Res<Response> {
    let id = execution_id(&p)?;
    let after = u64::try_from(q.after_seq).unwrap_or(0);
    if !q.follow {
        let events = svc.store.list_events(id, after, q.limit).await?;
        return Ok(Json(
            events
                .into_iter()
                .map(convert::event)
                .collect::<Res<Vec<_>>>()?,
        )
        .into_response());
    }
    // Existence is checked before the stream starts, so a 404 uses the JSON envelope.
    svc.store.get_execution_row(id).await?;
    let header_after = last_event_id(&headers).unwrap_or(0);
    Ok(stream(svc, id, after.max(header_after)))
}

/// Spec §7.7: replay, then live events as they are committed, then `end`.
fn stream(svc: Service, id: ExecutionId, after: u64) -> Response {
    struct State {
        svc: Service,
        id: ExecutionId,
        last: u64,
        done: bool,
    }
    let state = State {
        svc,
        id,
        last: after,
        done: false,
    };
    let body = futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let control = st.svc.registry.execution(st.id);
        let mut progress = control.as_ref().map(|c| c.progress.clone());
        loop {
            let (row, events) = match st.svc.store.follow_events(st.id, st.last, 500).await {
                Ok(found) => found,
                Err(err) => {
                    tracing::warn!(error = %err, "event stream ended early");
                    return None;
                }
            };
            let mut chunk = String::new();
            let count = events.len();
            for event in events {
                st.last = event.seq;
                let seq = event.seq;
                let kind = event.event_type.as_str();
                let data = convert::event(event)
                    .ok()
                    .and_then(|e| serde_json::to_string(&e).ok())
                    .unwrap_or_default();
                chunk.push_str(&format!("id: {seq}\nevent: {kind}\ndata: {data}\n\n"));
            }
            if row.status.is_terminal() && count < 500 {
                let data = convert::execution(row)
                    .ok()
                    .and_then(|e| serde_json::to_string(&e).ok())
                    .unwrap_or_default();
                chunk.push_str(&format!("event: end\ndata: {data}\n\n"));
                st.done = true;
            }
            if !chunk.is_empty() {
                return Some((Ok::<_, std::convert::Infallible>(Bytes::from(chunk)), st));
            }
            // Nothing new yet: wait for the next commit, or send a keep-alive after 15 s.
            let waited = match progress.as_mut() {
                Some(p) => tokio::time::timeout(Duration::from_secs(15), p.changed()).await,
                None => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(Ok(()))
                }
            };
            match waited {
                Err(_) => return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), st)),
                Ok(Err(_)) => progress = None,
                Ok(Ok(())) => {}
            }
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
