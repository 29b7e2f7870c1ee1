//! The worker's main loop: applies `Configure` and runs each `Exec` to its `Done`.

use protocol::{FromWorker, ToWorker};

use crate::engine::{Engine, Job};
use crate::transport::Pipe;

/// Exit code when the heap did not recover after a memory stop.
pub(crate) const EXIT_MEMORY: i32 = 3;
/// Exit code when `Configure` could not be applied.
pub(crate) const EXIT_CONFIGURE: i32 = 4;

/// Serves frames until the pipe closes or the worker must exit.
pub(crate) async fn serve(mut engine: Engine, mut pipe: Pipe) {
    while let Some(frame) = pipe.inbox.recv().await {
        match frame {
            ToWorker::Configure(config) => match engine.configure(&config) {
                Ok(()) => pipe.out.send(FromWorker::Configured),
                Err(err) => {
                    pipe.out.send(FromWorker::ConfigureFailed {
                        reason: err.to_string(),
                    });
                    pipe.out.exit(EXIT_CONFIGURE);
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
                if let Some(terminal) = report.terminal {
                    pipe.out.send(terminal);
                }
                // A fatal reason goes before the Done, so the daemon knows it when the Done arrives.
                if let Some(reason) = &report.fatal {
                    tracing::warn!(%reason, "exiting: heap did not recover");
                    pipe.out.send(FromWorker::Fatal {
                        reason: reason.clone(),
                    });
                }
                pipe.out.send(FromWorker::Done {
                    id,
                    outcome: report.outcome,
                    cpu_ms: millis(report.measured.cpu),
                    wall_ms: millis(report.measured.wall),
                });
                if report.fatal.is_some() {
                    pipe.out.exit(EXIT_MEMORY);
                    return;
                }
            }
            // Cancels and shutdowns are handled by the frame thread; nothing to do here.
            ToWorker::Cancel { .. } | ToWorker::Shutdown => {}
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
