//! `Checkpointer`: copies the WAL back into the database file on its own thread and connection,
//! so that no write request waits for a checkpoint (and its fsync) on the store thread.

use std::path::Path;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// Least time between two checkpoints: under a steady stream of writes, one checkpoint copies
/// what that stretch of time wrote.
const MIN_INTERVAL: Duration = Duration::from_millis(200);
/// Committed transactions between two checkpoints (a short execution writes a few pages): a
/// checkpoint, with its two fsyncs, is not worth running for every commit, and running it beside
/// the store thread's next writes slows them.
const COMMITS_PER_CHECKPOINT: u32 = 128;

/// The checkpoint thread. The store connection keeps a large automatic checkpoint as a backstop
/// (see `handle.rs`), and the last checkpoint runs when the store closes. Dropping it (or [`Checkpointer::stop`]) ends the thread after a last
/// checkpoint.
pub(super) struct Checkpointer {
    nudge: Option<SyncSender<()>>,
    commits: std::cell::Cell<u32>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a second connection to `path` and starts the thread. The caller turns SQLite's
    /// automatic checkpoints off on its own connection only if this succeeds.
    pub(super) fn start(path: &Path, busy_timeout: Duration) -> Result<Self, String> {
        let conn = Connection::open(path).map_err(|err| err.to_string())?;
        conn.busy_timeout(busy_timeout)
            .map_err(|err| err.to_string())?;
        let (nudge, nudged) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("vm-system-wal".to_owned())
            .spawn(move || run(&conn, &nudged))
            .map_err(|err| err.to_string())?;
        Ok(Checkpointer {
            nudge: Some(nudge),
            commits: std::cell::Cell::new(0),
            thread: Some(thread),
        })
    }

    /// Counts a commit, and every `COMMITS_PER_CHECKPOINT` commits asks the thread for a
    /// checkpoint. Never blocks.
    pub(super) fn committed(&self) {
        let commits = self.commits.get() + 1;
        if commits < COMMITS_PER_CHECKPOINT {
            self.commits.set(commits);
            return;
        }
        self.commits.set(0);
        if let Some(nudge) = &self.nudge
            && let Err(TrySendError::Disconnected(())) = nudge.try_send(())
        {
            tracing::warn!("the wal checkpoint thread has stopped");
        }
    }

    /// Ends the thread after its last checkpoint and waits for it.
    pub(super) fn stop(&mut self) {
        self.nudge = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the wal checkpoint thread panicked");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(conn: &Connection, nudged: &mpsc::Receiver<()>) {
    // Wait for a commit, checkpoint, then let MIN_INTERVAL of commits gather.
    while nudged.recv().is_ok() {
        checkpoint(conn);
        std::thread::sleep(MIN_INTERVAL);
    }
    checkpoint(conn);
}

fn checkpoint(conn: &Connection) {
    // PASSIVE never blocks the writer; frames a reader still needs wait for the next round.
    if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %err, "wal checkpoint failed");
    }
}
