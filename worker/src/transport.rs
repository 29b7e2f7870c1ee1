//! The frame pipe: reading `ToWorker` frames from the inherited socket, and the `Outbox` that
//! writes `FromWorker` frames to it. While the JavaScript thread waits for work it reads the
//! frames itself (`Inbox::next`), so an `Exec` wakes only that thread; while it handles a frame
//! (an execution runs) the frame thread reads, so `Cancel`, `Shutdown` and a closed pipe act at
//! once. A frame is written by the thread that sends it; the frame thread only flushes what a full
//! socket did not take.

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Buf, BytesMut};
use protocol::{FrameCodec, FromWorker, ToWorker};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio_util::codec::{Decoder, Encoder};

use crate::control::{Cause, Control};
use crate::error::WorkerError;

/// `epoll` token of the socket as the frame thread reads it.
const TOKEN_READ: u64 = 0;
/// `epoll` token of the writer's descriptor of the socket (writable interest while a flush waits).
const TOKEN_WRITE: u64 = 1;
/// `epoll` token of the eventfd that carries the outbox's orders (flush, broken, exit).
const TOKEN_WAKE: u64 = 2;
/// Spare room given to each read of the socket.
const READ_CHUNK: usize = 8 * 1024;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Ends the process at once, whatever JavaScript is doing: the pipe is gone or the daemon said so.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process without running destructors on live engine threads.
    unsafe { libc::_exit(code) }
}

/// Frames on their way out. Whoever sends a frame writes it at once (the socket is non-blocking);
/// what the socket does not take stays in `buf`, which the frame thread flushes. Every write is of
/// the front of `buf` under the lock, so frames leave in the order they were sent.
#[derive(Debug)]
struct Writer {
    socket: UnixStream,
    buf: BytesMut,
    codec: FrameCodec<ToWorker, FromWorker>,
    /// The frame thread was asked to flush and has not emptied `buf` since.
    flush_asked: bool,
    broken: bool,
    /// End the process with this code once `buf` is empty.
    exit: Option<i32>,
    /// `socket` is registered for writing with the frame thread's epoll (while a flush waits).
    writable_interest: bool,
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

/// Incoming bytes and the frames decoded from them. Whoever reads the socket holds the lock from
/// the read to the last complete frame, so a frame is never split between two readers.
#[derive(Debug)]
struct Reader {
    buf: BytesMut,
    codec: FrameCodec<ToWorker, FromWorker>,
    /// `Configure` and `Exec` frames read and not yet taken by the JavaScript thread.
    queue: VecDeque<ToWorker>,
}

/// What the JavaScript thread, the frame thread and every `Outbox` share.
#[derive(Debug)]
struct Shared {
    /// The socket as it is read (and registered with the frame thread's epoll, `TOKEN_READ`).
    socket: UnixStream,
    reader: Mutex<Reader>,
    writer: Mutex<Writer>,
    /// The frame thread's epoll instance.
    epoll: OwnedFd,
    /// eventfd that wakes the frame thread for an outbox order.
    wake: OwnedFd,
    control: Arc<Control>,
}

impl Shared {
    /// Reads all the socket holds and acts on every complete frame: `Cancel` stops its execution,
    /// `Configure` and `Exec` are queued for the JavaScript thread. Returns the exit code when the
    /// process must end (`Shutdown`, the pipe closed, a read or decode failure).
    fn read_frames(&self, reader: &mut Reader) -> Option<i32> {
        let Reader { buf, codec, queue } = reader;
        let mut eof = false;
        let mut failed = None;
        loop {
            buf.reserve(READ_CHUNK);
            let spare = buf.spare_capacity_mut();
            // SAFETY: read(2) writes at most `spare.len()` bytes into the buffer's spare capacity,
            // which `spare` borrows for the call.
            let n = unsafe {
                libc::read(
                    self.socket.as_raw_fd(),
                    spare.as_mut_ptr().cast::<libc::c_void>(),
                    spare.len(),
                )
            };
            let read = usize::try_from(n).map_err(|_| std::io::Error::last_os_error());
            if let Ok(n) = read {
                // SAFETY: the kernel initialised the first `n` bytes of the spare capacity.
                unsafe { buf.set_len(buf.len() + n) };
            }
            match read {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(err) => {
                    failed = Some(protocol::CodecError::Io(err));
                    break;
                }
            }
        }
        loop {
            let frame = if eof {
                codec.decode_eof(buf)
            } else {
                codec.decode(buf)
            };
            match frame {
                Ok(Some(ToWorker::Cancel { id, cause })) => {
                    self.control.stop(id, Cause::Stop(cause));
                }
                Ok(Some(ToWorker::Shutdown)) => return Some(0),
                Ok(Some(frame)) => queue.push_back(frame),
                Ok(None) => break,
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            }
        }
        if let Some(err) = failed {
            tracing::error!(error = %err, "failed to read a frame; exiting");
            return Some(2);
        }
        eof.then_some(0)
    }

    /// The frame thread's reading: everything the socket holds.
    fn read_on_frame_thread(&self) -> Option<i32> {
        let mut reader = lock(&self.reader);
        self.read_frames(&mut reader)
    }

    /// The JavaScript thread's reading: the next queued frame, after reading what the socket
    /// holds if none is queued. Ends the process when the frames say so.
    fn take_frame(&self) -> Option<ToWorker> {
        let mut reader = lock(&self.reader);
        if let Some(frame) = reader.queue.pop_front() {
            return Some(frame);
        }
        if let Some(code) = self.read_frames(&mut reader) {
            exit_now(code);
        }
        reader.queue.pop_front()
    }

    /// Sets the interest the frame thread's epoll has in `fd` (`token`).
    fn set_interest(&self, fd: RawFd, token: u64, events: u32) -> std::io::Result<()> {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: epoll_ctl on our epoll instance and a descriptor registered with it; `event` is
        // a valid epoll_event that outlives the call.
        let rc = unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_MOD,
                fd,
                &raw mut event,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Wakes the frame thread to look at the writer's orders.
    fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd. A full counter (EAGAIN) means a
        // wake-up is pending already.
        unsafe {
            libc::write(
                self.wake.as_raw_fd(),
                (&raw const one).cast::<libc::c_void>(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Resets the eventfd after a wake-up.
    fn drain_wake(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our non-blocking eventfd.
        unsafe {
            libc::read(
                self.wake.as_raw_fd(),
                (&raw mut count).cast::<libc::c_void>(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Carries out the outbox's orders: writes what is buffered, waits for write space if the
    /// socket is full, and returns the exit code once the process must end.
    fn pump_out(&self) -> Option<i32> {
        let mut writer = lock(&self.writer);
        if writer.broken {
            return Some(0);
        }
        if writer.write_now().is_err() {
            writer.set_broken();
            return Some(0);
        }
        let waiting = !writer.buf.is_empty();
        if !waiting {
            writer.flush_asked = false;
            if let Some(code) = writer.exit {
                return Some(code);
            }
        }
        // Registered for writing only while a flush waits: a unix socket signals every gain of
        // write space, which would wake this thread each time the daemon reads a frame.
        if waiting != writer.writable_interest {
            let events = if waiting { libc::EPOLLOUT as u32 } else { 0 };
            if let Err(err) = self.set_interest(writer.socket.as_raw_fd(), TOKEN_WRITE, events) {
                tracing::error!(error = %err, "failed to watch the frame pipe for writing");
                return Some(2);
            }
            writer.writable_interest = waiting;
        }
        None
    }
}

/// Sends frames to the daemon, in order, from any thread.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    shared: Arc<Shared>,
}

impl Outbox {
    /// Sends a frame. Frames sent after the pipe broke are dropped: the process is exiting.
    pub(crate) fn send(&self, frame: FromWorker) {
        self.send_all([frame]);
    }

    /// Sends `frames` in order, in one write when the socket takes them.
    pub(crate) fn send_all(&self, frames: impl IntoIterator<Item = FromWorker>) {
        let mut writer = lock(&self.shared.writer);
        if writer.broken {
            return;
        }
        let Writer { buf, codec, .. } = &mut *writer;
        let encoded = frames
            .into_iter()
            .try_for_each(|frame| codec.encode(frame, buf));
        if encoded.is_err() || writer.write_now().is_err() {
            writer.set_broken();
            self.shared.wake();
        } else if !writer.buf.is_empty() && !writer.flush_asked {
            writer.flush_asked = true;
            self.shared.wake();
        }
    }

    /// Flushes every frame sent before this call, then ends the process with `code`.
    pub(crate) fn exit(&self, code: i32) {
        let mut writer = lock(&self.shared.writer);
        writer.exit.get_or_insert(code);
        self.shared.wake();
    }
}

/// The JavaScript thread's side of the pipe, before it is attached to the session's runtime.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub(crate) out: Outbox,
    pub(crate) input: Input,
}

/// Incoming frames, not yet attached to an async runtime.
#[derive(Debug)]
pub(crate) struct Input {
    shared: Arc<Shared>,
}

impl Input {
    /// Registers the socket with the current async runtime (the JavaScript thread's) for reading.
    pub(crate) fn attach(self) -> std::io::Result<Inbox> {
        let socket = self.shared.socket.try_clone()?;
        // SAFETY: the `UnixStream` owns its descriptor, which stays open and unchanged until the
        // `AsyncFd` that owns the stream is dropped.
        let ready = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
            .map_err(|err| err.into_parts().1)?;
        Ok(Inbox {
            shared: self.shared,
            ready,
            frame_thread_reads: true,
        })
    }
}

/// Incoming frames as the JavaScript thread takes them.
#[derive(Debug)]
pub(crate) struct Inbox {
    shared: Arc<Shared>,
    /// A descriptor of the socket registered with the JavaScript thread's runtime.
    ready: AsyncFd<UnixStream>,
    /// The frame thread's epoll watches the socket for reading (the JavaScript thread is busy).
    frame_thread_reads: bool,
}

impl Inbox {
    /// The next `Configure` or `Exec` frame. While this waits, the JavaScript thread is the only
    /// reader of the socket; once it returns, the frame thread reads until the next call, so a
    /// `Cancel` lands while the frame is handled. Cancel-safe. The process ends here when the
    /// frames say so (`Shutdown`, the pipe closed).
    pub(crate) async fn next(&mut self) -> ToWorker {
        self.take_over();
        let frame = self.wait().await;
        self.set_frame_thread_reads(true);
        frame
    }

    /// Switches the frame thread's reading off ahead of `next`: called once the work a frame asked
    /// for is done and before its answer leaves, so the daemon's next frame wakes only this thread.
    pub(crate) fn take_over(&mut self) {
        self.set_frame_thread_reads(false);
    }

    async fn wait(&self) -> ToWorker {
        if let Some(frame) = self.shared.take_frame() {
            return frame;
        }
        loop {
            // The readiness is edge-triggered and cleared only if no event came since `readable`
            // returned, so no frame that arrives after the read below is missed; a frame the
            // frame thread queued is found under the lock the same way.
            let mut guard = match self.ready.readable().await {
                Ok(guard) => guard,
                Err(err) => {
                    tracing::error!(error = %err, "failed to wait for the frame pipe; exiting");
                    exit_now(2);
                }
            };
            if let Some(frame) = self.shared.take_frame() {
                return frame;
            }
            guard.clear_ready();
        }
    }

    /// Switches the frame thread's reading on or off, without waking it: the interest is changed
    /// on its epoll from this thread. A hang-up wakes it either way.
    fn set_frame_thread_reads(&mut self, on: bool) {
        if self.frame_thread_reads == on {
            return;
        }
        let events = if on { libc::EPOLLIN as u32 } else { 0 };
        let fd = self.shared.socket.as_raw_fd();
        match self.shared.set_interest(fd, TOKEN_READ, events) {
            Ok(()) => self.frame_thread_reads = on,
            Err(err) => {
                // Without the frame thread's reading a cancel could not land: end the worker.
                tracing::error!(error = %err, "failed to switch the frame thread's reading; exiting");
                exit_now(2);
            }
        }
    }
}

/// Starts the frame thread on socket `fd`, reading until the JavaScript thread first waits for a
/// frame. `first` is sent before anything else (the `Hello`).
pub(crate) fn start(
    fd: RawFd,
    control: Arc<Control>,
    first: FromWorker,
) -> Result<Pipe, WorkerError> {
    // SAFETY: the daemon passes us this descriptor and nothing else in the process owns it.
    let socket = unsafe { UnixStream::from_raw_fd(fd) };
    socket.set_nonblocking(true).map_err(WorkerError::Pipe)?;
    // The descriptor arrives inheritable (dup2); no process the `exec` module starts may get it.
    set_cloexec(fd).map_err(WorkerError::Pipe)?;
    let writer = Writer {
        socket: socket.try_clone().map_err(WorkerError::Pipe)?,
        buf: BytesMut::new(),
        codec: FrameCodec::new(),
        flush_asked: false,
        broken: false,
        exit: None,
        writable_interest: false,
    };
    // SAFETY: epoll_create1 and eventfd take integer arguments only.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let epoll = owned(epoll).map_err(WorkerError::Pipe)?;
    // SAFETY: as above.
    let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    let wake = owned(wake).map_err(WorkerError::Pipe)?;
    for (fd, token, events) in [
        (socket.as_raw_fd(), TOKEN_READ, libc::EPOLLIN as u32),
        (writer.socket.as_raw_fd(), TOKEN_WRITE, 0),
        (wake.as_raw_fd(), TOKEN_WAKE, libc::EPOLLIN as u32),
    ] {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: epoll_ctl on our epoll instance and descriptors we own; `event` is a valid
        // epoll_event that outlives the call.
        let rc =
            unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &raw mut event) };
        if rc < 0 {
            return Err(WorkerError::Pipe(std::io::Error::last_os_error()));
        }
    }
    let shared = Arc::new(Shared {
        socket,
        reader: Mutex::new(Reader {
            buf: BytesMut::new(),
            codec: FrameCodec::new(),
            queue: VecDeque::new(),
        }),
        writer: Mutex::new(writer),
        epoll,
        wake,
        control,
    });
    let out = Outbox {
        shared: Arc::clone(&shared),
    };
    out.send(first);
    let input = Input {
        shared: Arc::clone(&shared),
    };
    std::thread::Builder::new()
        .name("frames".into())
        .spawn(move || exit_now(pump(&shared)))
        .map_err(WorkerError::Thread)?;
    Ok(Pipe { out, input })
}

/// Marks descriptor `fd` close-on-exec.
pub(crate) fn set_cloexec(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl with integer arguments only; a bad descriptor only makes it fail.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Takes ownership of a descriptor a system call returned, or of its error.
fn owned(fd: RawFd) -> std::io::Result<OwnedFd> {
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The frame thread: waits on its epoll for frames to read (while reading is switched on, and on
/// a hang-up always), outbox orders and write space. Returns the process's exit code.
fn pump(shared: &Shared) -> i32 {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
    loop {
        // SAFETY: epoll_wait on our epoll instance into a live buffer of `events.len()` entries.
        let n = unsafe {
            libc::epoll_wait(
                shared.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                -1,
            )
        };
        let Ok(n) = usize::try_from(n) else {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!(error = %err, "failed to wait on the frame pipe");
            return 2;
        };
        for event in events.iter().take(n) {
            let (token, flags) = (event.u64, event.events);
            let code = match token {
                TOKEN_WAKE => {
                    shared.drain_wake();
                    shared.pump_out()
                }
                TOKEN_WRITE if flags & (libc::EPOLLHUP | libc::EPOLLERR) as u32 == 0 => {
                    shared.pump_out()
                }
                // Frames, or a hang-up (reported whatever the interest): reading finds the end.
                _ => shared.read_on_frame_thread(),
            };
            if let Some(code) = code {
                return code;
            }
        }
    }
}
