//! Worktree checks and the daemon's reads of run-file and startup sources (spec §8.4 rules 4–6):
//! resolve and open in one `openat2(RESOLVE_BENEATH)` call, so a symlink swapped in between cannot
//! escape the worktree.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::api::paths::{PathReason, clean_relative_path};

/// Largest source file the daemon reads: 16 MiB.
pub(crate) const MAX_SOURCE_BYTES: u64 = 16 * 1024 * 1024;

/// Why a worktree path is unusable (the `INVALID_WORKTREE` reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[expect(
    clippy::enum_variant_names,
    reason = "the variants spell the spec's reason tokens"
)]
pub(crate) enum WorktreeReason {
    NotAbsolute,
    NotFound,
    NotADirectory,
}

impl WorktreeReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WorktreeReason::NotAbsolute => "not_absolute",
            WorktreeReason::NotFound => "not_found",
            WorktreeReason::NotADirectory => "not_a_directory",
        }
    }
}

/// Checks that `path` is an absolute path of an existing, accessible directory and returns its
/// canonical form (symlinks resolved once).
pub(crate) fn check_worktree(path: &str) -> Result<PathBuf, WorktreeReason> {
    if !path.starts_with('/') {
        return Err(WorktreeReason::NotAbsolute);
    }
    let canonical = std::fs::canonicalize(path).map_err(|err| match err.raw_os_error() {
        Some(libc::ENOTDIR) => WorktreeReason::NotADirectory,
        _ => WorktreeReason::NotFound,
    })?;
    let meta = std::fs::metadata(&canonical).map_err(|_| WorktreeReason::NotFound)?;
    if !meta.is_dir() {
        return Err(WorktreeReason::NotADirectory);
    }
    // A directory the daemon cannot enter is as good as missing (spec §4.8).
    if std::fs::read_dir(&canonical).is_err() {
        return Err(WorktreeReason::NotFound);
    }
    Ok(canonical)
}

/// Why a source file could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceError {
    /// `422 INVALID_PATH` with this reason.
    Path(PathReason),
    /// The path resolves inside the worktree to nothing (`404 FILE_NOT_FOUND`).
    NotFound,
}

impl SourceError {
    /// The reason token used in startup `system` messages (`not_found` for a missing file).
    pub(crate) fn token(self) -> &'static str {
        match self {
            SourceError::Path(reason) => reason.as_str(),
            SourceError::NotFound => "not_found",
        }
    }
}

/// Cleans `raw` (rules 1–3), then opens it beneath `worktree` and reads it as source text
/// (rules 4–6). Returns the cleaned path and the text. Blocking: call from a blocking thread.
pub(crate) fn read_source(worktree: &Path, raw: &str) -> Result<(String, String), SourceError> {
    let cleaned = clean_relative_path(raw).map_err(SourceError::Path)?;
    let file = open_beneath(worktree, &cleaned)?;
    let meta = file.metadata().map_err(|_| SourceError::NotFound)?;
    if !meta.is_file() {
        return Err(SourceError::Path(PathReason::NotAFile));
    }
    if meta.len() > MAX_SOURCE_BYTES {
        return Err(SourceError::Path(PathReason::TooLarge));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|_| SourceError::NotFound)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_SOURCE_BYTES {
        return Err(SourceError::Path(PathReason::TooLarge));
    }
    let text = String::from_utf8_lossy(&bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_string();
    Ok((cleaned, text))
}

/// `struct open_how` of openat2(2) (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `relative` beneath `root` in one kernel call (`openat2` with `RESOLVE_BENEATH |
/// RESOLVE_NO_MAGICLINKS`), non-blocking and close-on-exec. `EXDEV` (an escape, an absolute
/// symlink) is `escapes_worktree`; a missing target is `NotFound`.
pub(crate) fn open_beneath(root: &Path, relative: &str) -> Result<std::fs::File, SourceError> {
    let root_c = CString::new(root.as_os_str().as_bytes())
        .map_err(|_| SourceError::Path(PathReason::Invalid))?;
    let rel_c = CString::new(relative).map_err(|_| SourceError::Path(PathReason::Invalid))?;
    // SAFETY: `root_c` is a valid NUL-terminated path; the returned fd is owned below.
    let dir = unsafe {
        libc::open(
            root_c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir < 0 {
        return Err(SourceError::NotFound);
    }
    // SAFETY: `dir` is a freshly opened descriptor nobody else owns.
    let dir = unsafe { OwnedFd::from_raw_fd(dir) };
    let how = OpenHow {
        flags: u64::try_from(libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC).unwrap_or(0),
        mode: 0,
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    };
    loop {
        // SAFETY: all pointers are valid for the call; `how` has the size we pass.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                rel_c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            let fd = i32::try_from(fd).map_err(|_| SourceError::NotFound)?;
            // SAFETY: the kernel just returned this descriptor to us.
            return Ok(unsafe { std::fs::File::from_raw_fd(fd) });
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
            Some(libc::EXDEV) | Some(libc::ELOOP) => {
                return Err(SourceError::Path(PathReason::EscapesWorktree));
            }
            Some(libc::EISDIR) => return Err(SourceError::Path(PathReason::NotAFile)),
            _ => return Err(SourceError::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worktree_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(check_worktree(dir.path().to_str().unwrap()).is_ok());
        assert_eq!(
            check_worktree("relative/dir"),
            Err(WorktreeReason::NotAbsolute)
        );
        assert_eq!(
            check_worktree("/definitely/not/here"),
            Err(WorktreeReason::NotFound)
        );
        assert_eq!(
            check_worktree(file.to_str().unwrap()),
            Err(WorktreeReason::NotADirectory)
        );
    }

    #[test]
    fn sources_resolve_beneath_the_worktree() {
        let outer = tempfile::tempdir().unwrap();
        let wt = outer.path().join("wt");
        std::fs::create_dir_all(wt.join("sub")).unwrap();
        std::fs::write(wt.join("real.js"), "\u{feff}1 + 1").unwrap();
        std::fs::write(outer.path().join("secret.js"), "secret").unwrap();
        std::os::unix::fs::symlink(wt.join("real.js"), wt.join("abs.js")).unwrap();
        std::os::unix::fs::symlink("sub/../real.js", wt.join("rel.js")).unwrap();
        std::os::unix::fs::symlink("../secret.js", wt.join("out.js")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", wt.join("dangling.js")).unwrap();
        let wt = check_worktree(wt.to_str().unwrap()).unwrap();
        let check = |raw: &str, expected: Result<&str, SourceError>| {
            let got = read_source(&wt, raw).map(|(_, text)| text);
            assert_eq!(got.as_deref().map_err(|e| *e), expected, "{raw}");
        };
        check("real.js", Ok("1 + 1"));
        check("./sub/../real.js", Ok("1 + 1"));
        check("rel.js", Ok("1 + 1"));
        check(
            "abs.js",
            Err(SourceError::Path(PathReason::EscapesWorktree)),
        );
        check(
            "out.js",
            Err(SourceError::Path(PathReason::EscapesWorktree)),
        );
        check(
            "dangling.js",
            Err(SourceError::Path(PathReason::EscapesWorktree)),
        );
        check(
            "../secret.js",
            Err(SourceError::Path(PathReason::Traversal)),
        );
        check(
            "a/../../secret.js",
            Err(SourceError::Path(PathReason::Traversal)),
        );
        check("/etc/passwd", Err(SourceError::Path(PathReason::Absolute)));
        check("missing.js", Err(SourceError::NotFound));
        check("sub", Err(SourceError::Path(PathReason::NotAFile)));
        check("a\0b", Err(SourceError::Path(PathReason::Invalid)));
        check("  ", Err(SourceError::Path(PathReason::Empty)));
    }
}
