//! The bad worker (tests only): a proxy between the daemon and a real worker that breaks the
//! protocol on request, so black-box tests can inject faults the real worker never makes.
//!
//! The daemon starts it as `--worker-bin`, with the frame socket on fd 3 and an empty environment.
//! It starts the real worker (`worker-dup`, else `vm-system-worker`, next to its own executable)
//! with a socketpair of its own on fd 3, in the proxy's process group and with a parent-death
//! SIGKILL, and forwards every frame both ways unchanged, except that:
//! - `Hello` carries the proxy's pid, the process the daemon supervises;
//! - an `Exec` whose source contains [`GARBAGE`] is not forwarded: the daemon gets a frame whose
//!   body is not MessagePack instead;
//! - an `Exec` whose source contains [`OVERSIZED`] is not forwarded: the daemon gets a length prefix
//!   above [`protocol::MAX_FRAME_LEN`] instead.
//!
//! It is no fork server: started with `--zygote` it exits with an error, so the daemon spawns it
//! for every session. After a fault nothing more reaches the daemon. When the real worker exits, the proxy exits the
//! same way (code or signal); when the daemon's end of the pipe closes, it kills the real worker.
//! It is never reachable from JavaScript: only a daemon started with it as `--worker-bin` runs it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use protocol::{FrameCodec, FromWorker, MAX_FRAME_LEN, ToWorker};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

/// An `Exec` source containing this gets a frame with an unreadable body back.
pub const GARBAGE: &str = "__BAD_WORKER_GARBAGE__";
/// An `Exec` source containing this gets a length prefix above `MAX_FRAME_LEN` back.
pub const OVERSIZED: &str = "__BAD_WORKER_OVERSIZED__";

/// The frame socket the daemon passes to every worker.
const FRAME_FD: i32 = 3;
/// How long to keep forwarding the real worker's last frames after it exited.
const DRAIN: Duration = Duration::from_millis(250);

/// What goes to the daemon: a frame to encode, or raw bytes that break the protocol.
enum ToDaemon {
    Frame(FromWorker),
    Fault(Bytes),
}

/// Entry point of the `bad-worker` binary.
pub fn main_impl() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("bad-worker: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    if std::env::args().any(|arg| arg == "--zygote") {
        bail!("no fork server here: spawn a worker per session");
    }
    // Like a real worker: SIGKILL when the daemon dies (spec §10.4).
    // SAFETY: prctl with constant arguments has no memory-safety preconditions.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error())
            .context("failed to set the parent-death signal");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to build the runtime")?;
    let status = runtime.block_on(proxy())?;
    Ok(mirror(status))
}

/// The real worker's program: a sibling of this executable.
fn real_worker() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("failed to find the bad worker's own path")?;
    let dir = me
        .parent()
        .context("the bad worker's path has no directory")?;
    ["worker-dup", "vm-system-worker"]
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .with_context(|| format!("failed to find a real worker in {}", dir.display()))
}

/// The daemon's end of the frame pipe, from fd 3.
fn daemon_pipe() -> anyhow::Result<UnixStream> {
    // SAFETY: fcntl(F_GETFD) only inspects the descriptor table.
    if unsafe { libc::fcntl(FRAME_FD, libc::F_GETFD) } < 0 {
        bail!("no frame socket on fd {FRAME_FD}");
    }
    // SAFETY: fd 3 is open (checked above), was handed to us by the daemon, and nothing else in
    // this process owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(FRAME_FD) };
    // Keep it out of the real worker, which gets its own socket on fd 3.
    // SAFETY: as above.
    if unsafe { libc::fcntl(FRAME_FD, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error()).context("failed to set FD_CLOEXEC on fd 3");
    }
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(true)?;
    UnixStream::from_std(stream).context("failed to register the daemon's pipe")
}

/// Starts the real worker with `theirs` as its fd 3 and returns it.
fn spawn_worker(theirs: &OwnedFd) -> anyhow::Result<tokio::process::Child> {
    let path = real_worker()?;
    let raw = theirs.as_raw_fd();
    let parent = std::process::id();
    let mut command = tokio::process::Command::new(&path);
    command
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    // SAFETY: dup2, prctl and getppid are async-signal-safe and touch no memory of ours.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(raw, FRAME_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The proxy died before the death signal was armed: do not outlive it.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(std::io::Error::other("the bad worker exited"));
            }
            Ok(())
        });
    }
    command
        .spawn()
        .with_context(|| format!("failed to spawn {}", path.display()))
}

/// Runs the proxy until the real worker exited (its status) or the daemon went away.
async fn proxy() -> anyhow::Result<ExitStatus> {
    let daemon = daemon_pipe()?;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    let theirs = OwnedFd::from(theirs);
    let mut child = spawn_worker(&theirs)?;
    drop(theirs);
    ours.set_nonblocking(true)?;
    let worker = UnixStream::from_std(ours)?;

    let (daemon_r, daemon_w) = daemon.into_split();
    let (worker_r, worker_w) = worker.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_daemon(daemon_w, rx));
    let mut upstream = tokio::spawn(to_worker(daemon_r, worker_w, tx.clone()));
    let mut downstream = tokio::spawn(to_daemon(worker_r, tx));

    tokio::select! {
        status = child.wait() => {
            let status = status.context("failed to wait for the real worker")?;
            // Frames the worker wrote before it exited still go to the daemon.
            let _ = tokio::time::timeout(DRAIN, &mut downstream).await;
            downstream.abort();
            upstream.abort();
            let _ = tokio::time::timeout(DRAIN, writer).await;
            Ok(status)
        }
        ended = &mut upstream => {
            // The daemon closed its end (or sent something unreadable): the worker goes too.
            let _ = child.start_kill();
            let status = child.wait().await.context("failed to wait for the real worker")?;
            match ended {
                Ok(Ok(())) => Ok(status),
                Ok(Err(err)) => Err(err),
                Err(err) => Err(err).context("the daemon-to-worker task failed"),
            }
        }
    }
}

/// Forwards frames from the daemon to the worker, replacing a marked `Exec` with its fault.
async fn to_worker(
    daemon: OwnedReadHalf,
    worker: OwnedWriteHalf,
    tx: mpsc::UnboundedSender<ToDaemon>,
) -> anyhow::Result<()> {
    let mut from_daemon = FramedRead::new(daemon, FrameCodec::<ToWorker, FromWorker>::new());
    let mut to_worker = FramedWrite::new(worker, FrameCodec::<FromWorker, ToWorker>::new());
    while let Some(frame) = from_daemon.next().await {
        let frame = frame.context("failed to read a frame from the daemon")?;
        if let Some(fault) = fault_for(&frame) {
            let _ = tx.send(ToDaemon::Fault(fault));
            // Keep reading (and dropping) until the daemon kills us or closes the pipe.
            continue;
        }
        to_worker
            .send(frame)
            .await
            .context("failed to write a frame to the real worker")?;
    }
    Ok(())
}

/// The bytes that replace the answer to `frame`, if it asks for a fault.
fn fault_for(frame: &ToWorker) -> Option<Bytes> {
    let ToWorker::Exec { source, .. } = frame else {
        return None;
    };
    if source.contains(GARBAGE) {
        // A 9-byte frame whose body starts with 0xc1, a byte MessagePack reserves.
        let body = b"\xc1garbage!";
        let mut bytes = u32::try_from(body.len()).ok()?.to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        Some(Bytes::from(bytes))
    } else if source.contains(OVERSIZED) {
        let len = u32::try_from(MAX_FRAME_LEN + 1).ok()?;
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 16]);
        Some(Bytes::from(bytes))
    } else {
        None
    }
}

/// Forwards frames from the worker to the daemon; `Hello` names the proxy's pid.
async fn to_daemon(worker: OwnedReadHalf, tx: mpsc::UnboundedSender<ToDaemon>) {
    let mut from_worker = FramedRead::new(worker, FrameCodec::<FromWorker, ToWorker>::new());
    while let Some(Ok(frame)) = from_worker.next().await {
        let frame = match frame {
            FromWorker::Hello {
                protocol_version,
                engine,
                engine_version,
                ..
            } => FromWorker::Hello {
                protocol_version,
                pid: std::process::id(),
                engine,
                engine_version,
            },
            other => other,
        };
        if tx.send(ToDaemon::Frame(frame)).is_err() {
            break;
        }
    }
}

/// Writes to the daemon: frames until a fault, then the fault's bytes and nothing more.
async fn write_daemon(daemon: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<ToDaemon>) {
    let mut out = FramedWrite::new(daemon, FrameCodec::<ToWorker, FromWorker>::new());
    while let Some(message) = rx.recv().await {
        match message {
            ToDaemon::Frame(frame) => {
                if out.send(frame).await.is_err() {
                    return;
                }
            }
            ToDaemon::Fault(bytes) => {
                out.write_buffer_mut().extend_from_slice(&bytes);
                let _ = SinkExt::<FromWorker>::flush(&mut out).await;
                // Nothing after a fault: hold the pipe open until the daemon acts on it.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Exits the way the real worker did: its exit code, or the signal that killed it.
fn mirror(status: ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    if let Some(signal) = status.signal() {
        // SAFETY: restoring the default action and raising a signal on ourselves.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
        return ExitCode::from(u8::try_from(128 + signal).unwrap_or(1));
    }
    ExitCode::FAILURE
}
