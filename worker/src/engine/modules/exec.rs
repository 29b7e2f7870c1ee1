//! The `exec` module (spec §8.3): runs an allowlisted command directly (no shell) with an empty
//! environment, the worktree as cwd, stdin on `/dev/null`, in the worker's process group and
//! under its rlimits. The JavaScript thread waits; a stop (`Control`) kills the child with
//! SIGKILL. Output is collected while the child runs and, once it has exited, only what is
//! already buffered is read: processes it left behind cannot hold the call open.
//!
//! The one place in the worker that starts processes.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Bounds, Grants, ModError};
use crate::control::{Cause, Control};
use protocol::StopCause;

/// One `run(cmd, args, options)` call, validated by the JavaScript wrapper.
#[derive(Debug)]
pub(super) struct Request<'a> {
    pub(super) cmd: &'a str,
    pub(super) args: &'a [String],
    /// `options.timeout_ms`; capped at the execution's remaining wall time.
    pub(super) timeout_ms: Option<u64>,
}

/// Bytes read per `read` call.
const CHUNK: usize = 64 * 1024;
/// After the child exited, at most this many reads per stream collect what is still buffered.
const DRAIN_READS: usize = 32;

pub(super) fn run(
    grants: &Grants,
    control: &Control,
    bounds: Bounds,
    request: Request<'_>,
) -> Result<String, ModError> {
    let Request {
        cmd,
        args,
        timeout_ms,
    } = request;
    if !grants.exec_allow.iter().any(|allowed| allowed == cmd) {
        return Err(ModError::coded(
            "ERR_NOT_ALLOWED",
            format!("command '{cmd}' is not on the exec allow list"),
        ));
    }
    if args.iter().any(|arg| arg.contains('\0')) {
        return Err(ModError::type_error(
            "The \"args\" argument must not contain NUL characters",
        ));
    }
    let started = Instant::now();
    let remaining = bounds.deadline.saturating_duration_since(started);
    let limit = match timeout_ms {
        Some(ms) => remaining.min(Duration::from_millis(ms)),
        None => remaining,
    };
    // When the execution's own wall time is what runs out, that is the execution's stop cause,
    // not a catchable ETIMEDOUT racing the watchdog.
    let wall_bound = limit == remaining;

    #[expect(
        clippy::disallowed_methods,
        reason = "the exec module is the one place in the worker that starts processes (spec §8.3)"
    )]
    let mut command = Command::new(cmd);
    command
        .args(args)
        .env_clear()
        .current_dir(&grants.worktree)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure only makes a raw syscall, which is async-signal-safe after fork.
    unsafe {
        command.pre_exec(|| {
            // Nothing the worker holds (the frame socket above all) may reach the command: mark
            // every descriptor above stderr close-on-exec. Failure (an old kernel) is harmless
            // because the worker opens everything close-on-exec anyway.
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|err| ModError::os(&err, "spawn", cmd))?;
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    // From here a stop kills the child (at once, if the stop came first).
    control.set_child(Some(pid));
    let watched = watch(&mut child, started + limit, bounds.output_cap);
    // Unregister before reaping: the pid stays ours (a zombie at worst) until `wait` below.
    control.set_child(None);
    let (status, output) = match watched {
        Ok(Watched::Exited(output)) => (child.wait(), output),
        Ok(Watched::TimedOut) => {
            let _ = child.kill();
            let _ = child.wait();
            if wall_bound {
                control.stop_current(Cause::Stop(StopCause::WallTime));
            }
            return Err(ModError::coded(
                "ETIMEDOUT",
                format!(
                    "ETIMEDOUT: command timed out after {} ms, spawnSync '{cmd}'",
                    limit.as_millis()
                ),
            ));
        }
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ModError::os(&err, "spawnSync", cmd));
        }
    };
    let status = status.map_err(|err| ModError::os(&err, "waitpid", cmd))?;
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 128,
    };
    let result = serde_json::json!({
        "code": code,
        "stdout": String::from_utf8_lossy(&output.stdout),
        "stderr": String::from_utf8_lossy(&output.stderr),
    });
    Ok(result.to_string())
}

#[derive(Debug, Default)]
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

enum Watched {
    /// The child exited (it may not be reaped yet).
    Exited(Output),
    /// `deadline` passed with the child still running.
    TimedOut,
}

/// One output pipe of the child, read without blocking, keeping at most `cap` bytes.
struct Stream {
    fd: Option<OwnedFd>,
    kept: Vec<u8>,
    cap: usize,
    buf: Vec<u8>,
}

impl Stream {
    fn new(fd: Option<OwnedFd>, cap: usize) -> io::Result<Self> {
        if let Some(fd) = &fd {
            set_nonblocking(fd)?;
        }
        Ok(Stream {
            fd,
            kept: Vec::new(),
            cap,
            buf: vec![0u8; CHUNK],
        })
    }

    fn raw(&self) -> libc::c_int {
        self.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// Reads what is available now, at most `reads` times. Returns once the pipe would block,
    /// is at end of file (then it is closed), or `reads` is used up.
    fn pump(&mut self, reads: usize) -> io::Result<()> {
        for _ in 0..reads {
            let Some(fd) = &self.fd else {
                return Ok(());
            };
            // SAFETY: `self.buf` is valid for `self.buf.len()` bytes of writes; `fd` is open.
            let n =
                unsafe { libc::read(fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), self.buf.len()) };
            match usize::try_from(n) {
                Ok(0) => {
                    self.fd = None;
                    return Ok(());
                }
                Ok(n) => {
                    let room = self.cap.saturating_sub(self.kept.len());
                    self.kept.extend_from_slice(&self.buf[..n.min(room)]);
                }
                Err(_) => {
                    let err = io::Error::last_os_error();
                    match err.kind() {
                        io::ErrorKind::WouldBlock => return Ok(()),
                        io::ErrorKind::Interrupted => {}
                        _ => return Err(err),
                    }
                }
            }
        }
        Ok(())
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes integer arguments only; the returned descriptor is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn stdout_fd(pipe: Option<ChildStdout>) -> Option<OwnedFd> {
    pipe.map(OwnedFd::from)
}

fn stderr_fd(pipe: Option<ChildStderr>) -> Option<OwnedFd> {
    pipe.map(OwnedFd::from)
}

/// Collects the child's output until it exits or `deadline` passes. The child's exit is seen on
/// a pidfd, so output pipes held open by its own children do not delay the return.
fn watch(child: &mut Child, deadline: Instant, cap: usize) -> io::Result<Watched> {
    let pidfd = pidfd_open(child.id())?;
    let mut out = Stream::new(stdout_fd(child.stdout.take()), cap)?;
    let mut err = Stream::new(stderr_fd(child.stderr.take()), cap)?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Watched::TimedOut);
        }
        let wait_ms = i32::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX);
        let mut fds = [
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: out.raw(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: err.raw(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of three pollfd for the duration of the call; negative
        // descriptors are ignored by poll.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 3, wait_ms) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if fds[1].revents != 0 {
            out.pump(1)?;
        }
        if fds[2].revents != 0 {
            err.pump(1)?;
        }
        if fds[0].revents != 0 {
            // Exited: take what is already in the pipes, without waiting for end of file.
            out.pump(DRAIN_READS)?;
            err.pump(DRAIN_READS)?;
            return Ok(Watched::Exited(Output {
                stdout: out.kept,
                stderr: err.kept,
            }));
        }
    }
}
