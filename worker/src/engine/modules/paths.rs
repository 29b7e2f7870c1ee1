//! The path rules of spec §8.4 for `fs` and `database`: the lexical rules 1–3 (a copy of the
//! daemon's `orchestrator/src/api/paths.rs`; the worker does not depend on the orchestrator) and
//! rule 4, resolving beneath the worktree in one `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`
//! call so that a symlink swapped in between cannot escape.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Why a path was refused: the `INVALID_PATH` reason tokens of spec §2 that apply here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathReason {
    /// The path contains NUL.
    Invalid,
    /// The path is blank, or `.` after cleaning.
    Empty,
    /// The path begins with `/`.
    Absolute,
    /// The cleaned path is `..` or begins with `../`.
    Traversal,
    /// Resolution would leave the worktree (absolute symlink, `..` through a symlink, ...).
    EscapesWorktree,
}

impl PathReason {
    /// The reason token.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Empty => "empty",
            Self::Absolute => "absolute",
            Self::Traversal => "traversal",
            Self::EscapesWorktree => "escapes_worktree",
        }
    }
}

/// Applies §8.4 rules 1–3 and returns the cleaned relative path.
///
/// In order: a NUL anywhere is `Invalid`; a blank path (empty after trimming whitespace) is
/// `Empty`; a leading `/` is `Absolute`; then `//` collapses, `.` segments go and `x/..` resolves;
/// a result of `..` or `../…` is `Traversal` and a result of nothing (`.`, `a/..`) is `Empty`.
/// A backslash is an ordinary character.
pub(crate) fn clean_relative_path(raw: &str) -> Result<String, PathReason> {
    if raw.contains('\0') {
        return Err(PathReason::Invalid);
    }
    if raw.trim().is_empty() {
        return Err(PathReason::Empty);
    }
    if raw.starts_with('/') {
        return Err(PathReason::Absolute);
    }
    let mut kept: Vec<&str> = Vec::new();
    for segment in raw.split('/') {
        match segment {
            "" | "." => {}
            ".." => match kept.last() {
                Some(&last) if last != ".." => {
                    kept.pop();
                }
                _ => kept.push(".."),
            },
            other => kept.push(other),
        }
    }
    match kept.first() {
        None => Err(PathReason::Empty),
        Some(&"..") => Err(PathReason::Traversal),
        Some(_) => Ok(kept.join("/")),
    }
}

/// `struct open_how` of openat2(2) (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `relative` beneath the directory `root` in one kernel call: `openat2` with
/// `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, retried on `EAGAIN`/`EINTR`. `O_CLOEXEC` is always
/// added. Errors are the kernel's: `EXDEV` means the resolution would have left `root` (an
/// absolute symlink included, whether or not its target exists).
pub(crate) fn open_beneath(
    root: BorrowedFd<'_>,
    relative: &str,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let relative =
        CString::new(relative).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow {
        flags: u64::try_from(flags | libc::O_CLOEXEC).unwrap_or(0),
        mode: u64::from(mode),
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    };
    loop {
        // SAFETY: every pointer is valid for the duration of the call and `how` has the size we
        // pass; the returned descriptor is owned below.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                relative.as_ptr(),
                &raw const how,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
            // SAFETY: the kernel just returned this descriptor to us and nobody else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN | libc::EINTR) => continue,
            _ => return Err(err),
        }
    }
}

/// Opens the directory `path` as an `O_PATH` descriptor: the root the module paths resolve under.
pub(crate) fn open_root(path: &std::path::Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `path` is a valid NUL-terminated string; the returned fd is owned below.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a freshly opened descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::{PathReason, clean_relative_path};

    #[test]
    fn cleans_and_classifies() {
        use PathReason::*;
        let table: &[(&str, Result<&str, PathReason>)] = &[
            ("a.js", Ok("a.js")),
            ("./a.js", Ok("a.js")),
            ("lib/../b.js", Ok("b.js")),
            ("a//b/./c.js", Ok("a/b/c.js")),
            ("a\\b", Ok("a\\b")),
            ("a/../../x", Err(Traversal)),
            ("..", Err(Traversal)),
            ("/x", Err(Absolute)),
            (".", Err(Empty)),
            ("a/..", Err(Empty)),
            ("", Err(Empty)),
            ("   ", Err(Empty)),
            ("a\0b", Err(Invalid)),
        ];
        for (input, expected) in table {
            let got = clean_relative_path(input);
            assert_eq!(got.as_deref().map_err(|r| *r), *expected, "input {input:?}");
        }
    }
}
