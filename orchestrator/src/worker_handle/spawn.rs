//! The one place that starts processes: spawns a worker (or the zygote) with its socket on fd 3,
//! or has the zygote fork one; forwards stderr to the log, runs the `Hello`/`Ready` handshake and
//! hands the process to a supervisor.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use protocol::{FrameCodec, FromWorker, PROTOCOL_VERSION, is_compatible};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, watch};
use tracing::{Instrument, instrument};

use super::process::Process;
use super::supervisor::{Frames, Parts, Supervisor};
use super::zygote::Zygote;
use super::{ExitReason, Inner, Label, WorkerError, WorkerHandle, unix};

/// How long a worker may take to send `Hello` and `Ready`.
pub(crate) const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Each grace period of the stop escalation (spec §10.4).
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(2);

/// The longest stderr line forwarded to the log; the rest of the line is dropped.
const MAX_LOG_LINE: usize = 16 * 1024;

/// How to start worker processes.
#[derive(Debug, Clone)]
pub(crate) struct SpawnConfig {
    /// The worker program (`--worker-bin`).
    pub(crate) worker_bin: PathBuf,
    /// Deadline for `Hello` then `Ready`.
    pub(crate) handshake_timeout: Duration,
    /// Each grace period when stopping a worker.
    pub(crate) grace: Duration,
}

impl SpawnConfig {
    /// A configuration with the default handshake timeout (10 s) and grace period (2 s).
    #[cfg(test)]
    pub(crate) fn new(worker_bin: PathBuf) -> Self {
        SpawnConfig {
            worker_bin,
            ..SpawnConfig::default()
        }
    }
}

impl Default for SpawnConfig {
    /// Default timeouts and an empty `worker_bin`, to be filled in (`..SpawnConfig::default()`).
    fn default() -> Self {
        SpawnConfig {
            worker_bin: PathBuf::new(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            grace: DEFAULT_GRACE,
        }
    }
}

/// What `Hello` told us.
struct Hello {
    pid: u32,
    engine: String,
    engine_version: String,
}

/// Spawns a worker (`exec`) and waits for `Hello` (compatible version) then `Ready`. On any
/// failure the child's process group is killed and the child reaped before the error is returned.
#[instrument(skip_all, fields(worker_bin = %cfg.worker_bin.display(), pid = tracing::field::Empty))]
pub(crate) async fn start_worker(cfg: &SpawnConfig) -> Result<WorkerHandle, WorkerError> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(WorkerError::Pipe)?;
    let (stderr, stderr_theirs) = unix::pipe().map_err(WorkerError::Pipe)?;
    let started_at = SystemTime::now();
    let (child, pid) = spawn_process(cfg, &[], OwnedFd::from(theirs), stderr_theirs).await?;
    tracing::Span::current().record("pid", pid);
    handshake_and_supervise(cfg, child, pid, ours, stderr, started_at).await
}

/// Asks the zygote for a forked worker and waits for its `Hello` then `Ready`, like
/// `start_worker`. A zygote that cannot serve the request is `WorkerError::Zygote`.
#[instrument(skip_all, fields(pid = tracing::field::Empty))]
pub(crate) async fn fork_worker(
    cfg: &SpawnConfig,
    zygote: &Zygote,
) -> Result<WorkerHandle, WorkerError> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(WorkerError::Pipe)?;
    let (stderr, stderr_theirs) = unix::pipe().map_err(WorkerError::Pipe)?;
    let started_at = SystemTime::now();
    let (pid, exit) = zygote.fork(OwnedFd::from(theirs), stderr_theirs).await?;
    tracing::Span::current().record("pid", pid);
    let process = Process::Forked {
        pid,
        exit,
        status: None,
    };
    handshake_and_supervise(cfg, process, pid, ours, stderr, started_at).await
}

/// Starts `cfg.worker_bin` with `args`: `fd` on descriptor 3, stdin and stdout on `/dev/null`,
/// stderr on `stderr`, an empty environment, cwd `/`, its own session and process group. Returns
/// the process and its pid.
pub(super) async fn spawn_process(
    cfg: &SpawnConfig,
    args: &[&str],
    fd: OwnedFd,
    stderr: OwnedFd,
) -> Result<(Process, u32), WorkerError> {
    // Keep the child's end clear of fds 0–3, which the child sets up before our dup2.
    let theirs = unix::dup_high(&fd).map_err(WorkerError::Pipe)?;
    drop(fd);
    let child_fd = theirs.as_raw_fd();

    #[expect(
        clippy::disallowed_methods,
        reason = "spawn.rs is the one module that starts processes (house style rule 11)"
    )]
    let mut command = tokio::process::Command::new(&cfg.worker_bin);
    command
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .current_dir("/")
        .kill_on_drop(true);
    // SAFETY: the closure only calls async-signal-safe functions (dup2, fcntl, setsid) on a
    // descriptor that stays open until after spawn returns.
    unsafe {
        command.pre_exec(move || unix::child_setup(child_fd));
    }
    let spawned = command.spawn();
    drop(theirs);
    // `command` holds the write end of the stderr pipe; drop it so EOF comes with the child's end.
    drop(command);
    let child = spawned.map_err(|source| WorkerError::Spawn {
        path: cfg.worker_bin.display().to_string(),
        source,
    })?;
    let pid = child.id();
    let mut child = Process::Spawned(child);
    match pid {
        Some(pid) => Ok((child, pid)),
        // Only a reaped child has no pid, and nobody has waited for this one yet.
        None => Err(WorkerError::ExitedDuringStart(reap(&mut child, None).await)),
    }
}

/// The common end of a start: forwards stderr to the log, runs the handshake and hands the
/// process to a new supervisor.
async fn handshake_and_supervise(
    cfg: &SpawnConfig,
    mut child: Process,
    pid: u32,
    ours: std::os::unix::net::UnixStream,
    stderr: OwnedFd,
    started_at: SystemTime,
) -> Result<WorkerHandle, WorkerError> {
    let start_ticks = unix::read_stat(pid).map(|stat| stat.start_ticks);
    let label = Label::default();
    let fatal = Arc::new(OnceLock::new());
    spawn_stderr_forwarder(stderr, pid, label.clone());

    let frames = match pipe(ours) {
        Ok(frames) => frames,
        Err(err) => {
            reap(&mut child, Some(pid)).await;
            return Err(err);
        }
    };
    let mut frames = frames;
    let hello =
        match tokio::time::timeout(cfg.handshake_timeout, handshake(&mut frames, &mut child)).await
        {
            Ok(Ok(hello)) => hello,
            Ok(Err(err)) => {
                reap(&mut child, Some(pid)).await;
                tracing::warn!(error = %err.reason(), "worker failed to start");
                return Err(err);
            }
            Err(_) => {
                reap(&mut child, Some(pid)).await;
                tracing::warn!("worker handshake timed out");
                return Err(WorkerError::HandshakeTimeout(cfg.handshake_timeout));
            }
        };
    if hello.pid != pid {
        tracing::warn!(
            hello_pid = hello.pid,
            "worker reported another pid in Hello"
        );
    }

    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (exit_tx, exit_rx) = watch::channel(None);
    let supervisor = Supervisor::new(Parts {
        pid,
        child,
        frames,
        control: control_rx,
        exit: exit_tx,
        grace: cfg.grace,
        label: label.clone(),
        fatal: Arc::clone(&fatal),
    });
    tokio::spawn(supervisor.run());
    tracing::debug!(engine = %hello.engine, "worker ready");
    Ok(WorkerHandle {
        inner: Arc::new(Inner {
            pid,
            engine: hello.engine,
            engine_version: hello.engine_version,
            started_at,
            start_ticks,
            label,
            fatal,
            control: control_tx,
            exit: exit_rx,
        }),
    })
}

/// Forwards the lines a process writes to `stderr` (the read end of its pipe) to the log.
pub(super) fn spawn_stderr_forwarder(stderr: OwnedFd, pid: u32, label: Label) {
    match tokio::net::unix::pipe::Receiver::from_owned_fd(stderr) {
        Ok(stderr) => {
            let span = tracing::info_span!("worker_stderr", pid);
            tokio::spawn(forward_stderr(stderr, pid, label).instrument(span));
        }
        Err(err) => tracing::warn!(pid, error = %err, "failed to read worker stderr"),
    }
}

fn pipe(ours: std::os::unix::net::UnixStream) -> Result<Frames, WorkerError> {
    ours.set_nonblocking(true).map_err(WorkerError::Pipe)?;
    let stream = tokio::net::UnixStream::from_std(ours).map_err(WorkerError::Pipe)?;
    Ok(Frames::new(stream, FrameCodec::new()))
}

/// Reads `Hello` then `Ready`. A worker that exits first fails with its exit reason, after any
/// frame it wrote (a `BootFailed`) was read.
async fn handshake(frames: &mut Frames, child: &mut Process) -> Result<Hello, WorkerError> {
    let mut hello: Option<Hello> = None;
    let mut exited: Option<ExitReason> = None;
    loop {
        let frame = tokio::select! {
            frame = frames.next() => frame,
            status = child.wait(), if exited.is_none() => {
                exited = Some(ExitReason::from_wait(status));
                continue;
            }
        };
        match frame {
            Some(Ok(FromWorker::Hello {
                protocol_version,
                pid,
                engine,
                engine_version,
            })) if hello.is_none() => {
                if !is_compatible(protocol_version) {
                    return Err(WorkerError::VersionMismatch {
                        theirs: protocol_version,
                        ours: PROTOCOL_VERSION,
                    });
                }
                hello = Some(Hello {
                    pid,
                    engine,
                    engine_version,
                });
            }
            Some(Ok(FromWorker::Ready)) if hello.is_some() => {
                if let Some(hello) = hello.take() {
                    return Ok(hello);
                }
            }
            Some(Ok(FromWorker::BootFailed { reason })) => {
                return Err(WorkerError::BootFailed { reason });
            }
            Some(Ok(other)) => {
                return Err(WorkerError::Handshake {
                    detail: format!("unexpected {} frame", frame_name(&other)),
                });
            }
            Some(Err(err)) => return Err(WorkerError::Unreadable(err)),
            None => {
                // The worker closed its end: it is exiting (or already has).
                let reason = match exited {
                    Some(reason) => reason,
                    None => ExitReason::from_wait(child.wait().await),
                };
                return Err(WorkerError::ExitedDuringStart(reason));
            }
        }
    }
}

fn frame_name(frame: &FromWorker) -> &'static str {
    match frame {
        FromWorker::Hello { .. } => "Hello",
        FromWorker::Ready => "Ready",
        FromWorker::BootFailed { .. } => "BootFailed",
        FromWorker::Configured => "Configured",
        FromWorker::ConfigureFailed { .. } => "ConfigureFailed",
        FromWorker::Event(_) => "Event",
        FromWorker::Stats { .. } => "Stats",
        FromWorker::Done { .. } => "Done",
        FromWorker::Fatal { .. } => "Fatal",
    }
}

/// Kills the child's process group and reaps the child; returns how it ended.
pub(super) async fn reap(child: &mut Process, pid: Option<u32>) -> ExitReason {
    if let Some(pid) = pid {
        unix::signal_group_logged(pid, unix::SIGKILL);
    }
    child.start_kill();
    let reason = match child.wait().await {
        Ok(status) => ExitReason::from_status(status),
        Err(err) => {
            tracing::error!(error = %err, "failed to wait for worker");
            ExitReason::Exited { code: -1 }
        }
    };
    if let Some(pid) = pid {
        // Anything the worker started before it died.
        unix::signal_group_logged(pid, unix::SIGKILL);
    }
    reason
}

/// Re-emits each stderr line of the worker in the daemon's log, tagged with pid and session.
async fn forward_stderr(stderr: tokio::net::unix::pipe::Receiver, pid: u32, label: Label) {
    let mut reader = BufReader::new(stderr);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let (consumed, end_of_line) = match reader.fill_buf().await {
            Ok([]) => break,
            Ok(buf) => match buf.iter().position(|b| *b == b'\n') {
                Some(at) => {
                    append_capped(&mut line, &buf[..at]);
                    (at + 1, true)
                }
                None => {
                    append_capped(&mut line, buf);
                    (buf.len(), false)
                }
            },
            Err(err) => {
                tracing::debug!(error = %err, "failed to read worker stderr");
                break;
            }
        };
        reader.consume(consumed);
        if end_of_line {
            emit(pid, &label, &line);
            line.clear();
        }
    }
    if !line.is_empty() {
        emit(pid, &label, &line);
    }
}

fn append_capped(line: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_LOG_LINE.saturating_sub(line.len());
    line.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

fn emit(pid: u32, label: &Label, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r');
    let session_id = label.get();
    tracing::info!(target: "worker", pid, session_id = %session_id, "{text}");
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::worker_handle::test_support;

    /// Zombie children of this process whose command name is `comm`.
    fn zombies(comm: &str) -> Vec<u32> {
        let me = std::process::id();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let name = text
                .split_once('(')
                .and_then(|(_, rest)| rest.rsplit_once(')'));
            let Some((name, rest)) = name else { continue };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if name == comm
                && fields.first() == Some(&"Z")
                && fields.get(1) == Some(&me.to_string().as_str())
            {
                found.push(pid);
            }
        }
        found
    }

    fn bogus(bin: &str, handshake_timeout: Duration) -> SpawnConfig {
        SpawnConfig {
            worker_bin: bin.into(),
            handshake_timeout,
            grace: Duration::from_millis(200),
        }
    }

    #[tokio::test]
    async fn start_performs_the_handshake() {
        let worker = start_worker(&test_support::config()).await.unwrap();
        assert_eq!(worker.engine(), "quickjs");
        assert!(!worker.engine_version().is_empty());
        assert!(worker.pid() > 1);
        assert!(worker.started_at() <= SystemTime::now());
        assert!(worker.exit_reason().is_none());
        let usage = worker.usage().unwrap();
        assert!(usage.rss_kb > 0, "{usage:?}");
        // The worker leads its own process group and session.
        let pgid = unsafe { libc::getpgid(worker.pid() as libc::pid_t) };
        assert_eq!(pgid, worker.pid() as libc::pid_t);
        let pid = worker.pid();
        assert_eq!(worker.stop(false).await, ExitReason::Requested);
        assert!(test_support::is_reaped(pid));
        assert!(worker.usage().is_none());
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let err = start_worker(&bogus(
            "/nonexistent/vm-system-worker",
            Duration::from_secs(5),
        ))
        .await
        .unwrap_err();
        assert!(matches!(err, WorkerError::Spawn { .. }), "{err:?}");
        assert!(err.reason().contains("No such file"), "{}", err.reason());
    }

    #[tokio::test]
    async fn a_program_that_exits_is_reaped() {
        let err = start_worker(&bogus("/bin/true", Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                WorkerError::ExitedDuringStart(ExitReason::Exited { code: 0 })
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "failed to complete the worker handshake: worker exited with code 0"
        );
        assert!(zombies("true").is_empty());
    }

    #[tokio::test]
    async fn a_silent_program_times_out_and_is_reaped() {
        let started = std::time::Instant::now();
        let err = start_worker(&bogus("/usr/bin/yes", Duration::from_millis(300)))
            .await
            .unwrap_err();
        assert!(matches!(err, WorkerError::HandshakeTimeout(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(zombies("yes").is_empty());
    }

    /// A fake worker: a shell script that starts a background `sleep` (in the worker's process
    /// group), writes `frames` to fd 3 and then sleeps itself.
    struct FakeWorker {
        dir: PathBuf,
        cfg: SpawnConfig,
    }

    impl FakeWorker {
        fn new(name: &str, frames: &[u8]) -> FakeWorker {
            let dir = std::env::temp_dir().join(format!("wh-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("frames"), frames).unwrap();
            let d = dir.display();
            let script = format!(
                "#!/bin/sh\n/bin/sleep 30 &\necho $! > {d}/child.pid\n/bin/cat {d}/frames >&3\n/bin/sleep 0.2\necho late line >&2\nexec /bin/sleep 30\n"
            );
            let path = dir.join("worker.sh");
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            let cfg = SpawnConfig {
                worker_bin: path,
                handshake_timeout: Duration::from_secs(10),
                grace: Duration::from_millis(200),
            };
            FakeWorker { dir, cfg }
        }

        async fn try_start(&self) -> Result<WorkerHandle, WorkerError> {
            // A script just written may be "text file busy" while a concurrent fork holds it.
            for _ in 0..50 {
                match start_worker(&self.cfg).await {
                    Err(WorkerError::Spawn { source, .. })
                        if source.raw_os_error() == Some(libc::ETXTBSY) =>
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => return other,
                }
            }
            panic!("worker script stayed busy");
        }

        fn child_pid(&self) -> u32 {
            std::fs::read_to_string(self.dir.join("child.pid"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        }
    }

    impl Drop for FakeWorker {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn encode(frames: &[FromWorker]) -> Vec<u8> {
        let mut codec = FrameCodec::<FromWorker, FromWorker>::new();
        let mut buf = bytes::BytesMut::new();
        for frame in frames {
            tokio_util::codec::Encoder::encode(&mut codec, frame.clone(), &mut buf).unwrap();
        }
        buf.to_vec()
    }

    fn handshake_frames() -> Vec<FromWorker> {
        vec![
            FromWorker::Hello {
                protocol_version: PROTOCOL_VERSION,
                pid: 1,
                engine: "fake".into(),
                engine_version: "0".into(),
            },
            FromWorker::Ready,
        ]
    }

    async fn check_violation(name: &str, after_handshake: Vec<u8>, expected: &str) {
        let mut frames = encode(&handshake_frames());
        frames.extend_from_slice(&after_handshake);
        let fake = FakeWorker::new(name, &frames);
        let worker = fake.try_start().await.unwrap();
        assert_eq!(worker.engine(), "fake");
        let reason = worker.exited().await;
        assert_eq!(
            reason.last_error(),
            format!("worker protocol error: {expected}"),
            "{name}"
        );
        assert!(test_support::is_reaped(worker.pid()));
        // The background process of the group was killed too (it may linger as a zombie until
        // init reaps it, but it no longer runs).
        let child = fake.child_pid();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while unix::read_stat(child).is_some_and(|stat| stat.state != 'Z') {
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: group member {child} survived"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn protocol_violations_kill_the_process_group() {
        let event = protocol::WorkerEvent {
            id: protocol::ExecId(99),
            seq: 1,
            event_type: protocol::EventType::Value,
            payload: "1".into(),
        };
        check_violation(
            "event",
            encode(&[FromWorker::Event(event)]),
            "event for unknown execution 99",
        )
        .await;
        check_violation(
            "ready",
            encode(&[FromWorker::Ready]),
            "unexpected Ready frame",
        )
        .await;
        check_violation(
            "configured",
            encode(&[FromWorker::Configured]),
            "unexpected Configured frame",
        )
        .await;
        let garbage = [0, 0, 0, 1, 0xc1];
        check_violation(
            "garbage",
            garbage.to_vec(),
            "unreadable frame: wrong msgpack marker Reserved",
        )
        .await;
    }

    #[tokio::test]
    async fn version_mismatch_and_boot_failure_are_start_errors() {
        let hello = FromWorker::Hello {
            protocol_version: PROTOCOL_VERSION + 1,
            pid: 1,
            engine: "fake".into(),
            engine_version: "0".into(),
        };
        let fake = FakeWorker::new("version", &encode(&[hello]));
        let err = fake.try_start().await.unwrap_err();
        assert!(
            matches!(err, WorkerError::VersionMismatch { .. }),
            "{err:?}"
        );

        let mut frames = handshake_frames();
        frames[1] = FromWorker::BootFailed {
            reason: "no runtime".into(),
        };
        let fake = FakeWorker::new("boot", &encode(&frames));
        let err = fake.try_start().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to boot the worker runtime: no runtime"
        );
    }

    /// Log output captured from a `fmt` subscriber.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[tokio::test]
    async fn stderr_lines_are_logged_with_pid_and_session() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .finish();
        // A current-thread runtime: the stderr task logs on this thread, under this subscriber.
        let _guard = tracing::subscriber::set_default(subscriber);
        let fake = FakeWorker::new("stderr", &encode(&handshake_frames()));
        let worker = fake.try_start().await.unwrap();
        worker.set_label("session-42".into());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let line = loop {
            let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
            if let Some(line) = text.lines().find(|line| line.contains("late line")) {
                break line.to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no stderr line in {text}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(line.contains(&format!("pid={}", worker.pid())), "{line}");
        assert!(line.contains("session_id=session-42"), "{line}");
        worker.stop(true).await;
    }

    #[tokio::test]
    async fn stderr_lines_are_capped() {
        let mut line = Vec::new();
        append_capped(&mut line, &vec![b'x'; MAX_LOG_LINE - 1]);
        append_capped(&mut line, b"yz");
        assert_eq!(line.len(), MAX_LOG_LINE);
        assert_eq!(line.last(), Some(&b'y'));
    }
}
