//! The `fs` module (spec §8.3): reads, writes and listings inside the worktree. Every path is
//! cleaned lexically, then resolved and opened in one `openat2(RESOLVE_BENEATH)` call (§8.4), so a
//! symlink swapped in between cannot make a call reach outside.

use std::ffi::CStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, IntoRawFd, OwnedFd};

use super::paths::{PathReason, clean_relative_path, open_beneath};
use super::{Grants, ModError};

/// Largest file `readFileSync` reads: 64 MiB.
pub(crate) const MAX_READ_BYTES: u64 = 64 * 1024 * 1024;

/// The worktree root itself: what `""` and `"."` name for `existsSync` and `readdirSync`.
const ROOT: &str = ".";

pub(super) fn invalid_path(raw: &str, reason: PathReason) -> ModError {
    ModError::coded(
        "ERR_INVALID_PATH",
        format!("path '{raw}' is not allowed ({})", reason.as_str()),
    )
}

/// Rules 1–3. `allow_root`: `""`, `"."` and anything that cleans to nothing (`a/..`) name the
/// root; a blank path of spaces does not.
///
/// A path that ends in `/` (or `/.`) names a directory, as in POSIX and Node: the cleaned path
/// keeps a trailing `/`, so the kernel refuses a file there (`ENOTDIR`, `EISDIR` for a create).
pub(super) fn lexical(raw: &str, allow_root: bool) -> Result<String, ModError> {
    match clean_relative_path(raw) {
        Ok(cleaned) if raw.ends_with('/') || raw.ends_with("/.") => Ok(format!("{cleaned}/")),
        Ok(cleaned) => Ok(cleaned),
        Err(PathReason::Empty) if allow_root && (raw.is_empty() || !raw.trim().is_empty()) => {
            Ok(ROOT.to_string())
        }
        Err(reason) => Err(invalid_path(raw, reason)),
    }
}

/// Rule 4: opens `cleaned` beneath the worktree; an escape is `ERR_INVALID_PATH`, any other
/// failure its errno name.
fn open(
    grants: &Grants,
    raw: &str,
    cleaned: &str,
    flags: libc::c_int,
    mode: libc::mode_t,
    syscall: &str,
) -> Result<OwnedFd, ModError> {
    open_beneath(grants.root.as_fd(), cleaned, flags, mode).map_err(|err| {
        if err.raw_os_error() == Some(libc::EXDEV) {
            invalid_path(raw, PathReason::EscapesWorktree)
        } else {
            ModError::os(&err, syscall, raw)
        }
    })
}

fn too_big(raw: &str) -> ModError {
    ModError::coded(
        "EFBIG",
        format!("EFBIG: file is larger than 64 MiB, read '{raw}'"),
    )
}

/// `readFileSync(path)`: the file decoded as UTF-8 (invalid bytes replaced).
pub(super) fn read(grants: &Grants, raw: &str) -> Result<String, ModError> {
    let cleaned = lexical(raw, false)?;
    let fd = open(
        grants,
        raw,
        &cleaned,
        libc::O_RDONLY | libc::O_NONBLOCK,
        0,
        "open",
    )?;
    let file = std::fs::File::from(fd);
    let meta = file
        .metadata()
        .map_err(|err| ModError::os(&err, "fstat", raw))?;
    if meta.is_dir() {
        return Err(ModError::os(
            &io::Error::from_raw_os_error(libc::EISDIR),
            "read",
            raw,
        ));
    }
    if meta.len() > MAX_READ_BYTES {
        return Err(too_big(raw));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_READ_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| ModError::os(&err, "read", raw))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_READ_BYTES {
        return Err(too_big(raw));
    }
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    })
}

/// `writeFileSync(path, data)`: creates or truncates the file. The open itself is the one-step
/// resolution: `O_CREAT` under `RESOLVE_BENEATH` follows relative symlinks only while they stay
/// inside, and refuses absolute ones, like a read.
pub(super) fn write(grants: &Grants, raw: &str, data: &str) -> Result<(), ModError> {
    let cleaned = lexical(raw, false)?;
    let fd = open(
        grants,
        raw,
        &cleaned,
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NONBLOCK,
        0o666,
        "open",
    )?;
    let mut file = std::fs::File::from(fd);
    // A write past RLIMIT_FSIZE fails with EFBIG (the worker ignores SIGXFSZ).
    file.write_all(data.as_bytes())
        .map_err(|err| ModError::os(&err, "write", raw))
}

/// `existsSync(path)`: false for a missing path and for one that breaks the rules.
pub(super) fn exists(grants: &Grants, raw: &str) -> bool {
    match lexical(raw, true) {
        Ok(cleaned) => open_beneath(grants.root.as_fd(), &cleaned, libc::O_PATH, 0).is_ok(),
        Err(_) => false,
    }
}

/// `readdirSync(path)`: entry names as a JSON array, without `.`/`..` and names that are not
/// UTF-8, sorted by UTF-16 code units like `Array.prototype.sort()`.
pub(super) fn readdir(grants: &Grants, raw: &str) -> Result<String, ModError> {
    let cleaned = lexical(raw, true)?;
    let fd = open(
        grants,
        raw,
        &cleaned,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK,
        0,
        "scandir",
    )?;
    let mut names = list(fd).map_err(|err| ModError::os(&err, "scandir", raw))?;
    names.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    serde_json::to_string(&names).map_err(|err| ModError::coded("EIO", err.to_string()))
}

/// Reads every entry of the open directory `fd`.
fn list(fd: OwnedFd) -> io::Result<Vec<String>> {
    // SAFETY: `fd` is an open directory we own; fdopendir takes it over (closedir closes it).
    let dir = unsafe { libc::fdopendir(fd.into_raw_fd()) };
    if dir.is_null() {
        return Err(io::Error::last_os_error());
    }
    let mut names = Vec::new();
    let result = loop {
        // SAFETY: resetting errno tells the end of the stream from an error below.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `dir` is a valid DIR stream until closedir below.
        let entry = unsafe { libc::readdir64(dir) };
        if entry.is_null() {
            let err = io::Error::last_os_error();
            break match err.raw_os_error() {
                Some(0) | None => Ok(()),
                Some(_) => Err(err),
            };
        }
        // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated; it stays valid
        // until the next readdir call, and we copy it out before that.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        if let Ok(text) = std::str::from_utf8(bytes) {
            names.push(text.to_string());
        }
    };
    // SAFETY: `dir` came from fdopendir and is closed exactly once.
    unsafe { libc::closedir(dir) };
    result.map(|()| names)
}
