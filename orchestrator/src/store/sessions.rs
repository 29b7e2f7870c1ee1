//! Session rows: insert, get, list, state changes (closed is terminal) and counts.

use rusqlite::{OptionalExtension, Row, Transaction};

use super::error::StoreError;
use super::handle::Store;
use super::templates;
use crate::model::{
    Session, SessionCounts, SessionId, SessionStatus, SessionUpdate, TemplateId, Timestamp,
};

impl Store {
    /// Inserts a new session row as given. Its template must exist (`TemplateNotFound`
    /// otherwise), checked in the same transaction so that a concurrent template delete
    /// cannot leave a live session of a deleted template.
    pub(crate) async fn insert_session(&self, session: Session) -> Result<(), StoreError> {
        self.write_now(move |tx| {
            templates::require(tx, session.template_id)?;
            insert(tx, &session)
        })
        .await
    }

    pub(crate) async fn get_session(&self, id: SessionId) -> Result<Session, StoreError> {
        self.read(move |tx| load(tx, id)).await
    }

    /// Sessions newest first (`created_at`, then `id`, descending), optionally only those
    /// in one status.
    pub(crate) async fn list_sessions(
        &self,
        status: Option<SessionStatus>,
    ) -> Result<Vec<Session>, StoreError> {
        self.read(move |tx| {
            let (sql, status) = match status {
                Some(status) => (
                    format!(
                        "SELECT {SESSION_COLUMNS} FROM sessions WHERE status = ?1
                         ORDER BY created_at DESC, id DESC"
                    ),
                    Some(status),
                ),
                None => (
                    format!(
                        "SELECT {SESSION_COLUMNS} FROM sessions WHERE ?1 IS NULL
                         ORDER BY created_at DESC, id DESC"
                    ),
                    None,
                ),
            };
            let mut stmt = tx.prepare_cached(&sql)?;
            let rows = stmt
                .query_map([status], session_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// The sessions made from a template, newest first.
    pub(crate) async fn sessions_of_template(
        &self,
        template_id: TemplateId,
    ) -> Result<Vec<Session>, StoreError> {
        self.read(move |tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE template_id = ?1
                 ORDER BY created_at DESC, id DESC"
            ))?;
            let rows = stmt
                .query_map([template_id], session_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Writes a state change and returns the row after it. `updated_at` becomes `now` if
    /// anything changed; `closed_at` is set by the first transition to `closed`. `pid` is
    /// stored as NULL in `crashed` and `closed`. A closed row is terminal: closing it again
    /// returns it unchanged, any other status fails with `SessionState`.
    pub(crate) async fn set_session_state(
        &self,
        id: SessionId,
        update: SessionUpdate,
        now: Timestamp,
    ) -> Result<Session, StoreError> {
        self.write_now(move |tx| transition(tx, id, None, update, now))
            .await
    }

    /// Like [`Store::set_session_state`], but only from one of `from`: otherwise it fails
    /// with `SessionState` carrying the current status, and changes nothing. Use it to make
    /// check-and-set transitions atomic (e.g. restart only from `ready` or `crashed`).
    pub(crate) async fn transition_session(
        &self,
        id: SessionId,
        from: &'static [SessionStatus],
        update: SessionUpdate,
        now: Timestamp,
    ) -> Result<Session, StoreError> {
        self.write_now(move |tx| transition(tx, id, Some(from), update, now))
            .await
    }

    /// Number of session rows in each status.
    pub(crate) async fn counts_by_status(&self) -> Result<SessionCounts, StoreError> {
        self.read(|tx| {
            let mut stmt =
                tx.prepare_cached("SELECT status, COUNT(*) FROM sessions GROUP BY status")?;
            let mut counts = SessionCounts::default();
            for row in stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))? {
                let (status, count): (SessionStatus, u64) = row?;
                *counts.get_mut(status) = count;
            }
            Ok(counts)
        })
        .await
    }
}

pub(super) const SESSION_COLUMNS: &str = "id, template_id, workspace_id, base_commit_oid, \
     worktree_path, status, engine, pid, last_error, created_at, updated_at, closed_at";

pub(super) fn session_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: row.get("id")?,
        template_id: row.get("template_id")?,
        workspace_id: row.get("workspace_id")?,
        base_commit_oid: row.get("base_commit_oid")?,
        worktree_path: row.get("worktree_path")?,
        status: row.get("status")?,
        engine: row.get("engine")?,
        pid: row.get("pid")?,
        last_error: row.get("last_error")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        closed_at: row.get("closed_at")?,
    })
}

fn insert(tx: &Transaction<'_>, s: &Session) -> Result<(), StoreError> {
    tx.prepare_cached(&format!(
        "INSERT INTO sessions ({SESSION_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?
    .execute((
        s.id,
        s.template_id,
        &s.workspace_id,
        &s.base_commit_oid,
        &s.worktree_path,
        s.status,
        &s.engine,
        s.pid,
        &s.last_error,
        s.created_at,
        s.updated_at,
        s.closed_at,
    ))?;
    Ok(())
}

/// Fails with `SessionNotFound` unless the session exists.
pub(super) fn require(tx: &Transaction<'_>, id: SessionId) -> Result<(), StoreError> {
    let found = tx
        .prepare_cached("SELECT 1 FROM sessions WHERE id = ?1")?
        .exists([id])?;
    if found {
        Ok(())
    } else {
        Err(StoreError::SessionNotFound { session_id: id })
    }
}

fn load(tx: &Transaction<'_>, id: SessionId) -> Result<Session, StoreError> {
    tx.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
    ))?
    .query_row([id], session_row)
    .optional()?
    .ok_or(StoreError::SessionNotFound { session_id: id })
}

fn transition(
    tx: &Transaction<'_>,
    id: SessionId,
    from: Option<&[SessionStatus]>,
    update: SessionUpdate,
    now: Timestamp,
) -> Result<Session, StoreError> {
    let current = load(tx, id)?;
    let refused = StoreError::SessionState {
        session_id: id,
        status: current.status,
    };
    if current.status == SessionStatus::Closed {
        return if update.status == SessionStatus::Closed && from.is_none() {
            Ok(current)
        } else {
            Err(refused)
        };
    }
    if from.is_some_and(|allowed| !allowed.contains(&current.status)) {
        return Err(refused);
    }
    let pid = match update.status {
        SessionStatus::Crashed | SessionStatus::Closed => None,
        SessionStatus::Starting | SessionStatus::Ready => update.pid,
    };
    if (current.status, current.pid, &current.last_error)
        == (update.status, pid, &update.last_error)
    {
        return Ok(current);
    }
    let closed_at = if update.status == SessionStatus::Closed {
        Some(now)
    } else {
        None
    };
    tx.prepare_cached(
        "UPDATE sessions SET status = ?2, pid = ?3, last_error = ?4, updated_at = ?5,
             closed_at = COALESCE(closed_at, ?6)
         WHERE id = ?1",
    )?
    .execute((id, update.status, pid, &update.last_error, now, closed_at))?;
    Ok(Session {
        status: update.status,
        pid,
        last_error: update.last_error,
        updated_at: now,
        closed_at: current.closed_at.or(closed_at),
        ..current
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{open_temp, session, template, ts};

    fn update(status: SessionStatus, pid: Option<u32>, last_error: Option<&str>) -> SessionUpdate {
        SessionUpdate {
            status,
            pid,
            last_error: last_error.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn lifecycle_sets_closed_at_once() {
        use SessionStatus::{Closed, Crashed, Ready, Starting};
        let (_dir, store) = open_temp().await;
        let s = session(template(&store).await, Starting, ts(1));
        store.insert_session(s.clone()).await.unwrap();
        assert_eq!(store.get_session(s.id).await.unwrap(), s);

        // (update, now, expected (status, pid, last_error, updated_at, closed_at))
        type Expected = (
            SessionStatus,
            Option<u32>,
            Option<&'static str>,
            i64,
            Option<i64>,
        );
        let steps: &[(SessionUpdate, i64, Expected)] = &[
            (
                update(Starting, Some(42), None),
                2,
                (Starting, Some(42), None, 2, None),
            ),
            (
                update(Ready, Some(42), None),
                3,
                (Ready, Some(42), None, 3, None),
            ),
            // No change: updated_at stays.
            (
                update(Ready, Some(42), None),
                4,
                (Ready, Some(42), None, 3, None),
            ),
            (
                update(Crashed, Some(42), Some("worker exited with code 3")),
                5,
                (Crashed, None, Some("worker exited with code 3"), 5, None),
            ),
            (
                update(Closed, None, Some("worker exited with code 3")),
                6,
                (Closed, None, Some("worker exited with code 3"), 6, Some(6)),
            ),
            // Closing again changes nothing.
            (
                update(Closed, None, None),
                7,
                (Closed, None, Some("worker exited with code 3"), 6, Some(6)),
            ),
        ];
        for (i, (change, now, expected)) in steps.iter().enumerate() {
            let got = store
                .set_session_state(s.id, change.clone(), ts(*now))
                .await
                .unwrap();
            let (status, pid, last_error, updated_at, closed_at) = *expected;
            let want = Session {
                status,
                pid,
                last_error: last_error.map(str::to_owned),
                updated_at: ts(updated_at),
                closed_at: closed_at.map(ts),
                ..s.clone()
            };
            assert_eq!(got, want, "step {i}");
            assert_eq!(store.get_session(s.id).await.unwrap(), want, "step {i}");
        }
        // Closed is terminal.
        for status in [Starting, Ready, Crashed] {
            let err = store
                .set_session_state(s.id, update(status, None, None), ts(9))
                .await
                .unwrap_err();
            assert!(
                matches!(err, StoreError::SessionState { status: Closed, .. }),
                "{err:?}"
            );
        }
        let orphan = session(TemplateId::new_v4(), Starting, ts(1));
        let err = store.insert_session(orphan).await.unwrap_err();
        assert!(
            matches!(err, StoreError::TemplateNotFound { .. }),
            "{err:?}"
        );
        let err = store
            .set_session_state(SessionId::new_v4(), update(Ready, None, None), ts(1))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::SessionNotFound { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn conditional_transitions() {
        use SessionStatus::{Crashed, Ready, Starting};
        const RESTARTABLE: &[SessionStatus] = &[Ready, Crashed];
        let (_dir, store) = open_temp().await;
        let s = session(template(&store).await, Crashed, ts(1));
        store.insert_session(s.clone()).await.unwrap();
        let got = store
            .transition_session(s.id, RESTARTABLE, update(Starting, None, None), ts(2))
            .await
            .unwrap();
        assert_eq!(got.status, Starting);
        let err = store
            .transition_session(s.id, RESTARTABLE, update(Starting, None, None), ts(3))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::SessionState {
                    status: Starting,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(store.get_session(s.id).await.unwrap().updated_at, ts(2));
    }

    #[tokio::test]
    async fn list_filters_orders_and_counts() {
        use SessionStatus::{Closed, Crashed, Ready, Starting};
        let (_dir, store) = open_temp().await;
        let t = template(&store).await;
        let rows = [
            session(t, Ready, ts(5)),
            session(t, Ready, ts(5)),
            session(t, Crashed, ts(9)),
            session(template(&store).await, Ready, ts(1)),
            session(t, Closed, ts(7)),
        ];
        for s in &rows {
            store.insert_session(s.clone()).await.unwrap();
        }
        let mut expected: Vec<&Session> = rows.iter().collect();
        expected.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
        let ids = |v: Vec<Session>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
        let all = store.list_sessions(None).await.unwrap();
        assert_eq!(ids(all), expected.iter().map(|s| s.id).collect::<Vec<_>>());
        for status in SessionStatus::ALL {
            let want: Vec<SessionId> = expected
                .iter()
                .filter(|s| s.status == *status)
                .map(|s| s.id)
                .collect();
            assert_eq!(ids(store.list_sessions(Some(*status)).await.unwrap()), want);
        }
        let of_t = ids(store.sessions_of_template(t).await.unwrap());
        assert_eq!(of_t.len(), 4);
        let counts = store.counts_by_status().await.unwrap();
        assert_eq!(
            counts,
            SessionCounts {
                starting: 0,
                ready: 3,
                crashed: 1,
                closed: 1
            }
        );
        assert_eq!(counts.get(Starting), 0);
    }
}
