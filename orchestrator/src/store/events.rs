//! Events of executions: batched appends (contiguous seqs, running executions only) and reads.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::{OptionalExtension, Row, Transaction};

use super::error::StoreError;
use super::executions::require;
use super::handle::Store;
use crate::model::{Event, Execution, ExecutionId, ExecutionStatus, Timestamp};

impl Store {
    /// Appends a batch of events, possibly of several executions, in one transaction.
    /// Each event must carry the next `seq` of its execution, and the execution must be
    /// `running`; otherwise nothing of the batch is stored. Updates `event_count` and
    /// `output_bytes` of each execution. A `ts` earlier than the execution's previous
    /// event (the clock went back) is stored as that event's `ts`.
    pub(crate) async fn append_events(&self, events: Vec<Event>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.write(move |tx| append(tx, &events)).await
    }

    /// Up to `limit` events with `seq > after_seq`, ascending.
    pub(crate) async fn list_events(
        &self,
        execution_id: ExecutionId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        self.read(move |tx| {
            require(tx, execution_id)?;
            page(tx, execution_id, after_seq, limit)
        })
        .await
    }

    /// The execution row and up to `limit` events with `seq > after_seq`, read from one
    /// snapshot: when the row has ended and fewer than `limit` events came back, the
    /// stream has every event (spec §7.7).
    pub(crate) async fn follow_events(
        &self,
        execution_id: ExecutionId,
        after_seq: u64,
        limit: u32,
    ) -> Result<(Execution, Vec<Event>), StoreError> {
        self.read(move |tx| {
            let execution = super::executions::load(tx, execution_id)?;
            let events = page(tx, execution_id, after_seq, limit)?;
            Ok((execution, events))
        })
        .await
    }
}

pub(super) fn event_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        execution_id: row.get("execution_id")?,
        seq: row.get("seq")?,
        ts: row.get("ts")?,
        event_type: row.get("type")?,
        payload: row.get("payload")?,
    })
}

/// What an append batch has done to one execution so far.
struct Tally {
    /// The execution's `no` (the key of its events).
    no: i64,
    next_seq: u64,
    /// `ts` of the latest stored event: a later one is never stored earlier.
    last_ts: Option<Timestamp>,
    added: u64,
    bytes: u64,
}

/// Appends `events` in order; see [`Store::append_events`].
pub(super) fn append(tx: &Transaction<'_>, events: &[Event]) -> Result<(), StoreError> {
    let mut tallies: HashMap<ExecutionId, Tally> = HashMap::new();
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (execution_no, seq, ts, type, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for event in events {
        let id = event.execution_id;
        let tally = match tallies.entry(id) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let stored: Option<(i64, ExecutionStatus, u64)> = tx
                    .prepare_cached("SELECT no, status, event_count FROM executions WHERE id = ?1")?
                    .query_row([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                    .optional()?;
                let (no, status, count) =
                    stored.ok_or(StoreError::ExecutionNotFound { execution_id: id })?;
                if status.is_terminal() {
                    return Err(StoreError::ExecutionFinished {
                        execution_id: id,
                        status,
                    });
                }
                let last_ts: Option<Timestamp> = tx
                    .prepare_cached(
                        "SELECT ts FROM events WHERE execution_no = ?1 ORDER BY seq DESC LIMIT 1",
                    )?
                    .query_row([no], |row| row.get(0))
                    .optional()?;
                entry.insert(Tally {
                    no,
                    next_seq: count + 1,
                    last_ts,
                    added: 0,
                    bytes: 0,
                })
            }
        };
        if event.seq != tally.next_seq {
            return Err(StoreError::EventOutOfOrder {
                execution_id: id,
                expected: tally.next_seq,
                found: event.seq,
            });
        }
        let ts = tally.last_ts.map_or(event.ts, |last| last.max(event.ts));
        insert.execute((tally.no, event.seq, ts, event.event_type, &event.payload))?;
        tally.last_ts = Some(ts);
        tally.next_seq += 1;
        tally.added += 1;
        let size = u64::try_from(event.payload.len()).unwrap_or(u64::MAX);
        tally.bytes = tally.bytes.saturating_add(size);
    }
    let mut update = tx.prepare_cached(
        "UPDATE executions SET event_count = event_count + ?2, output_bytes = output_bytes + ?3
         WHERE id = ?1",
    )?;
    for (id, tally) in tallies {
        update.execute((id, tally.added, tally.bytes))?;
    }
    Ok(())
}

/// Inserts events of the execution numbered `no` that the caller already vetted (new,
/// contiguous, in order, all of that execution).
pub(super) fn insert(tx: &Transaction<'_>, no: i64, events: &[Event]) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (execution_no, seq, ts, type, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for event in events {
        insert.execute((no, event.seq, event.ts, event.event_type, &event.payload))?;
    }
    Ok(())
}

/// Up to `limit` events of the execution with `seq > after_seq`, ascending.
pub(super) fn page(
    tx: &Transaction<'_>,
    execution_id: ExecutionId,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
    let mut stmt = tx.prepare_cached(
        "SELECT x.id AS execution_id, e.seq, e.ts, e.type, e.payload
         FROM executions x JOIN events e ON e.execution_no = x.no
         WHERE x.id = ?1 AND e.seq > ?2 ORDER BY e.seq LIMIT ?3",
    )?;
    let events = stmt
        .query_map((execution_id, after, limit), event_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(events)
}

/// Every event of the execution in `seq` order.
pub(super) fn all(
    tx: &Transaction<'_>,
    execution_id: ExecutionId,
) -> Result<Vec<Event>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT x.id AS execution_id, e.seq, e.ts, e.type, e.payload
         FROM executions x JOIN events e ON e.execution_no = x.no
         WHERE x.id = ?1 ORDER BY e.seq",
    )?;
    let events = stmt
        .query_map([execution_id], event_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventType, SessionStatus};
    use crate::store::test_support::{event, open_temp, repl_execution, session, template, ts};

    #[tokio::test]
    async fn appends_check_order_and_state() {
        let (_dir, store) = open_temp().await;
        let s = session(template(&store).await, SessionStatus::Ready, ts(1));
        let s2 = session(template(&store).await, SessionStatus::Ready, ts(1));
        store.insert_session(s.clone()).await.unwrap();
        store.insert_session(s2.clone()).await.unwrap();
        let (a, echo_a) = repl_execution(s.id, ts(2), "1");
        let (b, echo_b) = repl_execution(s2.id, ts(2), "2");
        store.begin_execution(a.clone(), echo_a).await.unwrap();
        store.begin_execution(b.clone(), echo_b).await.unwrap();

        // One batch may interleave executions.
        let console = r#"{"level":"log","text":"hi"}"#;
        store
            .append_events(vec![
                event(a.id, 2, EventType::Console, console),
                event(b.id, 2, EventType::Console, console),
                event(a.id, 3, EventType::Console, console),
            ])
            .await
            .unwrap();
        store.append_events(Vec::new()).await.unwrap();

        // A gap, a repeat or an unknown execution rejects the whole batch.
        let bad: &[(Vec<Event>, &str)] = &[
            (
                vec![
                    event(a.id, 4, EventType::Console, console),
                    event(a.id, 6, EventType::Console, console),
                ],
                "gap",
            ),
            (vec![event(b.id, 2, EventType::Console, console)], "repeat"),
            (
                vec![event(ExecutionId::new_v4(), 1, EventType::Console, console)],
                "unknown",
            ),
        ];
        for (batch, what) in bad {
            let err = store.append_events(batch.clone()).await.unwrap_err();
            match *what {
                "unknown" => assert!(
                    matches!(err, StoreError::ExecutionNotFound { .. }),
                    "{err:?}"
                ),
                _ => assert!(
                    matches!(err, StoreError::EventOutOfOrder { .. }),
                    "{what}: {err:?}"
                ),
            }
        }
        let seqs: Vec<u64> = store
            .list_events(a.id, 0, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        let row = store.get_execution(a.id).await.unwrap().execution;
        assert_eq!(row.metrics.event_count, 3);
        let echo_len = u64::try_from(r#"{"text":"1"}"#.len()).unwrap();
        let console_len = u64::try_from(console.len()).unwrap();
        assert_eq!(row.metrics.output_bytes, echo_len + 2 * console_len);

        // `ts` never decreases within an execution.
        let mut early = event(a.id, 4, EventType::Console, console);
        early.ts = crate::model::Timestamp::from_millis(0);
        store.append_events(vec![early]).await.unwrap();
        let stored = store.list_events(a.id, 3, 1).await.unwrap();
        assert_eq!(stored[0].ts, ts(1003));

        // Paging.
        let page = |after, limit| {
            let store = store.clone();
            async move {
                store
                    .list_events(a.id, after, limit)
                    .await
                    .unwrap()
                    .iter()
                    .map(|e| e.seq)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(page(1, 1).await, [2]);
        assert_eq!(page(1, 10).await, [2, 3, 4]);
        assert_eq!(page(4, 10).await, Vec::<u64>::new());
        assert_eq!(page(u64::MAX, 10).await, Vec::<u64>::new());
        let (row, events) = store.follow_events(a.id, 2, 10).await.unwrap();
        assert_eq!(row.status, ExecutionStatus::Running);
        assert_eq!(events.len(), 2);
        let err = store
            .list_events(ExecutionId::new_v4(), 0, 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::ExecutionNotFound { .. }),
            "{err:?}"
        );
    }
}
