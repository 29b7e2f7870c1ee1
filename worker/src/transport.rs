//! The frame pipe: an I/O thread that reads `ToWorker` frames from the inherited socket and writes
//! `FromWorker` frames to it. Cancels are acted on here, so they work while JavaScript runs.

use std::os::fd::{FromRawFd, RawFd};
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use protocol::{FrameCodec, FromWorker, ToWorker};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::control::{Cause, Control};
use crate::error::WorkerError;

/// What the I/O thread writes: a frame, or the order to flush and exit with a code.
#[derive(Debug)]
enum Outgoing {
    Frame(FromWorker),
    Exit(i32),
}

/// Sends frames to the daemon, in order, from any thread.
#[derive(Debug, Clone)]
pub(crate) struct Outbox(UnboundedSender<Outgoing>);

impl Outbox {
    /// Queues a frame. Frames queued after the pipe closed are dropped: the process is exiting.
    pub(crate) fn send(&self, frame: FromWorker) {
        let _ = self.0.send(Outgoing::Frame(frame));
    }

    /// Flushes every frame queued before this call, then ends the process with `code`.
    pub(crate) fn exit(&self, code: i32) {
        let _ = self.0.send(Outgoing::Exit(code));
    }
}

/// The JavaScript thread's side of the pipe.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub(crate) out: Outbox,
    pub(crate) inbox: UnboundedReceiver<ToWorker>,
}

/// Starts the I/O thread on socket `fd`. `first` is queued before anything else (the `Hello`).
pub(crate) fn start(
    fd: RawFd,
    control: Arc<Control>,
    first: FromWorker,
) -> Result<Pipe, WorkerError> {
    // SAFETY: the daemon passes us this descriptor and nothing else in the process owns it.
    let socket = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
    socket.set_nonblocking(true).map_err(WorkerError::Pipe)?;
    // The descriptor arrives inheritable (dup2); no process the `exec` module starts may get it.
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(WorkerError::Pipe(std::io::Error::last_os_error()));
    }
    let (out, out_rx) = mpsc::unbounded_channel();
    let (inbox_tx, inbox) = mpsc::unbounded_channel();
    let out = Outbox(out);
    out.send(first);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(WorkerError::Runtime)?;
    std::thread::Builder::new()
        .name("frames".into())
        .spawn(move || {
            let code = runtime.block_on(pump(socket, control, out_rx, inbox_tx));
            // The pipe is gone or the daemon said so: leave at once, whatever JavaScript is doing.
            // SAFETY: _exit ends the process without running destructors on live engine threads.
            unsafe { libc::_exit(code) }
        })
        .map_err(WorkerError::Thread)?;
    Ok(Pipe { out, inbox })
}

async fn pump(
    socket: std::os::unix::net::UnixStream,
    control: Arc<Control>,
    mut out_rx: UnboundedReceiver<Outgoing>,
    inbox_tx: UnboundedSender<ToWorker>,
) -> i32 {
    let stream = match tokio::net::UnixStream::from_std(socket) {
        Ok(stream) => stream,
        Err(err) => {
            tracing::error!(error = %err, "failed to register the frame pipe");
            return 2;
        }
    };
    let (read_half, write_half) = stream.into_split();
    let mut reader = FramedRead::new(read_half, FrameCodec::<ToWorker, FromWorker>::new());
    let mut writer = FramedWrite::new(write_half, FrameCodec::<ToWorker, FromWorker>::new());

    let write = async move {
        while let Some(first) = out_rx.recv().await {
            let mut next = Some(first);
            let mut exit = None;
            // Batch whatever is already queued into one flush.
            while let Some(item) = next.take() {
                match item {
                    Outgoing::Frame(frame) => {
                        if writer.feed(frame).await.is_err() {
                            return 0;
                        }
                    }
                    Outgoing::Exit(code) => {
                        exit = Some(code);
                        break;
                    }
                }
                next = out_rx.try_recv().ok();
            }
            if writer.flush().await.is_err() {
                return 0;
            }
            if let Some(code) = exit {
                return code;
            }
        }
        0
    };
    let read = async move {
        loop {
            match reader.next().await {
                Some(Ok(ToWorker::Cancel { id, cause })) => {
                    control.stop(id, Cause::Stop(cause));
                }
                Some(Ok(ToWorker::Shutdown)) => return 0,
                Some(Ok(frame)) => {
                    if inbox_tx.send(frame).is_err() {
                        return 0;
                    }
                }
                Some(Err(err)) => {
                    tracing::error!(error = %err, "failed to read a frame; exiting");
                    return 2;
                }
                None => return 0,
            }
        }
    };
    tokio::select! {
        code = read => code,
        code = write => code,
    }
}
