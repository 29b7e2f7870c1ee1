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

/// The checkpoint thread. The store connection keeps a large automatic checkpoint as a backstop
/// (see `handle.rs`). Dropping it (or [`Checkpointer::stop`]) ends the thread after a last
/// checkpoint.
pub(super) struct Checkpointer {
    nudge: Option<SyncSender<()>>,
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
            thread: Some(thread),
        })
    }

    /// Tells the thread that something was committed. Never blocks.
    pub(super) fn nudge(&self) {
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
