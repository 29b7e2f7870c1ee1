//! `WorkerPool`: workers started ahead of time (`--pool-size`, spec §10.4), handed out when a
//! session starts, and refilled in the background one spawn at a time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::worker_handle::{Haste, Launcher, WorkerError, WorkerHandle};

/// First pause after a failed refill spawn; doubled after each failure in a row.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Longest pause between failed refill spawns.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A set of warm (handshaken, unconfigured) workers. Cheap to clone; every clone is the same pool.
#[derive(Debug, Clone)]
pub(crate) struct WorkerPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    launcher: Launcher,
    target: usize,
    state: Mutex<PoolState>,
    /// Wakes the refill task: a worker was taken or died, or the pool closed.
    wake: Arc<Notify>,
    spawns: AtomicU64,
}

#[derive(Debug, Default)]
struct PoolState {
    warm: VecDeque<WorkerHandle>,
    closed: bool,
    /// How `shutdown` stops workers; the refill task uses it for a worker it finishes late.
    fast: Option<Haste>,
    refill: Option<JoinHandle<()>>,
}

/// What the refill task should do next.
enum Next {
    Spawn,
    Wait,
    Quit,
}

impl WorkerPool {
    /// A pool keeping `target` workers warm once `start_refill` (or a first `take`) ran.
    pub(crate) fn new(launcher: Launcher, target: usize) -> Self {
        WorkerPool {
            inner: Arc::new(PoolInner {
                launcher,
                target,
                state: Mutex::new(PoolState::default()),
                wake: Arc::new(Notify::new()),
                spawns: AtomicU64::new(0),
            }),
        }
    }

    /// How many warm workers the pool keeps.
    pub(crate) fn target(&self) -> usize {
        self.inner.target
    }

    /// How many live warm workers are ready right now.
    pub(crate) fn warm(&self) -> usize {
        let state = self.inner.lock();
        state
            .warm
            .iter()
            .filter(|w| w.exit_reason().is_none())
            .count()
    }

    /// Worker processes this pool asked to start (refills and direct starts, failed ones too).
    pub(crate) fn spawns_total(&self) -> u64 {
        self.inner.spawns.load(Ordering::Relaxed)
    }

    /// Starts the background refill task, unless it runs already or the pool is closed.
    pub(crate) fn start_refill(&self) {
        if self.inner.target == 0 {
            return;
        }
        let mut state = self.inner.lock();
        if state.closed {
            return;
        }
        let running = state
            .refill
            .as_ref()
            .is_some_and(|task| !task.is_finished());
        if !running {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let task = refill(Arc::downgrade(&self.inner), Arc::clone(&self.inner.wake));
                    state.refill = Some(runtime.spawn(task));
                }
                Err(err) => {
                    tracing::error!(error = %err, "failed to start the pool refill: no runtime");
                    return;
                }
            }
        }
        drop(state);
        self.inner.wake.notify_one();
    }

    /// A warm worker (workers that died while idle are skipped), or a freshly started one when
    /// none is warm. Either way the refill task is woken to replace it.
    pub(crate) async fn take(&self) -> Result<WorkerHandle, WorkerError> {
        let warm = {
            let mut state = self.inner.lock();
            if state.closed {
                return Err(WorkerError::PoolClosed);
            }
            let mut found = None;
            while let Some(worker) = state.warm.pop_front() {
                if worker.exit_reason().is_none() {
                    found = Some(worker);
                    break;
                }
                tracing::debug!(pid = worker.pid(), "skipping a warm worker that died");
            }
            found
        };
        self.start_refill();
        if let Some(worker) = warm {
            return Ok(worker);
        }
        self.inner.spawns.fetch_add(1, Ordering::Relaxed);
        self.inner.launcher.start().await
    }

    /// Stops refilling and stops every warm worker (reaped when this returns); `fast` skips the
    /// grace periods (SIGKILL at once). Later `take`s fail with `PoolClosed`.
    #[cfg(test)]
    pub(crate) async fn shutdown(&self, fast: bool) {
        self.shutdown_hastened(tokio::sync::watch::channel(fast).1)
            .await;
    }

    /// `shutdown`, skipping what is left of the grace periods as soon as `fast` holds true.
    pub(crate) async fn shutdown_hastened(&self, fast: Haste) {
        let (warm, refill) = {
            let mut state = self.inner.lock();
            state.closed = true;
            state.fast = Some(fast.clone());
            (std::mem::take(&mut state.warm), state.refill.take())
        };
        self.inner.wake.notify_one();
        let stops =
            futures::future::join_all(warm.iter().map(|worker| worker.stop_hastened(fast.clone())));
        let refill = async {
            if let Some(task) = refill
                && let Err(err) = task.await
            {
                tracing::warn!(error = %err, "pool refill task failed");
            }
        };
        tokio::join!(stops, refill);
        // Last: workers forked by the zygote die with it.
        self.inner.launcher.shutdown_hastened(fast).await;
    }
}

impl PoolInner {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops dead warm workers and decides whether to start another one.
    fn next(&self) -> Next {
        let mut state = self.lock();
        if state.closed {
            return Next::Quit;
        }
        state.warm.retain(|w| w.exit_reason().is_none());
        if state.warm.len() < self.target {
            self.spawns.fetch_add(1, Ordering::Relaxed);
            Next::Spawn
        } else {
            Next::Wait
        }
    }

    /// Adds a fresh worker, or gives it back when the pool closed meanwhile (with the stop mode).
    fn add(&self, worker: WorkerHandle) -> Result<(), (WorkerHandle, Haste)> {
        let mut state = self.lock();
        if state.closed {
            let fast = state
                .fast
                .clone()
                .unwrap_or_else(|| tokio::sync::watch::channel(false).1);
            return Err((worker, fast));
        }
        state.warm.push_back(worker);
        Ok(())
    }
}

/// The refill loop. It holds the pool weakly: a pool dropped without `shutdown` ends it (and its
/// dropped handles stop their workers).
async fn refill(pool: Weak<PoolInner>, wake: Arc<Notify>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let next = match pool.upgrade() {
            Some(inner) => inner.next(),
            None => Next::Quit,
        };
        let launcher = match next {
            Next::Quit => return,
            Next::Wait => {
                wake.notified().await;
                continue;
            }
            Next::Spawn => match pool.upgrade() {
                Some(inner) => inner.launcher.clone(),
                None => return,
            },
        };
        match launcher.start().await {
            Ok(worker) => {
                backoff = BACKOFF_MIN;
                let Some(inner) = pool.upgrade() else {
                    worker.stop(false).await;
                    return;
                };
                if let Err((worker, fast)) = inner.add(worker.clone()) {
                    drop(inner);
                    worker.stop_hastened(fast).await;
                    return;
                }
                drop(inner);
                // Wake the loop when this idle worker dies, so it is replaced.
                let wake = Arc::clone(&wake);
                let exit = worker.exit_watcher();
                tokio::spawn(async move {
                    exit.await;
                    wake.notify_one();
                });
            }
            Err(err) => {
                tracing::warn!(error = %err.reason(), retry_in = ?backoff, "failed to start a pool worker");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = wake.notified() => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::worker_handle::test_support;

    async fn until(what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !condition() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn warm_pids(pool: &WorkerPool) -> Vec<u32> {
        pool.inner
            .lock()
            .warm
            .iter()
            .map(WorkerHandle::pid)
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keeps_target_warm_and_refills_after_take() {
        let pool = WorkerPool::new(Launcher::new(test_support::config()), 2);
        assert_eq!(pool.target(), 2);
        assert_eq!(pool.warm(), 0);
        pool.start_refill();
        until("two warm workers", || pool.warm() == 2).await;
        assert_eq!(pool.spawns_total(), 2);

        let before = warm_pids(&pool);
        let worker = pool.take().await.unwrap();
        assert!(before.contains(&worker.pid()));
        assert!(worker.exit_reason().is_none());
        worker.configure(test_support::session(64)).await.unwrap();
        until("a refill after take", || pool.warm() == 2).await;
        assert_eq!(pool.spawns_total(), 3);

        let mut pids = warm_pids(&pool);
        pids.push(worker.pid());
        assert_eq!(
            worker.stop(false).await,
            crate::worker_handle::ExitReason::Requested
        );
        pool.shutdown(false).await;
        assert_eq!(pool.warm(), 0);
        for pid in pids {
            assert!(test_support::is_reaped(pid), "{pid} was not reaped");
        }
        assert!(matches!(pool.take().await, Err(WorkerError::PoolClosed)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dead_warm_workers_are_skipped_and_replaced() {
        let pool = WorkerPool::new(Launcher::spawn_only(test_support::config()), 1);
        pool.start_refill();
        until("one warm worker", || pool.warm() == 1).await;
        let dead = pool.inner.lock().warm.front().cloned().unwrap();
        unsafe { libc::kill(dead.pid() as libc::pid_t, libc::SIGKILL) };
        dead.exited().await;
        // Replaced in the background, without a take.
        until("a replacement", || {
            pool.warm() == 1 && warm_pids(&pool) != vec![dead.pid()]
        })
        .await;

        // And a take never hands out a dead one, even when it races the refill.
        let next = pool.inner.lock().warm.front().cloned().unwrap();
        unsafe { libc::kill(next.pid() as libc::pid_t, libc::SIGKILL) };
        next.exited().await;
        let worker = pool.take().await.unwrap();
        assert_ne!(worker.pid(), next.pid());
        assert!(worker.exit_reason().is_none());
        worker.stop(true).await;
        pool.shutdown(true).await;
    }

    #[tokio::test]
    async fn take_without_warm_workers_starts_one() {
        let pool = WorkerPool::new(Launcher::new(test_support::config()), 0);
        pool.start_refill();
        let worker = pool.take().await.unwrap();
        assert_eq!(worker.engine(), "quickjs");
        assert_eq!(pool.spawns_total(), 1);
        assert_eq!(pool.warm(), 0);
        worker.stop(false).await;
        pool.shutdown(false).await;
    }

    #[tokio::test]
    async fn a_broken_worker_program_fails_take() {
        let cfg = crate::worker_handle::SpawnConfig::new("/nonexistent/vm-system-worker".into());
        let pool = WorkerPool::new(Launcher::new(cfg), 1);
        pool.start_refill();
        assert!(matches!(pool.take().await, Err(WorkerError::Spawn { .. })));
        pool.shutdown(true).await;
        assert_eq!(pool.warm(), 0);
    }
}
