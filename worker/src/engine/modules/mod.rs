//! The native modules of spec §8.3 (`fs`, `exec`, `database`) on the Rust side: what the session
//! grants, the running execution's time and output bounds, and the errors module functions throw.
//! Every grant is enforced here; the JavaScript wrappers in `js/modules.js` only shape arguments
//! and results.

mod database;
mod exec;
mod fs;
mod paths;

use std::borrow::Cow;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::SessionConfig;

use crate::control::Control;
use database::Database;
pub(crate) use database::Param;

/// Module ids this worker implements.
pub(crate) const FS: &str = "fs";
pub(crate) const EXEC: &str = "exec";
pub(crate) const DATABASE: &str = "database";

/// An exception a module function throws: an `Error` with a string `code`, or a plain
/// `TypeError`/`RangeError` for bad arguments.
#[derive(Debug)]
pub(crate) struct ModError {
    class: &'static str,
    code: Option<Cow<'static, str>>,
    message: String,
}

impl ModError {
    /// `Error` with `code`.
    pub(crate) fn coded(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ModError {
            class: "Error",
            code: Some(code.into()),
            message: message.into(),
        }
    }

    /// `TypeError` without a code.
    pub(crate) fn type_error(message: impl Into<String>) -> Self {
        ModError {
            class: "TypeError",
            code: None,
            message: message.into(),
        }
    }

    /// `RangeError` without a code.
    pub(crate) fn range_error(message: impl Into<String>) -> Self {
        ModError {
            class: "RangeError",
            code: None,
            message: message.into(),
        }
    }

    /// An OS error, coded with its errno name (Node's form: `ENOENT: no such file or directory,
    /// open 'a.txt'`).
    pub(crate) fn os(err: &io::Error, syscall: &str, subject: &str) -> Self {
        match err.raw_os_error() {
            Some(errno) => {
                let code = errno_name(errno);
                ModError::coded(
                    code,
                    format!("{code}: {}, {syscall} '{subject}'", describe(errno)),
                )
            }
            None => ModError::coded("EIO", format!("EIO: {err}, {syscall} '{subject}'")),
        }
    }
}

impl std::fmt::Display for ModError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ModError {}

impl deno_error::JsErrorClass for ModError {
    fn get_class(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.class)
    }

    fn get_message(&self) -> Cow<'static, str> {
        Cow::Owned(self.message.clone())
    }

    fn get_additional_properties(&self) -> deno_error::AdditionalProperties {
        match &self.code {
            Some(code) => Box::new(std::iter::once((
                Cow::Borrowed("code"),
                deno_error::PropertyValue::String(code.clone()),
            ))),
            None => Box::new(std::iter::empty()),
        }
    }

    fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
}

/// The strerror text of `errno`, without Rust's ` (os error N)` suffix.
fn describe(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_lowercase(),
        None => text,
    }
}

/// The symbolic name of a Linux errno (`ENOENT`), `EUNKNOWN` for anything else.
pub(crate) fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::ENOEXEC => "ENOEXEC",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::ENOTBLK => "ENOTBLK",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ETXTBSY => "ETXTBSY",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::ESPIPE => "ESPIPE",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::EPIPE => "EPIPE",
        libc::EDOM => "EDOM",
        libc::ERANGE => "ERANGE",
        libc::EDEADLK => "EDEADLK",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOLCK => "ENOLCK",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::ENOMSG => "ENOMSG",
        libc::EIDRM => "EIDRM",
        libc::ENOSTR => "ENOSTR",
        libc::ENODATA => "ENODATA",
        libc::ETIME => "ETIME",
        libc::ENOSR => "ENOSR",
        libc::EREMOTE => "EREMOTE",
        libc::ENOLINK => "ENOLINK",
        libc::EPROTO => "EPROTO",
        libc::EMULTIHOP => "EMULTIHOP",
        libc::EBADMSG => "EBADMSG",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EBADFD => "EBADFD",
        libc::EILSEQ => "EILSEQ",
        libc::EUSERS => "EUSERS",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EDESTADDRREQ => "EDESTADDRREQ",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EPROTOTYPE => "EPROTOTYPE",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ENETRESET => "ENETRESET",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ENOBUFS => "ENOBUFS",
        libc::EISCONN => "EISCONN",
        libc::ENOTCONN => "ENOTCONN",
        libc::ESHUTDOWN => "ESHUTDOWN",
        libc::ETOOMANYREFS => "ETOOMANYREFS",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTDOWN => "EHOSTDOWN",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EALREADY => "EALREADY",
        libc::EINPROGRESS => "EINPROGRESS",
        libc::ESTALE => "ESTALE",
        libc::EUCLEAN => "EUCLEAN",
        libc::EREMOTEIO => "EREMOTEIO",
        libc::EDQUOT => "EDQUOT",
        libc::ENOMEDIUM => "ENOMEDIUM",
        libc::EMEDIUMTYPE => "EMEDIUMTYPE",
        libc::ECANCELED => "ECANCELED",
        libc::ENOKEY => "ENOKEY",
        libc::EKEYEXPIRED => "EKEYEXPIRED",
        libc::EKEYREVOKED => "EKEYREVOKED",
        libc::EKEYREJECTED => "EKEYREJECTED",
        libc::EOWNERDEAD => "EOWNERDEAD",
        libc::ENOTRECOVERABLE => "ENOTRECOVERABLE",
        libc::ERFKILL => "ERFKILL",
        libc::EHWPOISON => "EHWPOISON",
        _ => "EUNKNOWN",
    }
}

/// What the session's template grants (spec §8.2), fixed at configure time.
#[derive(Debug)]
struct Grants {
    /// Canonical worktree path (the worker's cwd, `exec` children's cwd).
    worktree: PathBuf,
    /// `O_PATH` descriptor of the worktree: every module path resolves beneath it.
    root: OwnedFd,
    /// Module ids the template lists.
    modules: Vec<String>,
    fs_read: bool,
    fs_write: bool,
    exec_allow: Vec<String>,
}

/// Bounds of the running execution that module calls observe.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// When the execution's `wall_ms` runs out.
    deadline: Instant,
    /// `max_output_kb` × 1024: the most an `exec` stream keeps.
    output_cap: usize,
}

/// The modules' state: one per runtime, kept in the `OpState`.
#[derive(Debug)]
pub(crate) struct Modules {
    control: Arc<Control>,
    grants: Option<Grants>,
    bounds: Bounds,
    database: Database,
}

/// Used before any execution set the bounds (never by user code).
const NO_DEADLINE: Duration = Duration::from_secs(3600);

impl Modules {
    pub(crate) fn new(control: Arc<Control>) -> Self {
        Modules {
            control,
            grants: None,
            bounds: Bounds {
                deadline: Instant::now() + NO_DEADLINE,
                output_cap: 0,
            },
            database: Database::default(),
        }
    }

    /// Records what the session grants; opens the worktree every module path resolves beneath.
    pub(crate) fn configure(&mut self, config: &SessionConfig) -> io::Result<()> {
        let worktree = PathBuf::from(&config.worktree);
        let root = paths::open_root(&worktree)?;
        self.database.close(&self.control);
        self.grants = Some(Grants {
            worktree,
            root,
            modules: config.modules.clone(),
            fs_read: config.fs_read,
            fs_write: config.fs_write,
            exec_allow: config.exec_allow.clone(),
        });
        Ok(())
    }

    /// Sets the bounds of the execution about to run.
    pub(crate) fn begin(&mut self, wall_ms: u64, max_output_kb: u64) {
        self.bounds = Bounds {
            deadline: Instant::now() + Duration::from_millis(wall_ms),
            output_cap: usize::try_from(max_output_kb.saturating_mul(1024)).unwrap_or(usize::MAX),
        };
    }

    /// The grants, provided the template lists module `id`.
    fn grants(&self, id: &str) -> Result<&Grants, ModError> {
        match &self.grants {
            Some(grants) if grants.modules.iter().any(|m| m == id) => Ok(grants),
            _ => Err(ModError::coded(
                "ERR_CAPABILITY",
                format!("module \"{id}\" is not enabled for this template"),
            )),
        }
    }

    /// `fs.readFileSync`.
    pub(crate) fn fs_read(&self, path: &str) -> Result<String, ModError> {
        fs::read(self.fs_grants(false)?, path)
    }

    /// `fs.writeFileSync`.
    pub(crate) fn fs_write(&self, path: &str, data: &str) -> Result<(), ModError> {
        fs::write(self.fs_grants(true)?, path, data)
    }

    /// `fs.existsSync`.
    pub(crate) fn fs_exists(&self, path: &str) -> Result<bool, ModError> {
        Ok(fs::exists(self.fs_grants(false)?, path))
    }

    /// `fs.readdirSync`: the names as a JSON array.
    pub(crate) fn fs_readdir(&self, path: &str) -> Result<String, ModError> {
        fs::readdir(self.fs_grants(false)?, path)
    }

    fn fs_grants(&self, write: bool) -> Result<&Grants, ModError> {
        let grants = self.grants(FS)?;
        if !grants.fs_read {
            return Err(ModError::coded(
                "ERR_CAPABILITY",
                "fs: no enabled fs capability grants file access",
            ));
        }
        if write && !grants.fs_write {
            return Err(ModError::coded(
                "ERR_CAPABILITY",
                "fs: writing needs an enabled fs capability with write: true",
            ));
        }
        Ok(grants)
    }

    /// `exec.run`: `{code, stdout, stderr}` as JSON.
    pub(crate) fn exec_run(
        &self,
        cmd: &str,
        args: &[String],
        timeout_ms: Option<u64>,
    ) -> Result<String, ModError> {
        let grants = self.grants(EXEC)?;
        exec::run(
            grants,
            &self.control,
            self.bounds,
            exec::Request {
                cmd,
                args,
                timeout_ms,
            },
        )
    }

    fn db(&mut self) -> Result<(&mut Database, &Grants, &Arc<Control>), ModError> {
        let Modules {
            control,
            grants,
            database,
            ..
        } = self;
        match grants {
            Some(grants) if grants.modules.iter().any(|m| m == DATABASE) => {
                Ok((database, grants, control))
            }
            _ => Err(ModError::coded(
                "ERR_CAPABILITY",
                format!("module \"{DATABASE}\" is not enabled for this template"),
            )),
        }
    }

    /// `database.configure(path)`.
    pub(crate) fn db_configure(&mut self, path: &str) -> Result<(), ModError> {
        let (database, grants, control) = self.db()?;
        database.configure(grants, control, path)
    }

    /// Starts a `query`/`exec` call: checks the connection and empties the parameter list.
    pub(crate) fn db_begin(&mut self) -> Result<(), ModError> {
        let (database, _, _) = self.db()?;
        database.begin()
    }

    /// Adds one parameter of the call being prepared.
    pub(crate) fn db_bind(&mut self, param: database::Param) -> Result<(), ModError> {
        let (database, _, _) = self.db()?;
        database.bind(param)
    }

    /// Runs the call prepared by `db_begin`/`db_bind`: JSON of the rows (`query`) or of
    /// `{changes, last_insert_rowid}` (`exec`).
    pub(crate) fn db_run(&mut self, exec: bool, sql: &str) -> Result<String, ModError> {
        let (database, _, _) = self.db()?;
        database.run(exec, sql)
    }

    /// Takes BLOB `index` of the last result.
    pub(crate) fn db_blob(&mut self, index: usize) -> Vec<u8> {
        self.database.take_blob(index)
    }

    /// `database.close()`.
    pub(crate) fn db_close(&mut self) -> Result<(), ModError> {
        let (database, _, control) = self.db()?;
        database.close_checked(control)
    }
}

#[cfg(test)]
mod tests {
    use deno_error::{JsErrorClass, PropertyValue};

    use super::{ModError, errno_name};

    #[test]
    fn os_errors_carry_the_errno_name_as_code() {
        let err = ModError::os(
            &std::io::Error::from_raw_os_error(libc::ENOENT),
            "open",
            "a.txt",
        );
        assert_eq!(err.get_class(), "Error");
        assert_eq!(
            err.get_message(),
            "ENOENT: no such file or directory, open 'a.txt'"
        );
        let props: Vec<_> = err.get_additional_properties().collect();
        assert_eq!(props.len(), 1);
        assert_eq!(props[0].0, "code");
        assert!(matches!(&props[0].1, PropertyValue::String(code) if code == "ENOENT"));
        assert_eq!(errno_name(libc::ELOOP), "ELOOP");
        assert_eq!(errno_name(libc::ENOSPC), "ENOSPC");
        assert_eq!(errno_name(9999), "EUNKNOWN");
        let plain = ModError::type_error("bad");
        assert_eq!(plain.get_class(), "TypeError");
        assert_eq!(plain.get_additional_properties().count(), 0);
    }
}
