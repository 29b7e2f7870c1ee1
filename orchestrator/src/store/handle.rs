//! The `Store` handle: a dedicated thread owns the connection; callers send it closures.
//!
//! This is the tokio-rusqlite design. Every async method boxes a closure, sends it over a
//! channel to the store thread and awaits a oneshot reply, so SQLite never blocks the
//! runtime and the connection is never shared. Each operation runs in one transaction.

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::error::StoreError;
use super::{lock, migrations};

/// How long a statement waits for a lock held by another connection (an operator's
/// `sqlite3` shell, say) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

enum Message {
    Run(Job),
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// A cloneable handle to the database. All clones talk to the same store thread; the
/// thread, the connection and the file lock end with [`Store::close`] or the last clone.
#[derive(Clone)]
pub(crate) struct Store {
    tx: mpsc::Sender<Message>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating it and its parent directories if needed) the database at `path`,
    /// takes the daemon's exclusive lock on it, configures it and applies the migrations.
    pub(crate) async fn open(path: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let path = path.into();
        let (tx, rx) = mpsc::channel::<Message>();
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("vm-system-store".to_owned())
            .spawn(move || match open_connection(&path) {
                Ok((conn, lock)) => {
                    // A dropped receiver means `open` was abandoned: shut down at once.
                    if ready_tx.send(Ok(())).is_ok() {
                        serve(conn, lock, &rx);
                    }
                }
                Err(err) => {
                    let _ignored = ready_tx.send(Err(err));
                }
            })
            .map_err(StoreError::Spawn)?;
        ready_rx.await.map_err(|_| StoreError::Closed)??;
        Ok(Store { tx })
    }

    /// Closes the connection and releases the lock once every operation sent before has
    /// finished. Later calls on any clone fail with [`StoreError::Closed`].
    pub(crate) async fn close(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Message::Close(reply))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on the store thread.
    pub(super) async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ignored = reply.send(f(conn));
        });
        self.tx
            .send(Message::Run(job))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` in an IMMEDIATE transaction that commits if `f` succeeds.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` in a read transaction, so that multi-statement reads see one snapshot.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let out = f(&tx)?;
            tx.finish()?;
            Ok(out)
        })
        .await
    }

    /// Whether `PRAGMA integrity_check` reports `ok`. Problems are logged.
    pub(crate) async fn integrity_check(&self) -> Result<bool, StoreError> {
        self.call(|conn| {
            let mut stmt = conn.prepare("PRAGMA integrity_check")?;
            let lines = stmt
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let ok = lines.len() == 1 && lines.first().is_some_and(|l| l == "ok");
            if !ok {
                for line in lines.iter().take(20) {
                    tracing::warn!(problem = %line, "database integrity check failed");
                }
            }
            Ok(ok)
        })
        .await
    }
}

/// Opens and prepares the connection; runs on the store thread.
fn open_connection(path: &Path) -> Result<(Connection, File), StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
            path: parent.to_owned(),
            source,
        })?;
    }
    let lock = lock::lock_exclusive(path)?;
    let open_err = |source: rusqlite::Error| StoreError::Open {
        path: path.to_owned(),
        source: source.into(),
    };
    let mut conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NoWal { found: mode });
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(open_err)?;
    migrations::migrate(&mut conn)?;
    Ok((conn, lock))
}

/// The store thread's loop: runs jobs in arrival order until closed or every handle is gone.
fn serve(mut conn: Connection, lock: File, rx: &mpsc::Receiver<Message>) {
    let reply = loop {
        match rx.recv() {
            Ok(Message::Run(job)) => {
                // A panicking job drops its reply sender (the caller sees `Closed`) and its
                // open transaction (rolled back); the thread carries on.
                if catch_unwind(AssertUnwindSafe(|| job(&mut conn))).is_err() {
                    tracing::error!("store operation panicked");
                }
            }
            Ok(Message::Close(reply)) => break Some(reply),
            Err(mpsc::RecvError) => break None,
        }
    };
    // SQLite recommends this before closing a long-lived connection; failure is harmless.
    if let Err(err) = conn.execute_batch("PRAGMA optimize") {
        tracing::debug!(error = %err, "failed to optimize the database before closing");
    }
    let result = conn.close().map_err(|(_conn, err)| StoreError::from(err));
    if let Err(err) = &result {
        tracing::error!(error = %err, "failed to close the database");
    }
    // The lock goes only after the connection is closed.
    drop(lock);
    if let Some(reply) = reply {
        let _ignored = reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::ts;

    #[tokio::test]
    async fn open_creates_directories_and_configures_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/vm-system.db");
        let store = Store::open(&path).await.unwrap();
        assert!(path.exists());
        assert!(lock::lock_path(&path).exists());
        let pragmas = store
            .call(|conn| {
                let get = |name: &str| -> Result<String, StoreError> {
                    Ok(conn.pragma_query_value(None, name, |row| {
                        row.get::<_, rusqlite::types::Value>(0)
                            .map(|v| format!("{v:?}"))
                    })?)
                };
                Ok([
                    get("journal_mode")?,
                    get("synchronous")?,
                    get("foreign_keys")?,
                    get("busy_timeout")?,
                    get("user_version")?,
                ])
            })
            .await
            .unwrap();
        assert_eq!(
            pragmas,
            [
                r#"Text("wal")"#.to_owned(),
                "Integer(1)".to_owned(), // NORMAL
                "Integer(1)".to_owned(),
                "Integer(5000)".to_owned(),
                format!("Integer({})", migrations::supported_version()),
            ]
        );
        assert!(store.integrity_check().await.unwrap());
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn second_open_is_locked_until_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm-system.db");
        let first = Store::open(&path).await.unwrap();
        let err = Store::open(&path).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Locked { path: p } if *p == path),
            "{err:?}"
        );
        assert!(err.to_string().contains("another vm-system daemon"));

        let t = first
            .create_template("kept".into(), "quickjs".into(), ts(1))
            .await
            .unwrap();
        let clone = first.clone();
        first.close().await.unwrap();
        assert!(matches!(
            clone.list_templates().await,
            Err(StoreError::Closed)
        ));
        assert!(matches!(first.close().await, Err(StoreError::Closed)));

        // Data survives a reopen, and migrations do not run again.
        let second = Store::open(&path).await.unwrap();
        assert_eq!(second.get_template(t.id).await.unwrap(), t);
        drop(second);
    }

    #[tokio::test]
    async fn newer_schema_is_fatal_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm-system.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", 999).unwrap();
        }
        let err = Store::open(&path).await.unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found: 999, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("database was written by a newer vm-system")
        );
        // The failed open released its lock.
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 0).unwrap();
        drop(conn);
        Store::open(&path).await.unwrap().close().await.unwrap();
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_fails_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm-system.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let err = Store::open(&path).await.unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn clones_work_concurrently() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("vm-system.db")).await.unwrap();
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .create_template(format!("t{i}"), "quickjs".into(), ts(i))
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let names: Vec<String> = store
            .list_templates()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        let want: Vec<String> = (0..40).rev().map(|i| format!("t{i}")).collect();
        assert_eq!(names, want);
    }

    #[tokio::test]
    async fn a_panicking_operation_does_not_kill_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("vm-system.db")).await.unwrap();
        let err = store
            .write(|tx| -> Result<(), StoreError> {
                tx.execute("DELETE FROM templates", [])?;
                panic!("boom")
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Closed), "{err:?}");
        store
            .create_template("after".into(), "quickjs".into(), ts(1))
            .await
            .unwrap();
    }
}
