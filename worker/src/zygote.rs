//! The fork server (`vm-system-worker --zygote`): boots one runtime, then forks a copy of itself
//! for each `Fork` request of the daemon and reaps the copies. It stays single-threaded, so a fork
//! copies a consistent process; each copy then starts its own threads and serves one session on
//! the frame socket it was given, exactly like a spawned worker.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use protocol::{FORK_FDS, FromZygote, PROTOCOL_VERSION, ToZygote};

use crate::control::Control;
use crate::engine::{self, Booted};
use crate::error::WorkerError;
use crate::{fail_boot, hello, memory, serve_session, transport};

/// Runs the fork server on the `SOCK_SEQPACKET` socket `fd`. Returns in the server when the daemon
/// closed the socket; in a forked copy it serves the session and never returns.
pub(crate) fn run(fd: RawFd) -> Result<(), WorkerError> {
    // SAFETY: the daemon passes us this descriptor and nothing else in the process owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    transport::set_cloexec(socket.as_raw_fd()).map_err(WorkerError::Pipe)?;
    send(
        &socket,
        &FromZygote::Hello {
            protocol_version: PROTOCOL_VERSION,
            pid: std::process::id(),
            engine: engine::ENGINE.into(),
            engine_version: engine::ENGINE_VERSION.into(),
        },
    )?;
    if cfg!(feature = "v8") {
        // V8 starts platform threads when the first isolate is created: no safe fork after it.
        let reason = "the fork server needs the quickjs engine".to_string();
        send(&socket, &FromZygote::BootFailed { reason })?;
        return Err(WorkerError::Usage("--zygote on a v8 build".into()));
    }
    let control = Control::new();
    let mut booted = match Booted::new(Arc::clone(&control)) {
        Ok(booted) => booted,
        Err(err) => {
            let reason = crate::error::with_causes(&err);
            send(&socket, &FromZygote::BootFailed { reason })?;
            return Err(WorkerError::Engine(err));
        }
    };
    booted.settle();
    memory::release_boot_memory();
    let held = memory::hold_free_chunks();
    tracing::debug!(held, "free heap chunks held back from the copies");
    let children = ChildSignals::new().map_err(WorkerError::Pipe)?;
    send(&socket, &FromZygote::Ready)?;
    match serve_requests(&socket, &children)? {
        None => Ok(()),
        Some(frames) => {
            // In the forked copy: nothing of the server's may stay open or blocked here.
            drop(children);
            drop(socket);
            serve_copy(booted, control, frames)
        }
    }
}

/// Serves requests until the socket closes (`None`), or returns the frame socket in a forked copy.
fn serve_requests(
    socket: &OwnedFd,
    children: &ChildSignals,
) -> Result<Option<OwnedFd>, WorkerError> {
    let server = std::process::id();
    loop {
        let mut polled = [
            libc::pollfd {
                fd: socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: children.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `polled` is a valid array of two pollfd for the duration of the call.
        let rc = unsafe { libc::poll(polled.as_mut_ptr(), 2, -1) };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(WorkerError::Pipe(err));
        }
        if polled[1].revents != 0 {
            children.drain();
            reap(socket)?;
        }
        if polled[0].revents == 0 {
            continue;
        }
        let Some((packet, fds)) =
            protocol::recv_packet(socket.as_fd()).map_err(WorkerError::Pipe)?
        else {
            // The daemon closed the socket: its copies die with us (parent-death signal).
            return Ok(None);
        };
        let request = protocol::decode_packet::<ToZygote>(&packet)
            .map_err(|err| WorkerError::Usage(format!("unreadable fork request: {err}")))?;
        let ToZygote::Fork { id } = request;
        let Ok([frames, stderr]) = <[OwnedFd; FORK_FDS]>::try_from(fds) else {
            let reason = "fork request without its two descriptors".to_string();
            send(socket, &FromZygote::ForkFailed { id, reason })?;
            continue;
        };
        // SAFETY: the process is single-threaded (the server starts no thread), so the copy
        // inherits a consistent heap and no lock held by a thread that does not exist there.
        match unsafe { libc::fork() } {
            -1 => {
                let reason = format!("fork failed: {}", std::io::Error::last_os_error());
                send(socket, &FromZygote::ForkFailed { id, reason })?;
            }
            0 => {
                become_copy(server, &stderr);
                drop(stderr);
                return Ok(Some(frames));
            }
            pid => {
                drop((frames, stderr));
                let pid = u32::try_from(pid).unwrap_or(0);
                send(socket, &FromZygote::Forked { id, pid })?;
            }
        }
    }
}

/// First steps of a forked copy: its own session and process group, stderr on the daemon's pipe,
/// death with the server, and the signal mask of a normal process. Exits at once if the server
/// died already (the parent-death signal would never come).
fn become_copy(server: u32, stderr: &OwnedFd) {
    // SAFETY: plain syscalls on descriptors we own and on our own process; no memory is shared.
    unsafe {
        let ok = libc::setsid() >= 0
            && libc::dup2(stderr.as_raw_fd(), 2) >= 0
            && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) == 0
            && u32::try_from(libc::getppid()).is_ok_and(|parent| parent == server);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        let unmasked = libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) == 0;
        if !(ok && unmasked) {
            libc::_exit(2);
        }
    }
}

/// Serves one session in a forked copy; ends the process.
fn serve_copy(
    mut booted: Booted,
    control: Arc<Control>,
    frames: OwnedFd,
) -> Result<(), WorkerError> {
    let fd = frames.as_raw_fd();
    // The transport takes the descriptor over.
    std::mem::forget(frames);
    let pipe = transport::start(fd, Arc::clone(&control), hello())?;
    if let Err(err) = booted.reseed() {
        fail_boot(&pipe.out, &WorkerError::Engine(err));
    }
    serve_session(booted, control, pipe)
}

/// Reaps every copy that ended and reports it.
fn reap(socket: &OwnedFd) -> Result<(), WorkerError> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out pointer; WNOHANG never blocks.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return Ok(());
        }
        let pid = u32::try_from(pid).unwrap_or(0);
        send(socket, &FromZygote::Exited { pid, status })?;
    }
}

/// `SIGCHLD` as a readable descriptor (signalfd); the signal is blocked while it exists.
struct ChildSignals {
    fd: OwnedFd,
    old_mask: libc::sigset_t,
}

impl ChildSignals {
    fn new() -> std::io::Result<Self> {
        // SAFETY: sigset operations on local values; signalfd returns a fresh descriptor.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old_mask: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old_mask) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(ChildSignals {
                fd: OwnedFd::from_raw_fd(fd),
                old_mask,
            })
        }
    }

    /// Empties the descriptor; the caller then reaps with `waitpid` (signals coalesce).
    fn drain(&self) {
        let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>() * 8];
        loop {
            // SAFETY: `info` is a writable buffer of the given length.
            let n =
                unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) };
            if n <= 0 {
                return;
            }
        }
    }
}

impl Drop for ChildSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut()) };
    }
}

/// Sends one packet (the socket blocks).
fn send(socket: &OwnedFd, message: &FromZygote) -> Result<(), WorkerError> {
    let body = protocol::encode_packet(message)
        .map_err(|err| WorkerError::Pipe(std::io::Error::other(err)))?;
    protocol::send_packet(socket.as_fd(), &body, &[]).map_err(WorkerError::Pipe)
}
