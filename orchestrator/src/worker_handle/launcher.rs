//! `Launcher`: starts workers. A worker is forked by the zygote while one runs (started on first
//! need, restarted after it ended, with a growing pause after failed starts); otherwise, or when
//! the zygote cannot serve a request, it is spawned with `exec`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::spawn::{SpawnConfig, fork_worker, start_worker};
use super::zygote::Zygote;
use super::{WorkerError, WorkerHandle};

/// First pause after a failed zygote start; doubled after each failure in a row.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest pause between zygote starts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Cheap to clone; every clone is the same launcher.
#[derive(Debug, Clone)]
pub(crate) struct Launcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: SpawnConfig,
    slot: Mutex<Slot>,
}

#[derive(Debug)]
enum Slot {
    /// Workers are always spawned.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "only tests spawn without a zygote")
    )]
    Off,
    /// No zygote runs; the next start tries one at `retry_at`.
    Down {
        retry_at: Instant,
        backoff: Duration,
    },
    Up(Zygote),
    /// Shut down: workers are spawned, no zygote is started again.
    Closed,
}

/// Engine name and version, as a worker (or the zygote) reported them in `Hello`.
#[derive(Debug, Clone)]
pub(crate) struct EngineInfo {
    pub(crate) engine: String,
    pub(crate) engine_version: String,
    pub(crate) pid: u32,
}

impl Launcher {
    /// A launcher that forks workers from a zygote.
    pub(crate) fn new(cfg: SpawnConfig) -> Self {
        Self::with_slot(
            cfg,
            Slot::Down {
                retry_at: Instant::now(),
                backoff: BACKOFF_MIN,
            },
        )
    }

    /// A launcher that always spawns workers with `exec`.
    #[cfg(test)]
    pub(crate) fn spawn_only(cfg: SpawnConfig) -> Self {
        Self::with_slot(cfg, Slot::Off)
    }

    fn with_slot(cfg: SpawnConfig, slot: Slot) -> Self {
        Launcher {
            inner: Arc::new(Inner {
                cfg,
                slot: Mutex::new(slot),
            }),
        }
    }

    /// Starts the zygote now, if this launcher uses one, and returns what it reported.
    pub(crate) async fn prepare(&self) -> Option<EngineInfo> {
        let zygote = self.zygote().await?;
        Some(EngineInfo {
            engine: zygote.engine().to_string(),
            engine_version: zygote.engine_version().to_string(),
            pid: zygote.pid(),
        })
    }

    /// A new worker, past its handshake: forked by the zygote when one runs, else spawned.
    pub(crate) async fn start(&self) -> Result<WorkerHandle, WorkerError> {
        if let Some(zygote) = self.zygote().await {
            match fork_worker(&self.inner.cfg, &zygote).await {
                Err(WorkerError::Zygote(reason)) => {
                    tracing::warn!(%reason, "fork server failed a request; spawning the worker instead");
                }
                other => return other,
            }
        }
        start_worker(&self.inner.cfg).await
    }

    /// Stops the zygote for good (workers it forked die with it: stop them first). Later starts
    /// spawn their workers.
    #[cfg(test)]
    pub(crate) async fn shutdown(&self, fast: bool) {
        self.shutdown_hastened(tokio::sync::watch::channel(fast).1)
            .await;
    }

    /// `shutdown`, with SIGKILL as soon as `fast` holds true.
    pub(crate) async fn shutdown_hastened(&self, fast: super::Haste) {
        let previous = std::mem::replace(&mut *self.inner.slot.lock().await, Slot::Closed);
        if let Slot::Up(zygote) = previous {
            zygote.stop_hastened(fast).await;
        }
    }

    /// The running zygote, starting one if it is due.
    async fn zygote(&self) -> Option<Zygote> {
        let mut slot = self.inner.slot.lock().await;
        let backoff = match &*slot {
            Slot::Off | Slot::Closed => return None,
            Slot::Up(zygote) if zygote.is_alive() => return Some(zygote.clone()),
            // It ended after it had worked: start another at once.
            Slot::Up(_) => BACKOFF_MIN,
            Slot::Down { retry_at, backoff } => {
                if Instant::now() < *retry_at {
                    return None;
                }
                *backoff
            }
        };
        match Zygote::start(&self.inner.cfg).await {
            Ok(zygote) => {
                *slot = Slot::Up(zygote.clone());
                Some(zygote)
            }
            Err(err) => {
                tracing::warn!(error = %err.reason(), retry_in = ?backoff, "failed to start the fork server; spawning workers meanwhile");
                *slot = Slot::Down {
                    retry_at: Instant::now() + backoff,
                    backoff: (backoff * 2).min(BACKOFF_MAX),
                };
                None
            }
        }
    }
}
