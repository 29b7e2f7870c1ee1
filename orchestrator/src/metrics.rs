//! Daemon metrics (spec §4.1 `/metrics`): counters and gauges kept in atomics, rendered in the
//! Prometheus text format.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::{ExecutionKind, ExecutionStatus, SessionCounts, SessionStatus};

const BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Debug, Default)]
struct Histogram {
    /// Per kind: bucket counts (cumulative at render), sum, count.
    by_kind: [([u64; 13], f64, u64); 3],
}

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    finished: [AtomicU64; 4],
    running: AtomicU64,
    attached: AtomicU64,
    crashes: AtomicU64,
    durations: Mutex<Histogram>,
}

fn status_index(status: ExecutionStatus) -> Option<usize> {
    match status {
        ExecutionStatus::Ok => Some(0),
        ExecutionStatus::Error => Some(1),
        ExecutionStatus::Timeout => Some(2),
        ExecutionStatus::Cancelled => Some(3),
        ExecutionStatus::Running => None,
    }
}

fn kind_index(kind: ExecutionKind) -> usize {
    match kind {
        ExecutionKind::Repl => 0,
        ExecutionKind::RunFile => 1,
        ExecutionKind::Startup => 2,
    }
}

impl Metrics {
    pub(crate) fn execution_started(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    /// An execution whose record could not be written: no longer running, counted under no
    /// status.
    pub(crate) fn execution_abandoned(&self) {
        self.running.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn execution_finished(
        &self,
        status: ExecutionStatus,
        kind: ExecutionKind,
        wall_ms: u64,
    ) {
        self.running.fetch_sub(1, Ordering::Relaxed);
        if let Some(i) = status_index(status) {
            self.finished[i].fetch_add(1, Ordering::Relaxed);
        }
        #[expect(
            clippy::cast_precision_loss,
            reason = "durations are far below 2^52 ms"
        )]
        let seconds = wall_ms as f64 / 1000.0;
        let mut hist = self
            .durations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = &mut hist.by_kind[kind_index(kind)];
        if let Some(bucket) = BUCKETS.iter().position(|b| seconds <= *b) {
            entry.0[bucket] += 1;
        }
        entry.1 += seconds;
        entry.2 += 1;
    }

    pub(crate) fn worker_attached(&self) {
        self.attached.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn worker_crashed(&self) {
        self.crashes.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self, sessions: SessionCounts, spawns: u64, warm: u64) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP vm_system_sessions Session rows by state.\n# TYPE vm_system_sessions gauge"
        );
        for status in SessionStatus::ALL {
            let _ = writeln!(
                out,
                "vm_system_sessions{{state=\"{}\"}} {}",
                status.as_str(),
                sessions.get(*status)
            );
        }
        let _ = writeln!(
            out,
            "# HELP vm_system_executions_total Executions that reached a final status.\n# TYPE vm_system_executions_total counter"
        );
        for (i, name) in ["ok", "error", "timeout", "cancelled"].iter().enumerate() {
            let _ = writeln!(
                out,
                "vm_system_executions_total{{status=\"{name}\"}} {}",
                self.finished[i].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP vm_system_executions_running Executions running now.\n# TYPE vm_system_executions_running gauge"
        );
        let _ = writeln!(
            out,
            "vm_system_executions_running {}",
            self.running.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP vm_system_worker_spawns_total Workers spawned, pool included.\n# TYPE vm_system_worker_spawns_total counter"
        );
        let _ = writeln!(out, "vm_system_worker_spawns_total {spawns}");
        let _ = writeln!(
            out,
            "# HELP vm_system_worker_crashes_total Worker exits that made a session crashed.\n# TYPE vm_system_worker_crashes_total counter"
        );
        let _ = writeln!(
            out,
            "vm_system_worker_crashes_total {}",
            self.crashes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP vm_system_pool_warm_workers Idle pre-started workers.\n# TYPE vm_system_pool_warm_workers gauge"
        );
        let _ = writeln!(out, "vm_system_pool_warm_workers {warm}");
        let _ = writeln!(
            out,
            "# HELP vm_system_execution_duration_seconds Wall time of ended executions.\n# TYPE vm_system_execution_duration_seconds histogram"
        );
        let hist = self
            .durations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (i, kind) in ["repl", "run_file", "startup"].iter().enumerate() {
            let (buckets, sum, count) = hist.by_kind[i];
            let mut cumulative = 0;
            for (b, le) in BUCKETS.iter().enumerate() {
                cumulative += buckets[b];
                let _ = writeln!(
                    out,
                    "vm_system_execution_duration_seconds_bucket{{kind=\"{kind}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "vm_system_execution_duration_seconds_bucket{{kind=\"{kind}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "vm_system_execution_duration_seconds_sum{{kind=\"{kind}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "vm_system_execution_duration_seconds_count{{kind=\"{kind}\"}} {count}"
            );
        }
        out
    }
}
