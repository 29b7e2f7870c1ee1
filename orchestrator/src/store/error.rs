//! `StoreError`: every way a store operation fails, typed so services never see rusqlite.

use std::path::PathBuf;

use crate::model::{
    CapabilityId, ExecutionId, ExecutionStatus, SessionId, SessionStatus, StartupFileId, TemplateId,
};

/// A failed store operation. Not-found and conflict variants carry what the API's
/// 404/409 `details` need (spec §2); the others are internal failures.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    // Opening (fatal for the daemon, spec §10.2).
    #[error("failed to create the database directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to open the database lock file {}", path.display())]
    LockFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to lock the database {}: another vm-system daemon is using it", path.display())]
    Locked { path: PathBuf },
    #[error("failed to open the database {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: DbError,
    },
    #[error("failed to enable wal mode: the journal mode stayed {found}")]
    NoWal { found: String },
    #[error(
        "database was written by a newer vm-system (schema version {found}, this build supports up to {supported})"
    )]
    NewerSchema { found: i64, supported: i64 },
    #[error("failed to apply database migration {version}")]
    Migration {
        version: usize,
        #[source]
        source: DbError,
    },
    #[error("failed to start the store thread")]
    Spawn(#[source] std::io::Error),
    #[error("store is closed")]
    Closed,

    // Not found (404).
    #[error("template {template_id} not found")]
    TemplateNotFound { template_id: TemplateId },
    #[error("capability {capability_id} not found on template {template_id}")]
    CapabilityNotFound {
        template_id: TemplateId,
        capability_id: CapabilityId,
    },
    #[error("startup file {startup_file_id} not found on template {template_id}")]
    StartupFileNotFound {
        template_id: TemplateId,
        startup_file_id: StartupFileId,
    },
    #[error("session {session_id} not found")]
    SessionNotFound { session_id: SessionId },
    #[error("execution {execution_id} not found")]
    ExecutionNotFound { execution_id: ExecutionId },

    // Conflicts (409).
    #[error("template name {name:?} is taken by template {template_id}")]
    TemplateNameTaken {
        name: String,
        template_id: TemplateId,
    },
    #[error("template {template_id} is used by sessions that are not closed")]
    TemplateInUse {
        template_id: TemplateId,
        /// Sorted ascending.
        session_ids: Vec<SessionId>,
    },
    #[error("capability exists on template {template_id} as {capability_id}")]
    CapabilityExists {
        template_id: TemplateId,
        capability_id: CapabilityId,
    },
    #[error("startup file exists on template {template_id} as {startup_file_id}")]
    StartupFileExists {
        template_id: TemplateId,
        startup_file_id: StartupFileId,
    },
    /// A conditional session transition found the row in another state; a closed
    /// session can never leave `closed`.
    #[error("session {session_id} is {status}")]
    SessionState {
        session_id: SessionId,
        status: SessionStatus,
    },
    #[error("session {session_id} is running execution {execution_id}")]
    SessionBusy {
        session_id: SessionId,
        execution_id: ExecutionId,
    },
    #[error("execution {execution_id} already ended as {status}")]
    ExecutionFinished {
        execution_id: ExecutionId,
        status: ExecutionStatus,
    },

    // Caller bugs and damaged data (500).
    #[error("event {found} of execution {execution_id} is out of order: expected seq {expected}")]
    EventOutOfOrder {
        execution_id: ExecutionId,
        expected: u64,
        found: u64,
    },
    #[error("invalid store request: {reason}")]
    InvalidInput { reason: &'static str },
    #[error("failed to access the database")]
    Sqlite(#[source] DbError),
    /// No transaction (or savepoint) could be opened for a write, which did not run: the
    /// database is locked by another process past the busy timeout, say.
    #[error("failed to begin a database transaction: {0}")]
    Begin(String),
    /// The shared transaction of a group of writes failed to commit (the cause is logged once).
    #[error("failed to commit to the database: {0}")]
    Commit(String),
}

/// An opaque SQLite failure: the cause of [`StoreError`] variants, never matched on.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub(crate) struct DbError(rusqlite::Error);

impl From<rusqlite::Error> for DbError {
    fn from(err: rusqlite::Error) -> Self {
        Self(err)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Sqlite(DbError(err))
    }
}
