//! Test fixtures for the store: a temp-dir database and row builders.

use tempfile::TempDir;

use super::handle::Store;
use crate::model::{
    Event, EventType, ExecMetrics, Execution, ExecutionId, ExecutionKind, ExecutionStatus, Session,
    SessionId, SessionStatus, TemplateId, Timestamp,
};

/// A fresh store in its own temp directory; keep the directory alive while using it.
pub(super) async fn open_temp() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("vm-system.db")).await.unwrap();
    (dir, store)
}

/// A new template with a unique name.
pub(super) async fn template(store: &Store) -> TemplateId {
    let name = TemplateId::new_v4().to_string();
    let template = store
        .create_template(name, "quickjs".into(), ts(0))
        .await
        .unwrap();
    template.id
}

pub(super) fn ts(millis: i64) -> Timestamp {
    Timestamp::from_millis(millis)
}

/// A session row with a new id, created (and last updated) at `created_at`.
pub(super) fn session(
    template_id: TemplateId,
    status: SessionStatus,
    created_at: Timestamp,
) -> Session {
    Session {
        id: SessionId::new_v4(),
        template_id,
        workspace_id: "ws-42".into(),
        base_commit_oid: "9fceb02d0ae598e95dc970b74767f19372d61af8".into(),
        worktree_path: "/srv/wt/ws-42".into(),
        status,
        engine: "quickjs".into(),
        pid: None,
        last_error: None,
        created_at,
        updated_at: created_at,
        closed_at: (status == SessionStatus::Closed).then_some(created_at),
    }
}

/// A running REPL execution and its `input_echo` event.
pub(super) fn repl_execution(
    session_id: SessionId,
    started_at: Timestamp,
    input: &str,
) -> (Execution, Event) {
    let id = ExecutionId::new_v4();
    let execution = Execution {
        id,
        session_id,
        kind: ExecutionKind::Repl,
        status: ExecutionStatus::Running,
        input: Some(input.to_owned()),
        path: None,
        args: None,
        env: None,
        result: None,
        error: None,
        metrics: ExecMetrics::default(),
        started_at,
        ended_at: None,
    };
    let payload = serde_json::json!({ "text": input }).to_string();
    let echo = Event {
        execution_id: id,
        seq: 1,
        ts: started_at,
        event_type: EventType::InputEcho,
        payload,
    };
    (execution, echo)
}

/// An event received at `1000 + seq` ms.
pub(super) fn event(
    execution_id: ExecutionId,
    seq: u64,
    event_type: EventType,
    payload: &str,
) -> Event {
    Event {
        execution_id,
        seq,
        ts: ts(1000 + i64::try_from(seq).unwrap()),
        event_type,
        payload: payload.to_owned(),
    }
}
