//! Execution rows: begin (with the `input_echo` event), finish, CPU samples, get and list.

use rusqlite::{OptionalExtension, Row, Transaction};

use super::error::StoreError;
use super::events;
use super::handle::Store;
use super::sessions;
use super::sql::{Json, json_text};
use crate::model::{
    Event, EventType, ExecError, ExecMetrics, Execution, ExecutionDetail, ExecutionId,
    ExecutionOutcome, ExecutionStatus, SessionId, Timestamp,
};

impl Store {
    /// Inserts a `running` execution and its `input_echo` event (seq 1) in one transaction.
    /// Fails with `SessionBusy` if the session already has a running execution.
    pub(crate) async fn begin_execution(
        &self,
        execution: Execution,
        input_echo: Event,
    ) -> Result<(), StoreError> {
        self.begin_execution_with(execution, input_echo, Vec::new())
            .await
    }

    /// `begin_execution`, then appends `events` (which follow the `input_echo`), in one
    /// transaction.
    pub(crate) async fn begin_execution_with(
        &self,
        execution: Execution,
        input_echo: Event,
        events: Vec<Event>,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            begin(tx, &execution, input_echo)?;
            if events.is_empty() {
                Ok(())
            } else {
                events::append(tx, &events)
            }
        })
        .await
    }

    /// Ends an execution in one transaction, beginning it first when `begin` holds its row and
    /// `input_echo` (an execution that ended before its row was committed), and returns it with
    /// every one of its events. See [`Store::finish_execution`] for what is written. `now`: the
    /// write is short and its execution the only one running, so it goes through
    /// [`Store::write_now`] (committed on this thread when nothing else is being written).
    pub(crate) async fn end_execution(
        &self,
        begin_with: Option<(Execution, Event)>,
        id: ExecutionId,
        outcome: ExecutionOutcome,
        now: bool,
    ) -> Result<ExecutionDetail, StoreError> {
        let write = move |tx: &Transaction<'_>| match begin_with {
            Some((execution, input_echo)) => insert_ended(tx, execution, input_echo, id, outcome),
            None => {
                finish(tx, id, outcome)?;
                with_events(tx, load(tx, id)?)
            }
        };
        if now {
            self.write_now(write).await
        } else {
            self.write(write).await
        }
    }

    /// Ends a running execution in one transaction: stores `pending_events` and then the
    /// terminal event, and writes status, result, error, `wall_ms`, `cpu_ms` and
    /// `ended_at`. `event_count` and `output_bytes` count every stored event. Returns the
    /// final row. An execution that already ended fails with `ExecutionFinished`.
    #[cfg(test)]
    pub(crate) async fn finish_execution(
        &self,
        id: ExecutionId,
        outcome: ExecutionOutcome,
    ) -> Result<Execution, StoreError> {
        Ok(self
            .end_execution(None, id, outcome, false)
            .await?
            .execution)
    }

    /// Records the latest CPU sample of a running execution; returns false, changing
    /// nothing, if the execution has already ended.
    pub(crate) async fn update_execution_usage(
        &self,
        id: ExecutionId,
        wall_ms: u64,
        cpu_ms: u64,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let updated = tx
                .prepare_cached(
                    "UPDATE executions SET wall_ms = ?2, cpu_ms = ?3 \
                     WHERE id = ?1 AND status = 'running'",
                )?
                .execute((id, wall_ms, cpu_ms))?;
            if updated == 0 {
                require(tx, id)?;
            }
            Ok(updated > 0)
        })
        .await
    }

    /// The execution with every one of its events in `seq` order, or without them when they
    /// are too many to hold at once (`paged`, see [`with_events`]).
    pub(crate) async fn get_execution(
        &self,
        id: ExecutionId,
    ) -> Result<ExecutionDetail, StoreError> {
        self.read(move |tx| with_events(tx, load(tx, id)?)).await
    }

    /// The execution row alone, without its events.
    pub(crate) async fn get_execution_row(&self, id: ExecutionId) -> Result<Execution, StoreError> {
        self.read(move |tx| load(tx, id)).await
    }

    /// Up to `limit` executions of the session, newest first (`started_at`, then `id`,
    /// descending), without events.
    pub(crate) async fn list_executions(
        &self,
        session_id: SessionId,
        limit: u32,
    ) -> Result<Vec<Execution>, StoreError> {
        self.read(move |tx| {
            sessions::require(tx, session_id)?;
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions WHERE session_id = ?1
                 ORDER BY started_at DESC, id DESC LIMIT ?2"
            ))?;
            let rows = stmt
                .query_map((session_id, limit), execution_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}

const EXECUTION_COLUMNS: &str = "id, session_id, kind, status, input, path, args, env, \
     result, error_code, error_message, error_name, error_stack, wall_ms, cpu_ms, \
     event_count, output_bytes, started_at, ended_at";

fn execution_row(row: &Row<'_>) -> rusqlite::Result<Execution> {
    let error_code: Option<String> = row.get("error_code")?;
    let error = match error_code {
        Some(code) => Some(ExecError {
            code,
            message: row.get("error_message")?,
            name: row.get("error_name")?,
            stack: row.get("error_stack")?,
        }),
        None => None,
    };
    Ok(Execution {
        id: row.get("id")?,
        session_id: row.get("session_id")?,
        kind: row.get("kind")?,
        status: row.get("status")?,
        input: row.get("input")?,
        path: row.get("path")?,
        args: row.get::<_, Option<Json<_>>>("args")?.map(|j| j.0),
        env: row.get::<_, Option<Json<_>>>("env")?.map(|j| j.0),
        result: row.get("result")?,
        error,
        metrics: ExecMetrics {
            wall_ms: row.get("wall_ms")?,
            cpu_ms: row.get("cpu_ms")?,
            event_count: row.get("event_count")?,
            output_bytes: row.get("output_bytes")?,
        },
        started_at: row.get("started_at")?,
        ended_at: row.get("ended_at")?,
    })
}

/// Fails with `ExecutionNotFound` unless the execution exists.
pub(super) fn require(tx: &Transaction<'_>, id: ExecutionId) -> Result<(), StoreError> {
    let found = tx
        .prepare_cached("SELECT 1 FROM executions WHERE id = ?1")?
        .exists([id])?;
    if found {
        Ok(())
    } else {
        Err(StoreError::ExecutionNotFound { execution_id: id })
    }
}

/// The most events, and of stored payload bytes, that a detail carries itself; an execution
/// with more is `paged`. A detail costs several times its payloads in memory (rows, DTOs and
/// the JSON body at once), so a large one is sent in pages that each cost only themselves.
const INLINE_MAX_EVENTS: u64 = 1_000;
const INLINE_MAX_BYTES: u64 = 1 << 20;

/// `execution` with its events read in the same transaction, or `paged` when they are many:
/// within one snapshot the row's `event_count` is the last `seq`, so the pages read later
/// (events are never changed once stored) are exactly the events of this snapshot.
fn with_events(tx: &Transaction<'_>, execution: Execution) -> Result<ExecutionDetail, StoreError> {
    if too_many_to_inline(&execution.metrics) {
        return Ok(ExecutionDetail {
            execution,
            events: Vec::new(),
            paged: true,
        });
    }
    let events = events::all(tx, execution.id)?;
    Ok(ExecutionDetail {
        execution,
        events,
        paged: false,
    })
}

fn too_many_to_inline(m: &ExecMetrics) -> bool {
    m.event_count > INLINE_MAX_EVENTS || m.output_bytes > INLINE_MAX_BYTES
}

pub(super) fn load(tx: &Transaction<'_>, id: ExecutionId) -> Result<Execution, StoreError> {
    tx.prepare_cached(&format!(
        "SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?1"
    ))?
    .query_row([id], execution_row)
    .optional()?
    .ok_or(StoreError::ExecutionNotFound { execution_id: id })
}

fn invalid(reason: &'static str) -> StoreError {
    StoreError::InvalidInput { reason }
}

/// Checks a new execution row and its `input_echo`, and that its session exists and runs
/// nothing else.
fn check_new(tx: &Transaction<'_>, e: &Execution, input_echo: &Event) -> Result<(), StoreError> {
    if e.status != ExecutionStatus::Running || e.ended_at.is_some() {
        return Err(invalid("a new execution must be running"));
    }
    if e.result.is_some() || e.error.is_some() {
        return Err(invalid("a new execution has no result or error"));
    }
    if input_echo.execution_id != e.id || input_echo.event_type != EventType::InputEcho {
        return Err(invalid(
            "the first event must be the execution's input_echo",
        ));
    }
    sessions::require(tx, e.session_id)?;
    let running: Option<ExecutionId> = tx
        .prepare_cached("SELECT id FROM executions WHERE session_id = ?1 AND status = 'running'")?
        .query_row([e.session_id], |row| row.get(0))
        .optional()?;
    match running {
        Some(execution_id) => Err(StoreError::SessionBusy {
            session_id: e.session_id,
            execution_id,
        }),
        None => Ok(()),
    }
}

fn begin(tx: &Transaction<'_>, e: &Execution, input_echo: Event) -> Result<(), StoreError> {
    check_new(tx, e, &input_echo)?;
    let args = e.args.as_ref().map(json_text).transpose()?;
    let env = e.env.as_ref().map(json_text).transpose()?;
    tx.prepare_cached(&format!(
        "INSERT INTO executions ({EXECUTION_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, NULL, NULL, NULL, NULL, ?9, ?10, 0, 0,
                 ?11, NULL)"
    ))?
    .execute((
        e.id,
        e.session_id,
        e.kind,
        e.status,
        &e.input,
        &e.path,
        args,
        env,
        e.metrics.wall_ms,
        e.metrics.cpu_ms,
        e.started_at,
    ))?;
    events::append(tx, &[input_echo])
}

/// Stores an execution that ended before its row was committed: what `begin` and then `finish`
/// would store, written as the final row and its events at once (no `running` row to update,
/// nothing to read back). Returns the execution and its events as `load` and `events::all`
/// would read them.
fn insert_ended(
    tx: &Transaction<'_>,
    mut e: Execution,
    input_echo: Event,
    id: ExecutionId,
    outcome: ExecutionOutcome,
) -> Result<ExecutionDetail, StoreError> {
    check_new(tx, &e, &input_echo)?;
    if e.id != id {
        return Err(invalid("the outcome belongs to another execution"));
    }
    check_outcome(id, &outcome)?;
    let ExecutionOutcome {
        status,
        result,
        error,
        wall_ms,
        cpu_ms,
        ended_at,
        pending_events,
        terminal_event,
    } = outcome;
    let mut events = Vec::with_capacity(pending_events.len() + 2);
    events.push(input_echo);
    events.extend(pending_events);
    events.push(terminal_event);
    // The checks and the `ts` rule of `events::append`, for events that all are new.
    let mut last_ts: Option<Timestamp> = None;
    let mut bytes: u64 = 0;
    for (expected, event) in (1..).zip(events.iter_mut()) {
        if event.seq != expected {
            return Err(StoreError::EventOutOfOrder {
                execution_id: id,
                expected,
                found: event.seq,
            });
        }
        let ts = last_ts.map_or(event.ts, |last| last.max(event.ts));
        event.ts = ts;
        last_ts = Some(ts);
        bytes = bytes.saturating_add(u64::try_from(event.payload.len()).unwrap_or(u64::MAX));
    }
    let args = e.args.as_ref().map(json_text).transpose()?;
    let env = e.env.as_ref().map(json_text).transpose()?;
    e.status = status;
    e.result = result;
    e.error = error;
    e.metrics = ExecMetrics {
        wall_ms,
        cpu_ms,
        event_count: u64::try_from(events.len()).unwrap_or(u64::MAX),
        output_bytes: bytes,
    };
    e.ended_at = Some(ended_at);
    let (code, message, name, stack) = match &e.error {
        Some(err) => (
            Some(&err.code),
            Some(&err.message),
            err.name.as_ref(),
            err.stack.as_ref(),
        ),
        None => (None, None, None, None),
    };
    tx.prepare_cached(&format!(
        "INSERT INTO executions ({EXECUTION_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19)"
    ))?
    .execute(rusqlite::params![
        e.id,
        e.session_id,
        e.kind,
        e.status,
        &e.input,
        &e.path,
        &args,
        &env,
        &e.result,
        code,
        message,
        name,
        stack,
        e.metrics.wall_ms,
        e.metrics.cpu_ms,
        e.metrics.event_count,
        e.metrics.output_bytes,
        e.started_at,
        e.ended_at,
    ])?;
    // `no` is the rowid of the row just inserted.
    events::insert(tx, tx.last_insert_rowid(), &events)?;
    // What a read returns: the JSON columns as parsed back from their stored text.
    let reparse = |text: Option<String>| -> Result<Option<serde_json::Value>, StoreError> {
        text.map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|err| StoreError::from(rusqlite::Error::ToSqlConversionFailure(Box::new(err))))
    };
    e.args = reparse(args)?;
    e.env = reparse(env)?;
    let paged = too_many_to_inline(&e.metrics);
    Ok(ExecutionDetail {
        execution: e,
        events: if paged { Vec::new() } else { events },
        paged,
    })
}

/// Checks that an outcome is self-consistent and belongs to execution `id`.
fn check_outcome(id: ExecutionId, o: &ExecutionOutcome) -> Result<(), StoreError> {
    if !o.status.is_terminal() {
        return Err(invalid("an outcome needs a terminal status"));
    }
    let ok = o.status == ExecutionStatus::Ok;
    if ok != o.result.is_some() || ok == o.error.is_some() {
        return Err(invalid("an ok outcome has a result, any other an error"));
    }
    let terminal_ok = match o.terminal_event.event_type {
        EventType::Value => ok,
        EventType::Exception | EventType::System => !ok,
        EventType::InputEcho | EventType::Console => false,
    };
    if !terminal_ok {
        return Err(invalid("the terminal event does not match the status"));
    }
    let foreign = o
        .pending_events
        .iter()
        .chain(std::iter::once(&o.terminal_event))
        .any(|event| event.execution_id != id);
    if foreign {
        return Err(invalid("an outcome event belongs to another execution"));
    }
    Ok(())
}

/// Ends a running execution; see [`Store::finish_execution`].
pub(super) fn finish(
    tx: &Transaction<'_>,
    id: ExecutionId,
    outcome: ExecutionOutcome,
) -> Result<(), StoreError> {
    check_outcome(id, &outcome)?;
    let ExecutionOutcome {
        status,
        result,
        error,
        wall_ms,
        cpu_ms,
        ended_at,
        mut pending_events,
        terminal_event,
    } = outcome;
    pending_events.push(terminal_event);
    // Also fails for an unknown or ended execution.
    events::append(tx, &pending_events)?;
    let (code, message, name, stack) = match error {
        Some(e) => (Some(e.code), Some(e.message), e.name, e.stack),
        None => (None, None, None, None),
    };
    tx.prepare_cached(
        "UPDATE executions SET status = ?2, result = ?3, error_code = ?4, error_message = ?5,
             error_name = ?6, error_stack = ?7, wall_ms = ?8, cpu_ms = ?9, ended_at = ?10
         WHERE id = ?1",
    )?
    .execute((
        id, status, result, code, message, name, stack, wall_ms, cpu_ms, ended_at,
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{ExecutionKind, SessionStatus};
    use crate::store::test_support::{event, open_temp, repl_execution, session, template, ts};

    /// Records `execution` in one step (begun and ended together), ending with a value at `seq`.
    async fn record_short(
        store: &Store,
        (execution, echo): (Execution, Event),
        seq: u64,
        pending: Vec<Event>,
    ) -> Result<ExecutionDetail, StoreError> {
        let id = execution.id;
        store
            .end_execution(
                Some((execution, echo)),
                id,
                outcome_ok(id, seq, pending),
                false,
            )
            .await
    }

    fn outcome_ok(id: ExecutionId, seq: u64, pending: Vec<Event>) -> ExecutionOutcome {
        let value = r#"{"type":"number","preview":"42","json":42}"#;
        ExecutionOutcome {
            status: ExecutionStatus::Ok,
            result: Some(value.to_owned()),
            error: None,
            wall_ms: 4,
            cpu_ms: 1,
            ended_at: ts(50),
            pending_events: pending,
            terminal_event: event(id, seq, EventType::Value, value),
        }
    }

    #[tokio::test]
    async fn begin_append_finish() {
        let (_dir, store) = open_temp().await;
        let s = session(template(&store).await, SessionStatus::Ready, ts(1));
        store.insert_session(s.clone()).await.unwrap();
        let (e, echo) = repl_execution(s.id, ts(10), "console.log('hi'); 40 + 2");
        store
            .begin_execution(e.clone(), echo.clone())
            .await
            .unwrap();

        let detail = store.get_execution(e.id).await.unwrap();
        assert_eq!(detail.execution.status, ExecutionStatus::Running);
        assert_eq!(detail.execution.ended_at, None);
        assert_eq!(detail.events, std::slice::from_ref(&echo));
        let echo_len = u64::try_from(echo.payload.len()).unwrap();
        assert_eq!(
            detail.execution.metrics,
            ExecMetrics {
                wall_ms: 0,
                cpu_ms: 0,
                event_count: 1,
                output_bytes: echo_len
            }
        );

        // One running execution per session.
        let (other, other_echo) = repl_execution(s.id, ts(11), "1");
        let err = store.begin_execution(other, other_echo).await.unwrap_err();
        assert!(
            matches!(err, StoreError::SessionBusy { execution_id, .. } if execution_id == e.id),
            "{err:?}"
        );

        let console = r#"{"level":"log","text":"hi"}"#;
        store
            .append_events(vec![event(e.id, 2, EventType::Console, console)])
            .await
            .unwrap();
        assert!(store.update_execution_usage(e.id, 5, 3).await.unwrap());
        assert_eq!(
            store.get_execution(e.id).await.unwrap().execution.metrics,
            ExecMetrics {
                wall_ms: 5,
                cpu_ms: 3,
                ..store.get_execution(e.id).await.unwrap().execution.metrics
            }
        );

        let pending = vec![event(e.id, 3, EventType::Console, console)];
        let done = store
            .finish_execution(e.id, outcome_ok(e.id, 4, pending))
            .await
            .unwrap();
        assert_eq!(done.status, ExecutionStatus::Ok);
        assert_eq!(done.ended_at, Some(ts(50)));
        assert_eq!(
            done.result.as_deref(),
            Some(r#"{"type":"number","preview":"42","json":42}"#)
        );
        let console_len = u64::try_from(console.len()).unwrap();
        let value_len = u64::try_from(done.result.as_ref().unwrap().len()).unwrap();
        assert_eq!(
            done.metrics,
            ExecMetrics {
                wall_ms: 4,
                cpu_ms: 1,
                event_count: 4,
                output_bytes: echo_len + 2 * console_len + value_len
            }
        );
        let detail = store.get_execution(e.id).await.unwrap();
        assert_eq!(detail.execution, done);
        let seqs: Vec<u64> = detail.events.iter().map(|ev| ev.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);

        // Ended: no more events, no second finish, CPU samples ignored.
        let err = store
            .append_events(vec![event(e.id, 5, EventType::Console, console)])
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::ExecutionFinished { .. }),
            "{err:?}"
        );
        let err = store
            .finish_execution(e.id, outcome_ok(e.id, 5, Vec::new()))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::ExecutionFinished {
                    status: ExecutionStatus::Ok,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!store.update_execution_usage(e.id, 9, 9).await.unwrap());
        let err = store
            .update_execution_usage(ExecutionId::new_v4(), 9, 9)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::ExecutionNotFound { .. }),
            "{err:?}"
        );

        // The slot is free again.
        let (next, next_echo) = repl_execution(s.id, ts(60), "2");
        store.begin_execution(next, next_echo).await.unwrap();
    }

    #[tokio::test]
    async fn run_file_fields_and_errors_round_trip() {
        let (_dir, store) = open_temp().await;
        let s = session(template(&store).await, SessionStatus::Ready, ts(1));
        store.insert_session(s.clone()).await.unwrap();
        let id = ExecutionId::new_v4();
        let e = Execution {
            id,
            session_id: s.id,
            kind: ExecutionKind::RunFile,
            status: ExecutionStatus::Running,
            input: None,
            path: Some("scripts/a.js".into()),
            args: Some(json!({"n": 1, "nested": {"x": [null, true]}})),
            env: Some(json!({"MY_VAR": "v"})),
            result: None,
            error: None,
            metrics: ExecMetrics::default(),
            started_at: ts(5),
            ended_at: None,
        };
        let echo = event(id, 1, EventType::InputEcho, r#"{"path":"scripts/a.js"}"#);
        store.begin_execution(e.clone(), echo).await.unwrap();
        let exception = r#"{"name":"Error","message":"boom","stack":"Error: boom\n    at a.js:1"}"#;
        let error = ExecError {
            code: "EXCEPTION".into(),
            message: "boom".into(),
            name: Some("Error".into()),
            stack: Some("Error: boom\n    at a.js:1".into()),
        };
        let done = store
            .finish_execution(
                id,
                ExecutionOutcome {
                    status: ExecutionStatus::Error,
                    result: None,
                    error: Some(error.clone()),
                    wall_ms: 7,
                    cpu_ms: 2,
                    ended_at: ts(12),
                    pending_events: Vec::new(),
                    terminal_event: event(id, 2, EventType::Exception, exception),
                },
            )
            .await
            .unwrap();
        let want = Execution {
            status: ExecutionStatus::Error,
            error: Some(error),
            metrics: ExecMetrics {
                wall_ms: 7,
                cpu_ms: 2,
                event_count: 2,
                output_bytes: u64::try_from(r#"{"path":"scripts/a.js"}"#.len() + exception.len())
                    .unwrap(),
            },
            ended_at: Some(ts(12)),
            ..e
        };
        assert_eq!(done, want);
    }

    #[tokio::test]
    async fn an_execution_ended_before_its_row_is_stored_as_begin_and_finish_would() {
        let (_dir, store) = open_temp().await;
        let s = session(template(&store).await, SessionStatus::Ready, ts(1));
        store.insert_session(s.clone()).await.unwrap();
        let console = r#"{"level":"log","text":"hi"}"#;
        let (e, echo) = repl_execution(s.id, ts(10), "console.log('hi'); 40 + 2");
        let mut late = event(e.id, 2, EventType::Console, console);
        // A clock that went back: stored at the previous event's ts.
        late.ts = ts(9);
        let pending = vec![late, event(e.id, 3, EventType::Console, console)];
        let ended = record_short(&store, (e.clone(), echo), 4, pending)
            .await
            .unwrap();
        assert_eq!(ended, store.get_execution(e.id).await.unwrap());
        assert_eq!(ended.execution.status, ExecutionStatus::Ok);
        assert_eq!(ended.execution.metrics.event_count, 4);
        let stamps: Vec<Timestamp> = ended.events.iter().map(|ev| ev.ts).collect();
        assert_eq!(stamps, [ts(10), ts(10), ts(1003), ts(1004)]);

        // Run-file fields read back the same way, and a busy session refuses.
        let (mut other, other_echo) = repl_execution(s.id, ts(60), "1");
        other.args = Some(json!({"f": 0.1, "n": [1, 2.5e300]}));
        other.env = Some(json!({"B": "2", "A": "1"}));
        let ended = record_short(&store, (other.clone(), other_echo), 2, Vec::new())
            .await
            .unwrap();
        assert_eq!(ended, store.get_execution(other.id).await.unwrap());
        // A gap in the seqs stores nothing.
        let (gap, gap_echo) = repl_execution(s.id, ts(90), "4");
        let err = record_short(&store, (gap, gap_echo), 3, Vec::new())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::EventOutOfOrder { .. }), "{err:?}");
        let (running, running_echo) = repl_execution(s.id, ts(70), "2");
        store
            .begin_execution(running.clone(), running_echo)
            .await
            .unwrap();
        let (third, third_echo) = repl_execution(s.id, ts(80), "3");
        let err = record_short(&store, (third, third_echo), 2, Vec::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::SessionBusy { execution_id, .. } if execution_id == running.id),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn inconsistent_requests_are_refused() {
        let (_dir, store) = open_temp().await;
        let s = session(template(&store).await, SessionStatus::Ready, ts(1));
        store.insert_session(s.clone()).await.unwrap();
        let (e, echo) = repl_execution(s.id, ts(10), "1");

        let err = store
            .begin_execution(e.clone(), event(e.id, 1, EventType::Console, "{}"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
        let (orphan, orphan_echo) = repl_execution(crate::model::SessionId::new_v4(), ts(1), "1");
        let err = store
            .begin_execution(orphan, orphan_echo)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::SessionNotFound { .. }), "{err:?}");

        store.begin_execution(e.clone(), echo).await.unwrap();
        let mut bad: Vec<(&str, ExecutionOutcome)> = Vec::new();
        let mut o = outcome_ok(e.id, 2, Vec::new());
        o.status = ExecutionStatus::Running;
        bad.push(("running", o));
        let mut o = outcome_ok(e.id, 2, Vec::new());
        o.result = None;
        bad.push(("ok without result", o));
        let mut o = outcome_ok(e.id, 2, Vec::new());
        o.status = ExecutionStatus::Timeout;
        bad.push(("timeout with a value", o));
        let mut o = outcome_ok(e.id, 2, Vec::new());
        o.terminal_event.execution_id = ExecutionId::new_v4();
        bad.push(("foreign event", o));
        for (what, outcome) in bad {
            let err = store.finish_execution(e.id, outcome).await.unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidInput { .. }),
                "{what}: {err:?}"
            );
        }
        let err = store
            .finish_execution(e.id, outcome_ok(e.id, 3, Vec::new()))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::EventOutOfOrder {
                    expected: 2,
                    found: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        // Nothing of the refused requests was stored.
        let detail = store.get_execution(e.id).await.unwrap();
        assert_eq!(detail.execution.status, ExecutionStatus::Running);
        assert_eq!(detail.events.len(), 1);
    }

    #[tokio::test]
    async fn list_is_newest_first_with_id_ties() {
        let (_dir, store) = open_temp().await;
        let s = session(template(&store).await, SessionStatus::Ready, ts(1));
        store.insert_session(s.clone()).await.unwrap();
        let mut rows = Vec::new();
        for started in [5, 9, 5, 7, 5] {
            let (e, echo) = repl_execution(s.id, ts(started), "1");
            store.begin_execution(e.clone(), echo).await.unwrap();
            store
                .finish_execution(e.id, outcome_ok(e.id, 2, Vec::new()))
                .await
                .unwrap();
            rows.push(e);
        }
        rows.sort_by_key(|e| std::cmp::Reverse((e.started_at, e.id)));
        let want: Vec<ExecutionId> = rows.iter().map(|e| e.id).collect();
        let ids = |v: Vec<Execution>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(store.list_executions(s.id, 50).await.unwrap()), want);
        assert_eq!(
            ids(store.list_executions(s.id, 2).await.unwrap()),
            want[..2]
        );
        let err = store
            .list_executions(crate::model::SessionId::new_v4(), 5)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::SessionNotFound { .. }), "{err:?}");
    }
}
