//! Business rules of the daemon: templates, sessions and executions (spec §4–§7). Handlers call
//! these; they talk to the store, the registry and the workers.

mod drive;
pub(crate) mod executions;
pub(crate) mod sessions;
pub(crate) mod templates;

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::error::ApiError;
use crate::metrics::Metrics;
use crate::pool::WorkerPool;
use crate::registry::Registry;
use crate::store::{Store, StoreError};

/// Everything the services share. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Service(Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) registry: Registry,
    pub(crate) pool: WorkerPool,
    pub(crate) metrics: Metrics,
    /// The engine this build provides, as the probe worker reported it.
    pub(crate) engine: String,
    pub(crate) library_dir: PathBuf,
    /// Cancelled when the daemon starts shutting down.
    pub(crate) shutdown: CancellationToken,
    /// Cancelled when the shutdown stops what is left after the grace period (spec §10.6 step 2:
    /// executions cancelled, then workers stopped). Failures from then on are the shutdown's own
    /// doing; before it, a start or a worker that fails is recorded as at any other time.
    pub(crate) stopping: CancellationToken,
    /// Session starts and executions in progress (waited for at shutdown).
    pub(crate) tasks: TaskTracker,
    next_exec_id: AtomicU64,
}

impl Deref for Service {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Service {
    pub(crate) fn new(
        store: Store,
        pool: WorkerPool,
        metrics: Metrics,
        engine: String,
        library_dir: PathBuf,
    ) -> Self {
        Service(Arc::new(Inner {
            store,
            registry: Registry::default(),
            pool,
            metrics,
            engine,
            library_dir,
            shutdown: CancellationToken::new(),
            stopping: CancellationToken::new(),
            tasks: TaskTracker::new(),
            next_exec_id: AtomicU64::new(1),
        }))
    }

    /// A fresh per-worker execution id.
    pub(crate) fn next_exec_id(&self) -> protocol::ExecId {
        protocol::ExecId(self.next_exec_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs `work` as a tracked task that finishes even if the client disconnects, and waits for
    /// it. During shutdown no new work starts.
    pub(crate) async fn spawn<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, ApiError>> + Send + 'static,
        T: Send + 'static,
    {
        if self.shutdown.is_cancelled() {
            return Err(ApiError::ShuttingDown);
        }
        match self.tasks.spawn(work).await {
            Ok(result) => result,
            Err(err) => Err(ApiError::internal(err)),
        }
    }
}

/// Maps store failures onto the API's errors: not-found and conflicts keep their meaning,
/// anything else is internal.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::TemplateNotFound { template_id } => ApiError::TemplateNotFound {
                template_id: template_id.as_uuid(),
            },
            StoreError::CapabilityNotFound {
                template_id,
                capability_id,
            } => ApiError::CapabilityNotFound {
                template_id: template_id.as_uuid(),
                capability_id: capability_id.as_uuid(),
            },
            StoreError::StartupFileNotFound {
                template_id,
                startup_file_id,
            } => ApiError::StartupFileNotFound {
                template_id: template_id.as_uuid(),
                startup_file_id: startup_file_id.as_uuid(),
            },
            StoreError::SessionNotFound { session_id } => ApiError::SessionNotFound {
                session_id: session_id.as_uuid(),
            },
            StoreError::ExecutionNotFound { execution_id } => ApiError::ExecutionNotFound {
                execution_id: execution_id.as_uuid(),
            },
            StoreError::TemplateNameTaken { name, template_id } => ApiError::TemplateNameTaken {
                name,
                template_id: template_id.as_uuid(),
            },
            StoreError::TemplateInUse {
                template_id,
                session_ids,
            } => ApiError::TemplateInUse {
                template_id: template_id.as_uuid(),
                session_ids: session_ids.into_iter().map(|id| id.as_uuid()).collect(),
            },
            StoreError::SessionState { session_id, status } => ApiError::SessionNotReady {
                session_id: session_id.as_uuid(),
                status: status.as_str().to_string(),
            },
            StoreError::SessionBusy {
                session_id,
                execution_id,
            } => ApiError::SessionBusy {
                session_id: session_id.as_uuid(),
                execution_id: execution_id.as_uuid(),
            },
            StoreError::ExecutionFinished {
                execution_id,
                status,
            } => ApiError::ExecutionFinished {
                execution_id: execution_id.as_uuid(),
                status: status.as_str().to_string(),
            },
            other => ApiError::internal(other),
        }
    }
}
