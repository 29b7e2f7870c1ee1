//! The frame pipe: an I/O thread that reads `ToWorker` frames from the inherited socket, and the
//! `Outbox` that writes `FromWorker` frames to it. Cancels are acted on by the I/O thread, so they
//! work while JavaScript runs; a frame is written by the thread that sends it (no wake-up of the
//! I/O thread), and the I/O thread only flushes what a full socket did not take.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use futures::StreamExt;
use protocol::{FrameCodec, FromWorker, ToWorker};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, Interest, ReadBuf};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio_util::codec::{Encoder, FramedRead};

use crate::control::{Cause, Control};
use crate::error::WorkerError;

/// What the I/O thread is asked to do about outgoing frames.
#[derive(Debug)]
enum Outgoing {
    /// The socket was full: write the rest of the buffer once it is writable.
    Flush,
    /// A write failed: the daemon is gone.
    Broken,
    /// Flush the buffer, then end the process with this code.
    Exit(i32),
}

/// Frames on their way out. Whoever sends a frame writes it at once (the socket is non-blocking);
/// what the socket does not take stays in `buf`, which the I/O thread flushes. Every write is of
/// the front of `buf` under the lock, so frames leave in the order they were sent.
#[derive(Debug)]
struct Writer {
    socket: std::os::unix::net::UnixStream,
    buf: BytesMut,
    codec: FrameCodec<ToWorker, FromWorker>,
    /// The I/O thread was asked to flush and has not emptied `buf` since.
    flush_asked: bool,
    broken: bool,
}

impl Writer {
    /// Writes as much of `buf` as the socket takes now. `Err` when the pipe is broken.
    fn write_now(&mut self) -> Result<(), ()> {
        while !self.buf.is_empty() {
            match self.socket.write(&self.buf) {
                Ok(0) => return Err(()),
                Ok(n) => self.buf.advance(n),
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(_) => return Err(()),
            }
        }
        Ok(())
    }

    fn set_broken(&mut self) {
        self.broken = true;
        self.buf.clear();
    }
}

/// Sends frames to the daemon, in order, from any thread.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    writer: Arc<Mutex<Writer>>,
    io: UnboundedSender<Outgoing>,
}

impl Outbox {
    /// Sends a frame. Frames sent after the pipe broke are dropped: the process is exiting.
    pub(crate) fn send(&self, frame: FromWorker) {
        self.send_all([frame]);
    }

    /// Sends `frames` in order, in one write when the socket takes them.
    pub(crate) fn send_all(&self, frames: impl IntoIterator<Item = FromWorker>) {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if writer.broken {
            return;
        }
        let Writer { buf, codec, .. } = &mut *writer;
        let encoded = frames
            .into_iter()
            .try_for_each(|frame| codec.encode(frame, buf));
        if encoded.is_err() || writer.write_now().is_err() {
            writer.set_broken();
            let _ = self.io.send(Outgoing::Broken);
        } else if !writer.buf.is_empty() && !writer.flush_asked {
            writer.flush_asked = true;
            let _ = self.io.send(Outgoing::Flush);
        }
    }

    /// Flushes every frame sent before this call, then ends the process with `code`.
    pub(crate) fn exit(&self, code: i32) {
        let _ = self.io.send(Outgoing::Exit(code));
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
    let writer = Writer {
        socket: socket.try_clone().map_err(WorkerError::Pipe)?,
        buf: BytesMut::new(),
        codec: FrameCodec::new(),
        flush_asked: false,
        broken: false,
    };
    let writer = Arc::new(Mutex::new(writer));
    let (io, io_rx) = mpsc::unbounded_channel();
    let (inbox_tx, inbox) = mpsc::unbounded_channel();
    let out = Outbox {
        writer: Arc::clone(&writer),
        io,
    };
    out.send(first);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(WorkerError::Runtime)?;
    std::thread::Builder::new()
        .name("frames".into())
        .spawn(move || {
            let code = runtime.block_on(pump(socket, control, &writer, io_rx, inbox_tx));
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
    writer: &Mutex<Writer>,
    mut io_rx: UnboundedReceiver<Outgoing>,
    inbox_tx: UnboundedSender<ToWorker>,
) -> i32 {
    // Registered for reading only: a registration for writing too would wake this thread each
    // time the daemon reads what was written (a unix socket signals every gain of write space).
    let stream = match register(socket, Interest::READABLE) {
        Ok(stream) => ReadHalf(stream),
        Err(err) => {
            tracing::error!(error = %err, "failed to register the frame pipe");
            return 2;
        }
    };
    let mut reader = FramedRead::new(stream, FrameCodec::<ToWorker, FromWorker>::new());

    let write = async move {
        while let Some(order) = io_rx.recv().await {
            match order {
                Outgoing::Flush => {
                    if flush(writer).await.is_err() {
                        return 0;
                    }
                }
                Outgoing::Broken => return 0,
                Outgoing::Exit(code) => {
                    let _ = flush(writer).await;
                    return code;
                }
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

/// Registers the socket with this thread's reactor for `interest` only.
fn register(
    socket: std::os::unix::net::UnixStream,
    interest: Interest,
) -> std::io::Result<AsyncFd<std::os::unix::net::UnixStream>> {
    // SAFETY: the `UnixStream` owns its descriptor, which stays open and unchanged until the
    // `AsyncFd` that owns the stream is dropped.
    unsafe { AsyncFd::register_with_interest(socket, interest) }.map_err(|err| err.into_parts().1)
}

/// The socket as a reader of frames.
struct ReadHalf(AsyncFd<std::os::unix::net::UnixStream>);

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|socket| socket.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(err)) => return Poll::Ready(Err(err)),
                Err(_would_block) => {}
            }
        }
    }
}

/// Writes the whole buffer, waiting for the socket to take it. `Err` when the pipe is broken.
/// The socket is registered for writing only while this waits.
async fn flush(writer: &Mutex<Writer>) -> Result<(), ()> {
    let socket = {
        let writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
        writer.socket.try_clone()
    };
    let Ok(socket) = socket.and_then(|socket| register(socket, Interest::WRITABLE)) else {
        writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set_broken();
        return Err(());
    };
    loop {
        let Ok(mut ready) = socket.writable().await else {
            return Err(());
        };
        let mut writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
        if writer.broken {
            return Err(());
        }
        if writer.write_now().is_err() {
            writer.set_broken();
            return Err(());
        }
        if writer.buf.is_empty() {
            writer.flush_asked = false;
            return Ok(());
        }
        ready.clear_ready();
    }
}
