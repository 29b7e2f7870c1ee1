//! `TestWorker`: spawns `worker-dup` with a socketpair on fd 3 and speaks the protocol to it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use futures::{SinkExt, StreamExt};
use protocol::{
    Budget, ExecId, ExecKind, ExecLimits, ExecOutcome, FrameCodec, FromWorker, SessionConfig,
    ToWorker, WorkerEvent,
};
use tokio::net::UnixStream;
use tokio_util::codec::Framed;

use crate::DEADLINE;

/// A live worker process and the daemon's end of its pipe.
pub struct TestWorker {
    pub child: Child,
    pub pid: u32,
    pub frames: Framed<UnixStream, FrameCodec<FromWorker, ToWorker>>,
    next_id: u64,
}

/// Everything one execution sent back.
#[derive(Debug)]
pub struct ExecResult {
    pub events: Vec<WorkerEvent>,
    pub outcome: ExecOutcome,
    pub cpu_ms: u64,
    pub wall_ms: u64,
    /// Frames that are neither events nor the `Done` (stats, fatal).
    pub other: Vec<FromWorker>,
}

impl ExecResult {
    /// Payloads of the events, parsed.
    pub fn payloads(&self) -> Vec<serde_json::Value> {
        self.events
            .iter()
            .map(|e| serde_json::from_str(&e.payload).unwrap())
            .collect()
    }

    /// The last event's payload, parsed.
    pub fn last(&self) -> serde_json::Value {
        self.payloads().pop().unwrap_or(serde_json::Value::Null)
    }
}

/// A session configuration with the spec defaults and `worktree` as its folder.
pub fn config(worktree: &str) -> SessionConfig {
    SessionConfig {
        worktree: worktree.to_string(),
        mem_mb: 128,
        strict: false,
        console: true,
        modules: vec![],
        fs_read: false,
        fs_write: false,
        exec_allow: vec![],
        env: vec![],
    }
}

/// Default limits of spec §5.
pub const LIMITS: ExecLimits = ExecLimits {
    wall_ms: 30_000,
    cpu_ms: 5_000,
};

/// A budget of `events` events and `kb` KiB.
pub fn budget(events: u64, kb: u64) -> Budget {
    Budget {
        events,
        bytes: kb * 1024,
        max_events: events + 1,
        max_output_kb: kb,
    }
}

impl TestWorker {
    /// Spawns a worker and waits for `Hello` and `Ready`.
    pub async fn spawn() -> TestWorker {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let theirs: OwnedFd = theirs.into();
        let raw = theirs.as_raw_fd();
        let mut command = Command::new(crate::bin_path("worker-dup"));
        command
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // SAFETY: dup2 and setsid are async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(raw, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::setsid();
                Ok(())
            });
        }
        let child = command.spawn().unwrap();
        drop(theirs);
        ours.set_nonblocking(true).unwrap();
        let stream = UnixStream::from_std(ours).unwrap();
        let frames = Framed::new(stream, FrameCodec::new());
        let mut worker = TestWorker {
            pid: child.id(),
            child,
            frames,
            next_id: 0,
        };
        match worker.recv().await {
            Some(FromWorker::Hello {
                protocol_version,
                pid,
                engine,
                ..
            }) => {
                assert_eq!(protocol_version, protocol::PROTOCOL_VERSION);
                assert_eq!(pid, worker.pid);
                assert_eq!(engine, "quickjs");
            }
            other => panic!("expected Hello, got {other:?}"),
        }
        match worker.recv().await {
            Some(FromWorker::Ready) => {}
            other => panic!("expected Ready, got {other:?}"),
        }
        worker
    }

    /// Spawns and configures a worker for `config`.
    pub async fn configured(config: SessionConfig) -> TestWorker {
        let mut worker = Self::spawn().await;
        worker.send(ToWorker::Configure(config)).await;
        match worker.recv().await {
            Some(FromWorker::Configured) => {}
            other => panic!("expected Configured, got {other:?}"),
        }
        worker
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: ToWorker) {
        self.frames.send(frame).await.unwrap();
    }

    /// Receives one frame (None when the pipe closed), failing the test after `DEADLINE`.
    pub async fn recv(&mut self) -> Option<FromWorker> {
        match tokio::time::timeout(DEADLINE, self.frames.next()).await {
            Ok(Some(Ok(frame))) => Some(frame),
            Ok(Some(Err(err))) => panic!("bad frame: {err}"),
            Ok(None) => None,
            Err(_) => panic!("no frame within {DEADLINE:?}"),
        }
    }

    /// Starts an execution and returns its id without waiting.
    pub async fn start(
        &mut self,
        kind: ExecKind,
        name: &str,
        source: &str,
        limits: ExecLimits,
        budget: Budget,
    ) -> ExecId {
        self.next_id += 1;
        let id = ExecId(self.next_id);
        self.send(ToWorker::Exec {
            id,
            kind,
            name: name.into(),
            source: source.into(),
            limits,
            budget,
        })
        .await;
        id
    }

    /// Collects the frames of execution `id` up to its `Done`.
    pub async fn finish(&mut self, id: ExecId) -> ExecResult {
        let mut events = Vec::new();
        let mut other = Vec::new();
        loop {
            match self.recv().await {
                Some(FromWorker::Event(event)) => {
                    assert_eq!(event.id, id);
                    assert_eq!(event.seq, events.len() as u64 + 1, "seq is contiguous");
                    events.push(event);
                }
                Some(FromWorker::Done {
                    id: done,
                    outcome,
                    cpu_ms,
                    wall_ms,
                }) => {
                    assert_eq!(done, id);
                    return ExecResult {
                        events,
                        outcome,
                        cpu_ms,
                        wall_ms,
                        other,
                    };
                }
                Some(frame) => other.push(frame),
                None => panic!(
                    "worker exited during execution {id:?} ({:?}); other frames {other:?}",
                    self.wait_exit()
                ),
            }
        }
    }

    /// Runs `source` with `kind`, `limits` and `budget` and waits for the end.
    pub async fn run(
        &mut self,
        kind: ExecKind,
        name: &str,
        source: &str,
        limits: ExecLimits,
        budget: Budget,
    ) -> ExecResult {
        let id = self.start(kind, name, source, limits, budget).await;
        self.finish(id).await
    }

    /// Runs a REPL input with default limits.
    pub async fn repl(&mut self, source: &str) -> ExecResult {
        self.run(ExecKind::Repl, "<repl>", source, LIMITS, budget(999, 512))
            .await
    }

    /// Waits (with the deadline) for the process to exit and returns its status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "worker did not exit");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
