//! Packets on a `SOCK_SEQPACKET` socket, with descriptors passed alongside (`SCM_RIGHTS`): the
//! transport of the fork-server channel (`zygote.rs`). One call moves one whole packet.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::MAX_PACKET_LEN;

/// Most descriptors one packet may carry; any beyond are closed on receipt.
const MAX_FDS: usize = 4;
/// Control buffer in `u64` words (aligned for `cmsghdr`), room for `MAX_FDS` descriptors.
const CONTROL_WORDS: usize = 8;

/// A connected pair of `SOCK_SEQPACKET` unix sockets, both close-on-exec.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid out array of two descriptors.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned by nobody else.
    unsafe { Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

/// Sends `body` and `fds` as one packet. Retries on `EINTR`; a non-blocking socket that is full
/// answers `WouldBlock`.
pub fn send_packet(socket: BorrowedFd<'_>, body: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let mut control = [0u64; CONTROL_WORDS];
    loop {
        let mut iov = libc::iovec {
            iov_base: body.as_ptr().cast_mut().cast(),
            iov_len: body.len(),
        };
        // SAFETY: an all-zero msghdr is valid; the fields set below point at live buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            let bytes = std::mem::size_of_val(fds);
            msg.msg_control = control.as_mut_ptr().cast();
            // SAFETY: CMSG_SPACE is a pure size computation.
            msg.msg_controllen =
                unsafe { libc::CMSG_SPACE(u32::try_from(bytes).unwrap_or(0)) } as usize;
            // SAFETY: the control buffer holds CMSG_SPACE(bytes) (at most 8 descriptors fit in
            // 64 bytes), so the first header and its data are inside it.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(u32::try_from(bytes).unwrap_or(0)) as usize;
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for (i, fd) in fds.iter().enumerate() {
                    std::ptr::write_unaligned(data.add(i), fd.as_raw_fd());
                }
            }
        }
        // SAFETY: `msg` describes valid buffers for the duration of the call.
        let n = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Receives one packet and the descriptors it carries (close-on-exec). `None` at end of stream.
/// Retries on `EINTR`; a non-blocking socket with nothing queued answers `WouldBlock`.
pub fn recv_packet(socket: BorrowedFd<'_>) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut body = vec![0u8; MAX_PACKET_LEN];
    let mut control = [0u64; CONTROL_WORDS];
    loop {
        let mut iov = libc::iovec {
            iov_base: body.as_mut_ptr().cast(),
            iov_len: body.len(),
        };
        // SAFETY: an all-zero msghdr is valid; the fields set below point at live buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: `msg` describes valid buffers for the duration of the call.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let mut fds = Vec::new();
        // SAFETY: walking the control messages the kernel wrote into `msg`; every descriptor in
        // an SCM_RIGHTS message is new in this process and owned by nobody else.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                    let header = libc::CMSG_LEN(0) as usize;
                    let count = ((*cmsg).cmsg_len as usize).saturating_sub(header)
                        / std::mem::size_of::<RawFd>();
                    for i in 0..count {
                        fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        fds.truncate(MAX_FDS);
        body.truncate(usize::try_from(n).unwrap_or(0));
        return Ok(Some((body, fds)));
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn packets_carry_bodies_and_descriptors() {
        let (a, b) = seqpacket_pair().unwrap();
        let (mut left, right) = UnixStream::pair().unwrap();
        send_packet(a.as_fd(), b"one", &[right.as_fd()]).unwrap();
        send_packet(a.as_fd(), b"two", &[]).unwrap();
        drop(right);
        let (body, fds) = recv_packet(b.as_fd()).unwrap().unwrap();
        assert_eq!(body, b"one");
        assert_eq!(fds.len(), 1);
        // The received descriptor is the other end of `left`.
        let mut passed = UnixStream::from(fds.into_iter().next().unwrap());
        left.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        passed.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
        let (body, fds) = recv_packet(b.as_fd()).unwrap().unwrap();
        assert_eq!((body.as_slice(), fds.len()), (&b"two"[..], 0));
        drop(a);
        assert!(recv_packet(b.as_fd()).unwrap().is_none());
    }
}
