//! The `Store` handle: a dedicated thread serves the connection; callers send it closures.
//!
//! This is the tokio-rusqlite design. Every async method boxes a closure, sends it over a
//! channel to the store thread and awaits a oneshot reply, so SQLite does not block the
//! runtime. Each operation runs in one transaction, or, for writes that queued up together, in
//! its own savepoint of one shared transaction (group commit): every reply is sent only after
//! the shared commit, so a write is still durable before its caller hears of it, and a failed
//! write changes nothing. One exception, [`Store::write_now`]: a small write that finds no
//! other write in progress runs on the caller's thread when the connection is free (behind a
//! mutex that the store thread takes for each job), saving the two thread switches of the
//! round trip; with nothing else to commit there is no group to lose.

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError, mpsc};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::checkpoint::Checkpointer;
use super::error::StoreError;
use super::{lock, migrations};

/// How long a statement waits for a lock held by another connection (an operator's
/// `sqlite3` shell, say) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many queued writes at most share one transaction.
const GROUP_MAX: usize = 64;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Answers a write's caller once the fate of its transaction is known: `None` when it
/// committed, else the commit's failure.
type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

/// A write: runs inside an open transaction, says whether it succeeded, and leaves its reply;
/// or, when no transaction (or savepoint) could be opened for it, fails without running.
trait Write: Send {
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> (bool, Reply);
    fn fail(self: Box<Self>, reason: &str);
}

type WriteJob = Box<dyn Write>;

/// The write of `f`, answered on `reply`.
struct WriteOf<T, F> {
    f: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Write for WriteOf<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> (bool, Reply) {
        let WriteOf { f, reply } = *self;
        let out = f(tx);
        let ok = out.is_ok();
        let answer: Reply = Box::new(move |commit_failed| {
            let result = match (out, commit_failed) {
                (Ok(_), Some(reason)) => Err(StoreError::Commit(reason.to_owned())),
                (out, _) => out,
            };
            let _ignored = reply.send(result);
        });
        (ok, answer)
    }

    fn fail(self: Box<Self>, reason: &str) {
        let _ignored = self.reply.send(Err(StoreError::Begin(reason.to_owned())));
    }
}

enum Message {
    Run(Job),
    Write(WriteJob),
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// A cloneable handle to the database. All clones talk to the same store thread; the
/// thread, the connection and the file lock end with [`Store::close`] or the last clone.
#[derive(Clone)]
pub(crate) struct Store {
    tx: mpsc::Sender<Message>,
    db: Arc<Mutex<Option<Db>>>,
    /// Writes between their call and their answer.
    writing: Arc<AtomicUsize>,
}

/// Counts a write in progress for as long as it lives.
struct Writing<'a>(&'a AtomicUsize);

impl<'a> Writing<'a> {
    /// Counts one more write; also says whether no other was in progress.
    fn start(count: &'a AtomicUsize) -> (Self, bool) {
        let before = count.fetch_add(1, Ordering::Relaxed);
        (Writing(count), before == 0)
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connection and its checkpoint thread; `None` before the store opened and once it closed.
struct Db {
    conn: Connection,
    checkpointer: Option<Checkpointer>,
    /// The database file, to notice it being deleted while the daemon runs.
    file: Option<FileWatch>,
}

/// The database file as opened, and whether its deletion was reported.
struct FileWatch {
    file: File,
    path: PathBuf,
    reported: bool,
}

impl FileWatch {
    fn new(path: &Path) -> Option<FileWatch> {
        match File::open(path) {
            Ok(file) => Some(FileWatch {
                file,
                path: path.to_owned(),
                reported: false,
            }),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "cannot watch the database file");
                None
            }
        }
    }

    /// Why writes must fail: the file was deleted (unlinked) while open. SQLite would go on
    /// writing to the deleted inode and acknowledge writes that vanish when the daemon exits.
    fn gone(&mut self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let unlinked = self.file.metadata().is_ok_and(|meta| meta.nlink() == 0);
        if !unlinked {
            return None;
        }
        let reason = format!("the database file {} was deleted", self.path.display());
        if !self.reported {
            self.reported = true;
            tracing::error!(error = %reason, "refusing writes: they would be lost; restart the daemon");
        }
        Some(reason)
    }
}

fn lock_db(db: &Mutex<Option<Db>>) -> MutexGuard<'_, Option<Db>> {
    db.lock().unwrap_or_else(PoisonError::into_inner)
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
        let db = Arc::new(Mutex::new(None));
        let served = Arc::clone(&db);
        std::thread::Builder::new()
            .name("vm-system-store".to_owned())
            .spawn(move || match open_connection(&path) {
                Ok((conn, lock)) => {
                    let checkpointer = start_checkpointer(&conn, &path);
                    let file = FileWatch::new(&path);
                    *lock_db(&served) = Some(Db {
                        conn,
                        checkpointer,
                        file,
                    });
                    // A dropped receiver means `open` was abandoned: shut down at once.
                    let opened = ready_tx.send(Ok(())).is_ok();
                    serve(&served, lock, opened.then_some(&rx));
                }
                Err(err) => {
                    let _ignored = ready_tx.send(Err(err));
                }
            })
            .map_err(StoreError::Spawn)?;
        ready_rx.await.map_err(|_| StoreError::Closed)??;
        Ok(Store {
            tx,
            db,
            writing: Arc::default(),
        })
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

    /// Runs `f` in an IMMEDIATE transaction (possibly shared with other queued writes, each
    /// in its own savepoint) and answers once it committed. A failing `f` changes nothing.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let _writing = Writing::start(&self.writing);
        let (job, rx) = write_job(f);
        self.tx
            .send(Message::Write(job))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Like [`Store::write`], for a small write: when no other write is in progress and no
    /// other job holds the connection, it runs right here, on the caller's thread (there is no
    /// group it could join); otherwise it queues like any write. It blocks the calling thread
    /// for one short transaction.
    pub(super) async fn write_now<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (_writing, alone) = Writing::start(&self.writing);
        let (job, rx) = write_job(f);
        let queued = if alone {
            self.write_here(job)
        } else {
            Some(job)
        };
        if let Some(job) = queued {
            self.tx
                .send(Message::Write(job))
                .map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `job` on the calling thread if the connection is open and free; gives it back
    /// otherwise.
    fn write_here(&self, job: WriteJob) -> Option<WriteJob> {
        let guard = match self.db.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Some(job),
        };
        match commit(guard, vec![job]) {
            Ok(()) => None,
            Err(mut closed) => closed.pop(),
        }
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

/// A write job for `f`, and the receiver of its answer.
fn write_job<T, F>(f: F) -> (WriteJob, oneshot::Receiver<Result<T, StoreError>>)
where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
{
    let (reply, rx) = oneshot::channel();
    (Box::new(WriteOf { f, reply }), rx)
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
/// WAL size (pages) at which the store thread checkpoints by itself although the checkpoint
/// thread runs. Under a steady stream of writes a concurrent PASSIVE checkpoint never catches
/// the last frame at the moment a write begins, so the WAL would never restart and would grow
/// without bound; this backstop (16 MiB at 4 KiB pages) finds it mostly copied already.
const WAL_BACKSTOP_PAGES: i64 = 4096;

/// Moves WAL checkpoints to their own thread; if that cannot start, SQLite keeps checkpointing
/// automatically on the store thread at its default size.
fn start_checkpointer(conn: &Connection, path: &Path) -> Option<Checkpointer> {
    let checkpointer = match Checkpointer::start(path, BUSY_TIMEOUT) {
        Ok(checkpointer) => checkpointer,
        Err(err) => {
            tracing::warn!(error = %err, "failed to start the wal checkpoint thread");
            return None;
        }
    };
    match conn.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES) {
        Ok(()) => Some(checkpointer),
        Err(err) => {
            tracing::warn!(error = %err, "failed to raise the automatic checkpoint size");
            None
        }
    }
}

fn serve(db: &Mutex<Option<Db>>, lock: File, rx: Option<&mpsc::Receiver<Message>>) {
    let mut next: Option<Message> = None;
    let reply = loop {
        let Some(rx) = rx else { break None };
        let message = match next.take() {
            Some(message) => message,
            None => match rx.recv() {
                Ok(message) => message,
                Err(mpsc::RecvError) => break None,
            },
        };
        match message {
            Message::Run(job) => {
                let mut guard = lock_db(db);
                if let Some(db) = guard.as_mut() {
                    // A panicking job drops its reply sender (the caller sees `Closed`) and its
                    // open transaction (rolled back); the thread carries on.
                    if catch_unwind(AssertUnwindSafe(|| job(&mut db.conn))).is_err() {
                        tracing::error!("store operation panicked");
                    }
                }
            }
            Message::Write(job) => {
                // Writes queued behind this one share its transaction; anything else waits.
                let mut group = vec![job];
                while group.len() < GROUP_MAX {
                    match rx.try_recv() {
                        Ok(Message::Write(job)) => group.push(job),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                // With the store closed the group is dropped: its callers see `Closed`.
                let _closed = commit(lock_db(db), group);
            }
            Message::Close(reply) => break Some(reply),
        }
    };
    // Later writes find no connection and fail with `Closed`.
    let taken = lock_db(db).take();
    let result = match taken {
        Some(Db {
            conn,
            mut checkpointer,
            file: _,
        }) => {
            // Its last checkpoint comes first; closing the last connection then removes the WAL.
            if let Some(checkpointer) = &mut checkpointer {
                checkpointer.stop();
            }
            // SQLite recommends this before closing a long-lived connection; failure is harmless.
            if let Err(err) = conn.execute_batch("PRAGMA optimize") {
                tracing::debug!(error = %err, "failed to optimize the database before closing");
            }
            let result = conn.close().map_err(|(_conn, err)| StoreError::from(err));
            if let Err(err) = &result {
                tracing::error!(error = %err, "failed to close the database");
            }
            result
        }
        None => Ok(()),
    };
    // The lock goes only after the connection is closed.
    drop(lock);
    if let Some(reply) = reply {
        let _ignored = reply.send(result);
    }
}

/// Commits `group` on the connection held by `guard`, lets go of it, then answers the jobs.
/// Gives the group back, unrun, when the store is closed.
fn commit(
    mut guard: MutexGuard<'_, Option<Db>>,
    group: Vec<WriteJob>,
) -> Result<(), Vec<WriteJob>> {
    let Some(db) = guard.as_mut() else {
        return Err(group);
    };
    if let Some(reason) = db.file.as_mut().and_then(FileWatch::gone) {
        drop(guard);
        for job in group {
            job.fail(&reason);
        }
        return Ok(());
    }
    let answers = write_group(&mut db.conn, group);
    if let Some(checkpointer) = &db.checkpointer {
        checkpointer.committed();
    }
    drop(guard);
    answers.send();
    Ok(())
}

/// The answers of a group's jobs, to send once the connection is let go (so that a caller
/// woken by its answer finds it free).
#[must_use]
struct Answers {
    replies: Vec<Reply>,
    /// Why the group's commit failed, if it did.
    failure: Option<String>,
}

impl Answers {
    fn send(self) {
        for reply in self.replies {
            reply(self.failure.as_deref());
        }
    }
}

/// Runs `group` in one IMMEDIATE transaction, each job (when there are several) in its own
/// savepoint so that a failing or panicking job is rolled back alone, and commits; the answers
/// go out only after that (jobs that could not run are failed at once).
fn write_group(conn: &mut Connection, group: Vec<WriteJob>) -> Answers {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(err) => {
            let reason = err.to_string();
            tracing::error!(error = %reason, "failed to begin a write transaction");
            for job in group {
                // Nothing ran: fail each caller without running its job.
                job.fail(&reason);
            }
            return Answers {
                replies: Vec::new(),
                failure: None,
            };
        }
    };
    let shared = group.len() > 1;
    let mut replies = Vec::with_capacity(group.len());
    for job in group {
        if shared && let Err(err) = run_cached(&tx, "SAVEPOINT job") {
            let reason = err.to_string();
            tracing::error!(error = %reason, "failed to open a savepoint");
            job.fail(&reason);
            continue;
        }
        let ran = catch_unwind(AssertUnwindSafe(|| job.run(&tx)));
        let ok = match ran {
            Ok((ok, reply)) => {
                replies.push(reply);
                ok
            }
            Err(_) => {
                tracing::error!("store operation panicked");
                false
            }
        };
        if shared {
            let end = if ok {
                run_cached(&tx, "RELEASE job")
            } else {
                tx.execute_batch("ROLLBACK TO job; RELEASE job")
            };
            if let Err(err) = end {
                tracing::error!(error = %err, "failed to close a savepoint");
            }
        } else if !ok {
            // The only job failed: nothing of it may stay.
            if let Err(err) = tx.rollback() {
                tracing::error!(error = %err, "failed to roll back a write");
            }
            return Answers {
                replies,
                failure: None,
            };
        }
    }
    let failure = match tx.commit() {
        Ok(()) => None,
        Err(err) => {
            let reason = err.to_string();
            tracing::error!(error = %reason, "failed to commit a write transaction");
            Some(reason)
        }
    };
    Answers { replies, failure }
}

/// Runs one statement from the connection's statement cache (savepoints of a shared
/// transaction: two per write, not worth parsing each time).
fn run_cached(tx: &Transaction<'_>, sql: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(sql)?.execute([]).map(drop)
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

    /// A store in a temp dir (kept alive by the returned guard) with an empty `scratch` table.
    async fn scratch_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("vm-system.db")).await.unwrap();
        store
            .write(|tx| Ok(tx.execute_batch("CREATE TABLE scratch (name TEXT NOT NULL)")?))
            .await
            .unwrap();
        (dir, store)
    }

    /// Sends the store thread a job that holds it until the returned sender sends (or drops);
    /// the returned future is that job's answer.
    fn hold_store_thread(
        store: &Store,
    ) -> (
        std::sync::mpsc::Sender<()>,
        std::pin::Pin<Box<impl Future<Output = Result<(), StoreError>> + '_>>,
    ) {
        use futures::FutureExt as _;

        let (gate, held) = std::sync::mpsc::channel::<()>();
        let mut blocker = Box::pin(store.call(move |_| {
            let _ = held.recv();
            Ok(())
        }));
        assert!((&mut blocker).now_or_never().is_none());
        (gate, blocker)
    }

    #[tokio::test]
    async fn queued_writes_share_a_transaction_and_fail_alone() {
        use futures::FutureExt as _;

        let (_dir, store) = scratch_store().await;
        // Hold the store thread so that the writes below queue up behind it as one group.
        let (gate, blocker) = hold_store_thread(&store);
        let mut writes: Vec<_> = (0..12)
            .map(|i: i64| {
                Box::pin(store.write(move |tx| {
                    tx.execute("INSERT INTO scratch (name) VALUES (?1)", [format!("g{i}")])?;
                    match i % 3 {
                        0 => Err(StoreError::InvalidInput { reason: "refused" }),
                        1 if i == 7 => panic!("boom"),
                        _ => Ok(i),
                    }
                }))
            })
            .collect();
        for write in &mut writes {
            // The first poll sends the job; it cannot finish while the thread is held.
            assert!(write.as_mut().now_or_never().is_none());
        }
        gate.send(()).unwrap();
        blocker.await.unwrap();
        for (i, write) in (0..12).zip(writes) {
            let result = write.await;
            match i % 3 {
                0 => assert!(
                    matches!(result, Err(StoreError::InvalidInput { .. })),
                    "{result:?}"
                ),
                1 if i == 7 => assert!(matches!(result, Err(StoreError::Closed)), "{result:?}"),
                _ => assert_eq!(result.unwrap(), i),
            }
        }
        let names: Vec<String> = store
            .read(|tx| {
                let mut stmt = tx.prepare("SELECT name FROM scratch ORDER BY name")?;
                let names = stmt.query_map([], |row| row.get(0))?;
                Ok(names.collect::<Result<Vec<String>, _>>()?)
            })
            .await
            .unwrap();
        let mut want: Vec<String> = (0..12)
            .filter(|i| i % 3 != 0 && *i != 7)
            .map(|i| format!("g{i}"))
            .collect();
        want.sort();
        assert_eq!(names, want);
    }

    /// The name of the thread a write ran on, and the write's outcome.
    async fn writer_thread(store: &Store, now: bool) -> Result<String, StoreError> {
        let f = |tx: &Transaction<'_>| {
            tx.execute("INSERT INTO scratch (name) VALUES ('x')", [])?;
            Ok(std::thread::current().name().unwrap_or("").to_owned())
        };
        if now {
            store.write_now(f).await
        } else {
            store.write(f).await
        }
    }

    #[tokio::test]
    async fn write_now_commits_on_the_callers_thread_when_the_connection_is_free() {
        use futures::FutureExt as _;

        // Waits (with a deadline) until the connection is free, or held, by the store thread.
        let wait_for = |store: &Store, free: bool| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while store.db.try_lock().is_ok() != free {
                assert!(std::time::Instant::now() < deadline, "free: {free}");
                std::thread::yield_now();
            }
        };
        let (_dir, store) = scratch_store().await;
        let caller = std::thread::current().name().unwrap_or("").to_owned();
        assert_eq!(
            writer_thread(&store, false).await.unwrap(),
            "vm-system-store"
        );
        wait_for(&store, true);
        assert_eq!(writer_thread(&store, true).await.unwrap(), caller);
        // Another write in progress: `write_now` queues, to share that write's group.
        {
            let (_other, alone) = Writing::start(&store.writing);
            assert!(alone);
            assert_eq!(
                writer_thread(&store, true).await.unwrap(),
                "vm-system-store"
            );
        }
        wait_for(&store, true);

        // While the store thread holds the connection, `write_now` queues like any write.
        let (gate, blocker) = hold_store_thread(&store);
        wait_for(&store, false);
        let mut queued = Box::pin(writer_thread(&store, true));
        assert!(queued.as_mut().now_or_never().is_none());
        gate.send(()).unwrap();
        blocker.await.unwrap();
        assert_eq!(queued.await.unwrap(), "vm-system-store");

        let rows: i64 = store
            .read(|tx| Ok(tx.query_row("SELECT count(*) FROM scratch", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(rows, 4);
        store.close().await.unwrap();
        let err = writer_thread(&store, true).await.unwrap_err();
        assert!(matches!(err, StoreError::Closed), "{err:?}");
    }

    #[tokio::test]
    async fn a_write_that_cannot_begin_fails_with_the_reason_and_the_store_carries_on() {
        let (dir, store) = scratch_store().await;
        // Another process's connection holds the write lock past the busy timeout.
        let other = Connection::open(dir.path().join("vm-system.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let err = writer_thread(&store, false).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Begin(reason) if reason.contains("locked")),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("failed to begin a database transaction: "),
            "{err}"
        );
        other.execute_batch("ROLLBACK").unwrap();
        drop(other);
        assert_eq!(
            writer_thread(&store, false).await.unwrap(),
            "vm-system-store"
        );
        store.close().await.unwrap();
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
