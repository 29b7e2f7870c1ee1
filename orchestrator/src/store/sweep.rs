//! The restart sweep (spec §10.3): no session stays live and no execution stays running.

use rusqlite::Transaction;

use super::error::StoreError;
use super::executions;
use super::handle::Store;
use crate::model::{
    Event, EventType, ExecError, ExecutionId, ExecutionOutcome, ExecutionStatus, SessionStatus,
    SweepReport, Timestamp,
};

/// `last_error` of swept sessions, `error.message` and `system` message of swept executions.
const DAEMON_RESTARTED: &str = "daemon restarted";
/// `error.code` of swept executions.
const DAEMON_RESTARTED_CODE: &str = "DAEMON_RESTARTED";
/// Payload of the final `system` event of a swept execution.
const SYSTEM_PAYLOAD: &str = r#"{"level":"error","message":"daemon restarted"}"#;

impl Store {
    /// Run once at start, before serving, in one transaction. Every `starting` or `ready`
    /// session becomes `crashed` (`last_error` `daemon restarted`, `pid` NULL). Every
    /// `running` execution ends `error` with code `DAEMON_RESTARTED`, `ended_at` = `now` and
    /// a final `system` event; its `wall_ms` and `cpu_ms` keep their stored values.
    pub(crate) async fn sweep_after_restart(
        &self,
        now: Timestamp,
    ) -> Result<SweepReport, StoreError> {
        self.write(move |tx| sweep(tx, now)).await
    }
}

fn sweep(tx: &Transaction<'_>, now: Timestamp) -> Result<SweepReport, StoreError> {
    let sessions = tx
        .prepare_cached(
            "UPDATE sessions SET status = ?1, pid = NULL, last_error = ?2, updated_at = ?3
             WHERE status IN (?4, ?5)",
        )?
        .execute((
            SessionStatus::Crashed,
            DAEMON_RESTARTED,
            now,
            SessionStatus::Starting,
            SessionStatus::Ready,
        ))?;

    let mut stmt = tx.prepare_cached(
        "SELECT id, event_count, wall_ms, cpu_ms FROM executions WHERE status = 'running'",
    )?;
    let running = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, ExecutionId>(0)?,
                row.get::<_, u64>(1)?,
                row.get::<_, u64>(2)?,
                row.get::<_, u64>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (id, event_count, wall_ms, cpu_ms) in &running {
        let terminal_event = Event {
            execution_id: *id,
            seq: event_count + 1,
            // Appending keeps `ts` from going back if the clock did.
            ts: now,
            event_type: EventType::System,
            payload: SYSTEM_PAYLOAD.to_owned(),
        };
        let outcome = ExecutionOutcome {
            status: ExecutionStatus::Error,
            result: None,
            error: Some(ExecError {
                code: DAEMON_RESTARTED_CODE.to_owned(),
                message: DAEMON_RESTARTED.to_owned(),
                name: None,
                stack: None,
            }),
            wall_ms: *wall_ms,
            cpu_ms: *cpu_ms,
            ended_at: now,
            pending_events: Vec::new(),
            terminal_event,
        };
        executions::finish(tx, *id, outcome)?;
    }
    Ok(SweepReport {
        sessions_crashed: u64::try_from(sessions).unwrap_or(u64::MAX),
        executions_failed: u64::try_from(running.len()).unwrap_or(u64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExecutionKind, Session, SessionUpdate};
    use crate::store::Store;
    use crate::store::test_support::{event, open_temp, repl_execution, session, template, ts};

    #[test]
    fn system_payload_is_compact_json() {
        let value: serde_json::Value = serde_json::from_str(SYSTEM_PAYLOAD).unwrap();
        assert_eq!(value.to_string(), SYSTEM_PAYLOAD);
    }

    async fn running_execution(store: &Store, s: &Session, console_events: u64) -> ExecutionId {
        let (e, echo) = repl_execution(s.id, ts(10), "while (true) {}");
        store.begin_execution(e.clone(), echo).await.unwrap();
        let batch = (0..console_events)
            .map(|i| {
                event(
                    e.id,
                    i + 2,
                    EventType::Console,
                    r#"{"level":"log","text":"x"}"#,
                )
            })
            .collect();
        store.append_events(batch).await.unwrap();
        store.update_execution_usage(e.id, 1200, 77).await.unwrap();
        e.id
    }

    #[tokio::test]
    async fn sweep_leaves_nothing_live_or_running() {
        let (_dir, store) = open_temp().await;
        let t = template(&store).await;
        let mut by_status = Vec::new();
        for status in SessionStatus::ALL {
            let mut s = session(t, *status, ts(1));
            if status.is_live() {
                s.pid = Some(4242);
            }
            if *status == SessionStatus::Crashed {
                s.last_error = Some("worker exited with code 3".into());
            }
            store.insert_session(s.clone()).await.unwrap();
            by_status.push(s);
        }
        let ready = &by_status[1];
        let starting = &by_status[0];
        let busy = running_execution(&store, ready, 2).await;
        let startup = running_execution(&store, starting, 0).await;
        // A finished execution is untouched.
        let closed = &by_status[3];
        let (done, echo) = repl_execution(closed.id, ts(3), "1");
        store.begin_execution(done.clone(), echo).await.unwrap();
        store
            .finish_execution(
                done.id,
                ExecutionOutcome {
                    status: ExecutionStatus::Cancelled,
                    result: None,
                    error: Some(ExecError {
                        code: "CANCELLED".into(),
                        message: "execution cancelled".into(),
                        name: None,
                        stack: None,
                    }),
                    wall_ms: 1,
                    cpu_ms: 1,
                    ended_at: ts(4),
                    pending_events: Vec::new(),
                    terminal_event: event(done.id, 2, EventType::System, "{}"),
                },
            )
            .await
            .unwrap();
        let done_before = store.get_execution(done.id).await.unwrap();

        let now = ts(5000);
        let report = store.sweep_after_restart(now).await.unwrap();
        assert_eq!(
            report,
            SweepReport {
                sessions_crashed: 2,
                executions_failed: 2
            }
        );

        for before in &by_status {
            let after = store.get_session(before.id).await.unwrap();
            if before.status.is_live() {
                let want = Session {
                    status: SessionStatus::Crashed,
                    pid: None,
                    last_error: Some("daemon restarted".into()),
                    updated_at: now,
                    ..before.clone()
                };
                assert_eq!(after, want);
            } else {
                assert_eq!(&after, before);
            }
        }

        for (id, prior_events) in [(busy, 3_u64), (startup, 1)] {
            let detail = store.get_execution(id).await.unwrap();
            let e = &detail.execution;
            assert_eq!(e.status, ExecutionStatus::Error);
            assert_eq!(e.kind, ExecutionKind::Repl);
            assert_eq!(e.ended_at, Some(now));
            assert_eq!(e.result, None);
            assert_eq!(
                e.error,
                Some(ExecError {
                    code: "DAEMON_RESTARTED".into(),
                    message: "daemon restarted".into(),
                    name: None,
                    stack: None
                })
            );
            assert_eq!((e.metrics.wall_ms, e.metrics.cpu_ms), (1200, 77));
            assert_eq!(e.metrics.event_count, prior_events + 1);
            let total: usize = detail.events.iter().map(|ev| ev.payload.len()).sum();
            assert_eq!(e.metrics.output_bytes, u64::try_from(total).unwrap());
            let last = detail.events.last().unwrap();
            assert_eq!(last.seq, prior_events + 1);
            assert_eq!(last.event_type, EventType::System);
            assert_eq!(last.payload, SYSTEM_PAYLOAD);
            let systems = detail
                .events
                .iter()
                .filter(|ev| ev.event_type == EventType::System)
                .count();
            assert_eq!(systems, 1);
        }
        assert_eq!(store.get_execution(done.id).await.unwrap(), done_before);

        // A second sweep finds nothing to do.
        let again = store.sweep_after_restart(ts(6000)).await.unwrap();
        assert_eq!(again, SweepReport::default());
        // Swept sessions can be revived by a restart.
        let update = SessionUpdate {
            status: SessionStatus::Starting,
            pid: None,
            last_error: None,
        };
        store
            .set_session_state(ready.id, update, ts(7000))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn sweep_event_time_never_goes_back() {
        let (_dir, store) = open_temp().await;
        let s = session(template(&store).await, SessionStatus::Ready, ts(1));
        store.insert_session(s.clone()).await.unwrap();
        let id = running_execution(&store, &s, 1).await;
        let last_ts = store.get_execution(id).await.unwrap().events[1].ts;
        let earlier = Timestamp::from_millis(last_ts.as_millis() - 100);
        store.sweep_after_restart(earlier).await.unwrap();
        let detail = store.get_execution(id).await.unwrap();
        assert_eq!(detail.events.last().unwrap().ts, last_ts);
        assert_eq!(detail.execution.ended_at, Some(earlier));
    }
}
