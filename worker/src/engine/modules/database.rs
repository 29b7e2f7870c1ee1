//! The `database` module (spec §8.3): one SQLite connection per session, in memory or in a
//! worktree file. ATTACH, DETACH, `VACUUM INTO` and extension loading are refused by an
//! authorizer. A stop interrupts a running statement twice over: `Control` calls
//! `sqlite3_interrupt` through the connection's interrupt handle, and a progress handler ends any
//! statement that runs while a stop cause is taken (so a statement that starts just after the
//! stop cannot slip through).
//!
//! Values cross to JavaScript as JSON text built here. Row objects are JSON objects whose keys
//! repeat when column names do (`JSON.parse` keeps the first position and the last value, which
//! is the spec's rule). Values JSON cannot carry are tagged arrays, which no SQL value is:
//! `["b", "<decimal>"]` an INTEGER outside ±(2^53−1), `["f", "Infinity"]` a non-finite REAL,
//! `["x", <index>]` a BLOB, fetched once with `take_blob`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Batch, Connection, OpenFlags, Statement};

use super::fs::{invalid_path, lexical};
use super::paths::{PathReason, open_beneath};
use super::{Grants, ModError};
use crate::control::Control;

/// Largest integer a JavaScript number holds exactly.
const MAX_SAFE: i64 = (1 << 53) - 1;
/// SQLite VM instructions between two checks of the stop cause.
const PROGRESS_EVERY: i32 = 1000;
/// How long a statement waits for another connection's lock before `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_millis(1000);

/// One parameter of a `query`/`exec` call, as the JavaScript wrapper classified it.
#[derive(Debug)]
pub(crate) enum Param {
    Null,
    /// A number that is an integer within ±(2^53−1), or a boolean.
    Integer(f64),
    /// Any other number.
    Real(f64),
    Text(String),
    /// A BigInt, as decimal text.
    BigInt(String),
    Blob(Vec<u8>),
}

/// The connection and the call being prepared.
#[derive(Debug, Default)]
pub(super) struct Database {
    conn: Option<Connection>,
    params: Vec<Value>,
    blobs: Vec<Vec<u8>>,
    /// True while a statement steps: the only time the authorizer lets plain `VACUUM` attach
    /// its temporary database.
    stepping: Arc<AtomicBool>,
}

fn not_configured() -> ModError {
    ModError::coded(
        "ERR_NOT_CONFIGURED",
        "database is not configured: call configure(path) first",
    )
}

fn sqlite_error(err: &rusqlite::Error) -> ModError {
    let message = match err {
        rusqlite::Error::MultipleStatement => {
            "query, and exec with params, run exactly one statement".to_string()
        }
        rusqlite::Error::SqliteFailure(failure, Some(message)) => {
            format!("{message} ({:?})", failure.code)
        }
        other => other.to_string(),
    };
    ModError::coded("ERR_SQLITE", message)
}

fn sqlite(message: impl Into<String>) -> ModError {
    ModError::coded("ERR_SQLITE", message)
}

/// Marks the statements run by one call as stepping, until dropped.
struct Stepping<'a>(&'a AtomicBool);

impl<'a> Stepping<'a> {
    fn on(flag: &'a AtomicBool) -> Self {
        flag.store(true, Ordering::SeqCst);
        Stepping(flag)
    }
}

impl Drop for Stepping<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

fn authorize(context: &AuthContext<'_>, stepping: &AtomicBool) -> Authorization {
    match context.action {
        // Plain VACUUM attaches a temporary database named "" while it steps; VACUUM INTO names
        // its target file, and every ATTACH written in SQL is prepared, not stepped.
        AuthAction::Attach { filename }
            if filename.is_empty() && stepping.load(Ordering::SeqCst) =>
        {
            Authorization::Allow
        }
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        // ATTACH/DETACH whose argument is not a literal (`ATTACH ? AS x`) arrive without one.
        AuthAction::Unknown {
            code: rusqlite::ffi::SQLITE_ATTACH | rusqlite::ffi::SQLITE_DETACH,
            ..
        } => Authorization::Deny,
        AuthAction::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension") =>
        {
            Authorization::Deny
        }
        // Both name a host directory for SQLite's files (the process-wide temp directory, or
        // where relative database names resolve): a probe of host paths and a way to write
        // outside the worktree.
        AuthAction::Pragma { pragma_name, .. }
            if pragma_name.eq_ignore_ascii_case("temp_store_directory")
                || pragma_name.eq_ignore_ascii_case("data_store_directory") =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

fn open_flags() -> OpenFlags {
    // No SQLITE_OPEN_URI: a path is a file name, never a `file:` URI with options.
    OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// The last component of `cleaned` is a symlink (refused: SQLite opens it with NOFOLLOW).
fn symlink_refused(raw: &str) -> ModError {
    ModError::coded(
        "ERR_INVALID_PATH",
        format!("path '{raw}' is not allowed (its last component is a symbolic link)"),
    )
}

/// Rules 1–5 for a database file, checked once before SQLite opens it by name: no escape, the
/// last component not a symlink, not a directory; a missing file is fine if its directory exists.
fn check_file(grants: &Grants, raw: &str, cleaned: &str) -> Result<(), ModError> {
    use std::os::fd::AsFd;
    let root = grants.root.as_fd();
    let escape = |err: std::io::Error, raw: &str| {
        if err.raw_os_error() == Some(libc::EXDEV) {
            invalid_path(raw, PathReason::EscapesWorktree)
        } else {
            ModError::os(&err, "open", raw)
        }
    };
    match open_beneath(root, cleaned, libc::O_PATH | libc::O_NOFOLLOW, 0) {
        Ok(fd) => {
            let meta = std::fs::File::from(fd)
                .metadata()
                .map_err(|err| ModError::os(&err, "fstat", raw))?;
            if meta.file_type().is_symlink() {
                Err(symlink_refused(raw))
            } else if meta.is_dir() {
                Err(ModError::os(
                    &std::io::Error::from_raw_os_error(libc::EISDIR),
                    "open",
                    raw,
                ))
            } else {
                Ok(())
            }
        }
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
            // Missing: SQLite creates it, provided the directory exists (inside).
            let parent = cleaned.rsplit_once('/').map_or(".", |(parent, _)| parent);
            open_beneath(root, parent, libc::O_PATH | libc::O_DIRECTORY, 0)
                .map(drop)
                .map_err(|err| escape(err, raw))
        }
        Err(err) => Err(escape(err, raw)),
    }
}

/// The file's path with its directory's symlinks resolved (rule 4 follows relative symlinks that
/// stay inside), for SQLite: its `SQLITE_OPEN_NOFOLLOW` refuses a symlink in any component, not
/// only the last. The directory is resolved beneath the worktree, as `check_file` checked it; its
/// real path is what the kernel reports for the descriptor.
fn resolved_path(grants: &Grants, raw: &str, cleaned: &str) -> Result<PathBuf, ModError> {
    use std::os::fd::{AsFd, AsRawFd};
    let Some((parent, name)) = cleaned.rsplit_once('/') else {
        return Ok(grants.worktree.join(cleaned));
    };
    let dir = open_beneath(
        grants.root.as_fd(),
        parent,
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .map_err(|err| ModError::os(&err, "open", raw))?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd()))
        .map_err(|err| ModError::os(&err, "open", raw))?;
    Ok(real.join(name))
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

fn integer_json(value: i64, tagged: &mut bool) -> String {
    if (-MAX_SAFE..=MAX_SAFE).contains(&value) {
        value.to_string()
    } else {
        *tagged = true;
        format!("[\"b\",\"{value}\"]")
    }
}

fn real_json(value: f64, tagged: &mut bool) -> String {
    if value.is_finite() {
        serde_json::Number::from_f64(value).map_or_else(|| "null".to_string(), |n| n.to_string())
    } else {
        *tagged = true;
        let text = if value.is_nan() {
            "NaN"
        } else if value > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        format!("[\"f\",\"{text}\"]")
    }
}

impl Database {
    /// `configure(path)`: closes any previous connection, then opens `":memory:"` or a worktree
    /// file (created if missing).
    pub(super) fn configure(
        &mut self,
        grants: &Grants,
        control: &Arc<Control>,
        raw: &str,
    ) -> Result<(), ModError> {
        self.close(control);
        let conn = if raw == ":memory:" {
            Connection::open_in_memory_with_flags(open_flags()).map_err(|e| sqlite_error(&e))?
        } else {
            let cleaned = lexical(raw, false)?;
            check_file(grants, raw, &cleaned)?;
            let path = resolved_path(grants, raw, &cleaned)?;
            self.open_file(grants, raw, &cleaned, &path)?
        };
        self.prepare_connection(&conn, control)
            .map_err(|e| sqlite_error(&e))?;
        control.set_db_interrupt(Some(Arc::new(conn.get_interrupt_handle())));
        self.conn = Some(conn);
        Ok(())
    }

    fn open_file(
        &self,
        grants: &Grants,
        raw: &str,
        cleaned: &str,
        path: &Path,
    ) -> Result<Connection, ModError> {
        Connection::open_with_flags(path, open_flags() | OpenFlags::SQLITE_OPEN_NOFOLLOW).map_err(
            |err| {
                // A symlink swapped in after the check: SQLite refused it (NOFOLLOW).
                if let Err(refused) = check_file(grants, raw, cleaned) {
                    refused
                } else {
                    sqlite_error(&err)
                }
            },
        )
    }

    fn prepare_connection(
        &self,
        conn: &Connection,
        control: &Arc<Control>,
    ) -> rusqlite::Result<()> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        let stepping = Arc::clone(&self.stepping);
        conn.authorizer(Some(move |context: AuthContext<'_>| {
            authorize(&context, &stepping)
        }));
        let control = Arc::clone(control);
        conn.progress_handler(PROGRESS_EVERY, Some(move || control.cause().is_some()));
        Ok(())
    }

    /// Closes the connection, if any.
    pub(super) fn close(&mut self, control: &Control) {
        control.set_db_interrupt(None);
        if let Some(conn) = self.conn.take() {
            // Errors on close leave nothing to do: the handle is released either way.
            let _ = conn.close();
        }
        self.params.clear();
        self.blobs.clear();
    }

    /// `close()`: `ERR_NOT_CONFIGURED` when there is no connection.
    pub(super) fn close_checked(&mut self, control: &Control) -> Result<(), ModError> {
        if self.conn.is_none() {
            return Err(not_configured());
        }
        self.close(control);
        Ok(())
    }

    /// Starts a call: there must be a connection; the parameter list starts empty.
    pub(super) fn begin(&mut self) -> Result<(), ModError> {
        if self.conn.is_none() {
            return Err(not_configured());
        }
        self.params.clear();
        self.blobs.clear();
        Ok(())
    }

    /// Adds one parameter to the call being prepared.
    pub(super) fn bind(&mut self, param: Param) -> Result<(), ModError> {
        let value = match param {
            Param::Null => Value::Null,
            Param::Integer(number) if number.fract() == 0.0 && number.abs() <= MAX_SAFE as f64 => {
                Value::Integer(number as i64)
            }
            Param::Integer(number) | Param::Real(number) => Value::Real(number),
            Param::Text(text) => Value::Text(text),
            Param::BigInt(text) => Value::Integer(text.parse::<i64>().map_err(|_| {
                ModError::range_error(format!(
                    "BigInt {text} is outside the signed 64-bit range of SQLite integers"
                ))
            })?),
            Param::Blob(bytes) => Value::Blob(bytes),
        };
        self.params.push(value);
        Ok(())
    }

    /// Takes BLOB `index` of the last result (empty if already taken).
    pub(super) fn take_blob(&mut self, index: usize) -> Vec<u8> {
        self.blobs
            .get_mut(index)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Runs the prepared call. `exec` without params runs every statement of `sql`; `query`,
    /// and `exec` with params, exactly one.
    pub(super) fn run(&mut self, exec: bool, sql: &str) -> Result<String, ModError> {
        let Database {
            conn,
            params,
            blobs,
            stepping,
        } = self;
        let conn = conn.as_ref().ok_or_else(not_configured)?;
        let params = std::mem::take(params);
        blobs.clear();
        let before = conn.total_changes();
        if exec && params.is_empty() {
            run_batch(conn, sql, stepping)?;
        } else {
            let mut stmt = conn.prepare(sql).map_err(|e| sqlite_error(&e))?;
            if stmt.expanded_sql().is_none() {
                return Err(sqlite("the SQL text contains no statement"));
            }
            let expected = stmt.parameter_count();
            if expected != params.len() {
                return Err(sqlite(format!(
                    "the statement has {expected} parameter(s) but {} were given",
                    params.len()
                )));
            }
            for (index, value) in params.iter().enumerate() {
                stmt.raw_bind_parameter(index + 1, value)
                    .map_err(|e| sqlite_error(&e))?;
            }
            if !exec {
                return rows_json(&mut stmt, stepping, blobs);
            }
            step_all(&mut stmt, stepping)?;
        }
        let changes = if conn.total_changes() == before {
            0
        } else {
            conn.changes()
        };
        let mut tagged = false;
        let rowid = integer_json(conn.last_insert_rowid(), &mut tagged);
        Ok(format!(
            "{{\"changes\":{changes},\"last_insert_rowid\":{rowid}}}"
        ))
    }
}

/// Steps `stmt` to its end, discarding rows.
fn step_all(stmt: &mut Statement<'_>, stepping: &AtomicBool) -> Result<(), ModError> {
    let _stepping = Stepping::on(stepping);
    let mut rows = stmt.raw_query();
    while rows.next().map_err(|e| sqlite_error(&e))?.is_some() {}
    Ok(())
}

/// Runs every statement of `sql` in turn (none may have parameters).
fn run_batch(conn: &Connection, sql: &str, stepping: &AtomicBool) -> Result<(), ModError> {
    let mut batch = Batch::new(conn, sql);
    while let Some(mut stmt) = batch.next().map_err(|e| sqlite_error(&e))? {
        let expected = stmt.parameter_count();
        if expected > 0 {
            return Err(sqlite(format!(
                "a statement has {expected} parameter(s) but none were given"
            )));
        }
        step_all(&mut stmt, stepping)?;
    }
    Ok(())
}

/// `{"t": <any tagged values>, "r": [<row objects>]}`.
fn rows_json(
    stmt: &mut Statement<'_>,
    stepping: &AtomicBool,
    blobs: &mut Vec<Vec<u8>>,
) -> Result<String, ModError> {
    let keys: Vec<String> = stmt
        .column_names()
        .iter()
        .map(|name| json_string(name))
        .collect();
    let mut tagged = false;
    let mut out = String::from("[");
    let _stepping = Stepping::on(stepping);
    let mut rows = stmt.raw_query();
    let mut first = true;
    while let Some(row) = rows.next().map_err(|e| sqlite_error(&e))? {
        if !first {
            out.push(',');
        }
        first = false;
        out.push('{');
        for (index, key) in keys.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push(':');
            let value = row.get_ref(index).map_err(|e| sqlite_error(&e))?;
            match value {
                ValueRef::Null => out.push_str("null"),
                ValueRef::Integer(v) => out.push_str(&integer_json(v, &mut tagged)),
                ValueRef::Real(v) => out.push_str(&real_json(v, &mut tagged)),
                ValueRef::Text(bytes) => {
                    out.push_str(&json_string(&String::from_utf8_lossy(bytes)))
                }
                ValueRef::Blob(bytes) => {
                    tagged = true;
                    out.push_str(&format!("[\"x\",{}]", blobs.len()));
                    blobs.push(bytes.to_vec());
                }
            }
        }
        out.push('}');
    }
    out.push(']');
    Ok(format!("{{\"t\":{},\"r\":{out}}}", u8::from(tagged)))
}
