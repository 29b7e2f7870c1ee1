//! The worker's main loop: applies `Configure`, runs each `Exec` to its `Done`, and trims the heap
//! once the worker has gone idle after an execution that grew it (`memory::IdleTrim`).

use protocol::{FromWorker, ToWorker};

use crate::engine::{Engine, Job};
use crate::memory;
use crate::transport::{Inbox, Outbox};

/// Exit code when the heap did not recover after a memory stop.
pub(crate) const EXIT_MEMORY: i32 = 3;
/// Exit code when `Configure` could not be applied.
pub(crate) const EXIT_CONFIGURE: i32 = 4;

/// Serves frames until the worker must exit (a closed pipe or `Shutdown` end the process while
/// `inbox` reads).
pub(crate) async fn serve(mut engine: Engine, out: Outbox, mut inbox: Inbox) {
    let mut heap = memory::IdleTrim::new();
    // Set after an execution that grew the heap; cleared by the trim, once no frame came for
    // `IDLE_AFTER`.
    let mut trim_when_idle = false;
    loop {
        let frame = if trim_when_idle {
            match tokio::time::timeout(memory::IDLE_AFTER, inbox.next()).await {
                Ok(frame) => frame,
                Err(_elapsed) => {
                    trim_when_idle = false;
                    heap.trim();
                    continue;
                }
            }
        } else {
            inbox.next().await
        };
        match frame {
            ToWorker::Configure(config) => match engine.configure(&config) {
                Ok(()) => out.send(FromWorker::Configured),
                Err(err) => {
                    out.send(FromWorker::ConfigureFailed {
                        reason: err.to_string(),
                    });
                    out.exit(EXIT_CONFIGURE);
                    return;
                }
            },
            ToWorker::Exec {
                id,
                kind,
                name,
                source,
                limits,
                budget,
            } => {
                let report = engine
                    .exec(Job {
                        id,
                        kind,
                        name,
                        source,
                        limits,
                        budget,
                    })
                    .await;
                // No user code runs any more: this thread reads the next frames (a hang-up still
                // ends the process at once), so the daemon's next `Exec` wakes only this thread.
                inbox.take_over();
                // The terminal event, a fatal reason and the Done leave in one write. A fatal
                // reason goes before the Done, so the daemon knows it when the Done arrives.
                let fatal = report.fatal.as_ref().map(|reason| {
                    tracing::warn!(%reason, "exiting: heap did not recover");
                    FromWorker::Fatal {
                        reason: reason.clone(),
                    }
                });
                let done = FromWorker::Done {
                    id,
                    outcome: report.outcome,
                    cpu_ms: millis(report.measured.cpu),
                    wall_ms: millis(report.measured.wall),
                };
                out.send_all(report.terminal.into_iter().chain(fatal).chain([done]));
                if report.fatal.is_some() {
                    out.exit(EXIT_MEMORY);
                    return;
                }
                trim_when_idle = heap.due();
            }
            // Cancels and shutdowns are acted on where they are read; they never reach here.
            ToWorker::Cancel { .. } | ToWorker::Shutdown => {}
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
